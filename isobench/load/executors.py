"""k6's executors: when iterations start and on which VU.

Closed model (the next iteration starts when a VU finishes its last one): ``constant-vus``,
``ramping-vus``, ``per-vu-iterations``, ``shared-iterations``. Open model (iterations start on a
schedule whatever the server does): ``constant-arrival-rate``, ``ramping-arrival-rate``; an
iteration that finds no free VU (with ``maxVUs`` already allocated) is counted in
``dropped_iterations``, and request latency counts from the scheduled start.

With several worker processes, each executor runs its ``share`` (``index`` of ``count``): VUs and
iterations are split, and arrival-rate workers take every ``count``-th iteration of the schedule.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable, Iterator
from time import perf_counter

from isobench.load.scenario import Scenario
from isobench.load.timer import PreciseTimer
from isobench.load.vu import VU, ScenarioContext

_EARLY = 60e-6


def split(total: int, index: int, count: int) -> int:
    """This worker's part of ``total`` (remainder to the first workers)."""
    return total // count + (1 if index < total % count else 0)


def arrival_times(segments: list[tuple[float, float, float]], index: int = 0,
                  count: int = 1) -> Iterator[float]:
    """Scheduled start offsets (s) of iterations for piecewise-linear rates.

    Args:
        segments: ``(rate_from, rate_to, duration)`` in iterations per second and seconds.
        index, count: yield only global iterations ``k`` with ``k % count == index``.
    """
    k, c0, base = 0, 0.0, 0.0
    for r0, r1, d in segments:
        total = (r0 + r1) / 2.0 * d
        while k < c0 + total - 1e-9:
            if k % count == index:
                x = k - c0
                if abs(r1 - r0) < 1e-12:
                    tau = x / r0
                else:
                    a = (r1 - r0) / (2.0 * d)
                    tau = (-r0 + math.sqrt(max(r0 * r0 + 4.0 * a * x, 0.0))) / (2.0 * a)
                yield base + min(max(tau, 0.0), d)
            k += 1
        c0 += total
        base += d


class Executor:
    """Base: owns the VUs of one scenario; ``run()`` returns when the scenario is over."""

    def __init__(self, sc: Scenario, ctx: ScenarioContext, index: int = 0, count: int = 1) -> None:
        self.sc = sc
        self.ctx = ctx
        self.index = index
        self.count = count
        self.loop = ctx.loop
        self.vus: list[VU] = []
        self.active = 0
        self.stopping = False
        self._idle: asyncio.Future[None] | None = None
        ctx.on_iteration_done = self._done

    # -- shared machinery ------------------------------------------------------------------------
    def new_vu(self) -> VU:
        vu = VU(self.ctx, len(self.vus))
        self.vus.append(vu)
        return vu

    def begin(self, vu: VU, t_intended: float = 0.0) -> None:
        self.active += 1
        vu.start_iteration(t_intended)

    def _done(self, vu: VU) -> None:
        self.active -= 1
        self.on_done(vu)
        if self.active == 0 and self.stopping and self._idle is not None and not self._idle.done():
            self._idle.set_result(None)

    def on_done(self, vu: VU) -> None:
        """A VU finished an iteration: start another or let it rest."""

    async def drain(self, grace: float) -> None:
        """Stop starting iterations; wait up to ``grace`` for running ones, then abort them."""
        self.stopping = True
        if self.active > 0:
            self._idle = self.loop.create_future()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._idle), grace)
        self.hard_stop()

    def hard_stop(self) -> None:
        self.stopping = True
        for vu in self.vus:
            if vu.in_iteration:
                vu.abort()
            elif vu.conn is not None:
                vu.conn.close()
        self.active = 0

    def allocated(self) -> int:
        return len(self.vus)

    async def run(self) -> None:
        raise NotImplementedError

    def check_timeouts(self, now: float) -> None:
        for vu in self.vus:
            if vu.busy:
                vu.check_timeout(now)


class ConstantVUs(Executor):
    """``vus`` VUs loop over iterations for ``duration``."""

    async def run(self) -> None:
        n = split(self.sc.vus or 0, self.index, self.count)
        for _ in range(n):
            self.begin(self.new_vu())
        await asyncio.sleep(self.sc.duration or 0.0)
        await self.drain(self.sc.graceful_stop)

    def on_done(self, vu: VU) -> None:
        if not self.stopping:
            self.begin(vu)


class RampingVUs(Executor):
    """VUs follow ``stages`` linearly from ``startVUs``; extra VUs stop after their iteration."""

    def target_at(self, t: float) -> int:
        prev = float(self.sc.start_vus or 0)
        base = 0.0
        for st in self.sc.stages or []:
            if t < base + st.duration:
                frac = (t - base) / st.duration if st.duration > 0 else 1.0
                return split(math.floor(prev + (st.target - prev) * frac + 1e-9),
                             self.index, self.count)
            base += st.duration
            prev = st.target
        return split(int(prev), self.index, self.count)

    async def run(self) -> None:
        total = self.sc.total_duration()
        t0 = perf_counter()
        self.target = self.target_at(0.0)
        self._excess_since: dict[int, float] = {}
        while True:
            now = perf_counter()
            el = now - t0
            if el >= total:
                break
            self.target = self.target_at(el)
            while len(self.vus) < self.target:
                self.new_vu()
            for i, vu in enumerate(self.vus):
                if i < self.target:
                    self._excess_since.pop(i, None)
                    if not vu.in_iteration:
                        self.begin(vu)
                elif vu.in_iteration:
                    since = self._excess_since.setdefault(i, now)
                    if now - since > self.sc.graceful_ramp_down:
                        vu.abort()
                        self.active -= 1
                        self.vus[i] = VU(self.ctx, i)
            await asyncio.sleep(0.05)
        await self.drain(self.sc.graceful_stop)

    def on_done(self, vu: VU) -> None:
        if not self.stopping and vu.idx < self.target and self.vus[vu.idx] is vu:
            self.begin(vu)


