"""Three-way verdicts (slower/faster, equivalent, inconclusive), Holm, and the sentences that say
them — one set of pure functions for the terminal, the HTML report and the run summary.

A comparison dict (see :func:`isobench.analysis.stats.analyze`) is decided by :func:`decide`:

* ``slower``/``faster`` (worse/better in the metric's direction): the 95 % CI excludes 1 and, for
  a secondary metric, its Holm-adjusted p < α;
* ``equivalent``: the 90 % CI lies inside ``[1 − m, 1 + m]`` (two one-sided tests at α = 0.05;
  a secondary also needs its Holm-adjusted TOST p < α);
* ``inconclusive`` otherwise; ``emulated`` and ``too_few`` make no claim.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

from isobench.analysis.estimators import rounds_needed

MINUS = "\u2212"
EMULATED_VERDICT = "emulated \u2014 no verdict"
KINDS = ("slower", "faster", "equivalent", "inconclusive", "emulated", "too_few")

_PHRASES: dict[str, tuple[str, str, str]] = {
    "p50_ms": ("median latency", "higher", "lower"),
    "p95_ms": ("p95 latency", "higher", "lower"),
    "p99_ms": ("p99 latency", "higher", "lower"),
    "startup_s": ("startup time", "longer", "shorter"),
    "cpu_ms_per_req": ("CPU time per request", "higher", "lower"),
    "mem_peak_mib": ("peak memory", "higher", "lower"),
    "net_bytes_per_req": ("network bytes per request", "higher", "lower"),
    "block_lag_p50_ms": ("median block lag", "higher", "lower"),
    "block_lag_p95_ms": ("p95 block lag", "higher", "lower"),
    "cpu_percent": ("CPU use", "higher", "lower"),
    "idle_cpu_percent": ("idle CPU use", "higher", "lower"),
}
"""metric → (noun, word for a ratio above 1, word below 1) for the sentences."""


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


def pct(x: float) -> str:
    """``-3.14`` → ``−3.1``, ``2`` → ``+2.0`` (typographic minus)."""
    return f"{x:+.1f}".replace("-", MINUS)


def interval(lo_pct: float, hi_pct: float) -> str:
    """``[−9.7 %, +4.9 %]``."""
    return f"[{pct(lo_pct)} %, {pct(hi_pct)} %]"


def level(c: Mapping[str, Any], which: str = "ci") -> str:
    """``95 %`` (or ``99.5 %`` in a ``--precision`` run) for a comparison's ``ci``; the
    equivalence interval ``ci90`` is ``1 − 2α`` (``90 %``)."""
    alpha = float(c.get("alpha", 0.05))
    value = (1 - (2 * alpha if which == "ci90" else alpha)) * 100
    return f"{value:g} %"


def change_text(c: Mapping[str, Any]) -> str:
    """``−7.0 % [−9.7 %, +4.9 %]``: the estimate with its real, asymmetric 95 % CI."""
    lo, hi = c["ci_pct"]
    return f"{pct(c['change_pct'])} % {interval(lo, hi)}"


def decide(c: Mapping[str, Any], *, margin: float, alpha: float) -> str:
    """The verdict kind of one comparison (module docstring); needs ``p_adjusted`` and
    ``p_tost_adjusted`` set for secondaries."""
    if c.get("emulated"):
        return "emulated"
    if c.get("ratio") is None or c.get("ci") is None:
        return "too_few"
    lo, hi = c["ci"]
    primary = bool(c.get("primary"))
    if (lo > 1.0 or hi < 1.0) and (primary or (c.get("p_adjusted") or 1.0) < alpha):
        worse = (c["ratio"] < 1.0) == (c["better"] == "higher")
        return "slower" if worse else "faster"
    lo90, hi90 = c["ci90"]
    inside = lo90 >= 1.0 - margin and hi90 <= 1.0 + margin
    if inside and (primary or (c.get("p_tost_adjusted") or 1.0) < alpha):
        return "equivalent"
    return "inconclusive"


def assign_verdicts(comparisons: Sequence[MutableMapping[str, Any]], *, alpha: float,
                    margin: float) -> int:
    """Decide every comparison in place; return the size of the secondary (Holm) family.

    A primary comparison is tested alone (``p_adjusted = p``); the secondaries that make a claim
    (not emulated, estimable) form one Holm family for the difference tests and one for the
    equivalence (TOST) tests. Sets ``p_adjusted``, ``p_tost_adjusted``, ``verdict_kind``,
    ``significant`` (slower/faster; None without a claim), ``direction``
    (``worse``/``better``/``none``) and ``verdict`` (the sentence).
    """
    family = [c for c in comparisons
              if not c.get("emulated") and not c.get("primary") and c.get("p") is not None]
    for c, p_adj, t_adj in zip(family, holm([c["p"] for c in family]),
                               holm([c["p_tost"] for c in family]), strict=True):
        c["p_adjusted"], c["p_tost_adjusted"] = p_adj, t_adj
    for c in comparisons:
        if c.get("primary") and c.get("p") is not None:
            c["p_adjusted"], c["p_tost_adjusted"] = c["p"], c["p_tost"]
        c["family_size"] = 1 if c.get("primary") else len(family)
        kind = decide(c, margin=margin, alpha=alpha)
        c["verdict_kind"] = kind
        c["significant"] = None if kind in ("emulated", "too_few") else kind in ("slower",
                                                                                   "faster")
        c["direction"] = {"slower": "worse", "faster": "better"}.get(kind, "none")
        c["margin_pct"] = margin * 100
        c["rounds_needed"] = _rounds(c, kind, alpha / max(c["family_size"], 1), margin)
        c["verdict"] = sentence(c)
    return len(family)


def _rounds(c: Mapping[str, Any], kind: str, alpha: float, margin: float) -> int | None:
    """0 when decided; for an inconclusive comparison the estimate of
    :func:`isobench.analysis.estimators.rounds_needed` at the comparison's own α (a secondary:
    α / family size, Holm's strictest step, so the estimate errs on the side of more rounds)."""
    if kind in ("slower", "faster", "equivalent"):
        return 0
    if kind != "inconclusive" or not c.get("ratio") or c["ratio"] <= 0:
        return None
    n = c.get("n_pairs") or min(c.get("n") or [0])
    return rounds_needed(math.log(c["ratio"]), c.get("spread"), int(n), margin,
                         paired=c.get("estimator") == "paired", alpha=alpha)


