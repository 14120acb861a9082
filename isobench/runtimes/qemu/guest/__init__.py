"""Files that run inside the VM guest: ``init.sh`` (PID 1) and ``stats.sh`` (telemetry CGI)."""
