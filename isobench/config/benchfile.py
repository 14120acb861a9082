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
    client: local              # load from the host to 127.0.0.1, or `remote`: from a namespace
                               #   over a veth (Docker's DNAT path, not docker-proxy); per arm too
    primary: rps               # optional: the headline metric (default: the workload's)
    margin: 5%                 # equivalence margin: "within ±5 %" (default 5%)
    max_error_rate: 0.01       # a trial with more failed requests/checks is failed, not data
    allow_exposed: false       # true: an app listening beyond loopback is a warning, not a failure
    show_env: false            # true: environment values in manifest and reports (keys otherwise)
    k6: script.js              # instead of scenario: your k6 script (path relative to this file),
    k6_env: {BASE_URL: x}      #   or {script: ..., vus: 10, duration: 30s, stages: ["30s:10"]}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from isobench.config.durations import parse_duration
from isobench.errors import ConfigError

DEFAULT_RUNTIMES = ("native", "docker-bridge", "docker-host", "vm")
DEFAULT_MAX_TRIALS = 12
"""Most rounds a ``precision`` run adds (the stopping rule is simulated for up to 12)."""
DEFAULT_PRECISION_BUDGET_S = 600.0

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
    cpus: list[int] = Field(default_factory=lambda: [0], min_length=1)
    memory_mb: int = Field(default=1024, ge=64)
    loadgen_cpus: list[int] = Field(default_factory=lambda: [1], min_length=1)

    @model_validator(mode="after")
    def _apart(self) -> ResourcesModel:
        shared = sorted(set(self.cpus) & set(self.loadgen_cpus))
        if shared:
            raise ValueError(
                f"the workload and the load generator share CPU {shared}: the load generator "
                "would measure its own load (set loadgen_cpus / --loadgen-cpus to other CPUs)")
        return self


class TelemetryModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    interval: float = Field(default=1.0, gt=0.01, le=60)
    samplers: list[str] | None = None


class ArmModel(BaseModel):
    """One arm of an experiment: a runtime, optionally with a resource change (e.g. a CPU quota)
    or workload options merged over the run's ``workload_options`` (e.g. the burn workload's
    ``work_units``, to inject a slowdown of exactly known size; see ``isobench calibrate``).
    Arm options may change the scenario but never the rootfs: every arm runs the same bits."""

    model_config = ConfigDict(extra="forbid")
    runtime: str
    cpu_quota: float | None = Field(default=None, gt=0.01, le=64)
    workload_options: dict[str, Any] = Field(default_factory=dict)
    runtime_options: dict[str, Any] = Field(default_factory=dict)  # checked by the runtime
    client: Literal["local", "remote"] | None = None  # None: the run's ``client``


