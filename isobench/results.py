"""The result model: one Sample record, trial records, and a run directory written incrementally.

Layout of a run directory::

    manifest.json    version, tool, host facts, config, resources, pinning, plan (atomic rewrite)
    trials.jsonl     one TrialRecord per finished trial (appended + fsync)
    samples.jsonl    one Sample per line: time series and scalar figures (appended + fsync)
    summary.json     analysis of all trials (atomic rewrite after each trial)
    report.html      written by ``isobench report``

Every JSON document carries ``"version"``; loaders are kept per version.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULTS_VERSION = 1


@dataclass(frozen=True)
class Sample:
    """One measured value (as PerfKit's sample.Sample).

    Attributes:
        metric: name, e.g. ``cpu_percent``, ``rss_bytes``, ``startup_s``, ``http_reqs_rate``.
        value: the value.
        unit: e.g. ``%``, ``bytes``, ``s``, ``req/s``.
        timestamp: unix time when the value was taken.
        metadata: context, always with ``runtime`` and ``trial`` when it belongs to a trial;
            ``source`` names the sampler (``host``/``guest`` view etc.).
    """

    metric: str
    value: float
    unit: str
    timestamp: float = field(default_factory=time.time)
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "value": self.value,
            "unit": self.unit,
            "timestamp": self.timestamp,
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Sample:
        return cls(
            metric=data["metric"],
            value=float(data["value"]),
            unit=data["unit"],
            timestamp=float(data["timestamp"]),
            metadata=dict(data.get("metadata", {})),
        )


@dataclass
class TrialRecord:
    """One trial: one runtime started, loaded, measured and stopped.

    Attributes:
        runtime: runtime name (``native``, ``docker-bridge``, ...); for A/A runs the arm name.
        trial: index of this trial among the runtime's trials (0-based).
        position: position in the interleaved plan (0-based).
        round: the round this trial belongs to.
        status: ``ok`` or ``failed``.
        startup_s: launch to first HTTP 200 of the readiness probe.
        load: the load engine's k6-style summary (``{"metrics": {...}, "thresholds": ..., ...}``).
        telemetry: aggregated telemetry figures (``cpu_percent_mean``, ``rss_bytes_peak``, ...).
        facts: what describes the instance (network path, accel, emulated, pinning).
        error: the one-line error when status is ``failed``.
        warmup: True for a warm-up trial, excluded from statistics.
    """

    runtime: str
    trial: int
    position: int
    round: int
    status: str
    started_at: float
    ended_at: float
    startup_s: float | None = None
    load: dict[str, Any] = field(default_factory=dict)
    telemetry: dict[str, float] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    warmup: bool = False

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["version"] = RESULTS_VERSION
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TrialRecord:
        fields = {k: v for k, v in data.items() if k != "version"}
        return cls(**fields)

    def metric(self, name: str, stat: str) -> float | None:
        """A value from the load summary, e.g. ``metric("http_req_duration", "p(95)")``.

        Reads k6's ``handleSummary`` shape (``{"metrics": {name: {"values": {stat: v}}}}``) and
        the flat one (``{"metrics": {name: {stat: v}}}``).
        """
        entry = self.load.get("metrics", {}).get(name) or {}
        values = entry.get("values", entry)
        value = values.get(stat) if isinstance(values, dict) else None
        return None if value is None else float(value)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so a reader sees the old or the new file, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, data: Any) -> None:
    """Write JSON to ``path`` so that a reader sees the old or the new file, never a torn one."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def append_jsonl(path: Path, records: Iterable[Mapping[str, Any]]) -> None:
    """Append records as JSON lines and fsync, so a crash loses at most what was in flight.

    A torn last line (a crash mid-write) is closed off first, so it never swallows a new record.
    """
    torn = False
    if path.exists() and path.stat().st_size > 0:
        with path.open("rb") as fh:
            fh.seek(-1, os.SEEK_END)
            torn = fh.read(1) != b"\n"
    with path.open("a") as fh:
        if torn:
            fh.write("\n")
        for record in records:
            fh.write(json.dumps(record, sort_keys=True, default=str))
            fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Read JSON lines, ignoring a torn last line left by a crash."""
    if not path.exists():
        return
    with path.open() as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


class RunStore:
    """A run directory: the one place results are written to and read from."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    @property
    def trials_path(self) -> Path:
        return self.root / "trials.jsonl"

    @property
    def samples_path(self) -> Path:
        return self.root / "samples.jsonl"

    @property
    def summary_path(self) -> Path:
        return self.root / "summary.json"

    def write_manifest(self, manifest: Mapping[str, Any]) -> None:
        atomic_write_json(self.manifest_path, {"version": RESULTS_VERSION, **manifest})

    def read_manifest(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.manifest_path.read_text())
        if data.get("version") != RESULTS_VERSION:
            raise ValueError(
                f"{self.manifest_path}: unsupported results version {data.get('version')}"
            )
        return data

    def append_trial(self, trial: TrialRecord, samples: Iterable[Sample] = ()) -> None:
        """Samples first, then the trial line: a trial line means its samples are on disk."""
        append_jsonl(self.samples_path, (s.to_json() for s in samples))
        append_jsonl(self.trials_path, [trial.to_json()])

    def trials(self) -> list[TrialRecord]:
        return [TrialRecord.from_json(d) for d in read_jsonl(self.trials_path)]

    def samples(self) -> list[Sample]:
        return [Sample.from_json(d) for d in read_jsonl(self.samples_path)]

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        atomic_write_json(self.summary_path, {"version": RESULTS_VERSION, **summary})

    def read_summary(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.summary_path.read_text())
        return data
