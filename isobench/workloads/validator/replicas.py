"""Several validator nodes driven at once from one asyncio loop: the replicas scale knob.

Replica ``i`` gets its own :class:`ChainDriver` with the scenario's seed plus ``i`` (its own
keys, accounts and transaction stream, so no two chains are alike); all run concurrently in one
loop on the load generator's CPU(s). Their results merge into one k6-style summary
(:func:`isobench.workloads.validator.summary.summarize` with ``replicas=True``), and their
progress into one dict about once a second.

The loop also measures its own scheduling delay (``validator_driver_loop_lag``: how late a
50 ms timer fires). Block lag is timed in this loop, so when the driver itself saturates, that
shows here first, telling "the nodes fell behind" from "the load generator fell behind".
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import Any

from isobench.errors import ConfigError, IsobenchError
from isobench.workloads.validator.driver import ChainDriver, ValidatorDriveError
from isobench.workloads.validator.ledger import Ledger
from isobench.workloads.validator.scenario import ChainScenario
from isobench.workloads.validator.stats import LatencyHistogram, trend
from isobench.workloads.validator.summary import (
    ReplicaResult,
    envelope,
    gauge,
    summarize,
)

Progress = Callable[[dict[str, Any]], None]

LOOP_TICK = 0.05
"""Seconds between the loop-lag probe's timers."""


def replica_scenario(sc: ChainScenario, index: int) -> ChainScenario:
    """The scenario replica ``index`` runs: the same load with seed ``sc.seed + index``."""
    return dataclasses.replace(sc, seed=sc.seed + index)


def merge_progress(parts: Sequence[dict[str, Any]], elapsed: float,
                   block_lag_p95_ms: float) -> dict[str, Any]:
    """One progress dict from the replicas' own: counts summed, worst figures alongside.

    Args:
        parts: each driver's :meth:`ChainDriver.progress`.
        elapsed: seconds since the drive started.
        block_lag_p95_ms: p95 block lag over every replica's blocks so far.
    """
    total = {key: sum(int(p[key]) for p in parts)
             for key in ("reqs", "blocks_sent", "blocks_applied", "blocks_late", "snapshots",
                         "rpc_failed")}
    return {
        "elapsed": round(elapsed, 1), **total, "rate": total["reqs"] / max(elapsed, 1e-9),
        "block_lag_p95_ms": round(block_lag_p95_ms, 2),
        "replicas": len(parts),
        "block_lag_worst_p95_ms": max(float(p["block_lag_p95_ms"]) for p in parts),
        "blocks_late_worst": max(int(p["blocks_late"]) for p in parts),
    }


