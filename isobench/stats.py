"""Statistics: medians with bootstrap CIs, ratios to a baseline, multiple comparisons, verdicts.

Method (also written into every analysis under ``"method"``):

* Per metric × runtime: the median of the trials and a *percentile* bootstrap 95 % CI of the
  median (``scipy.stats.bootstrap``, seeded).
* Per runtime vs the baseline: the ratio of medians ``median(runtime) / median(baseline)`` with a
  percentile bootstrap CI, both arms resampled independently (``paired=False``). The two-sided
  p-value is the larger of the bootstrap p-value (share of resampled ratios on the far side of 1,
  doubled) and Welch's t-test on log values; the max of two p-values is valid when either is,
  and the percentile bootstrap alone is overconfident in its tails with 3–5 trials.
* Multiple comparisons: Holm–Bonferroni over the family of (runtime × metric) comparisons of the
  non-emulated runtimes, family-wise α = 0.05. The CIs shown are the unadjusted 95 % intervals; a
  difference is called *significant* only if its Holm-adjusted p < α **and** its CI excludes 1.
* Noise: coefficient of variation (sd / mean) per runtime and metric, and the minimum detectable
  effect ``2.8 · √(cv_a²/n_a + cv_b²/n_b)`` (80 % power, α = 0.05); a warning is raised when it
  is larger than the requested ``min_effect``.
* Emulated runtimes (e.g. a VM under TCG) are analysed but make no claim: their verdict is
  "emulated — not comparable" and they are left out of the Holm family.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import stats as sps

from isobench.results import TrialRecord

ANALYSIS_VERSION = 1
N_RESAMPLES = 9999
CONFIDENCE = 0.95
MINUS = "\u2212"
EMULATED_VERDICT = "emulated \u2014 not comparable"
IDLE_SCENARIO = "idle"


@dataclass(frozen=True)
class MetricSpec:
    """A metric taken from each trial.

    Attributes:
        name: key in the analysis (``rps``, ``p95_ms``...).
        extract: trial → value, or None when the trial does not carry it.
        unit: display unit of the extracted value.
        better: ``"higher"`` or ``"lower"``.
        label: short human label (``req/s``, ``p95``); defaults to ``name``.
    """

    name: str
    extract: Callable[[TrialRecord], float | None]
    unit: str
    better: Literal["higher", "lower"] = "lower"
    label: str = ""

    @property
    def title(self) -> str:
        return self.label or self.name


def _load(stat_metric: str, stat: str, scale: float = 1.0) -> Callable[[TrialRecord], float | None]:
    def extract(trial: TrialRecord) -> float | None:
        value = trial.metric(stat_metric, stat)
        return None if value is None else value * scale

    return extract


def _requests(trial: TrialRecord) -> float | None:
    count = trial.metric("http_reqs", "count")
    return count if count else None


def _startup(trial: TrialRecord) -> float | None:
    return trial.startup_s


def _cpu_per_request(trial: TrialRecord) -> float | None:
    cpu, count = trial.telemetry.get("cpu_seconds"), _requests(trial)
    return None if cpu is None or count is None else float(cpu) / count * 1000.0


def _memory_peak(trial: TrialRecord) -> float | None:
    peak = trial.telemetry.get("rss_bytes_peak", trial.telemetry.get("memory_bytes_peak"))
    return None if peak is None else float(peak) / 2**20


def _net_per_request(trial: TrialRecord) -> float | None:
    rx, tx = trial.telemetry.get("net_rx_bytes"), trial.telemetry.get("net_tx_bytes")
    count = _requests(trial)
    if count is None or (rx is None and tx is None):
        return None
    return (float(rx or 0.0) + float(tx or 0.0)) / count


DEFAULT_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("rps", _load("http_reqs", "rate"), "req/s", "higher", "req/s"),
    MetricSpec("p50_ms", _load("http_req_duration", "med"), "ms", "lower", "p50"),
    MetricSpec("p95_ms", _load("http_req_duration", "p(95)"), "ms", "lower", "p95"),
    MetricSpec("p99_ms", _load("http_req_duration", "p(99)"), "ms", "lower", "p99"),
    MetricSpec("startup_s", _startup, "s", "lower", "startup"),
    MetricSpec("cpu_ms_per_req", _cpu_per_request, "ms", "lower", "CPU/req"),
    MetricSpec("mem_peak_mib", _memory_peak, "MiB", "lower", "memory peak"),
    MetricSpec("net_bytes_per_req", _net_per_request, "B", "lower", "net bytes/req"),
    # the validator workload: how late blocks are applied (absent for other workloads: skipped)
    MetricSpec("block_lag_p50_ms", _load("validator_block_lag", "med"), "ms", "lower",
               "block lag p50"),
    MetricSpec("block_lag_p95_ms", _load("validator_block_lag", "p(95)"), "ms", "lower",
               "block lag p95"),
    MetricSpec("cpu_percent", lambda t: t.telemetry.get("cpu_percent_mean"), "%", "lower",
               "CPU % of a core"),
)

IDLE_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("idle_cpu_percent", lambda t: t.telemetry.get("cpu_percent_mean"), "%", "lower",
               "idle CPU"),
    MetricSpec("mem_peak_mib", _memory_peak, "MiB", "lower", "memory peak"),
    MetricSpec("startup_s", _startup, "s", "lower", "startup"),
)


def is_emulated(trial: TrialRecord) -> bool:
    """Whether a trial's facts mark its runtime as emulated (bool or ``"true"``)."""
    value = trial.facts.get("emulated", False)
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes"}
    return bool(value)


