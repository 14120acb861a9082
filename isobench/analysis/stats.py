"""Statistics: medians with CIs, ratios to a baseline, three-way verdicts, and what noise costs.

Method (also written into every analysis under ``"method"``):

* Per metric × runtime: the median of the trials and a percentile bootstrap 95 % CI of it.
* **Primary metric.** Each workload declares one (``Workload.primary_metric_for``: request rate,
  p95 latency under a fixed arrival rate, a validator's p95 block lag, idle CPU), overridable
  with ``--primary``. Each runtime's primary comparison with the baseline is tested on its own at
  α = 0.05 and gives the runtime's headline. There is no correction across runtimes: each
  runtime's sentence is its own claim, wrong with probability ≤ 5 % — the same as its printed
  95 % CI, so the words always match the interval shown. With k runtimes the chance that at
  least one headline claims a difference that is not there is up to 1 − 0.95^k (14 % for 3); it
  is stated in the method text.
* **Secondary metrics** (every other one): Holm–Bonferroni over all (runtime × secondary metric)
  comparisons, family-wise α = 0.05, separately for the difference and the equivalence tests.
  They are shown with their CIs and never decide the headline.
* **Ratio to the baseline: paired within rounds** (default). A round holds one trial of every
  arm, so the host's drift between rounds (CV ~10 % here) cancels in the per-round ratio
  ``b_i/a_i``. Estimate: geometric mean of the per-round ratios; CI: union of the Student-t
  interval on the log ratios and the percentile bootstrap over rounds; p = max of both. The
  simulation ``benchmarks/stats_sim.py`` (1,000 runs per cell, drift CV 10 % shared by the
  arms of a round, trial noise 3 %) chose it. At 3/5/8/12 rounds its 95 % CI covers the true
  ratio in 94.9/95.7/96.0/95.0 % of runs (±0.7 % Monte Carlo) with a median half-width of
  8.9/4.8/3.4/2.6 %, and finds a −10 % effect in 61/97/100/100 % of runs. Resampling both arms
  independently (the former method) is 2–4× wider (16.3/17.1/12.1/10.2 %): the drift sets its
  width, it overcovers (99–100 %) and finds the −10 % in only 11/14/28/53 % — why it almost
  never answered. The bootstrap over rounds alone undercovers (76 % at 3 rounds, 90 % at 12);
  the t half keeps the coverage; the bootstrap half is a guard for non-normal per-round
  ratios (on the simulated models, outliers included, it never widened the t interval).
  Adding rounds until a verdict appears (not done by the tool) inflates the A/A difference
  rate to ~11 % at α = 0.05 per look; α/10 per look keeps it near 4 %.
  Trials whose round lacks the other arm's trial are left out of the pairs; with fewer than 2
  complete rounds (or a value ≤ 0, or when comparing two runs: their rounds share no time)
  the **unpaired** estimator is used: ratio of medians, percentile bootstrap with both arms
  resampled independently, united with Welch's t interval on log values.
* **Verdicts** (:mod:`isobench.analysis.verdicts`), with an equivalence margin m (5 %):
  *slower/faster* when the 95 % CI excludes 1 (secondaries: and Holm-adjusted p < α);
  *equivalent within ±m* when the 90 % CI lies in [1 − m, 1 + m] (two one-sided tests at
  α = 0.05); otherwise *inconclusive*, with the estimated rounds that would decide
  (:func:`isobench.analysis.estimators.rounds_needed`). Emulated runtimes (a VM under TCG) are
  analysed but make no claim.
* **Noise**: coefficient of variation per runtime; minimum detectable effect
  ``(t(df, .975) + t(df, .80)) · s / √n`` with ``s`` the per-round spread of the log ratio
  (80 % power, α = 0.05); a warning, with the number of rounds that would resolve it, when it
  exceeds ``min_effect``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats as sps

from isobench.analysis.estimators import (
    N_RESAMPLES,
    RatioEstimate,
    min_detectable,
    min_detectable_effect,
    paired_ratio_ci,
    ratio_ci,
    rounds_for_effect,
    rounds_needed,
)
from isobench.analysis.metrics import (
    DEFAULT_METRICS,
    IDLE_METRICS,
    IDLE_SCENARIO,
    METRIC_NAMES,
    MetricSpec,
    default_primary,
    is_emulated,
    scenario_of,
    usable,
)
from isobench.analysis.verdicts import (
    EMULATED_VERDICT,
    KINDS,
    MINUS,
    assign_verdicts,
    change_text,
    decide,
    headline,
    holm,
    interval,
    kind_text,
    pct,
    primary_comparison,
    runtime_sentence,
    sentence,
    short_verdict,
)
from isobench.results import TrialRecord
from isobench.results_model import DEFAULT_MARGIN

__all__ = [
    "ANALYSIS_VERSION",
    "CONFIDENCE",
    "DEFAULT_MARGIN",
    "DEFAULT_METRICS",
    "EMULATED_VERDICT",
    "IDLE_METRICS",
    "IDLE_SCENARIO",
    "KINDS",
    "METRIC_NAMES",
    "MINUS",
    "MetricSpec",
    "RatioEstimate",
    "analyze",
    "assign_verdicts",
    "change_text",
    "comparison_for",
    "cv",
    "decide",
    "default_primary",
    "estimate",
    "headline",
    "holm",
    "interval",
    "is_emulated",
    "kind_text",
    "median_ci",
    "min_detectable_effect",
    "paired_ratio_ci",
    "pairs",
    "pct",
    "primary_comparison",
    "ratio_ci",
    "rounds_needed",
    "runtime_sentence",
    "scenario_of",
    "sentence",
    "short_verdict",
    "usable",
    "verdict_text",
]

ANALYSIS_VERSION = 2
CONFIDENCE = 0.95

Values = list[tuple[int, float]]
"""(round, value) of one runtime's trials for one metric."""


