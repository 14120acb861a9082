"""Coordinated omission, checks, thresholds (exit codes, abortOnFail), outputs, workers."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import yaml

from isobench.load.api import LoadResult, run_load
from tests.load.servers import AsyncServer

STALL = [{"path": "/stall"}]


def _with_stall(srv: AsyncServer, scenario: dict, at: float = 1.5) -> LoadResult:
    timer = threading.Timer(at, srv.arm_stall)
    timer.start()
    try:
        return run_load(srv.url, scenario)
    finally:
        timer.cancel()


def test_open_model_p99_shows_a_stall_the_closed_model_hides(async_server: AsyncServer) -> None:
    """A 1 s stop-the-world stall: arrival-rate latency (from the intended start) has it at p99;
    the closed model's p99 does not, because its VUs simply stop sending while stalled."""
    opened = _with_stall(async_server, {
        "executor": "constant-arrival-rate", "rate": 200, "duration": "4s",
        "preAllocatedVUs": 50, "maxVUs": 400, "requests": STALL})
    p99_open = opened.metric("http_req_duration", "p(99)")
    assert opened.metric("http_reqs", "count") == 800
    assert p99_open > 500, p99_open  # ~200 requests caught in the stall, up to 1 s each

    closed = _with_stall(async_server, {"executor": "constant-vus", "vus": 4, "duration": "4s",
                                        "requests": STALL})
    assert closed.metric("http_req_duration", "max") > 900  # the stall happened...
    assert closed.metric("http_req_duration", "p(99)") < 100  # ...and the closed p99 hides it
    assert closed.metric("http_reqs", "count") > 2000


def test_checks_are_rates_per_check(nginx_url: str) -> None:
    r = run_load(nginx_url, {"executor": "shared-iterations", "vus": 2, "iterations": 50,
                             "requests": [
                                 {"path": "/index.html", "name": "page",
                                  "checks": {"status": 200, "body_contains": "isobench",
                                             "max_duration": "1s"}},
                                 {"path": "/missing", "name": "gone",
                                  "checks": {"status": [200, 204], "body_contains": "isobench"}},
                                 {"path": "/json", "name": "api",
                                  "checks": {"json_field": "data.ok"}},
                                 {"path": "/json", "name": "api2",
                                  "checks": {"json_field": "data.nope"}}]})
    by_name = {c["name"]: (c["passes"], c["fails"]) for c in r.summary["root_group"]["checks"]}
    assert by_name["page: status is 200"] == (50, 0)
    assert by_name["page: body contains 'isobench'"] == (50, 0)
    assert by_name["page: duration <= 1000ms"] == (50, 0)
    assert by_name["gone: status is 200|204"] == (0, 50)
    assert by_name["gone: body contains 'isobench'"] == (0, 50)
    assert by_name["api: json has data.ok"] == (50, 0)
    assert by_name["api2: json has data.nope"] == (0, 50)
    checks = r.summary["metrics"]["checks"]["values"]
    assert (checks["passes"], checks["fails"]) == (200, 150)
    assert checks["rate"] == 200 / 350
    assert r.summary["metrics"]["http_req_failed"]["values"]["rate"] == 0.25


def _cli(tmp_path: Path, url: str, scenario: dict, *extra: str) -> subprocess.CompletedProcess:
    f = tmp_path / "scenario.yaml"
    f.write_text(yaml.safe_dump(scenario))
    return subprocess.run([sys.executable, "-m", "isobench.load", "--url", url, "--scenario",
                           str(f), *extra], capture_output=True, text=True, timeout=120)


def test_threshold_exit_codes_and_summary_layout(nginx_url: str, tmp_path: Path) -> None:
    base = {"executor": "per-vu-iterations", "vus": 2, "iterations": 100,
            "requests": [{"path": "/index.html"}, {"path": "/missing", "name": "gone"}]}
    ok = _cli(tmp_path, nginx_url, {**base, "thresholds": {
        "http_req_duration": ["p(99.99)<5000", "max<10000"], "http_reqs": ["count==400"],
        "http_req_failed": ["rate<=0.5"], "http_req_failed{name:gone}": ["rate==1"]}},
        "--json", str(tmp_path / "r.json"), "--csv", str(tmp_path / "ts.csv"))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    text = ok.stdout
    assert text.index("█ THRESHOLDS") < text.index("█ TOTAL RESULTS") < text.index("HTTP")
    assert "✓ 'p(99.99)<5000' p(99.99)=" in text and "✓ 'count==400' count=400" in text
    assert "{ name:gone }" in text
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["summary"]["metrics"]["http_req_duration"]["values"]["p(99.99)"] > 0
    ts = pd.read_csv(tmp_path / "ts.csv")
    assert list(ts.columns)[:4] == ["t", "reqs", "errors", "rate"] and ts["reqs"].sum() == 400

    bad = _cli(tmp_path, nginx_url, {**base, "thresholds": {"http_req_failed": ["rate<0.01"],
                                                            "http_req_duration": ["avg<60000"]}})
    assert bad.returncode == 99
    assert "✗ 'rate<0.01' rate=50.00%" in bad.stdout and "✓ 'avg<60000'" in bad.stdout


def test_abort_on_fail_stops_early(async_server: AsyncServer) -> None:
    t0 = time.monotonic()
    r = run_load(async_server.url, {
        "executor": "constant-vus", "vus": 2, "duration": "30s",
        "requests": [{"path": "/missing"}],
        "thresholds": {"http_req_failed": [{"threshold": "rate<0.01", "abortOnFail": True,
                                            "delayAbortEval": "1s"}],
                       "http_req_duration": ["p(95)<10000"]}})
    took = time.monotonic() - t0
    assert r.aborted and r.thresholds_failed
    assert 1.0 <= r.summary["state"]["testRunDurationMs"] / 1000 < 3.0
    assert took < 8
    assert r.summary["thresholds"]["http_req_duration"]["p(95)<10000"]["ok"] is True
    assert "aborted" in r.render_summary()


def test_progress_and_worker_processes_merge(nginx_url: str) -> None:
    seen: list[dict] = []
    r = run_load(nginx_url, {"executor": "constant-arrival-rate", "rate": 300, "duration": "3s",
                             "preAllocatedVUs": 10, "maxVUs": 300,
                             "requests": [{"path": "/index.html", "checks": {"status": 200}}]},
                 cpus=(0, 1), on_progress=seen.append)
    done = r.metric("http_reqs", "count")
    dropped = r.summary["metrics"].get("dropped_iterations", {}).get("values", {}).get("count", 0)
    assert done + dropped == 900  # the two workers' halves of one schedule, merged
    assert done >= 600 and r.metric("checks", "rate") == 1.0
    assert r.metric("vus_max", "value") >= 2
    assert len(seen) >= 2 and seen[-1]["reqs"] > 0 and {"elapsed", "rate", "vus"} <= set(seen[0])
    # the merged latency distribution travels with the summary: every request, once
    wire = r.summary["histograms"]["http_req_duration"]
    assert wire["count"] == done and wire["rel_error"] == 0.01
