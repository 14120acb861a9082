"""Local servers for the load engine's tests and benchmark: nginx (Debian nginx-light) with a
private config, and a small asyncio HTTP server that can stall. 127.0.0.1 only."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from isobench.util.netutil import free_port

NGINX_CONF = """
worker_processes 1;
daemon off;
master_process on;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        root {dir}/www;
        location / {{ }}
        location = /json {{ default_type application/json; return 200 '{{"data":{{"ok":true}}}}'; }}
        location = /missing {{ return 404; }}
    }}
}}
"""


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


@contextlib.contextmanager
def nginx(cpu: int | None = 0, body: bytes = b"hello isobench\n") -> Iterator[str]:
    """nginx serving ``/index.html`` (``body``), ``/json``, ``/missing`` (404); yields the URL."""
    exe = shutil.which("nginx") or "/usr/sbin/nginx"
    d = Path(tempfile.mkdtemp(prefix="isobench-nginx-"))
    d.chmod(0o755)  # nginx workers run as nobody
    port = free_port()
    (d / "www").mkdir()
    (d / "www" / "index.html").write_bytes(body)
    (d / "nginx.conf").write_text(NGINX_CONF.format(dir=d, port=port))
    proc = subprocess.Popen([exe, "-c", str(d / "nginx.conf"), "-p", str(d)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        if cpu is not None:
            time.sleep(0.2)
            for pid in [proc.pid, *_children(proc.pid)]:
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(pid, {cpu})
        wait_port(port)
        for pid in _children(proc.pid):  # the worker may start after the first sweep
            with contextlib.suppress(OSError):
                os.sched_setaffinity(pid, {cpu} if cpu is not None else os.sched_getaffinity(0))
        yield f"http://127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
        shutil.rmtree(d, ignore_errors=True)


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


class AsyncServer:
    """A tiny asyncio HTTP/1.1 keep-alive server in a thread.

    ``/`` answers ``ok``; ``/json`` answers ``{"data": {"ok": true}}``; ``/slow`` sleeps
    ``slow_s``; ``/stall`` blocks the whole server for ``stall_s`` the first time it is hit after
    :meth:`arm_stall` (a stop-the-world pause, as a GC pause or a stuck disk would be).
    """

    def __init__(self, stall_s: float = 1.0, slow_s: float = 0.05) -> None:
        self.stall_s = stall_s
        self.slow_s = slow_s
        self.port = free_port()
        self._armed = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = threading.Event()
        self.hits = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def arm_stall(self) -> None:
        self._armed.set()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.port, backlog=1024))
        self._started.set()
        self._loop.run_forever()

    async def _handle(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await r.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1]
                self.hits += 1
                body, status = b"ok", b"200 OK"
                if path == b"/json":
                    body = b'{"data": {"ok": true}}'
                elif path == b"/slow":
                    await asyncio.sleep(self.slow_s)
                elif path == b"/stall" and self._armed.is_set():
                    self._armed.clear()
                    time.sleep(self.stall_s)  # blocks every connection: stop-the-world
                elif path == b"/missing":
                    body, status = b"no", b"404 Not Found"
                w.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: " + str(len(body)).encode()
                        + b"\r\nContent-Type: text/plain\r\n\r\n" + body)
                await w.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            w.close()

    def __enter__(self) -> AsyncServer:
        self._thread.start()
        self._started.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        def stop() -> None:
            self._server.close()
            self._loop.stop()

        self._loop.call_soon_threadsafe(stop)
        self._thread.join(10)