class K6Model(BaseModel):
    """``k6:`` as a mapping: the script plus k6's CLI flags that change the load."""

    model_config = ConfigDict(extra="forbid")
    script: str
    vus: int | None = Field(default=None, ge=0)
    duration: str | None = None
    iterations: int | None = Field(default=None, ge=0)
    stages: list[str] | None = None  # k6's --stage, e.g. "30s:10"


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
    client: Literal["local", "remote"] = "local"
    time_budget: str | float | None = None
    max_error_rate: float = Field(default=0.01, ge=0.0, le=1.0)
    allow_exposed: bool = False  # a workload listening beyond loopback: a warning, not a failure
    show_env: bool = False  # environment values in the manifest and reports (else keys only)
    arms: dict[str, ArmModel] | None = None
    preset: str | None = None
    primary: str | None = None
    margin: str | float = "5%"
    precision: str | float | None = None
    max_trials: int | None = Field(default=None, ge=2, le=1000)

    @field_validator("margin", "precision")
    @classmethod
    def _margin(cls, value: str | float | None) -> str | float | None:
        if value is not None:
            parse_margin(value)
        return value
    k6: str | K6Model | None = None
    k6_env: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _k6_is_the_scenario(self) -> Benchfile:
        """``k6`` becomes the scenario entry ``{"k6": ..., "k6_env": ...}`` (resolved by
        :func:`isobench.config.scenarios.resolve`); it cannot be combined with another scenario."""
        if self.k6 is None:
            if self.k6_env:
                raise ValueError("k6_env needs k6 (a k6 script)")
            return self
        spec = self.k6 if isinstance(self.k6, str) else self.k6.model_dump(exclude_none=True)
        entry = {"k6": spec, "k6_env": dict(self.k6_env)}
        if self.scenario not in ("default", entry):
            raise ValueError("k6 (a k6 script) and scenario cannot both be set")
        self.scenario = entry
        return self

    @model_validator(mode="after")
    def _arms_replace_runtimes(self) -> Benchfile:
        if self.arms:
            self.runtimes = list(dict.fromkeys(a.runtime for a in self.arms.values()))
        if self.baseline is not None:
            arms = list(self.arms) if self.arms else list(self.runtimes)
            if self.baseline not in arms:
                raise ValueError(f"baseline '{self.baseline}' is not among the runtimes "
                                 f"({', '.join(arms)}): add it, or pick one of them")
        return self

    @field_validator("runtimes")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one runtime is needed")
        if len(set(value)) != len(value):
            raise ValueError("a runtime is listed twice")
        return value

    @field_validator("duration")
    @classmethod
    def _positive_duration(cls, value: str | float | None) -> str | float | None:
        if value is None:
            return value
        try:
            seconds = parse_duration(value)
        except ConfigError as exc:
            raise ValueError(exc.message) from None
        if seconds <= 0:
            raise ValueError(f"must be more than 0 s (got {value!r}): a trial measures a load")
        return value

    def client_for(self, arm: str) -> str:
        """``local`` or ``remote``: the arm's own ``client``, else the run's."""
        spec = (self.arms or {}).get(arm)
        return spec.client if spec is not None and spec.client else self.client

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
        """The time budget; with ``precision`` and no budget given, 10 minutes."""
        if self.time_budget is not None:
            return parse_duration(self.time_budget)
        return DEFAULT_PRECISION_BUDGET_S if self.precision is not None else None

    @property
    def precision_fraction(self) -> float | None:
        """The target CI half-width of ``--precision`` as a fraction, or None."""
        return None if self.precision is None else parse_margin(self.precision)

    @property
    def analysis_alpha(self) -> float:
        """α of the run's verdicts: 0.05, or α/10 per look when the run stops on ``precision``
        (see ``isobench.analysis.sequential``: its intervals are then 99.5 %)."""
        if self.precision is None:
            return 0.05
        from isobench.analysis.sequential import LOOK_ALPHA

        return LOOK_ALPHA

    @property
    def planned_rounds(self) -> int:
        """Rounds in the plan: ``trials``, or up to ``max_trials`` (default 12, at least
        ``trials``) when the run stops on ``precision``."""
        if self.precision is None:
            return self.trials
        return max(self.trials, self.max_trials or DEFAULT_MAX_TRIALS)

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


def _anchor_k6(data: dict[str, Any], base: Path) -> None:
    """A relative ``k6`` script path is relative to the benchfile's directory."""
    k6 = data.get("k6")
    script = k6.get("script") if isinstance(k6, dict) else k6
    if isinstance(script, str) and not Path(script).is_absolute():
        full = str((base / script).resolve())
        data["k6"] = {**k6, "script": full} if isinstance(k6, dict) else full


def load_benchfile(path: Path | None, overrides: dict[str, Any] | None = None) -> Benchfile:
    """Read a YAML benchfile (or none), apply CLI overrides, validate; ConfigError if invalid."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_bytes().decode("utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"benchfile {path} not found", fix="check the path") from exc
        except IsADirectoryError as exc:
            raise ConfigError(f"benchfile {path} is a directory", fix="name a YAML file") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"benchfile {path} is not text (UTF-8 YAML)",
                              fix="name the YAML benchfile, not a binary file") from exc
        except RecursionError as exc:
            raise ConfigError(f"benchfile {path} is nested too deeply to be a benchfile",
                              fix="see README, 'Benchfile'") from exc
        except OSError as exc:
            raise ConfigError(f"cannot read benchfile {path}: {exc.strerror or exc}",
                              fix="check the path and its permissions") from exc
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise ConfigError(
                f"benchfile {path} is not valid YAML{where}", fix="fix the YAML syntax there"
            ) from exc
        if loaded is None:
            raise ConfigError(f"benchfile {path} is empty",
                              fix="write at least `workload:` and `runtimes:` (see README)")
        if not isinstance(loaded, dict):
            raise ConfigError(f"benchfile {path} must be a mapping", fix="see README, 'Benchfile'")
        _anchor_k6(loaded, path.parent)
        data.update(loaded)
    for key, value in (overrides or {}).items():
        if value is not None:
            data[key] = value
    try:
        return Benchfile.model_validate(data)
    except RecursionError as exc:
        raise ConfigError("benchfile is nested too deeply", fix="see README, 'Benchfile'") from exc
    except ValidationError as exc:
        raise ConfigError(
            f"invalid benchfile: {_first_error(exc)}", fix="see README, 'Benchfile'"
        ) from exc
