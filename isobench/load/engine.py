"""The load engine: run a :class:`ScenarioSet` against one base URL and return k6-style results.

:func:`run` is what ``python -m isobench.load`` calls. It runs every scenario's executor on one
uvloop event loop (or splits them over several pinned worker processes and merges their
histograms), flushes metrics every 100 ms, and once a second closes a time-series bucket, reports
progress and evaluates ``abortOnFail`` thresholds.
"""

from __future__ import annotations

import asyncio
import gc
import json
import multiprocessing as mp
import os
import queue
from collections.abc import Callable
from time import perf_counter
from typing import Any
from urllib.parse import urlsplit

import uvloop

from isobench.errors import ConfigError
from isobench.load.executors import EXECUTORS, Executor
from isobench.load.metrics import MetricStore
from isobench.load.scenario import Request, ScenarioSet
from isobench.load.summary import build_summary, evaluate_thresholds, observe
from isobench.load.vu import CompiledRequest, ScenarioContext

Progress = Callable[[dict[str, Any]], None]
USER_AGENT = "isobench-load/0.1"


def _target(base_url: str) -> tuple[str, int, str]:
    u = urlsplit(base_url)
    if u.scheme != "http" or not u.hostname:
        raise ConfigError(f"load target {base_url!r} is not an http://host:port URL",
                          fix="pass e.g. http://127.0.0.1:8080 (https is not supported)")
    return u.hostname, u.port or 80, u.path.rstrip("/")


def _encode(req: Request, host: str, port: int, prefix: str) -> bytes:
    headers = {"Host": f"{host}:{port}", "User-Agent": USER_AGENT}
    body = b""
    if isinstance(req.body, dict | list):
        body = json.dumps(req.body, separators=(",", ":")).encode()
        headers["Content-Type"] = "application/json"
    elif isinstance(req.body, str):
        body = req.body.encode()
    headers.update(req.headers)
    if body or req.method in ("POST", "PUT", "PATCH"):
        headers["Content-Length"] = str(len(body))
    head = f"{req.method} {prefix}{req.path} HTTP/1.1\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return head.encode("latin-1") + body


def _check_label(kind: str, arg: Any) -> str:
    """The name of an unnamed check condition (as before named checks existed)."""
    if kind == "status":
        return "status is " + "|".join(str(c) for c in sorted(arg))
    if kind == "body_contains":
        return f"body contains {arg.decode()!r}"
    if kind == "json_field":
        return f"json has {arg}"
    if kind == "max_duration":
        return f"duration <= {arg:g}ms"
    return f"header {arg[0].decode('latin-1')} is {arg[1].decode('latin-1')!r}"


class Plan:
    """Request kinds (rid) and scenarios (sid) with their tags, compiled once per process."""

    def __init__(self, sset: ScenarioSet, base_url: str) -> None:
        self.sset = sset
        self.host, self.port, prefix = _target(base_url)
        self.req_tags: list[dict[str, str]] = []
        self.scen_tags: list[dict[str, str]] = []
        self.compiled: list[list[tuple[Request, bytes, int]]] = []
        for sname, sc in sset.scenarios.items():
            self.scen_tags.append({"scenario": sname, **sc.tags})
            reqs = []
            for req in sc.requests or []:
                rid = len(self.req_tags)
                self.req_tags.append({"scenario": sname, "name": req.label, "method": req.method,
                                      "url": base_url.rstrip("/") + req.path,
                                      **sc.tags, **req.tags})
                reqs.append((req, _encode(req, self.host, self.port, prefix), rid))
            self.compiled.append(reqs)

    def requests_for(self, sid: int, store: MetricStore) -> list[CompiledRequest]:
        out = []
        for req, data, rid in self.compiled[sid]:
            cr = CompiledRequest(rid=rid, data=data, sleep=req.sleep)
            for ck in req.checks or []:
                conds = ck.conditions()
                if any(kind != "status" and kind != "max_duration" for kind, _ in conds):
                    cr.needs_body = True
                if ck.name is not None:  # one named check: all its conditions must hold
                    kind, arg = conds[0] if len(conds) == 1 else ("all", conds)
                    cr.checks.append((store.add_check(ck.name, rid), kind, arg))
                    continue
                for kind, arg in conds:
                    cr.checks.append((store.add_check(f"{req.label}: {_check_label(kind, arg)}",
                                                      rid), kind, arg))
            out.append(cr)
        return out

    def new_store(self, t_start: float) -> MetricStore:
        return MetricStore(self.req_tags, self.scen_tags, t_start)


