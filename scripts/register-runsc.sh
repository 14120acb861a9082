#!/usr/bin/env bash
# Register Debian's runsc (gVisor) with Docker as runtime "runsc": idempotent, merges with an
# existing /etc/docker/daemon.json, reloads dockerd with SIGHUP and waits until `docker info`
# lists it. runsc here only runs with host networking (`docker run --runtime runsc --network host`)
# and the ptrace platform (its kvm platform hangs on this host kind).
set -euo pipefail

conf=/etc/docker/daemon.json
say() { printf '\033[1m[runsc]\033[0m %s\n' "$*"; }
die() { printf '[runsc] error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root: sudo $0"
runsc_path="$(command -v runsc || true)"
[ -n "$runsc_path" ] || die "runsc not installed (fix: apt-get install runsc)"

registered() {
  docker info --format '{{json .Runtimes}}' 2>/dev/null | python3 -c \
    'import json,sys; sys.exit(0 if "runsc" in json.load(sys.stdin) else 1)'
}

mkdir -p "$(dirname "$conf")"
changed="$(python3 - "$conf" "$runsc_path" <<'PY'
import json, os, sys, tempfile
conf, path = sys.argv[1], sys.argv[2]
try:
    with open(conf) as fh:
        data = json.load(fh) if os.path.getsize(conf) else {}
except FileNotFoundError:
    data = {}
want = {"path": path, "runtimeArgs": ["--network=host", "--platform=ptrace"]}
runtimes = data.setdefault("runtimes", {})
if runtimes.get("runsc") == want:
    print("no")
    sys.exit(0)
runtimes["runsc"] = want
fd, tmp = tempfile.mkstemp(dir=os.path.dirname(conf), prefix=".daemon.json.")
with os.fdopen(fd, "w") as fh:
    json.dump(data, fh, indent=2, sort_keys=True)
    fh.write("\n")
os.chmod(tmp, 0o644)
os.replace(tmp, conf)
print("yes")
PY
)"

if [ "$changed" = no ] && registered; then
  say "runsc already registered with Docker ($runsc_path)"
  exit 0
fi
pid="$(pidof dockerd || true)"
[ -n "$pid" ] || die "dockerd is not running (fix: scripts/start-dockerd.sh)"
say "wrote $conf; reloading dockerd (pid $pid)"
kill -HUP $pid
for _ in $(seq 1 40); do
  if registered; then
    say "runsc registered with Docker ($runsc_path, --network=host --platform=ptrace)"
    exit 0
  fi
  sleep 0.25
done
die "dockerd did not list runsc after reload (see the dockerd log, /var/log/isobench/dockerd.log)"
