# Sourced by setup-host.sh and register-runsc.sh (fleet copies it with them).
# runsc_release [BINARY]: the release date (YYYYMMDD) of a Debian runsc, from `runsc --version`
# ("runsc version 0.0~20240729.0"); prints nothing when it is not installed or says otherwise.
runsc_release() {
  "${1:-runsc}" --version 2>/dev/null | sed -n 's/^runsc version 0\.0~\([0-9]\{8\}\).*/\1/p' || true
}
