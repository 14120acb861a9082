"""A throwaway sshd on 127.0.0.1 for the fleet tests: its own config, host key and client key in a
temporary directory, a free loopback port, root by key only; stopped (by its own pid) at the end."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.fixtures.procs import stop

SSHD = "/usr/sbin/sshd"


@dataclass
class Sshd:
    port: int
    key: Path  # the client's private key (root@127.0.0.1)
    pid: int

    def ssh_args(self) -> str:
        """``ansible_ssh_common_args`` for this server: its key, no known_hosts of the machine."""
        return ("-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
                "-o IdentitiesOnly=yes -o LogLevel=ERROR")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5) as s:
        return s.recv(4).startswith(b"SSH")
    return False


@contextlib.contextmanager
def running_sshd(tmp: Path) -> Iterator[Sshd]:
    """Start ``sshd -D`` on a free 127.0.0.1 port; kill it (its pid only) and remove its files."""
    tmp.mkdir(parents=True, exist_ok=True)
    os.chmod(tmp, 0o700)
    host_key, key = tmp / "host_ed25519", tmp / "client_ed25519"
    for path in (host_key, key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
                       check=True)
    (tmp / "authorized_keys").write_text((tmp / "client_ed25519.pub").read_text())
    os.chmod(tmp / "authorized_keys", 0o600)
    port = free_port()
    config = tmp / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nPidFile {tmp / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {tmp / 'authorized_keys'}\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "StrictModes no\nSubsystem sftp internal-sftp\nMaxStartups 20\n")
    made_privsep = not Path("/run/sshd").exists()
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL,
                            stderr=open(tmp / "sshd.log", "w"))  # noqa: SIM115
    try:
        deadline = time.monotonic() + 10
        while not _answers(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sshd did not start: {(tmp / 'sshd.log').read_text()}")
            time.sleep(0.1)
        yield Sshd(port, key, proc.pid)
    finally:
        stop(proc)
        if made_privsep:
            shutil.rmtree("/run/sshd", ignore_errors=True)
        for path in (host_key, key):
            for p in (path, path.with_suffix(".pub")):
                p.unlink(missing_ok=True)


if __name__ == "__main__":  # by hand: python -m tests.fleet.sshd DIR (Ctrl-C stops it)
    import sys

    with running_sshd(Path(sys.argv[1])) as server:
        print(f"port {server.port} key {server.key} pid {server.pid}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            time.sleep(3600)
