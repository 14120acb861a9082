"""Virtual users: an HTTP/1.1 keep-alive connection (uvloop + httptools) driven as a state machine.

A VU runs one iteration = its scenario's requests in order, with think time after each request
(plus the request's own ``sleep``, k6's ``sleep()`` at that point of the iteration).
There is no coroutine per request: the response callback records one row and writes the next
request directly, which keeps the per-request Python work to a few attribute stores and two
``perf_counter`` calls (see :mod:`isobench.load.metrics` for the row and the k6 timings).
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

import httptools

from isobench.load.metrics import CheckStat, MetricStore


@dataclass
class CompiledRequest:
    """A request ready to write, with its checks."""

    rid: int
    data: bytes
    checks: list[tuple[CheckStat, str, Any]] = field(default_factory=list)
    needs_body: bool = False  # checks read the body or headers
    sleep: tuple[float, float] = (0.0, 0.0)  # pause after the response (s): [min, max]


@dataclass
class ScenarioContext:
    """What every VU of one scenario shares."""

    loop: asyncio.AbstractEventLoop
    store: MetricStore
    host: str
    port: int
    sid: int
    requests: list[CompiledRequest]
    think: tuple[float, float]
    timeout: float
    on_iteration_done: Callable[[VU], None]


class Conn(asyncio.Protocol):
    """One keep-alive connection; also the httptools parser's callback object."""

    def __init__(self, vu: VU) -> None:
        self.vu = vu
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.t_first = 0.0
        self.t_now = 0.0
        self.nrecv = 0
        self.alive = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.alive = True

    def data_received(self, data: bytes) -> None:
        now = perf_counter()
        if not self.t_first:
            self.t_first = now
        self.t_now = now
        self.nrecv += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.alive = False
            self.vu.on_failure(self)

    def on_message_complete(self) -> None:
        self.vu.on_response(self.parser.get_status_code(), self.parser.should_keep_alive())

    def connection_lost(self, exc: Exception | None) -> None:
        self.alive = False
        self.vu.on_failure(self)

    def close(self) -> None:
        self.alive = False
        if self.transport is not None:
            self.transport.close()


class BodyConn(Conn):
    """A connection that also keeps the response body and headers (for body/JSON/header
    checks)."""

    def __init__(self, vu: VU) -> None:
        super().__init__(vu)
        self.body: list[bytes] = []
        self.headers: list[tuple[bytes, bytes]] = []

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))


