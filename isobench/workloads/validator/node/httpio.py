"""A minimal HTTP/1.1 server side on asyncio streams: requests with Content-Length, keep-alive.

Enough for JSON-RPC, health checks and the gossip upgrade; anything else is answered 4xx/5xx.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

MAX_HEAD = 16 * 1024
MAX_BODY = 1024 * 1024

REASONS = {
    101: "Switching Protocols", 200: "OK", 400: "Bad Request", 404: "Not Found",
    405: "Method Not Allowed", 411: "Length Required", 413: "Payload Too Large",
    431: "Request Header Fields Too Large", 501: "Not Implemented",
}


class HttpError(Exception):
    """A request the server answers with ``status`` and then closes."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Request:
    """One parsed request. Header names are lower-case."""

    method: str
    path: str
    version: str
    headers: dict[str, str]
    body: bytes

    @property
    def keep_alive(self) -> bool:
        connection = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return connection == "keep-alive"
        return connection != "close"


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """The next request on a connection; None when the client closed it between requests."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None
        raise HttpError(400, "connection closed inside the request head") from exc
    except asyncio.LimitOverrunError as exc:
        raise HttpError(431, "request head too large") from exc
    if len(head) > MAX_HEAD:
        raise HttpError(431, "request head too large")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise HttpError(400, "bad request line")
    method, path, version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise HttpError(400, "bad header line")
        headers[name.strip().lower()] = value.strip()
    if "transfer-encoding" in headers:
        raise HttpError(501, "chunked request bodies are not supported")
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError as exc:
        raise HttpError(400, "bad Content-Length") from exc
    if length < 0 or length > MAX_BODY:
        raise HttpError(413, "request body too large")
    body = await reader.readexactly(length) if length else b""
    return Request(method, path, version, headers, body)


def response(status: int, body: bytes = b"", *, content_type: str = "application/json",
             keep_alive: bool = True, extra: dict[str, str] | None = None) -> bytes:
    """The bytes of a complete response."""
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}"]
    headers = {"Content-Type": content_type, "Content-Length": str(len(body)),
               "Connection": "keep-alive" if keep_alive else "close", **(extra or {})}
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def json_response(status: int, payload: Any, *, keep_alive: bool = True) -> bytes:
    """A JSON response."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    return response(status, body, keep_alive=keep_alive)


def switching_protocols(token: str) -> bytes:
    """The 101 answer to an upgrade request."""
    return (f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: {token}\r\n"
            "Connection: Upgrade\r\n\r\n").encode("latin-1")
