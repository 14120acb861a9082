"""Typed contracts between stages: the run's :class:`Manifest` and its :class:`Analysis`.

Readers (reports, exports, gates, ``compare``, the suite) take these instead of looking keys up in
the raw JSON dicts. Both are read-only views over the document they were made from, so the on-disk
format is unchanged: the manifest is still ``manifest.json`` as :mod:`isobench.run.orchestrator`
writes it (``version`` :data:`isobench.results.RESULTS_VERSION`), the analysis still the dict
:func:`isobench.analysis.stats.analyze` returns (``version`` ``ANALYSIS_VERSION``). Only
the :class:`Manifest` stays a ``Mapping`` of its document (``m["config"]`` still works) for the
readers not moved over yet (about 30 reads in report/, run/, cli.py and fleet/). An
:class:`Analysis` is read through its attributes only; the analysis' own functions
(``isobench.analysis.verdicts``) take its raw document (``Analysis.raw``).

Contract:
    * :meth:`Manifest.from_json` reads every manifest version written so far (1, and manifests
      with no ``version``: runs made before the key existed). Absent keys get the defaults the
      analysis used when they were absent (baseline ``native``, ``min_effect`` 0.05, ``alpha``
      0.05, seed 0, margin :data:`DEFAULT_MARGIN`), so old run directories read as before.
    * :meth:`Analysis.from_json` takes the result of ``analyze`` (or ``analysis.json``'s
      ``analysis``); :meth:`Analysis.to_json` gives back exactly that document.
    * Neither is ever mutated; an analysis is computed once per command and handed to every
      writer (see :func:`isobench.report.rundata.load_run`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from isobench.errors import IsobenchError

DEFAULT_MARGIN = 0.05
"""The equivalence margin (±5 %): the analysis' default, and that of runs whose manifest predates
``config.margin`` (re-exported by :mod:`isobench.analysis.stats`)."""

MANIFEST_VERSIONS = (1,)
"""Manifest versions this reader knows (a manifest without ``version`` is read as 1)."""


class ManifestError(IsobenchError):
    """A manifest of a version this isobench cannot read."""


class _DocView(Mapping[str, Any]):
    """A read-only ``Mapping`` over the JSON document a model was made from."""

    raw: Mapping[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.raw)

    def __len__(self) -> int:
        return len(self.raw)

    def to_json(self) -> dict[str, Any]:
        """The document as read (or computed): what is written to disk."""
        return dict(self.raw)


def _dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


@dataclass(frozen=True)
class RunConfig:
    """``manifest["config"]``: what the run was asked to do (the resolved benchfile)."""

    workload: str | None = None
    workload_options: Mapping[str, Any] = field(default_factory=dict)
    scenario_name: str | None = None
    scenario: Mapping[str, Any] = field(default_factory=dict)
    runtimes: Sequence[str] = ()
    baseline: str = "native"
    arms: Mapping[str, str] = field(default_factory=dict)
    trials: int | None = None
    min_effect: float = 0.05
    primary: str | None = None
    margin: float = DEFAULT_MARGIN
    alpha: float = 0.05
    precision: float | None = None
    preset: str | None = None
    aa: bool = False
    replicas: int = 1

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunConfig:
        def opt_str(key: str) -> str | None:
            value = data.get(key)
            return None if value is None else str(value)

        precision = data.get("precision")
        trials = data.get("trials")
        return cls(
            workload=opt_str("workload"),
            workload_options=_dict(data.get("workload_options")),
            scenario_name=opt_str("scenario_name"),
            scenario=_dict(data.get("scenario")),
            runtimes=tuple(str(r) for r in data.get("runtimes") or ()),
            baseline=str(data.get("baseline", "native")),
            arms={str(k): str(v) for k, v in _dict(data.get("arms")).items()},
            trials=None if trials is None else int(trials),
            min_effect=float(data.get("min_effect", 0.05)),
            primary=opt_str("primary") or None,
            margin=float(data.get("margin", DEFAULT_MARGIN)),
            alpha=float(data.get("alpha", 0.05)),
            precision=None if precision is None else float(precision),
            preset=opt_str("preset") or None,
            aa=bool(data.get("aa", False)),
            replicas=int(data.get("replicas", 1) or 1),
        )


@dataclass(frozen=True)
class RuntimeFacts:
    """``manifest["runtimes"][name]``: what a runtime (an arm) said about itself at the start."""

    name: str
    kind: str | None = None
    artifact: str | None = None
    emulated: bool = False
    facts: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, name: str, data: Any) -> RuntimeFacts:
        facts = _dict(data)
        artifact = facts.get("artifact")
        kind = facts.get("kind")
        return cls(
            name=name,
            kind=None if kind is None else str(kind),
            artifact=None if artifact is None else str(artifact),
            emulated=_truthy(facts.get("emulated")),
            facts=facts,
        )


@dataclass(frozen=True)
class Manifest(_DocView):
    """A run directory's ``manifest.json``, read once (see the module docstring)."""

    raw: Mapping[str, Any]
    version: int
    run_id: str
    status: str
    config: RunConfig
    runtimes: Mapping[str, RuntimeFacts]
    seed: int
    artifact_key: str | None
    artifact_sizes: Mapping[str, int]
    host: Mapping[str, Any]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Manifest:
        """Read a manifest of any known version (:data:`MANIFEST_VERSIONS`)."""
        version = int(data.get("version", 1) or 1)
        if version not in MANIFEST_VERSIONS:
            raise ManifestError(
                f"manifest version {version} is newer than this isobench reads "
                f"({', '.join(map(str, MANIFEST_VERSIONS))})",
                fix="read the run with the isobench that made it, or upgrade isobench",
            )
        artifacts = _dict(data.get("artifacts"))
        key = artifacts.get("key")
        return cls(
            raw=data,
            version=version,
            run_id=str(data.get("run_id", "")),
            status=str(data.get("status", "")),
            config=RunConfig.from_json(_dict(data.get("config"))),
            runtimes={
                str(name): RuntimeFacts.from_json(str(name), facts)
                for name, facts in _dict(data.get("runtimes")).items()
            },
            seed=int(_dict(data.get("plan")).get("seed", 0) or 0),
            artifact_key=None if key is None else str(key),
            artifact_sizes={
                str(k): int(v) for k, v in _dict(artifacts.get("sizes")).items() if v is not None
            },
            host=_dict(data.get("host")),
        )

    @property
    def emulated(self) -> list[str]:
        """Runtimes whose facts mark them ``emulated``, in manifest order."""
        return [name for name, rt in self.runtimes.items() if rt.emulated]

    def image_size(self, runtime: str) -> int | None:
        """Bytes of the artifact ``runtime`` runs (the article's "image size"); None when the
        manifest names no artifact for it or no size for that artifact (nothing is guessed)."""
        rt = self.runtimes.get(runtime)
        if rt is None or not rt.artifact:
            return None
        return self.artifact_sizes.get(rt.artifact)