class ReplicaSet:
    """Drives one node per endpoint concurrently; ``await run()`` returns the merged summary.

    Args:
        endpoints: the nodes, ``http://127.0.0.1:PORT`` (or a VM's address) each (at least one).
        scenario: the base scenario (replica ``i`` runs it with ``seed + i``).
        on_progress: called about once a second with the merged progress.
        ledgers: endpoint → chain model of an earlier drive (the warm-up): each replica
            continues the chain its node holds; after the run it holds this run's chains.

    Raises:
        ConfigError: no endpoint, or one neither on 127.0.0.1 nor isobench's own namespaces.
    """

    def __init__(self, endpoints: Sequence[str], scenario: ChainScenario,
                 on_progress: Progress | None = None,
                 ledgers: MutableMapping[str, Ledger] | None = None) -> None:
        if not endpoints:
            raise ConfigError("the validator workload needs at least one endpoint to drive",
                              fix="set replicas to 1 or more")
        self.sc = scenario
        self.on_progress = on_progress
        known = ledgers if ledgers is not None else {}
        self.ledgers = ledgers
        self.drivers = [ChainDriver(ep, replica_scenario(scenario, i), ledger=known.get(ep))
                        for i, ep in enumerate(endpoints)]
        self.loop_lag = LatencyHistogram()

    async def _probe_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + LOOP_TICK
            await asyncio.sleep(LOOP_TICK)
            self.loop_lag.record(loop.time() - due)

    async def _progress(self, start: float) -> None:
        loop = asyncio.get_running_loop()
        while self.on_progress is not None:
            await asyncio.sleep(1.0)
            now = loop.time()
            lag = LatencyHistogram()
            for driver in self.drivers:
                lag.merge(driver.block_lag)
            parts = [d.progress(now) for d in self.drivers]
            self.on_progress(merge_progress(parts, now - start, lag.trend_ms()["p(95)"]))

    async def run(self) -> dict[str, Any]:
        """Drive every node for the scenario's duration; one summary over all of them.

        Raises:
            ValidatorDriveError: a node could not be driven (names the replica); the other
                replicas' drives are cancelled.
        """
        loop = asyncio.get_running_loop()
        helpers = [asyncio.create_task(self._probe_loop()),
                   asyncio.create_task(self._progress(loop.time()))]
        jobs = [asyncio.create_task(d.execute()) for d in self.drivers]
        try:
            await asyncio.wait(jobs, return_when=asyncio.FIRST_EXCEPTION)
            for index, job in enumerate(jobs):
                if job.done() and job.exception() is not None:
                    raise self._replica_error(index, job.exception())
            results: list[ReplicaResult] = [job.result() for job in jobs]
        finally:
            for task in (*jobs, *helpers):
                task.cancel()
            await asyncio.gather(*jobs, *helpers, return_exceptions=True)
            if self.ledgers is not None:
                self.ledgers.clear()
                self.ledgers.update((d.endpoint, d.ledger) for d in self.drivers)
        summary = summarize(results, self.sc, replicas=True)
        summary["metrics"]["validator_driver_loop_lag"] = trend(self.loop_lag)
        return summary

    def _replica_error(self, index: int, exc: BaseException | None) -> IsobenchError:
        where = f"replica {index} of {len(self.drivers)} ({self.drivers[index].endpoint})"
        if isinstance(exc, IsobenchError):
            kind = type(exc) if type(exc) in (ConfigError, ValidatorDriveError) else (
                ValidatorDriveError)
            err: IsobenchError = kind(f"{where}: {exc.message}", fix=exc.fix)
        else:
            err = ValidatorDriveError(f"{where}: {exc!r}",
                                      fix="see that replica's log (it may have crashed)")
        err.__cause__ = exc
        return err


def idle_summary(sc: ChainScenario, replicas: int) -> dict[str, Any]:
    """The summary of an idle scenario (no traffic) over ``replicas`` nodes."""
    summary = envelope({"validator_replicas": gauge(replicas, replicas, replicas,
                                                    count=replicas)}, sc.duration, sc, {})
    summary["options"]["replicas"] = replicas
    return summary


def run_replicas(endpoints: Sequence[str], scenario: Mapping[str, Any] | ChainScenario, *,
                 on_progress: Progress | None = None,
                 ledgers: MutableMapping[str, Ledger] | None = None) -> dict[str, Any]:
    """Drive every node of ``endpoints`` at once and return one merged summary.

    ``ledgers`` carries each node's chain from one drive to the next (see :class:`ReplicaSet`).

    Raises:
        ConfigError: a bad scenario, no endpoint, or one neither on loopback nor isobench's own.
        ValidatorDriveError: a node cannot be reached or goes away during the run.
    """
    sc = scenario if isinstance(scenario, ChainScenario) else ChainScenario.from_mapping(scenario)
    if sc.idle:
        if not endpoints:
            raise ConfigError("the validator workload needs at least one endpoint to drive",
                              fix="set replicas to 1 or more")
        time.sleep(sc.duration)
        return idle_summary(sc, len(endpoints))
    replica_set = ReplicaSet(endpoints, sc, on_progress, ledgers)
    return asyncio.run(replica_set.run())
