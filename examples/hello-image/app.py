"""A tiny HTTP app packaged as a user would: it reports what its runtime gave it.

GET /healthz → "ok"; GET / → JSON with the greeting (from the image's ENV), the working directory
(the image's WORKDIR), the uid and a few environment variables. Stdlib only.
Listens on $BIND:$PORT (the image sets 0.0.0.0:18081).
"""

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/healthz":
            body = b"ok\n"
            ctype = "text/plain"
        else:
            report = {
                "greeting": os.environ.get("GREETING"),
                "cwd": os.getcwd(),
                "uid": os.getuid(),
                "env": {k: os.environ.get(k) for k in ("GREETING", "APP_MODE", "PATH", "HOME")},
                "data": open("data.txt").read().strip() if os.path.exists("data.txt") else None,
            }
            body = (json.dumps(report, sort_keys=True) + "\n").encode()
            ctype = "application/json"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer((os.environ.get("BIND", "0.0.0.0"), int(os.environ["PORT"])),
                                 Handler)
    print(f"hello-image listening on {server.server_address}", flush=True)
    server.serve_forever()
