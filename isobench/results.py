"""The result model: one Sample record, trial records, and a run directory written incrementally.

Layout of a run directory::

    manifest.json    version, tool, host facts, config, resources, pinning, plan (atomic rewrite)
    trials.jsonl     one TrialRecord per finished trial (appended + fsync)
    samples.jsonl    one Sample per line: time series and scalar figures (appended + fsync)
    summary.json     the interim analysis of the trials so far (atomic rewrite after each trial)
    report.html      written by ``isobench report``

Every JSON document carries ``"version"``; loaders are kept per version. History:

* manifest.json, summary.json: version 1 (:data:`RESULTS_VERSION`), unchanged so far.
* trials.jsonl lines (:data:`TRIAL_VERSION`): 1 named the arm ``runtime``; 2 names it ``arm``
  (an arm is a runtime, or a runtime with options of its own, e.g. ``explain``'s ladder steps;
  the runtime's own name is in ``facts["runtime"]``). :meth:`TrialRecord.from_json` reads both.

Crash safety: a trial's samples are appended before its trial line, and the trial line records
the byte span of its samples (``samples_span``). A crash between the two (power loss, ENOSPC)
leaves samples with no trial line; :meth:`RunStore.repair` (called by ``--resume``) truncates
``samples.jsonl`` back to the end of the last recorded trial's samples, so a re-run trial never
counts twice. A damaged file (not JSON lines) is an :class:`ResultsError` naming the file and line;
only a torn line (a JSON record cut short) is skipped.
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

from isobench.errors import IsobenchError

RESULTS_VERSION = 1
"""Version of manifest.json and summary.json (and the private benchfile)."""

TRIAL_VERSION = 2
"""Version of a trials.jsonl line (see the module docstring for what each version changed)."""

TRIAL_VERSIONS = (1, 2)
"""Trial line versions :meth:`TrialRecord.from_json` reads (a line without one is read as 1)."""


class ResultsError(IsobenchError):
    """A run directory or one of its files cannot be read or written."""


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
    """One trial: one arm's runtime started, loaded, measured and stopped.

    Attributes:
        arm: the arm's name: a runtime's name (``native``, ``docker-bridge``, ...), or the name
            of an arm of a benchfile's ``arms`` (a runtime with options: A/A copies, calibration
            arms, ``explain``'s ladder steps). The runtime it ran is ``facts["runtime"]``.
        trial: index of this trial among the arm's trials (0-based).
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

    arm: str
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
    samples_span: list[int] | None = None
    """Byte offsets ``[start, end)`` of this trial's samples in samples.jsonl."""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["version"] = TRIAL_VERSION
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TrialRecord:
        """Read a trial line of any version in :data:`TRIAL_VERSIONS` (version 1: ``runtime``
        is the arm). A newer version is a :class:`ResultsError`; a line missing a required field
        a ``TypeError`` (the caller names the file)."""
        version = data.get("version", 1)
        if version not in TRIAL_VERSIONS:
            raise ResultsError(f"trial record version {version} is newer than this isobench "
                               f"reads ({', '.join(map(str, TRIAL_VERSIONS))})",
                               fix="read the run with the isobench that made it, or upgrade")
        if version == 1 and "runtime" in data:
            data = {**{k: v for k, v in data.items() if k != "runtime"}, "arm": data["runtime"]}
        known = cls.__dataclass_fields__
        fields = {k: v for k, v in data.items() if k in known}
        return cls(**fields)

    @property
    def runtime_name(self) -> str:
        """The runtime the trial ran (``facts["runtime"]``; the arm's name when a trial failed
        before its runtime said, or in runs that did not record it)."""
        return str(self.facts.get("runtime") or self.arm)

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
    """Read JSON lines, skipping torn lines (a record cut short by a crash).

    Raises:
        ResultsError: a line that is not a (possibly torn) JSON object: the file is damaged or is
            not isobench's.
    """
    if not path.exists():
        return
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            line = raw.decode("utf-8", errors="replace").strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                if line.startswith("{") and "\ufffd" not in line[:2]:
                    continue  # torn by a crash mid-write: the rest of the record never arrived
                raise ResultsError(
                    f"{path}: line {number} is not a JSON record (the file is damaged)",
                    fix="restore the file, or remove the damaged lines",
                ) from None
            if not isinstance(record, dict):
                raise ResultsError(
                    f"{path}: line {number} is not a JSON object",
                    fix="restore the file, or remove the damaged lines",
                )
            yield record


