"""isobench's test workload: a stdlib-only HTTP server whose cost is known in advance.

Endpoints: ``/healthz``; ``/burn?seconds=S`` (busy-loops one core for S seconds);
``/alloc?mb=N`` (allocates and touches N MB, held until ``/free``); ``/free``;
``/payload?bytes=N`` (answers N bytes); ``POST /echo`` (answers the body's size).
Runs with any Python 3 (no third-party modules), so its rootfs builds fast.
"""

from __future__ import annotations

import argparse
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

HELD: list[bytearray] = []
CHUNK = b"x" * 65536


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "isobench-burn/1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _json(self, data: dict[str, object], status: int = 200) -> None:
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            if url.path == "/healthz":
                self._json({"ok": True})
            elif url.path == "/burn":
                seconds = float(q.get("seconds", "1"))
                t0, c0 = time.perf_counter(), time.thread_time()
                loops = 0
                while time.perf_counter() - t0 < seconds:
                    loops += 1
                self._json(
                    {
                        "seconds": time.perf_counter() - t0,
                        "cpu_seconds": time.thread_time() - c0,
                        "loops": loops,
                    }
                )
            elif url.path == "/alloc":
                mb = int(q.get("mb", "1"))
                HELD.append(bytearray(b"\x01") * (mb * 1024 * 1024))  # repeat touches every page
                self._json({"held_mb": sum(len(b) for b in HELD) // (1024 * 1024)})
            elif url.path == "/free":
                HELD.clear()
                self._json({"held_mb": 0})
            elif url.path == "/payload":
                n = int(q.get("bytes", "0"))
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(n))
                self.end_headers()
                while n > 0:
                    part = CHUNK[: min(n, len(CHUNK))]
                    self.wfile.write(part)
                    n -= len(part)
            else:
                self._json({"error": "not found"}, 404)
        except ValueError as exc:
            self._json({"error": str(exc)}, 400)

    def do_POST(self) -> None:
        if urlparse(self.path).path != "/echo":
            self._json({"error": "not found"}, 404)
            return
        remaining = int(self.headers.get("Content-Length") or 0)
        size = 0
        while remaining > 0:
            data = self.rfile.read(min(remaining, 65536))
            if not data:
                break
            size += len(data)
            remaining -= len(data)
        self._json({"bytes": size})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
