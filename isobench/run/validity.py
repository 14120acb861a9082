"""Whether a trial's figures may be used at all: "never a wrong number".

A trial is ``ok`` only when all of these hold; otherwise it is ``failed`` with a one-line reason
and its figures never reach the statistics (``stats.usable`` keeps ``status == "ok"`` only):

(a) every instance was still alive at the end of the load (the runtime's ``exited`` said None
    after readiness, throughout the load and after it);
(b) the error rate is at most ``Limits.max_error_rate`` (default 1 %), where the error rate is
    the larger of the failed-request rate (``http_req_failed``: no HTTP response or a status
    >= 400) and the failed-check rate (``checks``); the larger, because a request whose check
    failed may or may not also have failed, so the union is at least the larger of the two;
(c) it served enough: at least ``Limits.min_ok_per_s`` successful requests per second of the
    measured duration, and never fewer than ``Limits.min_ok_requests`` (defaults 1/s and 5:
    a 10 s trial needs 10 successful requests, a 2 s trial 5). A workload that is legitimately
    slower than that declares its own rule in ``Workload.validate``;
(d) no k6 threshold of the scenario failed.

(b) and (c) are the HTTP rule (:func:`http_failure`), the default of ``Workload.validate``;
(a) and (d) apply to every workload (:func:`trial_failure`). Everything here is pure.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_MAX_ERROR_RATE = 0.01


@dataclass(frozen=True)
class Limits:
    """What a trial must achieve to count.

    Attributes:
        max_error_rate: largest allowed fraction of failed requests / checks (0..1).
        min_ok_per_s: successful requests per second of measured duration, at least.
        min_ok_requests: successful requests per trial, at least (the absolute floor).
        allow_exposed: an instance listening beyond loopback is recorded in the trial's facts
            instead of failing the trial (``--allow-exposed``; see :mod:`isobench.run.exposure`).
        allowed_addresses: host addresses isobench itself assigned (a veth end for a remote
            client) that an instance may listen on without being "exposed".
    """

    max_error_rate: float = DEFAULT_MAX_ERROR_RATE
    min_ok_per_s: float = 1.0
    min_ok_requests: int = 5
    allow_exposed: bool = False
    allowed_addresses: frozenset[str] = frozenset()

    def min_ok(self, duration_s: float) -> int:
        """The fewest successful requests a trial of ``duration_s`` seconds must serve."""
        return max(self.min_ok_requests, math.ceil(self.min_ok_per_s * max(duration_s, 0.0)))


Rule = Callable[[Mapping[str, Any], float, Limits], str | None]
"""A workload's own rule: (summary, measured seconds, limits) → None or a one-line reason."""