class VU:
    """One virtual user. The executor calls :meth:`start_iteration`; the VU calls back
    ``ctx.on_iteration_done`` when the iteration (including think time) is over."""

    def __init__(self, ctx: ScenarioContext, idx: int) -> None:
        self.ctx = ctx
        self.idx = idx
        self.conn: Conn | None = None
        self.reqs = ctx.requests
        self.rows = ctx.store.rows
        self.conn_cls = BodyConn if any(r.needs_body for r in ctx.requests) else Conn
        self.step = 0
        self.busy = False  # a request is in flight
        self.in_iteration = False
        self.dead = False
        self.iter_t0 = 0.0
        self.t0 = self.tc0 = self.tc1 = self.tw1 = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        lo, hi = ctx.think
        self._think: Callable[[], float] | None = None
        if hi > 0:
            self._think = (lambda: lo) if lo == hi else (lambda: random.uniform(lo, hi))

    # -- iteration control -------------------------------------------------------------------------
    def start_iteration(self, t_intended: float = 0.0) -> None:
        """Start an iteration; ``t_intended`` (perf_counter) is its scheduled start, 0 = now."""
        self.in_iteration = True
        self.step = 0
        self.iter_t0 = t_intended or perf_counter()
        self._send(t_intended)

    def abort(self) -> None:
        """Stop at once (hard stop): the iteration in progress is not recorded."""
        self.dead = True
        self.in_iteration = self.busy = False
        if self._timer is not None:
            self._timer.cancel()
        if self._task is not None:
            self._task.cancel()
        if self.conn is not None:
            c, self.conn = self.conn, None
            c.close()

    # -- sending ----------------------------------------------------------------------------------
    def _send(self, t0: float) -> None:
        c = self.conn
        self.busy = True
        if c is not None and c.alive:
            now = perf_counter()
            self.t0 = t0 or now
            self.tc0 = self.tc1 = now
            c.t_first = 0.0
            c.nrecv = 0
            if self.conn_cls is BodyConn:
                c.body = []  # type: ignore[attr-defined]
                c.headers = []  # type: ignore[attr-defined]
            c.transport.write(self.reqs[self.step].data)  # type: ignore[union-attr]
            self.tw1 = perf_counter()
        else:
            now = perf_counter()
            self.t0 = t0 or now
            self.tc0 = now
            self._task = self.ctx.loop.create_task(self._connect())

    async def _connect(self) -> None:
        ctx = self.ctx
        try:
            _, conn = await ctx.loop.create_connection(
                lambda: self.conn_cls(self), ctx.host, ctx.port
            )
        except OSError:
            self.conn = None
            self._record_failure(perf_counter())
            return
        finally:
            self._task = None
        if self.dead:
            conn.close()
            return
        self.conn = conn
        self.tc1 = perf_counter()
        conn.t_first = 0.0
        conn.nrecv = 0
        conn.transport.write(self.reqs[self.step].data)  # type: ignore[union-attr]
        self.tw1 = perf_counter()

    # -- receiving --------------------------------------------------------------------------------
    def on_response(self, status: int, keep_alive: bool) -> None:
        c = self.conn
        if c is None or not self.busy:
            return
        self.busy = False
        req = self.reqs[self.step]
        tend = c.t_now
        self.rows.append((req.rid, status, self.t0, self.tc0, self.tc1, self.tw1, c.t_first, tend,
                          c.nrecv, len(req.data)))
        if req.checks:
            self._run_checks(req, status, c, tend)
        if not keep_alive:
            self.conn = None
            c.close()
        self._next(tend)

    def on_failure(self, conn: Conn) -> None:
        """The connection broke (or sent garbage) while a request may be in flight."""
        if conn is not self.conn:
            return
        self.conn = None
        if self.busy and not self.dead:
            self.ctx.loop.call_soon(self._record_failure, perf_counter())

    def check_timeout(self, now: float) -> None:
        """Fail the request in flight if it is older than the scenario's timeout."""
        if self.busy and now - self.tc0 > self.ctx.timeout:
            c, self.conn = self.conn, None
            if self._task is not None:
                self._task.cancel()
                self._task = None
            if c is not None:
                c.vu = _NULL_VU  # type: ignore[assignment]
                c.close()
            self._record_failure(now)

    def _record_failure(self, now: float) -> None:
        if not self.busy or self.dead:
            return
        self.busy = False
        req = self.reqs[self.step]
        tc1 = self.tc1 if self.tc1 >= self.tc0 else now
        tw1 = self.tw1 if self.tw1 >= tc1 else now
        self.rows.append((req.rid, 0, self.t0, self.tc0, tc1, tw1, now, now, 0, len(req.data)))
        for stat, _kind, _arg in req.checks:
            stat.fails += 1
        self._next(now)

    def _next(self, tend: float) -> None:
        lo, hi = self.reqs[self.step].sleep
        pause = lo if lo == hi else random.uniform(lo, hi)
        self.step += 1
        if self._think is not None:
            pause += self._think()
        if pause > 0:
            self._timer = self.ctx.loop.call_later(pause, self._after_pause)
        else:
            self._after_think(tend)

    def _after_pause(self) -> None:
        self._after_think(perf_counter())

    def _after_think(self, end: float) -> None:
        """Go on after a response (and its pause, which ended at ``end``)."""
        self._timer = None
        if self.dead:
            return
        if self.step < len(self.reqs):
            self._send(0.0)
            return
        self.ctx.store.iter_rows.append((self.ctx.sid, self.iter_t0, end))
        self.in_iteration = False
        self.ctx.on_iteration_done(self)

    def _run_checks(self, req: CompiledRequest, status: int, c: Conn, tend: float) -> None:
        resp: _Response | None = None
        for stat, kind, arg in req.checks:
            if kind == "status":  # the common case, without the _Response
                ok = status in arg
            else:
                if resp is None:
                    resp = _Response(status, c, ((self.tc0 - self.t0) + (tend - self.tc1)) * 1e3)
                ok = all(resp.holds(k, a) for k, a in arg) if kind == "all" else resp.holds(
                    kind, arg)
            if ok:
                stat.passes += 1
            else:
                stat.fails += 1


class _Response:
    """One response as the checks see it (body, JSON and headers decoded lazily)."""

    def __init__(self, status: int, c: Conn, dur_ms: float) -> None:
        self.status = status
        self.conn = c
        self.dur_ms = dur_ms
        self._body: bytes | None = None
        self._parsed: Any = None
        self._headers: dict[bytes, bytes] | None = None

    def body(self) -> bytes:
        if self._body is None:
            c = self.conn
            self._body = b"".join(c.body) if isinstance(c, BodyConn) else b""
        return self._body

    def holds(self, kind: str, arg: Any) -> bool:
        if kind == "status":
            return self.status in arg
        if kind == "body_contains":
            return bool(arg in self.body())
        if kind == "max_duration":
            return bool(self.dur_ms <= arg)
        if kind == "json_field":
            if self._parsed is None:
                try:
                    self._parsed = json.loads(self.body())
                except ValueError:
                    self._parsed = _UNPARSED
            return self._parsed is not _UNPARSED and json_path(self._parsed, arg) is not None
        if self._headers is None:  # header: (lower-case name, value)
            joined: dict[bytes, list[bytes]] = {}
            for k, v in getattr(self.conn, "headers", []):
                joined.setdefault(k, []).append(v)
            self._headers = {k: b", ".join(v) for k, v in joined.items()}
        return self._headers.get(arg[0]) == arg[1]


_UNPARSED = object()


class _NullVU:
    """Absorbs callbacks of a connection its VU gave up on (timeout)."""

    def on_response(self, status: int, keep_alive: bool) -> None:
        pass

    def on_failure(self, conn: Conn) -> None:
        pass


_NULL_VU = _NullVU()


def json_path(doc: Any, path: str) -> Any:
    """``a.b.0.c`` into a parsed JSON document; None when absent."""
    cur = doc
    for part in path.split("."):
        if isinstance(cur, dict):
            cur = cur.get(part)
        elif isinstance(cur, list) and part.lstrip("-").isdigit():
            i = int(part)
            cur = cur[i] if -len(cur) <= i < len(cur) else None
        else:
            return None
        if cur is None:
            return None
    return cur