class PerVUIterations(Executor):
    """Each VU runs ``iterations`` iterations (within ``maxDuration``)."""

    async def run(self) -> None:
        self._left: dict[int, int] = {}
        n = split(self.sc.vus or 0, self.index, self.count)
        for _ in range(n):
            vu = self.new_vu()
            self._left[vu.idx] = (self.sc.iterations or 0) - 1
            if self._left[vu.idx] >= 0:
                self.begin(vu)
        await self._wait_all(self.sc.max_duration)

    async def _wait_all(self, limit: float) -> None:
        if self.active > 0:
            self._idle = self.loop.create_future()
            self.stopping = True  # lets _done resolve the future; on_done still restarts VUs
            self._running = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._idle), limit)
        self._running = False
        self.hard_stop()

    def on_done(self, vu: VU) -> None:
        if getattr(self, "_running", True) and self._left.get(vu.idx, 0) > 0:
            self._left[vu.idx] -= 1
            self.begin(vu)


class SharedIterations(PerVUIterations):
    """``vus`` VUs share ``iterations`` iterations (within ``maxDuration``)."""

    async def run(self) -> None:
        self._shared = split(self.sc.iterations or 0, self.index, self.count)
        n = min(split(self.sc.vus or 0, self.index, self.count), self._shared)
        for _ in range(n):
            self._shared -= 1
            self.begin(self.new_vu())
        await self._wait_all(self.sc.max_duration)

    def on_done(self, vu: VU) -> None:
        if getattr(self, "_running", True) and self._shared > 0:
            self._shared -= 1
            self.begin(vu)


class ArrivalRate(Executor):
    """Open model: start iterations at scheduled times on free VUs (allocated up to maxVUs)."""

    def segments(self) -> list[tuple[float, float, float]]:
        unit = self.sc.time_unit
        if self.sc.executor == "constant-arrival-rate":
            r = (self.sc.rate or 0.0) / unit
            return [(r, r, self.sc.duration or 0.0)]
        out, prev = [], (self.sc.start_rate or 0.0) / unit
        for st in self.sc.stages or []:
            out.append((prev, st.target / unit, st.duration))
            prev = st.target / unit
        return out

    async def run(self) -> None:
        self.free: list[VU] = []
        self.max_vus = split(self.sc.max_vus or 0, self.index, self.count) or 1
        for _ in range(split(self.sc.pre_allocated_vus or 0, self.index, self.count)):
            self.free.append(self.new_vu())
        self._times = arrival_times(self.segments(), self.index, self.count)
        self._finished: asyncio.Future[None] = self.loop.create_future()
        self._timer = PreciseTimer(self.loop, self._tick)
        self.t_start = perf_counter()
        self._next = self._advance()
        if self._next is None:
            self._finished.set_result(None)
        else:
            self._tick()
        try:
            await self._finished
        finally:
            self._timer.close()
        await self.drain(self.sc.graceful_stop)

    def _advance(self) -> float | None:
        t = next(self._times, None)
        return None if t is None else self.t_start + t

    def _tick(self) -> None:
        """Start every iteration that is due, then sleep until the next one."""
        if self.stopping:
            if not self._finished.done():
                self._finished.set_result(None)
            return
        now = perf_counter()
        nxt = self._next
        while nxt is not None and nxt <= now:
            self._fire(nxt)
            nxt = self._advance()
        self._next = nxt
        if nxt is None:
            self._finished.set_result(None)
            return
        if nxt - now > _EARLY:
            self._timer.arm(nxt - _EARLY)  # the wake-up itself takes ~30 µs: wake early...
        else:
            self.loop.call_soon(self._tick)  # ...and spin the last few µs

    def _fire(self, t_intended: float) -> None:
        if self.free:
            self.begin(self.free.pop(), t_intended)
        elif len(self.vus) < self.max_vus:
            self.begin(self.new_vu(), t_intended)
        else:
            self.ctx.store.dropped[self.ctx.sid] += 1

    def on_done(self, vu: VU) -> None:
        self.free.append(vu)

    def hard_stop(self) -> None:
        super().hard_stop()
        if hasattr(self, "_finished") and not self._finished.done():
            self._finished.set_result(None)


EXECUTORS: dict[str, Callable[..., Executor]] = {
    "constant-vus": ConstantVUs,
    "ramping-vus": RampingVUs,
    "per-vu-iterations": PerVUIterations,
    "shared-iterations": SharedIterations,
    "constant-arrival-rate": ArrivalRate,
    "ramping-arrival-rate": ArrivalRate,
}