def as_manifest(manifest: Mapping[str, Any]) -> Manifest:
    """``manifest`` as a :class:`Manifest` (read from the dict when it is not one already)."""
    return manifest if isinstance(manifest, Manifest) else Manifest.from_json(manifest)


@dataclass(frozen=True)
class Analysis:
    """The analysis of one run (or of a before/after pair), computed once per command.

    The typed fields are the top level of :func:`isobench.analysis.stats.analyze`'s result;
    comparisons, metrics and per-runtime entries stay the documented dicts (see ``analyze``).
    ``idle`` is the idle part of a run that had loaded and idle trials, as an analysis of its
    own (the run's runtimes, baseline, margin and alpha; its own metrics and comparisons).
    """

    raw: Mapping[str, Any]
    version: int
    baseline: str
    runtimes: Sequence[str]
    emulated: Sequence[str]
    primary: str | None
    margin: float
    alpha: float
    comparisons: Sequence[Mapping[str, Any]]
    per_runtime: Mapping[str, Mapping[str, Any]]
    warnings: Sequence[str]
    method: Mapping[str, Any]
    metrics: Sequence[Mapping[str, Any]] = ()
    """The metrics analysed, primary first: ``{"name", "label", "unit", "better", "primary"}``."""
    scenario: str | None = None
    """``load``, or ``idle`` for a run with idle trials only."""
    noise: Mapping[str, Any] = field(default_factory=dict)
    idle: Analysis | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Analysis:
        primary = data.get("primary")
        scenario = data.get("scenario")
        idle = data.get("idle")
        return cls(
            raw=data,
            version=int(data.get("version", 1) or 1),
            baseline=str(data.get("baseline", "native")),
            runtimes=tuple(data.get("runtimes") or ()),
            emulated=tuple(data.get("emulated") or ()),
            primary=None if primary is None else str(primary),
            margin=float(data.get("margin", DEFAULT_MARGIN)),
            alpha=float(data.get("alpha", 0.05)),
            comparisons=tuple(data.get("comparisons") or ()),
            per_runtime=_dict(data.get("per_runtime")),
            warnings=tuple(data.get("warnings") or ()),
            method=_dict(data.get("method")),
            metrics=tuple(m for m in data.get("metrics") or () if isinstance(m, Mapping)),
            scenario=None if scenario is None else str(scenario),
            noise=_dict(data.get("noise")),
            idle=None if not isinstance(idle, Mapping) else cls.from_json({
                key: data[key] for key in ("runtimes", "emulated", "baseline", "margin", "alpha")
                if key in data} | dict(idle) | {"scenario": "idle"}),
        )

    def to_json(self) -> dict[str, Any]:
        """The document as computed (or read): what is written to disk."""
        return dict(self.raw)

    @property
    def idle_overhead(self) -> Analysis | None:
        """The analysis of the idle trials: ``idle``, or this one when the run had only idle
        trials; None when there were none."""
        if self.idle is not None:
            return self.idle
        return self if self.scenario == "idle" else None

    @property
    def metric_names(self) -> list[str]:
        return [str(m["name"]) for m in self.metrics]

    def metric_label(self, name: str | None) -> str:
        """The label of metric ``name`` ("" when there is no such metric)."""
        return next((str(m["label"]) for m in self.metrics if m["name"] == name), "")

    def comparison(self, runtime: str, metric: str) -> Mapping[str, Any] | None:
        """The comparison of ``runtime`` to the baseline on ``metric``, if there is one."""
        for c in self.comparisons:
            if c.get("runtime") == runtime and c.get("metric") == metric:
                return c
        return None

    def primary_comparison(self, runtime: str) -> Mapping[str, Any] | None:
        """The primary-metric comparison of ``runtime``, if there is one."""
        return next((c for c in self.comparisons
                     if c.get("runtime") == runtime and c.get("primary")), None)
