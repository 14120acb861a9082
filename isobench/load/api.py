"""What a trial (run/trial.py) calls: :func:`run_load` and its :class:`LoadResult`.

The engine runs in a subprocess (``python -m isobench.load --config - --jsonl``) pinned to the
given CPUs, so the load generator never shares a core or an interpreter with the tool itself.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from isobench.errors import ConfigError, IsobenchError
from isobench.load import tracking
from isobench.load.scenario import ScenarioSet

TIMESERIES_FIELDS = ("t", "reqs", "errors", "rate", "p50", "p90", "p95", "p99",
                     "data_received", "data_sent", "vus")


class LoadError(IsobenchError):
    """The load engine failed (not a threshold verdict: those are in the result)."""


@dataclass
class LoadResult:
    """The outcome of one load run.

    Attributes:
        summary: k6 ``handleSummary``-style data: ``metrics``, ``root_group.checks``,
            ``thresholds``, ``state.testRunDurationMs``, ``options.summaryTrendStats``.
        timeseries: one dict per second: t, reqs, errors, rate, p50, p90, p95, p99 (ms),
            data_received, data_sent (bytes), vus.
        thresholds_failed: any threshold failed (``python -m isobench.load`` exits 99).
        aborted: a threshold with ``abortOnFail`` stopped the run early.
    """

    summary: dict[str, Any]
    timeseries: list[dict[str, Any]] = field(default_factory=list)
    thresholds_failed: bool = False
    aborted: bool = False

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LoadResult:
        return cls(summary=dict(d["summary"]), timeseries=list(d.get("timeseries", [])),
                   thresholds_failed=bool(d.get("thresholds_failed")),
                   aborted=bool(d.get("aborted")))

    def to_dict(self) -> dict[str, Any]:
        return {"version": 1, "summary": self.summary, "timeseries": self.timeseries,
                "thresholds_failed": self.thresholds_failed, "aborted": self.aborted}

    def render_summary(self) -> str:
        """k6's end-of-test text (thresholds first)."""
        from isobench.load.summary import render_summary

        return render_summary(self.summary)

    def metric(self, name: str, stat: str) -> float:
        """A value from the summary, e.g. ``metric("http_req_duration", "p(99)")``."""
        return float(self.summary["metrics"][name]["values"][stat])

    def metric_rows(self) -> list[dict[str, Any]]:
        """Flat rows ``metric, type, stat, value`` (for CSV / pandas)."""
        return [{"metric": name, "type": m["type"], "stat": stat, "value": value}
                for name, m in self.summary["metrics"].items()
                for stat, value in m["values"].items()]

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=1))

    def write_timeseries_csv(self, path: Path) -> None:
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(TIMESERIES_FIELDS), extrasaction="ignore")
            w.writeheader()
            w.writerows(self.timeseries)

    def write_metrics_csv(self, path: Path) -> None:
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["metric", "type", "stat", "value"])
            w.writeheader()
            w.writerows(self.metric_rows())


def _reap(proc: subprocess.Popen[str]) -> int:
    """Wait for the engine with ``wait4`` and record its CPU seconds (its whole tree: the engine
    reaps its workers) in :mod:`isobench.load.tracking`; the exit code as ``Popen.wait`` gives."""
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except ChildProcessError:  # reaped elsewhere already
        return proc.wait()
    proc.returncode = os.waitstatus_to_exitcode(status)
    tracking.finished(proc.pid, usage.ru_utime + usage.ru_stime)
    return proc.returncode


def run_load(
    base_url: str,
    scenario: Mapping[str, Any],
    *,
    cpus: tuple[int, ...] | None = None,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    prefix: Sequence[str] = (),
) -> LoadResult:
    """Drive ``base_url`` with ``scenario`` in a subprocess pinned to ``cpus``.

    Args:
        base_url: ``http://127.0.0.1:PORT`` (optionally with a path prefix).
        scenario: the benchfile's scenario section (see :class:`ScenarioSet`).
        cpus: CPUs for the engine; several start one worker process per CPU (merged results).
        on_progress: called about once a second with ``{"elapsed", "reqs", "rate", "vus"}``.
        prefix: a command the engine runs under (``ip netns exec NS`` for a remote client: it
            execs the engine, so the pid, its session and its pinning stay the engine's).

    Raises:
        ConfigError: the scenario (or URL) is invalid, before anything starts.
        LoadError: the engine crashed or was killed.
    """
    ScenarioSet.parse(scenario)  # fail fast, in this process, with a ConfigError
    config = {"base_url": base_url, "scenario": dict(scenario),
              "cpus": list(cpus) if cpus else None}
    errfile = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(
        [*prefix, sys.executable, "-m", "isobench.load", "--config", "-", "--jsonl"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errfile, text=True,
        start_new_session=True,
    )
    tracking.started(proc.pid, cpus)
    result: dict[str, Any] | None = None
    error: str | None = None
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(config))
        proc.stdin.close()
        for line in proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            kind = msg.pop("type", None)
            if kind == "progress":
                if on_progress is not None:
                    on_progress(msg)
            elif kind == "result":
                result = msg
            elif kind == "error":
                error = msg.get("message", "")
                if msg.get("kind") == "config":
                    raise ConfigError(error)
        rc = _reap(proc)
    finally:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        tracking.finished(proc.pid, None)  # no-op when _reap recorded it
        if proc.stdout is not None:
            proc.stdout.close()
        errfile.seek(0)
        stderr = errfile.read()
        errfile.close()
    if result is None:
        tail = (error or stderr.strip().splitlines()[-1:] or [f"exit status {rc}"])
        raise LoadError(f"load engine failed: {tail if isinstance(tail, str) else tail[0]}",
                        fix="run `python -m isobench.load --url ... --scenario ...` to see why")
    return LoadResult.from_dict(result)