def cv(values: Sequence[float]) -> float | None:
    """Coefficient of variation (sample sd / mean), None for fewer than 2 values or mean 0."""
    arr = np.asarray(values, dtype=float)
    if arr.size < 2 or arr.mean() == 0:
        return None
    return float(arr.std(ddof=1) / abs(arr.mean()))


def _median(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(x, axis=axis)


def median_ci(values: Sequence[float], seed: int = 0) -> tuple[float, float] | None:
    """Percentile bootstrap 95 % CI of the median, None for fewer than 2 values."""
    arr = np.asarray(values, dtype=float)
    if arr.size < 2:
        return None
    if np.all(arr == arr[0]):
        return (float(arr[0]), float(arr[0]))
    res = sps.bootstrap(
        (arr,), _median, n_resamples=N_RESAMPLES, vectorized=True, method="percentile",
        confidence_level=CONFIDENCE, rng=np.random.default_rng(seed),
    )
    return (float(res.confidence_interval.low), float(res.confidence_interval.high))


def verdict_text(comparison: Mapping[str, Any], label: str | None = None) -> str:
    """The one-line verdict of a decided comparison dict (kept for callers of version 1)."""
    return sentence(comparison)


def _values_by_runtime(trials: Sequence[TrialRecord], spec: MetricSpec) -> dict[str, Values]:
    out: dict[str, Values] = {}
    for t in trials:
        value = spec.extract(t)
        if value is not None and math.isfinite(value):
            out.setdefault(t.arm, []).append((t.round, float(value)))
    return out


def pairs(base: Values, other: Values) -> tuple[list[float], list[float]]:
    """Values of the rounds where both arms have exactly one trial, in round order."""
    rounds_a: dict[int, list[float]] = {}
    rounds_b: dict[int, list[float]] = {}
    for r, v in base:
        rounds_a.setdefault(r, []).append(v)
    for r, v in other:
        rounds_b.setdefault(r, []).append(v)
    common = sorted(r for r in rounds_a.keys() & rounds_b.keys()
                    if len(rounds_a[r]) == 1 and len(rounds_b[r]) == 1)
    return [rounds_a[r][0] for r in common], [rounds_b[r][0] for r in common]


def estimate(base: Values, other: Values, *, seed: int, margin: float,
             paired: bool = True, alpha: float = 0.05) -> RatioEstimate | None:
    """Paired estimate over complete rounds, else unpaired over all trials (module docstring).
    ``alpha`` sets the interval levels (``1 − α`` and ``1 − 2α``; 95 % and 90 % by default)."""
    if paired:
        a, b = pairs(base, other)
        est = paired_ratio_ci(a, b, seed, margin=margin, alpha=alpha)
        if est is not None:
            return est
    return ratio_ci([v for _, v in base], [v for _, v in other], seed, margin=margin,
                    alpha=alpha)


def _runtime_order(
    trials: Sequence[TrialRecord], baseline: str, emulated: set[str]
) -> list[str]:
    """Baseline first, then the other runtimes by name, emulated ones last."""
    names = {t.arm for t in trials} - {baseline}
    head = [baseline] if any(t.arm == baseline for t in trials) else []
    return head + sorted(names, key=lambda rt: (rt in emulated, rt))


def analyze(
    trials: Sequence[TrialRecord],
    *,
    baseline: str = "native",
    metrics: Sequence[MetricSpec] = DEFAULT_METRICS,
    min_effect: float = 0.05,
    seed: int = 0,
    alpha: float = 0.05,
    emulated: Iterable[str] = (),
    idle_metrics: Sequence[MetricSpec] = IDLE_METRICS,
    primary: str | None = None,
    margin: float = DEFAULT_MARGIN,
    paired: bool = True,
) -> dict[str, Any]:
    """Analyse the trials of a run (JSON-serialisable result, written to summary.json).

    Args:
        trials: every trial record; failed and warm-up trials are counted but not analysed,
            trials of scenario ``idle`` (``facts["scenario"]``) are analysed apart when the run
            also has loaded trials (their primary metric is ``idle_cpu_percent``).
        baseline: the runtime every other runtime is compared to.
        metrics: the metrics to analyse; those absent from the data are skipped.
        min_effect: smallest relative effect the user wants to resolve (0.05 = 5 %).
        seed: seeds every bootstrap (same data + seed → same analysis).
        alpha: error rate of each primary test and family-wise rate of the secondaries.
        emulated: runtime names to treat as emulated in addition to the trials' facts.
        idle_metrics: the metrics of idle-scenario trials.
        primary: the primary metric (None or absent from the data: see
            :func:`isobench.analysis.metrics.default_primary`, with a warning when absent).
        margin: equivalence margin m (0.05 = ±5 %).
        paired: pair trials by round (False when rounds share no time, e.g. two runs).

    Returns:
        ``{"baseline", "runtimes", "emulated", "metrics", "primary", "margin", "per_runtime",
        "comparisons", "headline", "noise", "warnings", "method", "idle"...}``. Each comparison
        carries ``ratio``, ``ci``, ``ci90``, ``change_pct``, ``ci_pct``, ``p``, ``p_adjusted``,
        ``primary``, ``verdict_kind`` (one of :data:`KINDS`), ``significant``, ``direction``,
        ``rounds_needed``, ``estimator`` and ``verdict`` (the sentence).
    """
    everything = list(trials)
    ok = usable(everything)
    loaded = [t for t in ok if scenario_of(t) != IDLE_SCENARIO]
    idle = [t for t in ok if scenario_of(t) == IDLE_SCENARIO]
    main = loaded if loaded else idle
    if not loaded:
        metrics = idle_metrics
    emulated_set = set(emulated) | {t.arm for t in everything if is_emulated(t)}
    runtimes = _runtime_order(everything, baseline, emulated_set)
    opts: dict[str, Any] = {
        "baseline": baseline, "min_effect": min_effect, "seed": seed, "alpha": alpha,
        "margin": margin, "paired": paired, "emulated_set": emulated_set,
    }
    result = _analyze_group(main, runtimes, metrics, primary if loaded else "idle_cpu_percent",
                            **opts)
    for rt in runtimes:
        mine = [t for t in everything if t.arm == rt]
        result["per_runtime"].setdefault(rt, {"metrics": {}})
        result["per_runtime"][rt].update(
            n_trials=sum(1 for t in main if t.arm == rt),
            n_idle=sum(1 for t in idle if t.arm == rt) if loaded else 0,
            n_failed=sum(1 for t in mine if t.status != "ok"),
            n_warmup=sum(1 for t in mine if t.warmup),
            emulated=rt in emulated_set,
        )
    if loaded and idle:
        idle_part = _analyze_group(idle, runtimes, idle_metrics, "idle_cpu_percent", **opts)
        result["idle"] = {k: idle_part[k] for k in ("per_runtime", "comparisons", "metrics",
                                                    "primary")}
    result["scenario"] = IDLE_SCENARIO if not loaded and idle else "load"
    result["baseline"] = baseline
    result["runtimes"] = runtimes
    result["emulated"] = sorted(emulated_set)
    result["margin"] = margin
    result["alpha"] = alpha
    if baseline not in runtimes:
        result["warnings"].insert(0, f"baseline '{baseline}' has no trials: nothing compared")
    result["headline"] = headline(result)
    result["method"] = method_text(result, seed=seed, alpha=alpha, margin=margin,
                                   min_effect=min_effect, paired=paired)
    result["version"] = ANALYSIS_VERSION
    return result


def method_text(result: Mapping[str, Any], *, seed: int, alpha: float, margin: float,
                min_effect: float, paired: bool) -> dict[str, Any]:
    """The ``"method"`` part of an analysis: how each number was made, in words."""
    labels = {m["name"]: m["label"] for m in result["metrics"]}
    primary = result.get("primary")
    k = sum(1 for rt in result["runtimes"]
            if rt != result["baseline"] and rt not in result["emulated"])
    fwer = (1 - (1 - alpha) ** k) * 100
    ci, ci90 = f"{(1 - alpha) * 100:g} %", f"{(1 - 2 * alpha) * 100:g} %"
    return {
        "ci": f"percentile bootstrap of the median, {N_RESAMPLES} resamples, seed {seed}",
        "ratio": (
            ("paired within rounds: geometric mean of the per-round ratios runtime/baseline; "
             f"{ci} CI = union of the Student-t interval on the log ratios and the percentile "
             f"bootstrap over rounds ({N_RESAMPLES} resamples, seed {seed}); p = max of both. "
             "Unpaired fallback (fewer than 2 complete rounds): " if paired else "unpaired: ")
            + "ratio of medians, bootstrap with both arms resampled independently united with "
            "Welch's t interval on log values"
        ),
        "verdicts": (
            f"slower/faster: {ci} CI excludes 1; equivalent: {ci90} CI inside "
            f"[{1 - margin:g}, {1 + margin:g}] (two one-sided tests, \u03b1 = {alpha}); "
            "otherwise inconclusive, with the rounds that would decide"
        ),
        "multiple_comparisons": (
            f"primary metric {labels.get(primary, primary)} tested alone at \u03b1 = {alpha} "
            f"for each of the {k} compared runtime(s), uncorrected so each sentence matches its "
            f"{ci} CI (chance of at least one false headline \u2264 {fwer:.0f} %); "
            f"Holm\u2013Bonferroni over the {result['family_size']} secondary comparisons "
            f"(runtime \u00d7 metric, emulated runtimes excluded), family-wise \u03b1 = {alpha}; "
            "CIs shown are unadjusted"
        ),
        "noise": (
            "coefficient of variation per runtime; minimum detectable effect "
            "(t(df,.975) + t(df,.80))\u00b7s/\u221an, s = per-round spread of the log ratio, "
            "80 % power"
        ),
        "primary": primary,
        "margin": margin,
        "confidence": 1 - alpha,
        "alpha": alpha,
        "min_effect": min_effect,
        "seed": seed,
        "n_resamples": N_RESAMPLES,
        "paired": paired,
    }


def _comparison(spec: MetricSpec, rt: str, base: Values, mine: Values, *, is_primary: bool,
                baseline: str, emulated: bool, seed: int, margin: float,
                paired: bool, alpha: float = 0.05) -> dict[str, Any]:
    est = estimate(base, mine, seed=seed, margin=margin, paired=paired, alpha=alpha)
    c: dict[str, Any] = {
        "runtime": rt, "baseline": baseline, "metric": spec.name, "label": spec.title,
        "unit": spec.unit, "better": spec.better, "emulated": emulated, "primary": is_primary,
        "n": [len(base), len(mine)], "estimator": None, "n_pairs": None,
        "ratio": None, "ci": None, "ci90": None, "change_pct": None, "ci_pct": None,
        "ci90_pct": None, "p": None, "p_tost": None, "p_adjusted": None,
        "p_tost_adjusted": None, "mde_pct": None, "rounds_needed": None,
        "margin_pct": margin * 100, "alpha": alpha,
    }
    if est is None:
        return c
    is_paired = est.estimator == "paired"
    mde = min_detectable(est.spread, est.n, paired=is_paired)
    c.update(
        estimator=est.estimator, n_pairs=est.n if is_paired else None, ratio=est.ratio,
        ci=[est.low, est.high], ci90=[est.low90, est.high90],
        change_pct=(est.ratio - 1) * 100, ci_pct=[(est.low - 1) * 100, (est.high - 1) * 100],
        ci90_pct=[(est.low90 - 1) * 100, (est.high90 - 1) * 100], p=est.p, p_tost=est.p_tost,
        mde_pct=None if not math.isfinite(mde) else mde * 100, spread=est.spread,
    )
    return c


def _analyze_group(
    trials: Sequence[TrialRecord],
    runtimes: Sequence[str],
    metrics: Sequence[MetricSpec],
    primary: str | None,
    *,
    baseline: str,
    min_effect: float,
    seed: int,
    alpha: float,
    margin: float,
    paired: bool,
    emulated_set: set[str],
) -> dict[str, Any]:
    per_runtime: dict[str, dict[str, Any]] = {rt: {"metrics": {}} for rt in runtimes}
    present: list[MetricSpec] = []
    comparisons: list[dict[str, Any]] = []
    warns: list[str] = []
    noise: dict[str, dict[str, Any]] = {}
    by_metric = [(spec, _values_by_runtime(trials, spec)) for spec in metrics]
    names = [spec.name for spec, values in by_metric if values]
    chosen = primary if primary in names else default_primary(names)
    if primary is not None and primary not in names and names:
        warns.append(f"primary metric '{primary}' is not in this run's data: using {chosen}")
    for m_index, (spec, values) in enumerate(by_metric):
        if not values:
            continue
        present.append(spec)
        for r_index, rt in enumerate(runtimes):
            vals = [v for _, v in values.get(rt, [])]
            if not vals:
                continue
            ci = median_ci(vals, seed=seed + 7919 * m_index + 104729 * r_index)
            per_runtime[rt]["metrics"][spec.name] = {
                "n": len(vals), "median": float(np.median(vals)), "mean": float(np.mean(vals)),
                "ci": None if ci is None else list(ci), "cv": cv(vals), "values": vals,
            }
            noise.setdefault(rt, {"cv": {}})["cv"][spec.name] = cv(vals)
        base_vals = values.get(baseline, [])
        for r_index, rt in enumerate(runtimes):
            if rt == baseline or not values.get(rt) or not base_vals:
                continue
            comparisons.append(_comparison(
                spec, rt, base_vals, values[rt], is_primary=spec.name == chosen,
                baseline=baseline, emulated=rt in emulated_set,
                seed=seed + 31 * m_index + 1009 * r_index + 1, margin=margin, paired=paired,
                alpha=alpha,
            ))
    family_size = assign_verdicts(comparisons, alpha=alpha, margin=margin)
    labels = {s.name: s.title for s in present}
    for entry in noise.values():
        entry["primary_metric"] = chosen
        entry["primary_cv"] = entry["cv"].get(chosen) if chosen else None
    for c in comparisons:
        if not c["primary"] or c["emulated"]:
            continue
        warning = _noise(c, noise[c["runtime"]], min_effect, labels[c["metric"]])
        if warning:
            warns.append(warning)
    return {
        "metrics": [
            {"name": s.name, "label": s.title, "unit": s.unit, "better": s.better,
             "primary": s.name == chosen} for s in present
        ],
        "primary": chosen,
        "per_runtime": per_runtime,
        "comparisons": comparisons,
        "noise": noise,
        "warnings": warns,
        "family_size": family_size,
    }


def _noise(c: dict[str, Any], entry: dict[str, Any], min_effect: float, label: str) -> str | None:
    """Record the primary comparison's detectable effect; the warning when it is too large."""
    mde = c["mde_pct"]
    is_paired = c["estimator"] == "paired"
    done = c["n_pairs"] if is_paired else min(c["n"])
    total = rounds_for_effect(c.get("spread"), min_effect, paired=is_paired)
    entry.update(mde_pct=mde, rounds=done, rounds_for_min_effect=total)
    if mde is not None and mde <= min_effect * 100:
        return None
    head = (f"host too noisy to resolve a {min_effect * 100:.0f} % effect on {label} for "
            f"{c['runtime']} vs {c['baseline']}: ")
    if mde is None:
        return head + "minimum detectable effect unknown (too few trials): run 3 or more rounds"
    if total is None:
        return (head + f"minimum detectable effect \u2248{mde:.1f} % with {done} rounds; over "
                "1000 rounds would be needed: quiet the host")
    more = max(total - (done or 0), 1)
    return (head + f"minimum detectable effect \u2248{mde:.1f} % with {done} rounds; about "
            f"{more} more round{'s' if more != 1 else ''} ({total} in all) would resolve it, "
            "or quiet the host")


def comparison_for(analysis: Mapping[str, Any], runtime: str, metric: str) -> dict[str, Any] | None:
    """The comparison dict of ``runtime`` × ``metric`` in an analysis, if any."""
    for c in analysis.get("comparisons", []):
        if c["runtime"] == runtime and c["metric"] == metric:
            return dict(c)
    return None
