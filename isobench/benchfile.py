"""The benchfile: one YAML document (or CLI flags) that says what to measure, and presets.

Example::

    workload: records-api
    workload_options: {storage: sqlite}
    runtimes: [native, docker-bridge, docker-host, vm]
    baseline: native
    trials: 3
    scenario: default          # a workload's named scenario, or a full scenario mapping
    duration: 20s              # overrides the scenario's duration
    warmup: 3s                 # load before measuring, every trial; discarded
    resources: {cpus: [0], memory_mb: 1024, loadgen_cpus: [1]}
    telemetry: {interval: 1.0}
    seed: 1
    replicas: 1                # instances of the workload per trial (validator: how many fit)
    time_budget: 10m           # optional: stop between rounds when another would not fit
    primary: rps               # optional: the headline metric (default: the workload's)
    margin: 5%                 # equivalence margin: "within ±5 %" (default 5%)
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from isobench.errors import ConfigError

DEFAULT_RUNTIMES = ("native", "docker-bridge", "docker-host", "vm")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: str | float | int) -> float:
    """Seconds from ``20s``, ``1.5m``, ``500ms`` or a number of seconds."""
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(value)
    if not match:
        raise ConfigError(f"bad duration '{value}'", fix="write it as 30s, 500ms, 2m or a number")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def parse_margin(value: str | float | int) -> float:
    """A fraction from ``5%``, ``2.5 %`` or ``0.05``; ValueError unless 0 < m < 0.5."""
    if isinstance(value, str):
        text = value.strip()
        number = float(text.rstrip("%").strip()) / 100 if text.endswith("%") else float(text)
    else:
        number = float(value)
    if not 0 < number < 0.5:
        raise ValueError(f"margin {value!r} must be between 0 and 50 % (write 5% or 0.05)")
    return number


class ResourcesModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cpus: list[int] = Field(default_factory=lambda: [0])
    memory_mb: int = Field(default=1024, ge=64)
    loadgen_cpus: list[int] = Field(default_factory=lambda: [1])


class TelemetryModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    interval: float = Field(default=1.0, gt=0.01, le=60)
    samplers: list[str] | None = None


class ArmModel(BaseModel):
    """One arm of an experiment: a runtime, optionally with a resource change (e.g. a CPU quota,
    to inject a known slowdown and check that the statistics find it)."""

    model_config = ConfigDict(extra="forbid")
    runtime: str
    cpu_quota: float | None = Field(default=None, gt=0.01, le=64)


class Benchfile(BaseModel):
    """The validated benchfile."""

    model_config = ConfigDict(extra="forbid")

    workload: str = "records-api"
    workload_options: dict[str, Any] = Field(default_factory=dict)
    runtimes: list[str] = Field(default_factory=lambda: list(DEFAULT_RUNTIMES))
    baseline: str | None = None
    trials: int = Field(default=3, ge=1, le=1000)
    scenario: str | dict[str, Any] = "default"
    duration: str | float | None = None
    warmup: str | float = "3s"
    resources: ResourcesModel = Field(default_factory=ResourcesModel)
    telemetry: TelemetryModel = Field(default_factory=TelemetryModel)
    seed: int = 1
    aa: bool = False
    replicas: int = Field(default=1, ge=1, le=64)
    time_budget: str | float | None = None
    arms: dict[str, ArmModel] | None = None
    preset: str | None = None
    primary: str | None = None
    margin: str | float = "5%"

    @field_validator("primary")
    @classmethod
    def _known_metric(cls, value: str | None) -> str | None:
        from isobench.analysis.metrics import METRIC_NAMES

        if value is not None and value not in METRIC_NAMES:
            raise ValueError(f"unknown metric '{value}' (one of: {', '.join(METRIC_NAMES)})")
        return value

    @field_validator("margin")
    @classmethod
    def _margin(cls, value: str | float) -> str | float:
        parse_margin(value)
        return value

    @model_validator(mode="after")
    def _arms_replace_runtimes(self) -> Benchfile:
        if self.arms:
            self.runtimes = list(dict.fromkeys(a.runtime for a in self.arms.values()))
        return self

    @field_validator("runtimes")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one runtime is needed")
        if len(set(value)) != len(value):
            raise ValueError("a runtime is listed twice")
        return value

    @property
    def baseline_runtime(self) -> str:
        """The baseline arm's name."""
        if self.baseline:
            return self.baseline
        if self.arms:
            return next(iter(self.arms))
        return "native" if "native" in self.runtimes else self.runtimes[0]

    @property
    def duration_s(self) -> float | None:
        return None if self.duration is None else parse_duration(self.duration)

    @property
    def time_budget_s(self) -> float | None:
        return None if self.time_budget is None else parse_duration(self.time_budget)

    @property
    def margin_fraction(self) -> float:
        """The equivalence margin as a fraction (``5%`` → 0.05)."""
        return parse_margin(self.margin)

    @property
    def warmup_s(self) -> float:
        return parse_duration(self.warmup)


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "benchfile"
    return f"{where}: {err['msg']}"


def load_benchfile(path: Path | None, overrides: dict[str, Any] | None = None) -> Benchfile:
    """Read a YAML benchfile (or none), apply CLI overrides, validate; ConfigError if invalid."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text())
        except FileNotFoundError as exc:
            raise ConfigError(f"benchfile {path} not found", fix="check the path") from exc
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise ConfigError(
                f"benchfile {path} is not valid YAML{where}", fix="fix the YAML syntax there"
            ) from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"benchfile {path} must be a mapping", fix="see README, 'Benchfile'")
        data.update(loaded)
    for key, value in (overrides or {}).items():
        if value is not None:
            data[key] = value
    try:
        return Benchfile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            f"invalid benchfile: {_first_error(exc)}", fix="see README, 'Benchfile'"
        ) from exc