def _num(x: float, digits: int) -> str:
    return f"{x:.{digits}f}"


def _span(a: float, b: float) -> str:
    """``41–49`` for magnitudes a ≤ b (one decimal below 10, so the ends stay distinct)."""
    digits = 0 if b >= 10 and _num(a, 0) != _num(b, 0) else 1
    if _num(a, digits) == _num(b, digits):
        digits = 2
    return f"{_num(a, digits)}\u2013{_num(b, digits)}"


def _difference(c: Mapping[str, Any]) -> str:
    rt, base, metric = c["runtime"], c["baseline"], c["metric"]
    lo, hi = c["ci"]
    if lo > 2.0:  # more than doubled: a factor reads better than hundreds of %
        span = f"{lo:.1f}\u2013{hi:.1f}\u00d7"
        if metric == "rps":
            return f"{rt} serves {span} the requests per second of {base}"
        noun = _PHRASES.get(metric, (c["label"], "", ""))[0]
        return f"{rt}'s {noun} is {span} {base}'s"
    mags = sorted((abs(lo - 1.0) * 100, abs(hi - 1.0) * 100))
    span = _span(*mags)
    up = c["ratio"] > 1.0
    if metric == "rps":
        return f"{rt} serves {span} % {'more' if up else 'fewer'} requests per second than {base}"
    noun, more, less = _PHRASES.get(metric, (c["label"], "higher", "lower"))
    return f"{rt}'s {noun} is {span} % {more if up else less} than {base}'s"


def _margin(c: Mapping[str, Any]) -> str:
    m = float(c.get("margin_pct", 5.0))
    return f"{m:g}"


