"""A runtime's ratio to the baseline with its 95 % and 90 % CIs, p-values, and the rounds a
decision would need.

Everything happens on the log scale, so a ratio's interval is asymmetric in % (−45 % can be
[−49 %, −41 %]), and is reported as it is.

* **Paired** (the default, :func:`paired_ratio_ci`): a round holds one trial of every arm, so the
  host's drift between rounds falls on both arms of a pair alike. Per round ``r_i = b_i / a_i``;
  the estimate is their geometric mean ``exp(mean(ln r))``. The 95 % (90 %) CI is the union of
  the Student-t interval ``mean ± t(n−1) · sd/√n`` on ``ln r`` and the percentile bootstrap over
  rounds of the mean of ``ln r``; the p-value is the larger of the two tests' (the union/max is
  valid when either method is, and the bootstrap alone undercovers with 3–5 rounds).
* **Unpaired** (fallback, :func:`ratio_ci`): ``median(b) / median(a)``, percentile bootstrap with
  both arms resampled independently, united with Welch's t interval on the log values (p = max).

The kernels take a leading batch axis (``(k, n)`` arrays) so ``benchmarks/stats_sim.py`` runs the
very code the tool runs on a thousand simulated runs at once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

N_RESAMPLES = 9999
_CHUNK = 64


@dataclass(frozen=True)
class LogBounds:
    """Batched results on the log scale; every field has shape ``(k,)``.

    ``spread`` is the per-round standard deviation that sets the CI width: the sd of the
    per-round log ratios (paired) or ``sqrt(sd_a² + sd_b²)`` of the log values (unpaired), so a
    standard error with ``N`` rounds is ``spread / √N`` in both cases.
    """

    est: np.ndarray
    lo95: np.ndarray
    hi95: np.ndarray
    lo90: np.ndarray
    hi90: np.ndarray
    p: np.ndarray
    p_tost: np.ndarray
    spread: np.ndarray


def _t_part(center: np.ndarray, se: np.ndarray, df: np.ndarray, margin: float,
            alpha: float = 0.05) -> tuple[np.ndarray, ...]:
    q95, q90 = sps.t.ppf(1 - alpha / 2, df), sps.t.ppf(1 - alpha, df)
    lo_m, hi_m = math.log1p(-margin), math.log1p(margin)
    with np.errstate(divide="ignore", invalid="ignore"):
        tstat = center / se
        p = np.nan_to_num(2 * sps.t.sf(np.abs(tstat), df), nan=1.0)
        p_lo = np.nan_to_num(sps.t.sf((center - lo_m) / se, df), nan=1.0)
        p_hi = np.nan_to_num(sps.t.cdf((center - hi_m) / se, df), nan=1.0)
    return (center - q95 * se, center + q95 * se, center - q90 * se, center + q90 * se,
            p, np.maximum(p_lo, p_hi))


def _boot_part(dist: np.ndarray, margin: float, alpha: float = 0.05) -> tuple[np.ndarray, ...]:
    """Percentile bounds, two-sided p (share beyond 0, doubled) and TOST p from ``(k, B)``."""
    b = dist.shape[1]
    qs = [alpha / 2, 1 - alpha / 2, alpha, 1 - alpha]
    lo95, hi95, lo90, hi90 = np.quantile(dist, qs, axis=1)
    below = (np.count_nonzero(dist <= 0, axis=1) + 1) / (b + 1)
    above = (np.count_nonzero(dist >= 0, axis=1) + 1) / (b + 1)
    p = np.minimum(1.0, 2 * np.minimum(below, above))
    p_lo = (np.count_nonzero(dist <= math.log1p(-margin), axis=1) + 1) / (b + 1)
    p_hi = (np.count_nonzero(dist >= math.log1p(margin), axis=1) + 1) / (b + 1)
    return lo95, hi95, lo90, hi90, p, np.maximum(p_lo, p_hi)


def _bounds(est: np.ndarray, parts: tuple[np.ndarray, ...], spread: np.ndarray) -> LogBounds:
    lo95, hi95, lo90, hi90, p, p_tost = parts
    return LogBounds(est, lo95, hi95, lo90, hi90, p, p_tost, spread)


def _union(est: np.ndarray, t: tuple[np.ndarray, ...], boot: tuple[np.ndarray, ...] | None,
           spread: np.ndarray) -> LogBounds:
    if boot is None:
        return _bounds(est, t, spread)
    return LogBounds(
        est,
        np.minimum(t[0], boot[0]), np.maximum(t[1], boot[1]),
        np.minimum(t[2], boot[2]), np.maximum(t[3], boot[3]),
        np.maximum(t[4], boot[4]), np.maximum(t[5], boot[5]),
        spread,
    )


def paired_log(logr: np.ndarray, rng: np.random.Generator, *, margin: float,
               n_resamples: int = N_RESAMPLES, bootstrap: bool = True,
               t_interval: bool = True, alpha: float = 0.05) -> LogBounds:
    """Paired estimator on per-round log ratios ``logr`` of shape ``(k, n)``, ``n ≥ 2``.

    ``bootstrap``/``t_interval`` switch one half of the union off (the simulation compares them);
    ``alpha`` sets the levels: the "95 %" CI is ``1 − α``, the "90 %" one ``1 − 2α``.
    """
    k, n = logr.shape
    mean = logr.mean(axis=1)
    sd = logr.std(axis=1, ddof=1)
    t = (_t_part(mean, sd / math.sqrt(n), np.full(k, n - 1.0), margin, alpha) if t_interval
         else None)
    boot = None
    if bootstrap:
        idx = rng.integers(0, n, size=(n_resamples, n))
        counts = (idx[:, :, None] == np.arange(n)).sum(axis=1) / n  # (B, n) weights
        boot = _boot_part(logr @ counts.T, margin, alpha)
    if t is None:
        assert boot is not None
        return _bounds(mean, boot, sd)
    return _union(mean, t, boot, sd)


def unpaired_log(la: np.ndarray, lb: np.ndarray, rng: np.random.Generator, *, margin: float,
                 n_resamples: int = N_RESAMPLES, welch: bool = True,
                 alpha: float = 0.05) -> LogBounds:
    """Unpaired estimator on log values ``la (k, n_a)``, ``lb (k, n_b)``, both ``n ≥ 2``.

    Point estimate: log ratio of medians. CI: percentile bootstrap (arms resampled
    independently) united with Welch's t interval on the log values when ``welch``.
    """
    k, na = la.shape
    nb = lb.shape[1]
    est = np.median(lb, axis=1) - np.median(la, axis=1)
    ia = rng.integers(0, na, size=(n_resamples, na))
    ib = rng.integers(0, nb, size=(n_resamples, nb))
    dist = np.empty((k, n_resamples))
    for s in range(0, k, _CHUNK):
        dist[s:s + _CHUNK] = (np.median(lb[s:s + _CHUNK][:, ib], axis=2)
                              - np.median(la[s:s + _CHUNK][:, ia], axis=2))
    boot = _boot_part(dist, margin, alpha)
    va, vb = la.var(axis=1, ddof=1), lb.var(axis=1, ddof=1)
    spread = np.sqrt(va + vb)
    if not welch:
        return _bounds(est, boot, spread)
    se = np.sqrt(va / na + vb / nb)
    with np.errstate(divide="ignore", invalid="ignore"):
        df = se**4 / ((va / na) ** 2 / (na - 1) + (vb / nb) ** 2 / (nb - 1))
    df = np.where(np.isfinite(df) & (df > 0), df, na + nb - 2.0)
    t = _t_part(lb.mean(axis=1) - la.mean(axis=1), se, df, margin, alpha)
    return _union(est, t, boot, spread)


@dataclass(frozen=True)
class RatioEstimate:
    """Ratio B/A with its CIs and p-values (one comparison).

    Attributes:
        ratio: geometric mean of per-round ratios (paired) or ratio of medians (unpaired).
        low, high: 95 % CI; ``low90``/``high90``: 90 % CI (the equivalence test's).
        p: two-sided p-value of ratio = 1. ``p_tost``: the larger of the two one-sided p-values
            of "ratio ≤ 1 − m" and "ratio ≥ 1 + m" (small: equivalent within ±m).
        estimator: ``paired`` or ``unpaired``; ``n``: rounds paired (paired) or the smaller arm.
        spread: per-round sd on the log scale (see :class:`LogBounds`); None when the values
            are not all positive (no log scale).
    """

    ratio: float
    low: float
    high: float
    p: float
    low90: float = math.nan
    high90: float = math.nan
    p_tost: float = 1.0
    estimator: str = "unpaired"
    n: int = 0
    spread: float | None = None


def _estimate(b: LogBounds, estimator: str, n: int) -> RatioEstimate:
    def f(x: np.ndarray) -> float:
        return float(np.exp(x[0]))

    spread = float(b.spread[0])
    return RatioEstimate(f(b.est), f(b.lo95), f(b.hi95), float(b.p[0]), f(b.lo90), f(b.hi90),
                         float(b.p_tost[0]), estimator, n,
                         spread if math.isfinite(spread) else None)


def paired_ratio_ci(a: Sequence[float], b: Sequence[float], seed: int = 0, *,
                    margin: float = 0.05) -> RatioEstimate | None:
    """Paired estimate from ``a[i]``, ``b[i]`` measured in the same round ``i``.

    None with fewer than 2 pairs or a value ≤ 0 (use :func:`ratio_ci` then).
    """
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if xa.size < 2 or xa.size != xb.size or np.any(xa <= 0) or np.any(xb <= 0):
        return None
    logr = (np.log(xb) - np.log(xa))[None, :]
    bounds = paired_log(logr, np.random.default_rng(seed), margin=margin)
    return _estimate(bounds, "paired", int(xa.size))


def ratio_ci(a: Sequence[float], b: Sequence[float], seed: int = 0, *,
             margin: float = 0.05) -> RatioEstimate | None:
    """Unpaired ``median(b) / median(a)``, arms resampled independently.

    Returns None when an arm has fewer than 2 values or a median is ≤ 0. With values ≤ 0 (no
    log scale) the bootstrap of the ratio of medians is used alone, its p-value maxed with
    Welch's on the raw values.
    """
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if xa.size < 2 or xb.size < 2 or np.median(xa) <= 0 or np.median(xb) <= 0:
        return None
    rng = np.random.default_rng(seed)
    n = int(min(xa.size, xb.size))
    if np.all(xa > 0) and np.all(xb > 0):
        bounds = unpaired_log(np.log(xa)[None, :], np.log(xb)[None, :], rng, margin=margin)
        return _estimate(bounds, "unpaired", n)
    ia = rng.integers(0, xa.size, size=(N_RESAMPLES, xa.size))
    ib = rng.integers(0, xb.size, size=(N_RESAMPLES, xb.size))
    with np.errstate(divide="ignore", invalid="ignore"):
        dist = np.log(np.median(xb[ib], axis=1) / np.median(xa[ia], axis=1))
    # a zero median gives a ratio of 0 or ∞ (kept, as ±1e12), both zero a ratio of 1
    dist = np.nan_to_num(dist, nan=0.0, posinf=27.6, neginf=-27.6)[None, :]
    lo95, hi95, lo90, hi90, p, p_tost = (float(x[0]) for x in _boot_part(dist, margin))
    p_welch = float(np.nan_to_num(sps.ttest_ind(xa, xb, equal_var=False).pvalue, nan=1.0))
    ratio = float(np.median(xb) / np.median(xa))
    return RatioEstimate(ratio, math.exp(lo95), math.exp(hi95), max(p, p_welch), math.exp(lo90),
                         math.exp(hi90), p_tost, "unpaired", n, None)


# ----------------------------------------------------------------------------- planning rounds
MAX_ROUNDS = 1000


def _df(rounds: int, paired: bool) -> float:
    return rounds - 1.0 if paired else 2.0 * rounds - 2.0


def rounds_needed(log_ratio: float, spread: float | None, n: int, margin: float, *,
                  paired: bool = True, alpha: float = 0.05) -> int | None:
    """Estimated extra rounds (beyond ``n``) until a comparison decides, or None if unknown.

    With the observed per-round spread ``s`` and log ratio ``d`` held fixed, ``N`` rounds give a
    standard error ``s/√N`` and the decision needs the smallest ``N > n`` with either

    * ``t(df, 1 − α/2) · s/√N < |d|``  (the 95 % CI would exclude 1: slower/faster), or
    * ``t(df, 1 − α) · s/√N ≤ min(d − ln(1−m), ln(1+m) − d)``  (the 90 % CI would fit in the
      margin: equivalent),

    whichever is nearer; ``df = N − 1`` paired, ``2N − 2`` unpaired; α = 0.05 unless given.
    Returns ``N − n``; None when ``s`` is unknown or no ``N ≤ 1000`` would do. A plug-in
    estimate: the next rounds move ``d`` and ``s`` too, so it is "about", never a promise.
    """
    if spread is None or not math.isfinite(spread) or not math.isfinite(log_ratio):
        return None
    room = min(log_ratio - math.log1p(-margin), math.log1p(margin) - log_ratio)
    if spread == 0:
        return 1
    ns = np.arange(max(n + 1, 2), MAX_ROUNDS + 1)
    df = ns - 1.0 if paired else 2.0 * ns - 2.0
    se = spread / np.sqrt(ns)
    ok = ((sps.t.ppf(1 - alpha / 2, df) * se < abs(log_ratio))
          | (sps.t.ppf(1 - alpha, df) * se <= room))
    hits = np.flatnonzero(ok)
    return None if hits.size == 0 else int(ns[hits[0]] - n)


def min_detectable(spread: float | None, rounds: int, *, paired: bool = True) -> float:
    """Smallest relative effect found with 80 % power at α = 0.05 with ``rounds`` rounds:
    ``(t(df, 0.975) + t(df, 0.80)) · spread / √rounds`` (inf when unknown)."""
    if spread is None or rounds < 2 or not math.isfinite(spread):
        return math.inf
    df = _df(rounds, paired)
    return float((sps.t.ppf(0.975, df) + sps.t.ppf(0.80, df)) * spread / math.sqrt(rounds))


def rounds_for_effect(spread: float | None, effect: float, *, paired: bool = True) -> int | None:
    """Rounds in all for :func:`min_detectable` to reach ``effect``; None if over 1000."""
    if spread is None or not math.isfinite(spread):
        return None
    ns = np.arange(2, MAX_ROUNDS + 1)
    df = ns - 1.0 if paired else 2.0 * ns - 2.0
    mde = (sps.t.ppf(0.975, df) + sps.t.ppf(0.80, df)) * spread / np.sqrt(ns)
    hits = np.flatnonzero(mde <= effect)
    return None if hits.size == 0 else int(ns[hits[0]])


def min_detectable_effect(cv_a: float | None, n_a: int, cv_b: float | None, n_b: int) -> float:
    """Smallest relative effect detectable with 80 % power at α = 0.05 (normal approximation,
    unpaired arms with coefficients of variation ``cv_a``, ``cv_b``)."""
    if cv_a is None or cv_b is None or n_a < 2 or n_b < 2:
        return math.inf
    return 2.8 * math.sqrt(cv_a**2 / n_a + cv_b**2 / n_b)
