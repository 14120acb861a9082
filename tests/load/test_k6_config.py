"""`isobench run --k6 ...` and a benchfile's `k6:`/`k6_env:` → the scenario a run drives."""

from __future__ import annotations

from pathlib import Path

import pytest

from isobench.cli import _run_overrides, build_parser
from isobench.config import scenarios
from isobench.config.benchfile import load_benchfile
from isobench.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "seed-003" / "script.js"
CORPUS = Path(__file__).parent / "k6_scripts"


def _bench(*argv: str):  # type: ignore[no-untyped-def]
    args = build_parser().parse_args(["run", *argv])
    return load_benchfile(None, _run_overrides(args))


def test_run_k6_with_k6s_flags_resolves_to_the_translated_script() -> None:
    bench = _bench("--k6", str(EXAMPLE), "--vus", "10", "--duration", "30s")
    assert bench.duration is None  # --duration went to the script, as k6's flag
    name, scenario = scenarios.resolve(None, bench.scenario)  # type: ignore[arg-type]
    assert name == "k6:script.js"
    assert scenario == {"executor": "constant-vus", "vus": 10, "duration": "30s",
                        "requests": [{"method": "GET", "path": "/records", "sleep": 1.0}]}
    # a resumed run re-reads the same benchfile from its manifest
    again = load_benchfile(None, bench.model_dump())
    assert again.scenario == bench.scenario


def test_stages_iterations_and_env_flags() -> None:
    bench = _bench("--k6", str(CORPUS / "env_defaults.js"), "--stage", "5s:3", "--stage",
                   "10s:0", "--k6-env", "LIMIT=9", "--vus", "2")
    _, sc = scenarios.resolve(None, bench.scenario)  # type: ignore[arg-type]
    assert sc["executor"] == "ramping-vus" and sc["startVUs"] == 2
    assert sc["stages"] == [{"duration": "5s", "target": 3}, {"duration": "10s", "target": 0}]
    assert sc["requests"][0]["path"] == "/records?limit=9"
    bench = _bench("--k6", str(CORPUS / "env_defaults.js"), "--iterations", "7")
    _, sc = scenarios.resolve(None, bench.scenario)  # type: ignore[arg-type]
    assert (sc["executor"], sc["iterations"], sc["vus"]) == ("shared-iterations", 7, 5)


def test_k6_flags_need_k6_and_k6_excludes_scenario() -> None:
    with pytest.raises(ConfigError, match="need --k6"):
        _bench("--vus", "3")
    with pytest.raises(ConfigError, match=r"k6 .* and scenario cannot both be set"):
        _bench("--k6", str(EXAMPLE), "--scenario", "default-x")
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        _bench("--k6", str(EXAMPLE), "--k6-env", "NOEQUALS")


def test_benchfile_k6_path_is_relative_to_the_benchfile(tmp_path: Path) -> None:
    (tmp_path / "load").mkdir()
    (tmp_path / "load" / "s.js").write_text(EXAMPLE.read_text())
    bf = tmp_path / "bench.yaml"
    bf.write_text("workload: records-api\nk6: load/s.js\nk6_env: {X: '1'}\n")
    bench = load_benchfile(bf)
    assert bench.scenario == {"k6": str(tmp_path / "load" / "s.js"), "k6_env": {"X": "1"}}
    bf.write_text("k6: {script: load/s.js, vus: 3, duration: 5s}\n")
    _, sc = scenarios.resolve(None, load_benchfile(bf).scenario)  # type: ignore[arg-type]
    assert (sc["vus"], sc["duration"]) == (3, "5s")
    bf.write_text("k6_env: {X: '1'}\n")
    with pytest.raises(ConfigError, match="k6_env needs k6"):
        load_benchfile(bf)


def test_a_refused_script_fails_at_resolve_with_one_line(tmp_path: Path) -> None:
    bench = _bench("--k6", str(CORPUS / "refused_vu.js"))
    with pytest.raises(ConfigError, match=r"^k6 script refused_vu.js line 4:38: "):
        scenarios.resolve(None, bench.scenario)  # type: ignore[arg-type]


def test_with_duration_keeps_ramps_and_scenarios_valid() -> None:
    from isobench.load.scenario import ScenarioSet

    ramp = {"executor": "ramping-vus", "startVUs": 1, "requests": [{"path": "/"}],
            "stages": [{"duration": "10s", "target": 4}, {"duration": "30s", "target": 4}]}
    out = scenarios.with_duration(ramp, 4)
    assert out["stages"] == [{"duration": "1s", "target": 4}, {"duration": "3s", "target": 4}]
    assert "duration" not in out
    multi = {"scenarios": {"a": {"executor": "constant-vus", "vus": 1, "duration": "30s",
                                 "requests": [{"path": "/"}]}, "b": ramp}}
    out = scenarios.with_duration(multi, 2)
    ScenarioSet.parse(out)  # no top-level duration beside `scenarios`
    assert out["scenarios"]["a"]["duration"] == "2s"
    assert sum(float(s["duration"][:-1]) for s in out["scenarios"]["b"]["stages"]) == 2
    assert scenarios.with_duration({"executor": "constant-vus", "vus": 1, "duration": "9s"},
                                   3)["duration"] == "3s"