class RunStore:
    """A run directory: the one place results are written to and read from.

    ``RunStore(root)`` makes the directory (a new run); :meth:`existing` opens one that must
    already be a run directory (``report``, ``compare``, ``--resume``) and makes nothing.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ResultsError(
                f"cannot create the run directory {root}: {exc.strerror or exc}",
                fix="choose a writable place with --out",
            ) from None
        if not os.access(self.root, os.W_OK):
            raise ResultsError(f"the run directory {root} is not writable",
                               fix="choose a writable place with --out")

    @classmethod
    def existing(cls, root: Path) -> RunStore:
        """Open a run directory that exists (a one-line ResultsError otherwise; nothing made)."""
        if not root.is_dir() or not (root / "manifest.json").is_file():
            what = "does not exist" if not root.exists() else "is not a run directory"
            raise ResultsError(
                f"{root} {what} (no manifest.json)",
                fix="pass the directory `isobench run` printed, e.g. isobench-runs/<time>",
            )
        store = cls.__new__(cls)
        store.root = root
        return store

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
    def interim_analysis_path(self) -> Path:
        """``summary.json``: the analysis of the trials so far (the file keeps its old name)."""
        return self.root / "summary.json"

    def _written(self, what: Path, exc: OSError) -> ResultsError:
        return ResultsError(
            f"cannot write {what}: {exc.strerror or exc}; complete trials so far are kept",
            fix=f"free space or permissions, then `isobench run --resume {self.root}`",
        )

    @property
    def private_benchfile_path(self) -> Path:
        return self.root / "benchfile.private.json"

    def write_private_benchfile(self, benchfile: Mapping[str, Any]) -> None:
        """The run's benchfile with every value (environment too), readable by its owner only:
        ``--resume`` reads it, while the manifest and reports show environment keys only."""
        try:
            self.private_benchfile_path.touch(mode=0o600)
            self.private_benchfile_path.chmod(0o600)
            text = json.dumps({"version": RESULTS_VERSION, "benchfile": dict(benchfile)},
                              indent=2, sort_keys=True, default=str)
            with self.private_benchfile_path.open("w") as fh:
                fh.write(text + "\n")
        except OSError as exc:
            raise self._written(self.private_benchfile_path, exc) from None

    def read_benchfile(self) -> dict[str, Any]:
        """The benchfile to resume with: the private copy when there is one, else the
        manifest's (runs written before environment values were redacted)."""
        if self.private_benchfile_path.is_file():
            try:
                data = json.loads(self.private_benchfile_path.read_text())
                return dict(data["benchfile"])
            except (ValueError, KeyError, TypeError) as exc:
                raise ResultsError(f"{self.private_benchfile_path} is damaged ({exc})",
                                   fix="start a new run") from None
        return dict(self.read_manifest()["benchfile"])

    def write_manifest(self, manifest: Mapping[str, Any]) -> None:
        try:
            atomic_write_json(self.manifest_path, {"version": RESULTS_VERSION, **manifest})
        except OSError as exc:
            raise self._written(self.manifest_path, exc) from None

    def read_manifest(self) -> dict[str, Any]:
        path = self.manifest_path
        try:
            data = json.loads(path.read_bytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ResultsError(f"{path} is not valid JSON ({exc})",
                               fix="restore it, or start a new run") from None
        except OSError as exc:
            raise ResultsError(f"cannot read {path}: {exc.strerror or exc}") from None
        if not isinstance(data, dict) or data.get("version") != RESULTS_VERSION:
            version = data.get("version") if isinstance(data, dict) else None
            raise ResultsError(f"{path}: unsupported results version {version}",
                               fix="use the isobench version that wrote this run")
        return data

    def append_trial(self, trial: TrialRecord, samples: Iterable[Sample] = ()) -> None:
        """Samples first, then the trial line: a trial line means its samples are on disk.

        The trial line records the byte span of its samples (see :meth:`repair`). A full disk or
        a read-only directory raises a one-line :class:`ResultsError`.
        """
        try:
            start = self.samples_path.stat().st_size if self.samples_path.exists() else 0
            append_jsonl(self.samples_path, (s.to_json() for s in samples))
            trial.samples_span = [start, self.samples_path.stat().st_size]
            append_jsonl(self.trials_path, [trial.to_json()])
        except OSError as exc:
            raise self._written(self.root, exc) from None

    def repair(self) -> int:
        """Drop samples written after the last recorded trial (a trial cut short by a crash or a
        full disk); return how many bytes were dropped. Called before a run is resumed."""
        if not self.samples_path.exists():
            return 0
        ends = [t.samples_span[1] for t in self.trials() if t.samples_span]
        keep = max(ends, default=0)
        size = self.samples_path.stat().st_size
        if size <= keep or (not ends and self.trials()):
            return 0  # an older run without spans: leave it as it is
        with self.samples_path.open("r+b") as fh:
            fh.truncate(keep)
            fh.flush()
            os.fsync(fh.fileno())
        return size - keep

    def trials(self) -> list[TrialRecord]:
        out = []
        for d in read_jsonl(self.trials_path):
            try:
                out.append(TrialRecord.from_json(d))
            except TypeError as exc:
                raise ResultsError(f"{self.trials_path}: a record is not a trial ({exc})",
                                   fix="restore the file, or remove the damaged lines") from None
        return out

    def samples(self) -> list[Sample]:
        try:
            return [Sample.from_json(d) for d in read_jsonl(self.samples_path)]
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ResultsError):
                raise
            raise ResultsError(f"{self.samples_path}: a record is not a sample ({exc})",
                               fix="restore the file, or remove the damaged lines") from None

    def write_interim_analysis(self, analysis: Mapping[str, Any]) -> None:
        try:
            atomic_write_json(self.interim_analysis_path, {"version": RESULTS_VERSION, **analysis})
        except OSError as exc:
            raise self._written(self.interim_analysis_path, exc) from None

    def read_interim_analysis(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.interim_analysis_path.read_text())
        return data
