#!/usr/bin/env bash
# Start dockerd in the background when its socket does not answer; wait until it does.
set -euo pipefail
log_dir="${ISOBENCH_LOG_DIR:-/var/log/isobench}"
mkdir -p "$log_dir"
sock=/var/run/docker.sock
docker_cli=docker
[ -x /usr/bin/docker ] && docker_cli=/usr/bin/docker

answers() { "$docker_cli" -H "unix://$sock" version --format '{{.Server.Version}}' >/dev/null 2>&1; }

if answers; then
  echo "[setup] dockerd answers on $sock"
  exit 0
fi
command -v dockerd >/dev/null 2>&1 || { echo "[setup] error: dockerd not installed (fix: apt-get install docker.io)" >&2; exit 1; }
echo "[setup] starting dockerd (log: $log_dir/dockerd.log)"
# containerd is started by dockerd itself when none runs.
nohup dockerd >"$log_dir/dockerd.log" 2>&1 </dev/null &
for _ in $(seq 1 60); do
  if answers; then
    echo "[setup] dockerd answers on $sock"
    exit 0
  fi
  sleep 0.5
done
echo "[setup] error: dockerd did not answer within 30 s; last log lines:" >&2
tail -n 5 "$log_dir/dockerd.log" >&2
exit 1
