"""Loading a run directory into plain data for the reports."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from isobench import plugins
from isobench.analysis.stats import DEFAULT_METRICS, MetricSpec, analyze
from isobench.errors import IsobenchError
from isobench.results import ResultsError, RunStore, Sample, TrialRecord
from isobench.results_model import Analysis, Manifest, as_manifest

RunDirError = ResultsError
"""A path given as a run directory is not one (kept as a name for the reports' callers)."""


@dataclass
class RunData:
    """Everything a report needs from one run directory, read and analysed once.

    ``manifest`` and ``analysis`` are the typed views of :mod:`isobench.results_model` (still
    ``Mapping``s of the documents for writers that index them).
    """

    root: Path
    manifest: Manifest
    trials: list[TrialRecord]
    samples: list[Sample]
    analysis: Analysis


def load_run(run_dir: Path, *, with_samples: bool = True) -> RunData:
    """Read manifest, trials and samples and analyse them (seeded, so reproducible).

    The analysis is recomputed rather than read from summary.json so a report always matches
    the trials on disk; baseline, seed, min_effect, primary metric and equivalence margin come
    from the manifest's config (runs written before ``primary``/``margin`` existed get the
    defaults of :func:`isobench.analysis.stats.analyze`). A command loads a run once and hands
    the result to every writer (``print_run``, ``write_outputs``): the bootstrap runs once.
    """
    store = RunStore.existing(run_dir)
    manifest = Manifest.from_json(store.read_manifest())
    trials = store.trials()
    if not trials:
        raise RunDirError(f"{run_dir} has no finished trials", fix="run `isobench run` again")
    config = manifest.config
    analysis = analyze(
        trials,
        baseline=config.baseline,
        min_effect=config.min_effect,
        seed=manifest.seed,
        emulated=manifest.emulated,
        primary=config.primary,
        margin=config.margin,
        alpha=config.alpha,
        metrics=metric_specs_from_manifest(manifest),
    )
    samples = usable_samples(store.samples(), trials) if with_samples else []
    return RunData(run_dir, manifest, trials, samples, Analysis.from_json(analysis))


def usable_samples(samples: list[Sample], trials: list[TrialRecord]) -> list[Sample]:
    """Samples of usable trials only (ok, not warm-up), like the statistics: a failed trial's
    time series is never drawn as data. Samples that belong to no trial are kept."""
    ok = {(t.arm, t.trial) for t in trials if t.status == "ok" and not t.warmup}
    known = {(t.arm, t.trial) for t in trials}
    out = []
    for s in samples:
        key = (s.metadata.get("runtime"), s.metadata.get("trial"))
        if key in ok or key not in known:
            out.append(s)
    return out
def metric_specs_from_manifest(manifest: Mapping[str, Any]) -> Sequence[MetricSpec]:
    """The metrics of the run's workload (``config.workload`` with its ``workload_options``).

    A run whose workload is not installed here (a third-party plug-in) or cannot be built from
    its options is analysed with the HTTP set, as before workloads named their own metrics.
    """
    config = as_manifest(manifest).config
    if config.workload is None:
        return DEFAULT_METRICS
    try:
        workload = plugins.load("workload", config.workload)(dict(config.workload_options))
        return tuple(workload.metric_specs())
    except (IsobenchError, ImportError, TypeError, ValueError):
        return DEFAULT_METRICS


def emulated_from_manifest(manifest: Mapping[str, Any]) -> list[str]:
    """Runtimes the manifest's ``runtimes`` facts mark ``emulated``."""
    return as_manifest(manifest).emulated


def network_paths_text(manifest: Mapping[str, Any]) -> str:
    """``native: loopback (local client); docker-bridge: dnat (remote client → 198.18.0.1)``
    from the manifest's ``network_paths`` (what the trials reported), '' for older runs."""
    parts = []
    for arm, info in (manifest.get("network_paths") or {}).items():
        if not isinstance(info, Mapping):
            continue
        client = str(info.get("client", "local"))
        where = f" \u2192 {info['target']}" if client == "remote" and info.get("target") else ""
        parts.append(f"{arm}: {info.get('path')} ({client} client{where})")
    return "; ".join(parts)


def image_size(manifest: Mapping[str, Any], runtime: str) -> int | None:
    """Bytes of the artifact a runtime runs (what the article calls the image size).

    The manifest names each runtime's artifact (``manifest["runtimes"][rt]["artifact"]``) and
    the artifact's whole size sits under that name in ``artifacts.sizes``; None when either is
    missing (nothing is guessed from a runtime's name). See :meth:`Manifest.image_size`.
    """
    return as_manifest(manifest).image_size(runtime)