def _values(summary: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    """``values`` of an untagged metric in the k6 summary (handleSummary or flat shape)."""
    entry = (summary.get("metrics") or {}).get(name)
    if not isinstance(entry, Mapping):
        return None
    values = entry.get("values", entry)
    return dict(values) if isinstance(values, Mapping) else None


def _count(values: Mapping[str, Any] | None, key: str) -> float:
    if not values:
        return 0.0
    value = values.get(key)
    return float(value) if isinstance(value, int | float) else 0.0


def _pct(fraction: float) -> str:
    """``99.5 %``; never rounds a failure to ``0 %`` or a partial failure to ``100 %``."""
    pct = fraction * 100.0
    if 0.0 < pct < 0.1:
        return "< 0.1 %"
    if 99.9 < pct < 100.0:
        return "> 99.9 %"
    return f"{pct:.1f} %"


def _secs(seconds: float) -> str:
    return f"{seconds:g} s" if seconds == int(seconds) else f"{seconds:.1f} s"


def request_counts(summary: Mapping[str, Any]) -> tuple[int, int]:
    """(requests, failed requests) from ``http_reqs`` and ``http_req_failed``.

    k6 counts a failed request as a *pass* of ``http_req_failed``; without that metric every
    request counts as successful only if the summary also has no ``http_reqs``.
    """
    reqs = int(_count(_values(summary, "http_reqs"), "count"))
    failed_values = _values(summary, "http_req_failed")
    failed = int(_count(failed_values, "passes"))
    if failed_values and reqs == 0:
        reqs = failed + int(_count(failed_values, "fails"))
    return reqs, min(failed, reqs)


def http_failure(
    summary: Mapping[str, Any], duration_s: float, limits: Limits | None = None
) -> str | None:
    """The default (HTTP) rule: (b) error rate and (c) requests served; None when both hold.

    Args:
        summary: the load engine's k6-style summary of the measured load.
        duration_s: the measured load's planned duration in seconds.
        limits: the limits (defaults when None).

    Returns:
        ``"served 0 requests in 10 s"``, ``"99.5 % of requests failed (995 of 1000)"``,
        ``"20.0 % of checks failed (...)"``, ``"served 7 successful requests in 10 s (at least
        10 needed)"`` (several joined with ``"; "``), or None.
    """
    limits = limits or Limits()
    reqs, failed = request_counts(summary)
    if reqs == 0:
        return f"served 0 requests in {_secs(duration_s)}"
    reasons: list[str] = []
    if failed / reqs > limits.max_error_rate:
        reasons.append(f"{_pct(failed / reqs)} of requests failed ({failed:,} of {reqs:,}; "
                       f"at most {_pct(limits.max_error_rate)} allowed)")
    checks = _values(summary, "checks")
    passes, fails = _count(checks, "passes"), _count(checks, "fails")
    if fails and fails / (passes + fails) > limits.max_error_rate:
        reasons.append(f"{_pct(fails / (passes + fails))} of checks failed "
                       f"({fails:,.0f} of {passes + fails:,.0f})")
    ok = reqs - failed
    needed = limits.min_ok(duration_s)
    if ok < needed and not (ok == 0 and reasons):  # "100 % failed" already says it
        reasons.append(f"served {ok:,} successful requests in {_secs(duration_s)} "
                       f"(at least {needed:,} needed)")
    return "; ".join(reasons) or None


def threshold_failures(summary: Mapping[str, Any]) -> list[str]:
    """``threshold http_req_failed rate<0.01 failed (value 0.995)`` for each failed threshold."""
    out: list[str] = []
    for metric, outcomes in (summary.get("thresholds") or {}).items():
        if not isinstance(outcomes, Mapping):
            continue
        for source, outcome in outcomes.items():
            if isinstance(outcome, Mapping) and outcome.get("ok") is False:
                value = outcome.get("value")
                shown = f" (value {value:g})" if isinstance(value, int | float) else ""
                out.append(f"threshold {metric} {source} failed{shown}")
    return out


def trial_failure(
    summary: Mapping[str, Any] | None,
    exited_reason: str | None,
    duration_s: float,
    limits: Limits | None = None,
    *,
    rule: Rule | None = http_failure,
) -> str | None:
    """Why a finished trial must not count, or None when it is ok.

    Args:
        summary: the measured load's summary (None or ``{}`` when no load ran: idle scenarios).
        exited_reason: why an instance is gone (from ``Runtime.exited``, with when), or None
            when every instance was alive after the load.
        duration_s: the measured load's duration in seconds.
        limits: the limits (defaults when None).
        rule: the workload's rule (``Workload.validate``); None skips it (no load ran).

    Returns:
        One line: every reason found, the death first, joined with ``"; "``; or None.
    """
    limits = limits or Limits()
    reasons: list[str] = []
    if exited_reason:
        reasons.append(exited_reason)
    if summary:
        if rule is not None:
            verdict = rule(summary, duration_s, limits)
            if verdict:
                reasons.append(verdict)
        reasons.extend(threshold_failures(summary))
    elif rule is not None:
        reasons.append("the load produced no summary")
    return "; ".join(reasons) or None


def death_reason(detail: str, at_s: float | None, measuring: bool) -> str:
    """One line saying an instance died, and when.

    Args:
        detail: the runtime's ``exited`` text (``container ... exited with code 137 ...``).
        at_s: seconds into the measured load when the death was seen (None: seen only after it).
        measuring: False when it was seen before the measured load (readiness or warm-up).
    """
    if not measuring:
        when = "before the measured load"
    elif at_s is None:
        when = "by the end of the load"
    else:
        when = f"at {at_s:.1f} s of the measured load"
    return f"workload exited {when}: {detail}"
