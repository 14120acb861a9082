"""Ports on 127.0.0.1 and readiness polling."""

from __future__ import annotations

import errno
import http.client
import socket
import time
from collections.abc import Callable

from isobench.errors import StartError


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_port_free(port: int, host: str = "127.0.0.1") -> None:
    """Raise StartError naming the fix when something listens on host:port (127.0.0.1 unless the
    client is remote).

    Connections of a previous instance lingering in TIME_WAIT do not count (``SO_REUSEADDR``, as
    servers set it): a fixed-port workload is started on the same port trial after trial.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                raise StartError(
                    f"port {port} on {host} is already taken",
                    fix=f"stop what listens there (ss -ltnp 'sport = :{port}') or use another port",
                ) from exc
            raise


def http_status(port: int, path: str, timeout: float = 0.5,
                host: str = "127.0.0.1") -> int | None:
    """Status of GET http://host:port/path, or None when nothing answered in time."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def wait_ready(
    port: int,
    path: str,
    *,
    launched_at: float,
    deadline_s: float,
    exited: Callable[[], str | None],
    interval: float = 0.05,
    host: str = "127.0.0.1",
) -> float:
    """Poll until GET path answers 200; return seconds since ``launched_at`` (monotonic).

    Polls with sub-second timeouts (a forwarder can accept connections while the server behind
    it is hung) and checks ``exited()`` between polls, so a dead instance fails at once with its
    reason.
    """
    end = launched_at + deadline_s
    while True:
        status = http_status(port, path, host=host)
        now = time.monotonic()
        if status == 200:
            return now - launched_at
        reason = exited()
        if reason:
            raise StartError(f"instance exited before it was ready: {reason}")
        if now > end:
            raise StartError(
                f"no HTTP 200 from {host}:{port}{path} within {deadline_s:.0f} s "
                f"(last status {status})",
                fix="see the instance log in the run directory",
            )
        time.sleep(interval)
