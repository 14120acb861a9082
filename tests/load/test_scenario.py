"""Scenario schema: k6 names, defaults, and one clear ConfigError line on bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from isobench.errors import ConfigError
from isobench.load.api import run_load
from isobench.load.executors import arrival_times
from isobench.load.scenario import ScenarioSet, parse_duration
from isobench.load.thresholds import parse_expression, parse_key

REQ = [{"path": "/"}]


def test_durations() -> None:
    assert parse_duration("20s") == 20
    assert parse_duration("1m30s") == 90
    assert parse_duration("500ms") == 0.5
    assert parse_duration(2) == 2.0
    assert parse_duration("1h") == 3600
    with pytest.raises(ValueError):
        parse_duration("10 parsecs")


def test_single_and_multiple_scenarios_with_camel_case() -> None:
    one = ScenarioSet.parse({"executor": "constant-vus", "vus": 4, "duration": "2s",
                             "think_time": [0, "1s"], "requests": REQ})
    assert list(one.scenarios) == ["default"]
    assert one.scenarios["default"].think_time == (0.0, 1.0)
    many = ScenarioSet.parse({
        "requests": REQ, "think_time": "10ms",
        "scenarios": {
            "browse": {"executor": "ramping-arrival-rate", "startRate": 5, "timeUnit": "1s",
                       "preAllocatedVUs": 2, "maxVUs": 10,
                       "stages": [{"duration": "1s", "target": 10}], "tags": {"kind": "r"}},
            "write": {"executor": "shared-iterations", "vus": 2, "iterations": 10,
                      "requests": [{"method": "post", "path": "/w", "body": {"a": 1}}]},
        }})
    b, w = many.scenarios["browse"], many.scenarios["write"]
    assert (b.start_rate, b.pre_allocated_vus, b.max_vus, b.tags) == (5, 2, 10, {"kind": "r"})
    assert b.think_time == (0.01, 0.01) and b.requests is not None and b.requests[0].path == "/"
    assert w.requests is not None and w.requests[0].method == "POST"


BAD = [
    ({"executor": "constant-vus", "vus": "many", "duration": "1s", "requests": REQ},
     "scenario.scenarios.default.vus"),
    ({"executor": "constant-walk", "requests": REQ}, "executor"),
    ({"executor": "constant-arrival-rate", "rate": 10, "duration": "1s", "requests": REQ},
     "needs pre_allocated_vus"),
    ({"vus": 1, "duration": "5 fortnights", "requests": REQ}, "bad duration"),
    ({"vus": 1, "duration": "1s", "requests": REQ, "thresholds": {"http_req_duration": "rate<1"}},
     "is a trend"),
    ({"vus": 1, "duration": "1s", "requests": REQ, "thresholds": {"http_req_duraton": "p(95)<1"}},
     "unknown metric 'http_req_duraton'"),
    ({"vus": 1, "duration": "1s", "requests": REQ, "thresholds": {"checks": "rate>>1"}},
     "bad threshold"),
    ({"vus": 1, "duration": "1s", "vu": 3, "requests": REQ}, "vu: Extra inputs"),
    ({"vus": 1, "duration": "1s"}, "has no requests"),
    ({"vus": 1, "duration": "1s", "requests": [{"path": "nope"}]}, "must start with '/'"),
    ({"vus": 1, "duration": "1s", "think_time": [2, 1], "requests": REQ}, "min <= max"),
]


@pytest.mark.parametrize(("section", "expect"), BAD)
def test_bad_scenarios_give_one_clear_line(section: dict, expect: str) -> None:
    with pytest.raises(ConfigError) as info:
        ScenarioSet.parse(section)
    text = str(info.value)
    assert expect in text
    assert "\n" not in text


def test_run_load_rejects_bad_yaml_before_starting() -> None:
    section = yaml.safe_load("executor: constant-vus\nvus: -3\nduration: 1s\nrequests: [{path: /}]")
    with pytest.raises(ConfigError, match=r"vus: Input should be greater than or equal to 0"):
        run_load("http://127.0.0.1:9", section)


def test_cli_bad_scenario_exit_104(tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text("executor: ramping-vus\nrequests: [{path: /}]\n")
    proc = subprocess.run([sys.executable, "-m", "isobench.load", "--url", "http://127.0.0.1:9",
                           "--scenario", str(f)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 104
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "executor ramping-vus needs stages" in lines[0]


def test_threshold_parsing() -> None:
    k = parse_key("http_req_duration{name:records, scenario:browse}")
    assert k.tags == (("name", "records"), ("scenario", "browse"))
    t = parse_expression("http_req_duration", "p(99.9) < 1500")
    assert (t.aggregate, t.op, t.value) == ("p(99.9)", "<", 1500.0)
    assert t.passes(1499) and not t.passes(1500)
    assert parse_expression("http_reqs", "count>=10").passes(10)
    with pytest.raises(ValueError):
        parse_expression("vus", "p(95)<3")


def test_arrival_schedule_constant_and_ramp() -> None:
    const = list(arrival_times([(100.0, 100.0, 2.0)]))
    assert len(const) == 200 and const[1] == pytest.approx(0.01)
    ramp = list(arrival_times([(0.0, 100.0, 2.0), (100.0, 100.0, 1.0)]))
    assert len(ramp) == 200  # 100 in the ramp (area of the triangle) + 100
    assert sum(1 for t in ramp if t < 1.0) == 25  # a quarter of the triangle's area
    split = [list(arrival_times([(100.0, 100.0, 2.0)], i, 3)) for i in range(3)]
    assert sorted(t for part in split for t in part) == const
