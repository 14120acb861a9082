#!/usr/bin/env bash
# Register Debian's runsc (gVisor) with Docker as runtime "runsc": idempotent, merges with an
# existing /etc/docker/daemon.json, reloads dockerd with SIGHUP and waits until `docker info`
# lists it with these arguments. runsc here only runs with host networking (`docker run
# --runtime runsc --network host`): its own network stack refuses to start on kernels from 6.11 on (it takes any network namespace
# for the root one, gVisor issue 10704, reported after Debian's releases). The platform is gVisor's
# default since mid-2023, systrap, where the release has it; ptrace on older releases (20221219).
# Its kvm platform hangs on this host kind.
set -euo pipefail

conf=/etc/docker/daemon.json
say() { printf '\033[1m[runsc]\033[0m %s\n' "$*"; }
die() { printf '[runsc] error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root: sudo $0"
runsc_path="$(command -v runsc || true)"
[ -n "$runsc_path" ] || die "runsc not installed (fix: apt-get install runsc)"

# shellcheck source=scripts/runsc-release.sh
. "$(dirname "$0")/runsc-release.sh"

registered() {  # dockerd lists runsc with exactly this path and these arguments
  docker info --format '{{json .Runtimes}}' 2>/dev/null | python3 -c '
import json, sys
want = {"path": sys.argv[1], "runtimeArgs": ["--network=host", "--platform=" + sys.argv[2]]}
got = json.load(sys.stdin).get("runsc") or {}
sys.exit(0 if {k: got.get(k) for k in want} == want else 1)' "$runsc_path" "$platform"
}

mkdir -p "$(dirname "$conf")"
# systrap came with gVisor's releases of mid-2023 (runsc --version: "0.0~YYYYMMDD.N" in Debian)
release="$(runsc_release "$runsc_path")"
platform=systrap
if [ -n "$release" ] && [ "$release" -lt 20230601 ]; then platform=ptrace; fi

changed="$(python3 - "$conf" "$runsc_path" "$platform" <<'PY'
import json, os, sys, tempfile
conf, path, platform = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    with open(conf) as fh:
        data = json.load(fh) if os.path.getsize(conf) else {}
except FileNotFoundError:
    data = {}
want = {"path": path, "runtimeArgs": ["--network=host", f"--platform={platform}"]}
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
    say "runsc registered with Docker ($runsc_path, --network=host --platform=$platform)"
    exit 0
  fi
  sleep 0.25
done
die "dockerd did not list runsc after reload (see the dockerd log, /var/log/isobench/dockerd.log)"