def sentence(c: Mapping[str, Any]) -> str:
    """The one plain sentence that says a comparison's verdict, with its numbers.

    ``docker-bridge serves 41–49 % fewer requests per second than native`` ·
    ``docker-host is within ±5 % of native on req/s (90 % CI [−2.0 %, +1.1 %])`` ·
    ``vm: emulated — no verdict`` · ``gvisor: inconclusive on req/s (−3.0 % [−9.0 %, +2.0 %]);
    about 6 more rounds would decide``.
    """
    rt, label = c["runtime"], c["label"]
    kind = c.get("verdict_kind")
    if kind == "emulated" or c.get("emulated"):
        return f"{rt}: {EMULATED_VERDICT}"
    if kind == "too_few" or c.get("ratio") is None:
        return f"{rt}: too few trials to compare {label}"
    if kind in ("slower", "faster"):
        return _difference(c)
    if kind == "equivalent":
        lo, hi = ((x - 1.0) * 100 for x in c["ci90"])
        return (f"{rt} is within \u00b1{_margin(c)} % of {c['baseline']} on {label} "
                f"({level(c, 'ci90')} CI {interval(lo, hi)})")
    text = f"{rt}: inconclusive on {label} ({change_text(c)})"
    lo, hi = c["ci"]
    if (lo > 1.0 or hi < 1.0) and not c.get("primary"):
        text += (f"; its CI excludes 0 %, but not after Holm over {c.get('family_size', '?')} "
                 "secondary comparisons")
    more = c.get("rounds_needed")
    if more is not None:
        text += f"; about {more} more round{'s' if more != 1 else ''} would decide"
    else:
        text += "; too noisy to say how many more rounds would decide"
    return text


def short_verdict(c: Mapping[str, Any]) -> str:
    """A table cell: ``req/s −45.0 % [−49.1 %, −41.2 %]``, ``req/s within ±5 %``,
    ``req/s inconclusive, ~6 more rounds``."""
    kind = c.get("verdict_kind")
    label = c["label"]
    if kind == "emulated":
        return EMULATED_VERDICT
    if kind == "too_few":
        return f"{label}: too few trials"
    if kind in ("slower", "faster"):
        return f"{label} {change_text(c)}"
    if kind == "equivalent":
        return f"{label} within \u00b1{_margin(c)} %"
    return f"{label} inconclusive {change_text(c)}{_more(c)}"


def _more(c: Mapping[str, Any]) -> str:
    more = c.get("rounds_needed")
    return "" if more is None else f", ~{more} more round{'s' if more != 1 else ''}"


def kind_text(c: Mapping[str, Any]) -> str:
    """The verdict without its numbers: ``worse``, ``equivalent within ±5 %``,
    ``inconclusive, ~4 more rounds``, ``emulated — no verdict``."""
    kind = c.get("verdict_kind")
    if kind == "emulated":
        return EMULATED_VERDICT
    if kind == "too_few":
        return "too few trials"
    if kind in ("slower", "faster"):
        return "worse" if kind == "slower" else "better"
    if kind == "equivalent":
        return f"equivalent within \u00b1{_margin(c)} %"
    lo, hi = c["ci"]
    holm_note = " after Holm" if (lo > 1.0 or hi < 1.0) and not c.get("primary") else ""
    return f"inconclusive{holm_note}{_more(c)}"


def primary_comparison(analysis: Mapping[str, Any], runtime: str) -> dict[str, Any] | None:
    """The primary-metric comparison of ``runtime`` in an analysis, if any."""
    for c in analysis.get("comparisons", []):
        if c["runtime"] == runtime and c.get("primary"):
            return dict(c)
    return None


def runtime_sentence(analysis: Mapping[str, Any], runtime: str) -> str | None:
    """The headline sentence of one runtime (its primary comparison); None for the baseline."""
    if runtime == analysis.get("baseline"):
        return None
    comp = primary_comparison(analysis, runtime)
    if comp is None:
        if runtime in analysis.get("emulated", []):
            return f"{runtime}: {EMULATED_VERDICT}"
        return f"{runtime}: no data to compare with {analysis.get('baseline')}"
    return sentence(comp)


def headline(analysis: Mapping[str, Any]) -> list[str]:
    """One sentence per non-baseline runtime, in the analysis's runtime order."""
    out = []
    for rt in analysis.get("runtimes", []):
        text = runtime_sentence(analysis, rt)
        if text is not None:
            out.append(text)
    return out
