"""isobench's test workload: a stdlib-only HTTP server whose cost is known in advance.

Endpoints: ``/healthz``; ``/burn?seconds=S`` (busy-loops one core for S seconds);
``/work?units=N`` (N units of a deterministic pure-CPU loop: a fixed instruction count per
unit, no allocation growth, no sleeping; answers the loop's checksum, so a request's work is a
known multiple of a unit's);
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

UNIT_STEPS = 500
"""Iterations of the work loop per unit (~35 µs of CPython 3.11 time on a 2020s x86 core)."""
MAX_UNITS = 1_000_000


def work(units: int, seed: int = 1) -> int:
    """``units`` units of pure CPU work; returns a checksum that depends only on the arguments.

    Each unit is ``UNIT_STEPS`` steps of a 32-bit linear congruential generator: the same
    bytecode, on small integers (no growing allocation), for every unit, so the cost of a
    request is ``units`` times the cost of a unit.
    """
    x = seed & 0xFFFFFFFF
    for _ in range(units):
        for _ in range(UNIT_STEPS):
            x = (x * 1103515245 + 12345) & 0xFFFFFFFF
    return x


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

    def _json_one_write(self, data: dict[str, object]) -> None:
        """A 200 JSON answer in a single write: headers and body in separate small writes meet
        Nagle's algorithm and the client's delayed ACK (~40 ms a request, not CPU)."""
        body = json.dumps(data).encode()
        self.log_request(200)
        head = (
            f"{self.protocol_version} 200 OK\r\nServer: {self.server_version}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.wfile.write(head.encode() + body)

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
            elif url.path == "/work":
                units = int(q.get("units", "1"))
                if not 0 <= units <= MAX_UNITS:
                    raise ValueError(f"units must be in 0..{MAX_UNITS}")
                self._json_one_write({"units": units, "checksum": work(units)})
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