async def _run_async(plan: Plan, progress: Progress | None, index: int,
                     count: int) -> tuple[MetricStore, bool]:
    loop = asyncio.get_running_loop()
    t_start = perf_counter()
    store = plan.new_store(t_start)
    thresholds = plan.sset.parsed_thresholds()
    executors: list[Executor] = []
    tasks = []

    async def start_later(ex: Executor, delay: float) -> None:
        if delay > 0:
            await asyncio.sleep(delay)
        await ex.run()

    for sid, (_name, sc) in enumerate(plan.sset.scenarios.items()):
        ctx = ScenarioContext(loop=loop, store=store, host=plan.host, port=plan.port, sid=sid,
                              requests=[], think=sc.think_time or (0.0, 0.0),
                              timeout=sc.timeout, on_iteration_done=lambda vu: None)
        ctx.requests = plan.requests_for(sid, store)
        ex = EXECUTORS[sc.executor](sc, ctx, index, count)
        executors.append(ex)
        tasks.append(loop.create_task(start_later(ex, sc.start_time)))

    aborted = False
    all_done = asyncio.gather(*tasks)
    next_sec = t_start + 1.0
    total_reqs = 0
    try:
        while not all_done.done():
            await asyncio.wait([all_done], timeout=min(0.1, max(next_sec - perf_counter(), 0.0)))
            store.flush()
            now = perf_counter()
            store.set_vus(sum(e.active for e in executors), sum(e.allocated() for e in executors))
            if now >= next_sec:
                next_sec += 1.0
                gc.collect(1)
                row = store.tick(now)
                total_reqs += row["reqs"]
                for ex in executors:
                    ex.check_timeouts(now)
                if progress is not None:
                    progress({"type": "progress", "elapsed": round(now - t_start, 3),
                              "reqs": total_reqs, "rate": round(row["rate"], 1),
                              "vus": row["vus"], "worker": index})
                store.duration_s = now - t_start
                if thresholds and _should_abort(store, plan.sset, now - t_start):
                    aborted = True
                    break
    finally:
        for ex in executors:
            ex.hard_stop()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    store.flush()
    end = perf_counter()
    if store.pending_reqs() or end - store._last_tick > 0.05:
        store.tick(end, final=True)
    store.duration_s = end - t_start
    return store, aborted


def _should_abort(store: MetricStore, sset: ScenarioSet, elapsed: float) -> bool:
    for key, items in sset.parsed_thresholds().items():
        for t in items:
            if t.abort_on_fail and elapsed >= t.delay_abort_eval and not t.passes(
                observe(store, key, t)
            ):
                return True
    return False


def run_in_process(plan: Plan, progress: Progress | None, index: int = 0,
                   count: int = 1) -> tuple[MetricStore, bool]:
    """Run this process's share on a fresh uvloop loop."""
    loop = uvloop.new_event_loop()
    gc.disable()
    try:
        return loop.run_until_complete(_run_async(plan, progress, index, count))
    finally:
        gc.enable()
        loop.close()


def _worker(config: dict[str, Any], index: int, count: int, cpu: int, q: Any) -> None:
    try:
        os.sched_setaffinity(0, {cpu})
        plan = Plan(ScenarioSet.parse(config["scenario"]), config["base_url"])
        store, aborted = run_in_process(plan, q.put, index, count)
        q.put({"type": "state", "worker": index, "state": store.to_state(), "aborted": aborted})
    except BaseException as exc:  # report, never hang the parent
        q.put({"type": "error", "worker": index, "error": f"{type(exc).__name__}: {exc}"})


def _run_workers(config: dict[str, Any], plan: Plan, cpus: list[int],
                 progress: Progress | None) -> tuple[MetricStore, bool]:
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(config, i, len(cpus), cpu, q), daemon=True)
             for i, cpu in enumerate(cpus)]
    for p in procs:
        p.start()
    store = plan.new_store(perf_counter())
    latest: dict[int, dict[str, Any]] = {}
    pending, aborted, errors = set(range(len(procs))), False, []
    try:
        while pending:
            try:
                msg = q.get(timeout=1.0)
            except queue.Empty:
                if not any(p.is_alive() for p in procs):
                    break
                continue
            if msg["type"] == "progress":
                latest[msg["worker"]] = msg
                if progress is not None and msg["worker"] == 0:
                    agg = {k: sum(m[k] for m in latest.values()) for k in ("reqs", "rate", "vus")}
                    progress({"type": "progress", "elapsed": msg["elapsed"], **agg})
            elif msg["type"] == "state":
                store.merge_state(msg["state"])
                aborted = aborted or msg["aborted"]
                pending.discard(msg["worker"])
            else:
                errors.append(msg["error"])
                pending.discard(msg["worker"])
    finally:
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
    if errors:
        raise RuntimeError("load worker failed: " + "; ".join(errors))
    return store, aborted


def run(config: dict[str, Any], progress: Progress | None = None) -> dict[str, Any]:
    """Run a load test. ``config``: ``{"base_url", "scenario", "cpus"?}``.

    Returns ``{"summary", "timeseries", "thresholds_failed", "aborted"}`` (JSON-serialisable).
    """
    sset = ScenarioSet.parse(config["scenario"])
    plan = Plan(sset, config["base_url"])
    cpus = [int(c) for c in config.get("cpus") or []]
    if len(cpus) > 1:
        store, aborted = _run_workers(config, plan, cpus, progress)
    else:
        if cpus:
            os.sched_setaffinity(0, set(cpus))
        store, aborted = run_in_process(plan, progress)
    outcomes = evaluate_thresholds(store, sset)
    summary = build_summary(store, sset, outcomes, aborted=aborted)
    return {
        "summary": summary,
        "timeseries": store.timeseries,
        "thresholds_failed": any(not o.ok for o in outcomes),
        "aborted": aborted,
    }
