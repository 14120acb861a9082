#!/usr/bin/env bash
# Idempotent host setup for isobench on Debian 12: installs what is missing, creates .venv,
# and starts dockerd when its socket does not answer. Safe to run again; fast when all is there.
set -euo pipefail
# --host-only: Debian packages and dockerd, no .venv (isobench fleet installs its wheel itself)
host_only=0; [ "${1:-}" = "--host-only" ] && host_only=1

here="$(cd "$(dirname "$0")/.." && pwd)"
log_dir="${ISOBENCH_LOG_DIR:-/var/log/isobench}"
mkdir -p "$log_dir"

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (isobench needs chroot, cgroups, docker and QEMU): sudo $0"

# --- Debian packages -------------------------------------------------------------------------
# command-or-file : package
need=(
  "dockerd:docker.io"
  "qemu-system-x86_64:qemu-system-x86"
  "qemu-img:qemu-utils"
  "debootstrap:debootstrap"
  "mkfs.ext4:e2fsprogs"
  "ip:iproute2"
  "/bin/busybox:busybox-static"
  "taskset:util-linux"
  "wrk:wrk"
  "nginx:nginx-light"
  "chromium:chromium"
  "ps:procps"
  "pg_ctlcluster:postgresql"
  "nft:nftables"
  "podman:podman"
  "/usr/lib/podman/netavark:netavark"
  # the micro suite's host-side clients and the by-hand checks (isobench suite micro)
  "redis-benchmark:redis-tools"
  "iperf3:iperf3"
  "sockperf:sockperf"
  "sysbench:sysbench"   # with its mysql driver: sysbench oltp_read_write against MariaDB
  "pgbench:postgresql"  # pgbench against the suite's PostgreSQL
  # isobench fleet: venvs on fleet hosts; the test's second "host" is this one over SSH
  "/usr/share/doc/python3-venv:python3-venv"
  "/usr/sbin/sshd:openssh-server"
)
missing=()
for item in "${need[@]}"; do
  what="${item%%:*}"; pkg="${item##*:}"
  if [[ "$what" == /* ]]; then [ -e "$what" ] || missing+=("$pkg")
  else command -v "$what" >/dev/null 2>&1 || missing+=("$pkg"); fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # No service starts during the install (nginx, postgresql, docker): isobench starts what it
  # needs itself, on 127.0.0.1 only. policy-rc.d is Debian's switch for that; ours is removed after.
  own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && own_policy=1
  fi
  trap '[ "$own_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
  apt-get update -q >"$log_dir/apt-update.log" 2>&1 || die "apt-get update failed (see $log_dir/apt-update.log)"
  apt-get install -y -q --no-install-recommends "${missing[@]}" >"$log_dir/apt-install.log" 2>&1 \
    || die "apt-get install ${missing[*]} failed (see $log_dir/apt-install.log)"
  [ "$own_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
  own_policy=0
else
  say "Debian packages present"
fi

# --- gVisor: runsc from bookworm-backports ---------------------------------------------------
# bookworm's own runsc (20221219) fails every iperf3 test under its host network (a read of the
# control connection comes back empty where Linux blocks); bookworm-backports' (20240729) fails
# fewer (3 of 8 here) and has systrap, gVisor's default platform since mid-2023. Debian's
# backports install only what is named with -t: nothing else on the host moves.
runsc_wanted=20240729
# shellcheck source=scripts/runsc-release.sh
. "$here/scripts/runsc-release.sh"
install_distro_runsc() {  # the distribution's own runsc; dies when apt cannot install it
  apt-get update -q >"$log_dir/apt-update.log" 2>&1 || die "apt-get update failed (see $log_dir/apt-update.log)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends runsc \
    >>"$log_dir/apt-runsc.log" 2>&1 || die "apt-get install runsc failed (see $log_dir/apt-runsc.log)"
}
codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
have="$(runsc_release)"
if [ "$codename" != bookworm ] && [ -z "$have" ]; then
  say "installing runsc (gVisor)"
  install_distro_runsc
elif [ "$codename" = bookworm ] && { [ -z "$have" ] || [ "$have" -lt "$runsc_wanted" ]; }; then
  ours=/etc/apt/sources.list.d/isobench-bookworm-backports.sources
  if ! grep -rqs '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      >"$ours"
  fi
  say "installing runsc (gVisor) $runsc_wanted from bookworm-backports (have: ${have:-none})"
  if ! { apt-get update -q >"$log_dir/apt-update.log" 2>&1 \
         && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            -t bookworm-backports runsc >"$log_dir/apt-runsc.log" 2>&1; }; then
    # backports unreachable: bookworm's own runsc still runs every runtime test (not iperf3)
    say "warning: runsc from bookworm-backports failed (see $log_dir/apt-*.log); keeping bookworm's"
    rm -f "$ours"
    [ -n "$have" ] || install_distro_runsc
  fi
  say "runsc $(runsc_release)"
fi

# --- Python environment ----------------------------------------------------------------------
venv="$here/.venv"
stamp="$venv/.isobench-installed"
if [ "$host_only" = 1 ]; then
  say "--host-only: no Python environment"
elif [ ! -x "$venv/bin/python" ]; then
  say "creating $venv"
  python3 -m venv "$venv"
fi
if [ "$host_only" = 1 ]; then
  :
elif [ ! -f "$stamp" ] || [ "$here/pyproject.toml" -nt "$stamp" ]; then
  say "installing isobench and its Python dependencies into .venv"
  "$venv/bin/pip" install -q --upgrade pip >"$log_dir/pip.log" 2>&1 || true
  "$venv/bin/pip" install -q -e "$here[dev,fleet]" >>"$log_dir/pip.log" 2>&1 \
    || die "pip install failed (see $log_dir/pip.log)"
  touch "$stamp"
else
  say "Python environment up to date"
fi

# --- Docker engine (+ gVisor's runsc registered as a Docker runtime) ------------------------------
"$here/scripts/start-dockerd.sh"
if [ -x "$here/scripts/register-runsc.sh" ]; then
  "$here/scripts/register-runsc.sh" >"$log_dir/register-runsc.log" 2>&1 \
    || say "warning: could not register runsc with dockerd (see $log_dir/register-runsc.log); gvisor runtime unavailable"
fi

if [ "$host_only" = 1 ]; then say "host ready"; else say "host ready: $("$venv/bin/isobench" --version)"; fi
