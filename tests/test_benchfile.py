from pathlib import Path

import pytest

from isobench.config.benchfile import load_benchfile, parse_duration
from isobench.errors import ConfigError
from isobench.plugins import load


def test_defaults_cover_four_runtimes_with_native_baseline() -> None:
    bench = load_benchfile(None)
    assert bench.runtimes == ["native", "docker-bridge", "docker-host", "vm"]
    assert bench.baseline_runtime == "native"
    assert bench.resources.cpus == [0] and bench.resources.memory_mb == 1024


def test_yaml_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "b.yaml"
    path.write_text(
        "workload: records-api\nruntimes: [docker-host, vm]\ntrials: 4\nduration: 10s\n"
    )
    bench = load_benchfile(path, {"trials": 6, "duration": None})
    assert bench.trials == 6
    assert bench.duration_s == 10.0
    assert bench.baseline_runtime == "docker-host"


def test_bad_yaml_is_one_line_naming_the_place(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("runtimes: [native\ntrials: 3\n")
    with pytest.raises(ConfigError) as err:
        load_benchfile(path)
    assert "not valid YAML at line" in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_key_and_bad_value_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="trails"):
        load_benchfile(None, {"trails": 3})
    with pytest.raises(ConfigError, match="trials"):
        load_benchfile(None, {"trials": 0})
    with pytest.raises(ConfigError, match="twice"):
        load_benchfile(None, {"runtimes": ["vm", "vm"]})


def test_unknown_runtime_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as err:
        load("runtime", "dockr")
    assert "unknown runtime 'dockr'" in str(err.value)
    assert "docker-bridge" in str(err.value)


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30.0), ("500ms", 0.5), ("2m", 120.0), (7, 7.0), ("1.5", 1.5)]
)
def test_parse_duration(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_parse_duration_rejects_garbage() -> None:
    with pytest.raises(ConfigError):
        parse_duration("soon")


def test_arms_define_runtimes_and_baseline() -> None:
    bench = load_benchfile(
        None,
        {"arms": {"full": {"runtime": "native"}, "q80": {"runtime": "native", "cpu_quota": 0.8}}},
    )
    assert bench.runtimes == ["native"]
    assert bench.baseline_runtime == "full"
    from isobench.run.orchestrator import arms_for, resources_for
    from isobench.runtimes.base import Resources

    assert arms_for(bench) == {"full": "native", "q80": "native"}
    assert resources_for(bench, "q80", Resources()).cpu_quota == 0.8
    assert resources_for(bench, "full", Resources()).cpu_quota is None


def test_quick_and_preset_survive_absent_flags() -> None:
    from isobench.cli import _run_overrides, build_parser

    args = build_parser().parse_args(["run", "--quick", "--preset", "seed-000"])
    bench = load_benchfile(None, _run_overrides(args))
    assert bench.workload == "validator"
    assert bench.duration_s == 15.0 and bench.warmup_s == 1.0 and bench.trials == 2
    args = build_parser().parse_args(["run", "--quick", "--duration", "7s", "--trials", "2"])
    bench = load_benchfile(None, _run_overrides(args))
    assert bench.duration_s == 7.0 and bench.trials == 2 and bench.workload == "records-api"


def test_replicas_flag_reaches_the_benchfile() -> None:
    from isobench.cli import _run_overrides, build_parser

    args = build_parser().parse_args(["run", "--workload", "validator", "--replicas", "3"])
    assert load_benchfile(None, _run_overrides(args)).replicas == 3
