"""Telemetry measured from the host, the same way for every runtime."""
