"""k6 threshold expressions: parsing and evaluation.

Syntax (as k6): a metric key, optionally with tags, mapped to expressions such as ``p(95)<500``,
``p(99.9)<1500``, ``avg<200``, ``min>0``, ``max<=2000``, ``med<100``, ``rate<0.01``,
``count>100`` or ``value<10``; each expression may be an object
``{threshold: "p(95)<500", abortOnFail: true, delayAbortEval: "10s"}``.
Time values are in milliseconds, like k6.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field

#: k6's built-in metrics, with their type.
METRIC_TYPES: dict[str, str] = {
    "http_req_blocked": "trend",
    "http_req_connecting": "trend",
    "http_req_tls_handshaking": "trend",
    "http_req_sending": "trend",
    "http_req_waiting": "trend",
    "http_req_receiving": "trend",
    "http_req_duration": "trend",
    "iteration_duration": "trend",
    "http_req_failed": "rate",
    "checks": "rate",
    "http_reqs": "counter",
    "iterations": "counter",
    "data_received": "counter",
    "data_sent": "counter",
    "dropped_iterations": "counter",
    "vus": "gauge",
    "vus_max": "gauge",
}

AGGREGATES_BY_TYPE: dict[str, tuple[str, ...]] = {
    "trend": ("avg", "min", "max", "med", "count", "p(N)"),
    "rate": ("rate",),
    "counter": ("count", "rate"),
    "gauge": ("value", "min", "max"),
}

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "===": operator.eq,
    "!=": operator.ne,
}

_EXPR = re.compile(
    r"^\s*(?P<agg>avg|min|max|med|count|rate|value|p\(\s*(?P<p>\d+(?:\.\d+)?)\s*\))"
    r"\s*(?P<op><=|>=|===|==|!=|<|>)\s*(?P<val>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*$"
)
_KEY = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:\{(?P<tags>[^}]*)\})?$")


@dataclass(frozen=True)
class MetricKey:
    """A metric name with an optional tag filter, e.g. ``http_req_duration{name:records}``."""

    name: str
    tags: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        if not self.tags:
            return self.name
        return self.name + "{" + ",".join(f"{k}:{v}" for k, v in self.tags) + "}"


@dataclass(frozen=True)
class Threshold:
    """One threshold expression on one metric."""

    source: str
    aggregate: str
    op: str
    value: float
    abort_on_fail: bool = False
    delay_abort_eval: float = 0.0

    def passes(self, observed: float) -> bool:
        return _OPS[self.op](observed, self.value)


@dataclass
class ThresholdOutcome:
    """The verdict of one threshold at the end of the run (or at abort)."""

    metric: str
    threshold: Threshold
    observed: float
    ok: bool
    extra: dict[str, float] = field(default_factory=dict)


def parse_key(key: str) -> MetricKey:
    """Parse ``name`` or ``name{tag:value,...}``; raises ValueError on bad input."""
    m = _KEY.match(key.strip())
    if not m:
        raise ValueError(f"bad metric key {key!r} (expected name or name{{tag:value}})")
    name = m.group("name")
    if name not in METRIC_TYPES:
        raise ValueError(f"unknown metric {name!r} (known: {', '.join(sorted(METRIC_TYPES))})")
    tags: list[tuple[str, str]] = []
    raw = m.group("tags")
    if raw is not None:
        for part in raw.split(","):
            if not part.strip():
                continue
            if ":" not in part:
                raise ValueError(f"bad tag {part!r} in {key!r} (expected tag:value)")
            k, v = part.split(":", 1)
            tags.append((k.strip(), v.strip().strip("'\"")))
    return MetricKey(name, tuple(sorted(tags)))


def parse_expression(
    metric: str, source: str, *, abort_on_fail: bool = False, delay_abort_eval: float = 0.0
) -> Threshold:
    """Parse one expression for a metric; raises ValueError with a one-line reason."""
    m = _EXPR.match(source)
    if not m:
        raise ValueError(f"bad threshold {source!r} (expected e.g. 'p(95)<500', 'rate<0.01')")
    agg = m.group("agg").replace(" ", "")
    kind = METRIC_TYPES[metric]
    allowed = AGGREGATES_BY_TYPE[kind]
    generic = "p(N)" if agg.startswith("p(") else agg
    if generic not in allowed:
        raise ValueError(
            f"threshold {source!r}: {metric} is a {kind}, which has {', '.join(allowed)}"
        )
    if agg.startswith("p("):
        p = float(m.group("p"))
        if not 0 <= p <= 100:
            raise ValueError(f"threshold {source!r}: percentile must be within 0..100")
    return Threshold(
        source=source.strip(),
        aggregate=agg,
        op=m.group("op"),
        value=float(m.group("val")),
        abort_on_fail=abort_on_fail,
        delay_abort_eval=delay_abort_eval,
    )


def trend_stats_needed(thresholds: dict[str, list[Threshold]]) -> list[str]:
    """Percentile statistics the thresholds mention (to show them in the summary)."""
    out: list[str] = []
    for items in thresholds.values():
        for t in items:
            if t.aggregate.startswith("p(") and t.aggregate not in out:
                out.append(t.aggregate)
    return out
