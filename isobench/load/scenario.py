"""The benchfile's ``scenario`` section: pydantic schema, k6 names and meanings.

Either one scenario at the top level (``executor: constant-vus, vus: 32, duration: 20s, ...``) or
several under ``scenarios: {name: {...}}``; ``requests``/``think_time`` at the top level are the
defaults of every scenario. Keys are accepted in snake_case or in k6's camelCase
(``pre_allocated_vus`` / ``preAllocatedVUs``). :meth:`ScenarioSet.parse` raises
:class:`isobench.errors.ConfigError` with a one-line message on bad input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from isobench.config.durations import parse_duration
from isobench.errors import ConfigError
from isobench.load.thresholds import MetricKey, Threshold, parse_expression, parse_key

MAX_VUS = 20_000
"""Most VUs one scenario may ask for: each VU holds a connection and a file descriptor, and a
larger number only stalls the load generator (the user meant a rate, or several hosts)."""


def _think(value: Any) -> tuple[float, float]:
    if isinstance(value, list | tuple):
        if len(value) != 2:
            raise ValueError("think_time range must be [min, max]")
        lo, hi = parse_duration(value[0]), parse_duration(value[1])
        if hi < lo:
            raise ValueError("think_time range must be [min, max] with min <= max")
        return (lo, hi)
    d = parse_duration(value)
    return (d, d)


def _listed(value: Any) -> Any:
    """``checks: {...}`` is a list of one (the engine always reads a list)."""
    return [value] if isinstance(value, Mapping) else value


Duration = Annotated[float, BeforeValidator(parse_duration)]
ThinkTime = Annotated[tuple[float, float], BeforeValidator(_think)]
Executor = Literal[
    "constant-vus",
    "ramping-vus",
    "constant-arrival-rate",
    "ramping-arrival-rate",
    "per-vu-iterations",
    "shared-iterations",
]


def _alias(*names: str) -> Any:
    return Field(default=None, validation_alias=AliasChoices(*names))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Checks(_Model):
    """Checks on one response.

    Without ``name`` each condition is reported as its own pass/fail count (named after the
    request and the condition). With ``name`` (k6's ``check(res, {name: fn})``) the conditions
    form ONE check of that name, which passes when all of them hold. ``headers`` compares
    response headers for equality (names case-insensitive; repeated headers joined by ", ").
    """

    name: str | None = None
    status: int | list[int] | None = None
    body_contains: str | None = None
    json_field: str | None = None
    max_duration: Duration | None = None
    headers: dict[str, str] | None = None

    @model_validator(mode="after")
    def _some(self) -> Checks:
        if self.name is not None and all(
            getattr(self, k) is None
            for k in ("status", "body_contains", "json_field", "max_duration", "headers")
        ):
            raise ValueError(f"check {self.name!r} has no condition")
        return self

    def conditions(self) -> list[tuple[str, Any]]:
        """``(kind, argument)`` pairs ready for the VU: status (frozenset), body_contains
        (bytes), json_field (path), max_duration (ms), header (lower-case name, value)."""
        out: list[tuple[str, Any]] = []
        if self.status is not None:
            codes = self.status if isinstance(self.status, list) else [self.status]
            out.append(("status", frozenset(codes)))
        if self.body_contains is not None:
            out.append(("body_contains", self.body_contains.encode()))
        if self.json_field is not None:
            out.append(("json_field", self.json_field))
        if self.max_duration is not None:
            out.append(("max_duration", self.max_duration * 1000.0))
        for k, v in (self.headers or {}).items():
            out.append(("header", (k.lower().encode("latin-1"), v.encode("latin-1"))))
        return out


class Request(_Model):
    """One HTTP request of an iteration."""

    method: str = "GET"
    path: str
    name: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | dict[str, Any] | list[Any] | None = None
    checks: Annotated[list[Checks] | None, BeforeValidator(_listed)] = None
    tags: dict[str, str] = Field(default_factory=dict)
    # pause after the response, before the next request (k6's sleep()): seconds, or [min, max]
    # drawn uniformly each time (k6's sleep(min + Math.random() * (max - min)))
    sleep: ThinkTime = (0.0, 0.0)

    @model_validator(mode="after")
    def _check(self) -> Request:
        self.method = self.method.upper()
        if not self.path.startswith("/"):
            raise ValueError(f"path {self.path!r} must start with '/' (it is joined to the URL)")
        if any(c in self.path for c in " \r\n"):
            raise ValueError(f"path {self.path!r} must be URL-encoded (no spaces or newlines)")
        return self

    @property
    def label(self) -> str:
        return self.name or f"{self.method} {self.path}"


class Stage(_Model):
    """A ramp: reach ``target`` (VUs, or iterations per timeUnit) linearly over ``duration``."""

    duration: Duration
    target: float = Field(ge=0)


class Scenario(_Model):
    """One k6 scenario (executor plus its options)."""

    executor: Executor = "constant-vus"
    vus: int | None = Field(default=None, ge=0)
    duration: Duration | None = None
    iterations: int | None = Field(default=None, ge=0)
    stages: list[Stage] | None = None
    start_vus: int | None = _alias("start_vus", "startVUs")
    rate: float | None = Field(default=None, ge=0)
    start_rate: float | None = _alias("start_rate", "startRate")
    time_unit: Duration = Field(default=1.0, validation_alias=AliasChoices("time_unit", "timeUnit"))
    pre_allocated_vus: int | None = _alias("pre_allocated_vus", "preAllocatedVUs")
    max_vus: int | None = _alias("max_vus", "maxVUs")
    start_time: Duration = Field(default=0.0, validation_alias=AliasChoices("start_time",
                                                                             "startTime"))
    graceful_stop: Duration = Field(default=30.0, validation_alias=AliasChoices("graceful_stop",
                                                                                "gracefulStop"))
    graceful_ramp_down: Duration = Field(
        default=30.0, validation_alias=AliasChoices("graceful_ramp_down", "gracefulRampDown")
    )
    max_duration: Duration = Field(default=600.0, validation_alias=AliasChoices("max_duration",
                                                                                "maxDuration"))
    timeout: Duration = 60.0
    think_time: ThinkTime | None = None
    requests: list[Request] | None = None
    tags: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> Scenario:
        ex = self.executor
        need: dict[str, tuple[str, ...]] = {
            "constant-vus": ("vus", "duration"),
            "ramping-vus": ("stages",),
            "constant-arrival-rate": ("rate", "duration", "pre_allocated_vus"),
            "ramping-arrival-rate": ("stages", "pre_allocated_vus"),
            "per-vu-iterations": (),
            "shared-iterations": (),
        }
        missing = [k for k in need[ex] if getattr(self, k) is None]
        if missing:
            raise ValueError(f"executor {ex} needs {', '.join(missing)}")
        if ex in ("per-vu-iterations", "shared-iterations"):
            self.vus = 1 if self.vus is None else self.vus
            self.iterations = 1 if self.iterations is None else self.iterations
        if ex == "constant-vus" and not self.vus:
            raise ValueError("constant-vus needs vus >= 1")
        if ex.endswith("arrival-rate"):
            pre = self.pre_allocated_vus or 0
            self.max_vus = max(self.max_vus or 0, pre)
            if self.max_vus < 1:
                raise ValueError(f"{ex} needs preAllocatedVUs or maxVUs >= 1")
            if self.time_unit <= 0:
                raise ValueError("timeUnit must be > 0")
        if ex == "ramping-vus":
            self.start_vus = 1 if self.start_vus is None else self.start_vus
        if ex == "ramping-arrival-rate":
            self.start_rate = self.start_rate or 0.0
        peak = max([self.vus or 0, self.max_vus or 0, self.start_vus or 0,
                    *[int(s.target) for s in (self.stages or []) if ex == "ramping-vus"]])
        if peak > MAX_VUS:
            raise ValueError(f"{peak:,} VUs is more than one host's load generator can hold "
                             f"(at most {MAX_VUS:,})")
        return self

    def total_duration(self) -> float:
        """Planned length of the scenario from its startTime (without gracefulStop)."""
        if self.stages is not None and self.executor.startswith("ramping"):
            return sum(s.duration for s in self.stages)
        if self.duration is not None and self.executor in ("constant-vus",
                                                           "constant-arrival-rate"):
            return self.duration
        return self.max_duration


class ThresholdSpec(_Model):
    """A threshold in object form."""

    threshold: str
    abort_on_fail: bool = _alias("abort_on_fail", "abortOnFail")
    delay_abort_eval: Duration | None = _alias("delay_abort_eval", "delayAbortEval")


class ScenarioSet(_Model):
    """All scenarios of one run, plus thresholds and summary options."""

    scenarios: dict[str, Scenario]
    thresholds: dict[str, list[str | ThresholdSpec]] = Field(default_factory=dict)
    summary_trend_stats: list[str] = Field(
        default_factory=lambda: ["avg", "min", "med", "max", "p(90)", "p(95)", "p(99)"],
        validation_alias=AliasChoices("summary_trend_stats", "summaryTrendStats"),
    )

    @model_validator(mode="before")
    @classmethod
    def _lift(cls, data: Any) -> Any:
        """Move a top-level single scenario under ``scenarios.default``; spread defaults."""
        if not isinstance(data, Mapping):
            raise ValueError("the scenario section must be a mapping")
        data = dict(data)
        top = {k: data.pop(k) for k in list(data) if k not in {"scenarios", "thresholds",
                                                              "summary_trend_stats",
                                                              "summaryTrendStats"}}
        defaults = {k: top.pop(k) for k in ("requests", "think_time") if k in top}
        scenarios = data.get("scenarios")
        if scenarios is None:
            scenarios = {"default": top}
        elif top:
            raise ValueError(
                f"with 'scenarios', keys {sorted(top)} belong inside a scenario, not at the top"
            )
        if not isinstance(scenarios, Mapping) or not scenarios:
            raise ValueError("'scenarios' must be a non-empty mapping of name -> scenario")
        merged = {}
        for name, sc in scenarios.items():
            if not isinstance(sc, Mapping):
                raise ValueError(f"scenario {name!r} must be a mapping")
            merged[name] = {**defaults, **sc}
        data["scenarios"] = merged
        return data

    @model_validator(mode="after")
    def _check(self) -> ScenarioSet:
        for name, sc in self.scenarios.items():
            if not sc.requests:
                raise ValueError(f"scenario {name!r} has no requests")
            if sc.think_time is None:
                sc.think_time = (0.0, 0.0)
        self.parsed_thresholds()  # raises on bad expressions
        return self

    def parsed_thresholds(self) -> dict[MetricKey, list[Threshold]]:
        """Thresholds keyed by metric (with tag filter)."""
        out: dict[MetricKey, list[Threshold]] = {}
        for key, items in self.thresholds.items():
            mk = parse_key(key)
            lst = out.setdefault(mk, [])
            for item in items if isinstance(items, list) else [items]:
                if isinstance(item, str):
                    lst.append(parse_expression(mk.name, item))
                else:
                    lst.append(parse_expression(
                        mk.name, item.threshold, abort_on_fail=bool(item.abort_on_fail),
                        delay_abort_eval=item.delay_abort_eval or 0.0))
        return out

    @classmethod
    def parse(cls, mapping: Mapping[str, Any]) -> ScenarioSet:
        """Validate a scenario section; raises ConfigError with one clear line."""
        if isinstance(mapping, Mapping) and isinstance(mapping.get("thresholds"), Mapping):
            mapping = dict(mapping)
            mapping["thresholds"] = {
                k: (v if isinstance(v, list) else [v]) for k, v in mapping["thresholds"].items()
            }
        try:
            return cls.model_validate(mapping)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            msg = str(err["msg"]).removeprefix("Value error, ")
            where = f"scenario.{loc}: " if loc else "scenario: "
            extra = "" if len(exc.errors()) == 1 else f" (+{len(exc.errors()) - 1} more)"
            inp = err.get("input")
            got = ""
            if err["type"] not in ("value_error", "missing") and not isinstance(inp, dict | list):
                got = f" (got {inp!r})"
            raise ConfigError(
                f"{where}{msg}{got}{extra}",
                fix="see the scenario section of the benchfile docs (k6 executor names/options)",
            ) from None
        except ValueError as exc:  # raised outside pydantic's wrapping
            raise ConfigError(f"scenario: {exc}") from None
