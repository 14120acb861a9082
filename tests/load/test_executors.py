"""Each executor's schedule, against real local servers."""

from __future__ import annotations

import numpy as np

from isobench.load.api import run_load
from tests.load.servers import AsyncServer


def _count(r, name: str) -> float:
    return r.summary["metrics"][name]["values"]["count"]


def test_constant_arrival_rate_is_held_within_2_percent(nginx_url: str) -> None:
    r = run_load(nginx_url, {"executor": "constant-arrival-rate", "rate": 500, "timeUnit": "1s",
                             "duration": "6s", "preAllocatedVUs": 20, "maxVUs": 100,
                             "requests": [{"path": "/index.html"}]})
    assert _count(r, "http_reqs") == 3000  # 500/s x 6 s, every iteration started
    assert "dropped_iterations" not in r.summary["metrics"] or _count(r, "dropped_iterations") == 0
    rates = [row["rate"] for row in r.timeseries[1:5]]  # whole seconds inside the run
    assert all(abs(x - 500) <= 10 for x in rates), rates
    assert abs(r.summary["metrics"]["http_reqs"]["values"]["rate"] - 500) / 500 < 0.02


def test_ramping_arrival_rate_follows_stages(nginx_url: str) -> None:
    r = run_load(nginx_url, {"executor": "ramping-arrival-rate", "startRate": 0, "timeUnit": "1s",
                             "preAllocatedVUs": 10, "maxVUs": 50,
                             "stages": [{"duration": "2s", "target": 400},
                                        {"duration": "2s", "target": 400}],
                             "requests": [{"path": "/index.html"}]})
    assert _count(r, "iterations") == 400 + 800
    ts = r.timeseries
    assert 50 <= ts[0]["reqs"] <= 150  # ~100 in the first second of the ramp
    assert abs(ts[2]["rate"] - 400) <= 8, [(x["t"], x["reqs"]) for x in ts]


def test_dropped_iterations_when_vus_run_out(async_server: AsyncServer) -> None:
    r = run_load(async_server.url, {"executor": "constant-arrival-rate", "rate": 100,
                                    "duration": "3s", "preAllocatedVUs": 2, "maxVUs": 2,
                                    "requests": [{"path": "/slow"}]})  # 50 ms each
    done, dropped = _count(r, "iterations"), _count(r, "dropped_iterations")
    assert done + dropped == 300
    assert 90 <= done <= 125 and dropped >= 170, (done, dropped)  # 2 VUs x ~20/s
    assert r.summary["metrics"]["vus_max"]["values"]["value"] == 2


def test_ramping_vus_ramp_as_staged(async_server: AsyncServer) -> None:
    r = run_load(async_server.url, {"executor": "ramping-vus", "startVUs": 0,
                                    "stages": [{"duration": "2s", "target": 6},
                                               {"duration": "2s", "target": 6},
                                               {"duration": "2s", "target": 0}],
                                    "gracefulRampDown": "1s",
                                    "requests": [{"path": "/slow"}]})
    vus = [row["vus"] for row in r.timeseries]
    assert 2 <= vus[0] <= 4, vus  # halfway up the first ramp: ~3
    assert vus[2] == 6 and vus[3] == 6, vus
    assert 2 <= vus[4] <= 4, vus  # halfway down
    assert r.summary["metrics"]["vus"]["values"]["max"] == 6
    # 6 VUs x 20 it/s over ~4 VU-weighted seconds (ramps count half)
    assert 350 <= _count(r, "iterations") <= 520


def test_constant_vus_and_several_requests_per_iteration(nginx_url: str) -> None:
    r = run_load(nginx_url, {"executor": "constant-vus", "vus": 8, "duration": "2s",
                             "requests": [{"path": "/index.html", "name": "page"},
                                          {"path": "/json", "name": "api"}]})
    m = r.summary["metrics"]
    assert m["vus_max"]["values"]["value"] == 8
    its, reqs = _count(r, "iterations"), _count(r, "http_reqs")
    assert its > 500 and abs(reqs - 2 * its) <= 8  # at most one unfinished pair per VU
    assert m["http_req_failed"]["values"]["rate"] == 0


def test_per_vu_and_shared_iterations_with_think_time(async_server: AsyncServer) -> None:
    r = run_load(async_server.url, {"scenarios": {
        "each": {"executor": "per-vu-iterations", "vus": 3, "iterations": 5,
                 "think_time": "20ms", "tags": {"team": "a"}},
        "shared": {"executor": "shared-iterations", "vus": 4, "iterations": 37,
                   "think_time": [0, "10ms"], "startTime": "200ms"},
    }, "requests": [{"path": "/"}, {"path": "/json"}],
        "thresholds": {"iterations{scenario:each}": ["count==15"],
                       "iterations{scenario:shared}": ["count==37"],
                       "http_reqs{team:a}": ["count==30"],
                       "iteration_duration{scenario:each}": ["min>=38"]}})  # 2 x 20 ms think
    assert _count(r, "iterations") == 15 + 37
    assert _count(r, "http_reqs") == 2 * (15 + 37)
    assert not r.thresholds_failed, r.summary["thresholds"]
    assert np.isclose(r.summary["metrics"]["iterations{scenario:each}"]["values"]["count"], 15)