def scenario_of(trial: TrialRecord) -> str | None:
    value = trial.facts.get("scenario")
    return None if value is None else str(value)


def usable(trials: Iterable[TrialRecord]) -> list[TrialRecord]:
    """Trials that count: finished ``ok`` and not warm-up."""
    return [t for t in trials if t.status == "ok" and not t.warmup]


def _median(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(x, axis=axis)


def _ratio_of_medians(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(b, axis=axis) / np.median(a, axis=axis)


def cv(values: Sequence[float]) -> float | None:
    """Coefficient of variation (sample sd / mean), None for fewer than 2 values or mean 0."""
    arr = np.asarray(values, dtype=float)
    if arr.size < 2 or arr.mean() == 0:
        return None
    return float(arr.std(ddof=1) / abs(arr.mean()))


def median_ci(values: Sequence[float], seed: int = 0) -> tuple[float, float] | None:
    """Percentile bootstrap 95 % CI of the median, None for fewer than 2 values."""
    arr = np.asarray(values, dtype=float)
    if arr.size < 2:
        return None
    if np.all(arr == arr[0]):
        return (float(arr[0]), float(arr[0]))
    res = sps.bootstrap(
        (arr,),
        _median,
        n_resamples=N_RESAMPLES,
        vectorized=True,
        method="percentile",
        confidence_level=CONFIDENCE,
        rng=np.random.default_rng(seed),
    )
    return (float(res.confidence_interval.low), float(res.confidence_interval.high))


@dataclass(frozen=True)
class RatioEstimate:
    """Ratio of medians B/A with its bootstrap CI and a two-sided p-value.

    ``p`` is the larger of the bootstrap p-value (share of resampled ratios beyond 1, doubled)
    and Welch's t-test on log values: the bootstrap alone is overconfident with 3–5 trials.
    """

    ratio: float
    low: float
    high: float
    p: float


def ratio_ci(a: Sequence[float], b: Sequence[float], seed: int = 0) -> RatioEstimate | None:
    """``median(b) / median(a)`` with a percentile bootstrap CI, arms resampled independently.

    Returns None when an arm has fewer than 2 values or the baseline median is 0.
    """
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if xa.size < 2 or xb.size < 2 or np.median(xa) == 0:
        return None
    ratio = float(np.median(xb) / np.median(xa))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate (constant) arms are handled below
        res = sps.bootstrap(
            (xa, xb),
            _ratio_of_medians,
            n_resamples=N_RESAMPLES,
            vectorized=True,
            paired=False,
            method="percentile",
            confidence_level=CONFIDENCE,
            rng=np.random.default_rng(seed),
        )
    dist = np.asarray(res.bootstrap_distribution, dtype=float)
    dist = dist[np.isfinite(dist)]
    if dist.size == 0:
        return None
    below = (np.count_nonzero(dist <= 1.0) + 1) / (dist.size + 1)
    above = (np.count_nonzero(dist >= 1.0) + 1) / (dist.size + 1)
    p_boot = min(1.0, 2.0 * min(below, above))
    p = max(p_boot, _welch_log_p(xa, xb))
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not (math.isfinite(low) and math.isfinite(high)):
        low, high = float(dist.min()), float(dist.max())
    return RatioEstimate(ratio, low, high, p)


def _welch_log_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided p of Welch's t-test on log values (0 when both arms are distinct constants)."""
    if np.any(a <= 0) or np.any(b <= 0):
        la, lb = a, b
    else:
        la, lb = np.log(a), np.log(b)
    if np.ptp(la) == 0 and np.ptp(lb) == 0:
        return 1.0 if la[0] == lb[0] else 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = float(sps.ttest_ind(la, lb, equal_var=False).pvalue)
    return p if math.isfinite(p) else 0.0


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (step-down, monotone, capped at 1)."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def min_detectable_effect(cv_a: float | None, n_a: int, cv_b: float | None, n_b: int) -> float:
    """Smallest relative effect detectable with 80 % power at α = 0.05 (normal approximation)."""
    if cv_a is None or cv_b is None or n_a < 2 or n_b < 2:
        return math.inf
    return 2.8 * math.sqrt(cv_a**2 / n_a + cv_b**2 / n_b)


def pct(x: float) -> str:
    """``-3.14`` → ``−3.1``, ``2`` → ``+2.0`` (typographic minus)."""
    return f"{x:+.1f}".replace("-", MINUS)


def verdict_text(comparison: Mapping[str, Any], label: str) -> str:
    """The one-line verdict of a comparison dict (see :func:`analyze`)."""
    rt = comparison["runtime"]
    if comparison.get("emulated"):
        return f"{rt}: {EMULATED_VERDICT}"
    if comparison.get("change_pct") is None:
        return f"{rt}: too few trials to compare {label}"
    lo, hi = comparison["ci_pct"]
    change = comparison["change_pct"]
    if comparison["significant"]:
        return f"{rt}: {pct(change)} % {label} [{pct(lo)}, {pct(hi)}], significant"
    half = max(abs(lo - change), abs(hi - change))
    if lo > 0 or hi < 0:
        return (
            f"{rt}: no significant difference in {label} after Holm correction "
            f"({pct(change)} %, \u00b1{half:.1f} %)"
        )
    return f"{rt}: no significant difference in {label} ({pct(change)} %, \u00b1{half:.1f} %)"


def _values_by_runtime(trials: Sequence[TrialRecord], spec: MetricSpec) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for t in trials:
        value = spec.extract(t)
        if value is not None and math.isfinite(value):
            out.setdefault(t.runtime, []).append(float(value))
    return out


def _runtime_order(
    trials: Sequence[TrialRecord], baseline: str, emulated: set[str]
) -> list[str]:
    """Baseline first, then the other runtimes by name, emulated ones last."""
    names = {t.runtime for t in trials} - {baseline}
    head = [baseline] if any(t.runtime == baseline for t in trials) else []
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
) -> dict[str, Any]:
    """Analyse the trials of a run (JSON-serialisable result, written to summary.json).

    Args:
        trials: every trial record; failed and warm-up trials are counted but not analysed,
            trials of scenario ``idle`` (``facts["scenario"]``) are analysed apart when the run
            also has loaded trials.
        baseline: the runtime every other runtime is compared to.
        metrics: the metrics to analyse; those absent from the data are skipped.
        min_effect: smallest relative effect the user wants to resolve (0.05 = 5 %).
        seed: seeds every bootstrap (same data + seed → same analysis).
        alpha: family-wise error rate for the Holm–Bonferroni procedure.
        emulated: runtime names to treat as emulated in addition to the trials' facts.
        idle_metrics: the metrics of idle-scenario trials (the ``"idle"`` part, or the whole
            analysis when every trial is idle).

    Returns:
        ``{"baseline", "runtimes", "emulated", "metrics", "per_runtime", "comparisons",
        "noise", "warnings", "method", "idle"...}``; see the module docstring for the method.
    """
    everything = list(trials)
    ok = usable(everything)
    loaded = [t for t in ok if scenario_of(t) != IDLE_SCENARIO]
    idle = [t for t in ok if scenario_of(t) == IDLE_SCENARIO]
    main = loaded if loaded else idle
    if not loaded:
        metrics = idle_metrics
    emulated_set = set(emulated) | {t.runtime for t in everything if is_emulated(t)}
    runtimes = _runtime_order(everything, baseline, emulated_set)
    result = _analyze_group(
        main, runtimes, baseline, metrics, min_effect, seed, alpha, emulated_set
    )
    for rt in runtimes:
        mine = [t for t in everything if t.runtime == rt]
        result["per_runtime"].setdefault(rt, {"metrics": {}})
        result["per_runtime"][rt].update(
            n_trials=sum(1 for t in main if t.runtime == rt),
            n_idle=sum(1 for t in idle if t.runtime == rt) if loaded else 0,
            n_failed=sum(1 for t in mine if t.status != "ok"),
            n_warmup=sum(1 for t in mine if t.warmup),
            emulated=rt in emulated_set,
        )
    if loaded and idle:
        idle_part = _analyze_group(
            idle, runtimes, baseline, idle_metrics, min_effect, seed, alpha, emulated_set
        )
        result["idle"] = {k: idle_part[k] for k in ("per_runtime", "comparisons", "metrics")}
    result["scenario"] = IDLE_SCENARIO if not loaded and idle else "load"
    result["baseline"] = baseline
    result["runtimes"] = runtimes
    result["emulated"] = sorted(emulated_set)
    if baseline not in runtimes:
        result["warnings"].insert(0, f"baseline '{baseline}' has no trials: nothing compared")
    result["method"] = {
        "ci": f"percentile bootstrap of the median, {N_RESAMPLES} resamples, seed {seed}",
        "ratio": (
            "ratio of medians runtime/baseline, percentile bootstrap CI with both arms resampled "
            f"independently ({N_RESAMPLES} resamples, seed {seed}); p-value = max(bootstrap p, "
            "Welch t-test on log values)"
        ),
        "multiple_comparisons": (
            f"Holm\u2013Bonferroni over {result['family_size']} comparisons "
            f"(runtime \u00d7 metric, emulated runtimes excluded), family-wise \u03b1 = {alpha}; "
            "CIs shown are unadjusted 95 %"
        ),
        "noise": (
            "coefficient of variation per runtime; minimum detectable effect "
            "2.8\u00b7sqrt(cv_a\u00b2/n_a + cv_b\u00b2/n_b) at 80 % power"
        ),
        "confidence": CONFIDENCE,
        "alpha": alpha,
        "min_effect": min_effect,
        "seed": seed,
        "n_resamples": N_RESAMPLES,
    }
    result["version"] = ANALYSIS_VERSION
    return result


def _analyze_group(
    trials: Sequence[TrialRecord],
    runtimes: Sequence[str],
    baseline: str,
    metrics: Sequence[MetricSpec],
    min_effect: float,
    seed: int,
    alpha: float,
    emulated_set: set[str],
) -> dict[str, Any]:
    per_runtime: dict[str, dict[str, Any]] = {rt: {"metrics": {}} for rt in runtimes}
    present: list[MetricSpec] = []
    comparisons: list[dict[str, Any]] = []
    warns: list[str] = []
    noise: dict[str, dict[str, Any]] = {}
    for m_index, spec in enumerate(metrics):
        values = _values_by_runtime(trials, spec)
        if not values:
            continue
        present.append(spec)
        for r_index, rt in enumerate(runtimes):
            vals = values.get(rt, [])
            if not vals:
                continue
            ci = median_ci(vals, seed=seed + 7919 * m_index + 104729 * r_index)
            per_runtime[rt]["metrics"][spec.name] = {
                "n": len(vals),
                "median": float(np.median(vals)),
                "mean": float(np.mean(vals)),
                "ci": None if ci is None else list(ci),
                "cv": cv(vals),
                "values": vals,
            }
            noise.setdefault(rt, {"cv": {}})["cv"][spec.name] = cv(vals)
        base_vals = values.get(baseline, [])
        for r_index, rt in enumerate(runtimes):
            if rt == baseline or not values.get(rt) or not base_vals:
                continue
            vals = values[rt]
            est = ratio_ci(base_vals, vals, seed=seed + 31 * m_index + 1009 * r_index + 1)
            mde = min_detectable_effect(cv(base_vals), len(base_vals), cv(vals), len(vals))
            comparisons.append(
                {
                    "runtime": rt,
                    "baseline": baseline,
                    "metric": spec.name,
                    "label": spec.title,
                    "unit": spec.unit,
                    "better": spec.better,
                    "emulated": rt in emulated_set,
                    "n": [len(base_vals), len(vals)],
                    "ratio": None if est is None else est.ratio,
                    "ci": None if est is None else [est.low, est.high],
                    "change_pct": None if est is None else (est.ratio - 1) * 100,
                    "ci_pct": None if est is None else [(est.low - 1) * 100, (est.high - 1) * 100],
                    "p": None if est is None else est.p,
                    "p_adjusted": None,
                    "significant": None,
                    "mde_pct": None if not math.isfinite(mde) else mde * 100,
                }
            )
    family = [c for c in comparisons if not c["emulated"] and c["p"] is not None]
    for c, p_adj in zip(family, holm([c["p"] for c in family]), strict=True):
        c["p_adjusted"] = p_adj
        lo, hi = c["ci"]
        c["significant"] = bool(p_adj < alpha and (lo > 1.0 or hi < 1.0))
    labels = {s.name: s.title for s in present}
    for c in comparisons:
        if c["significant"]:
            worse = (c["ratio"] < 1) == (c["better"] == "higher")
            c["direction"] = "worse" if worse else "better"
        else:
            c["direction"] = "none"
        c["verdict"] = verdict_text(c, labels[c["metric"]])
    primary = present[0].name if present else None
    for entry in noise.values():
        entry["primary_metric"] = primary
        entry["primary_cv"] = entry["cv"].get(primary) if primary else None
    for c in comparisons:
        if primary is None or c["metric"] != primary or c["emulated"]:
            continue
        mde = c["mde_pct"]
        noise[c["runtime"]]["mde_pct"] = mde
        if mde is None or mde > min_effect * 100:
            shown = "unknown (too few trials)" if mde is None else f"\u2248{mde:.1f} %"
            warns.append(
                f"host too noisy to resolve a {min_effect * 100:.0f} % effect on "
                f"{labels[primary]} for {c['runtime']} vs {baseline}: minimum detectable "
                f"effect {shown} (add trials or quiet the host)"
            )
    return {
        "metrics": [
            {"name": s.name, "label": s.title, "unit": s.unit, "better": s.better} for s in present
        ],
        "per_runtime": per_runtime,
        "comparisons": comparisons,
        "noise": noise,
        "warnings": warns,
        "family_size": len(family),
    }


def comparison_for(analysis: Mapping[str, Any], runtime: str, metric: str) -> dict[str, Any] | None:
    """The comparison dict of ``runtime`` × ``metric`` in an analysis, if any."""
    for c in analysis.get("comparisons", []):
        if c["runtime"] == runtime and c["metric"] == metric:
            return dict(c)
    return None
