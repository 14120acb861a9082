"""A translated k6 script run by the engine against a local asyncio server (127.0.0.1, ~2 s):
request counts, named checks (status, body, JSON, header, several conditions), sleep()."""

from __future__ import annotations

from isobench.load.api import run_load
from isobench.load.k6script import translate
from tests.load.servers import AsyncServer

SCRIPT = """
import http from 'k6/http';
import { check, group, sleep } from 'k6';

const BASE = __ENV.BASE_URL || 'http://<your_ip>:8008';

export const options = {
  vus: 2,
  iterations: 20,
  thresholds: { 'checks{check:home ok}': ['rate==1'], http_reqs: ['count==60'] },
};

export default function () {
  const res = http.get(`${BASE}/`);
  check(res, {
    'home ok': (r) => r.status === 200 && r.body.includes('ok'),
    'plain text': (r) => r.headers['Content-Type'] === 'text/plain',
  });
  group('api', function () {
    const [data, gone] = http.batch([`${BASE}/json`, `${BASE}/missing`]);
    check(data, { 'json ok': (r) => r.json('data.ok') != null });
    check(gone, { 'gone is 200': (r) => r.status === 200, 'gone is 4xx': (r) => r.status >= 400 });
  });
  sleep(0.05);
}
"""


def test_a_translated_script_runs_on_the_engine(async_server: AsyncServer) -> None:
    scenario = translate(SCRIPT)
    result = run_load(async_server.url, scenario)
    s = result.summary
    assert result.metric("iterations", "count") == 20
    assert result.metric("http_reqs", "count") == 60  # 3 requests per iteration, none dropped
    assert async_server.hits == 60
    checks = {c["name"]: (c["passes"], c["fails"]) for c in s["root_group"]["checks"]}
    assert checks == {"home ok": (20, 0), "plain text": (20, 0), "json ok": (20, 0),
                      "gone is 200": (0, 20), "gone is 4xx": (20, 0)}
    assert not result.thresholds_failed
    # sleep(0.05) ends every iteration (45: the event loop's timers have 1 ms granularity)
    assert result.metric("iteration_duration", "min") >= 45.0
    # the /missing 404 is a failed request, as in k6
    assert s["metrics"]["http_req_failed"]["values"]["passes"] == 20


def test_the_articles_script_matches_the_native_seed_scenario() -> None:
    """`k6 run --vus 10 --duration 30s script.js` translates to the seed-003 scenario's load."""
    from pathlib import Path

    from isobench.load.k6script import Overrides, translate_file
    from isobench.workloads.records_api.workload import RecordsApiWorkload

    script = Path(__file__).resolve().parents[2] / "examples" / "seed-003" / "script.js"
    ours = translate_file(script, overrides=Overrides(vus=10, duration="30s"))
    native = RecordsApiWorkload({}).seed_scenario()
    assert (ours["executor"], ours["vus"], ours["duration"]) == (
        native["executor"], native["vus"], native["duration"])
    assert ours["requests"][0]["sleep"] == native["think_time"] == 1
    assert ours["requests"][0]["path"] == "/records"  # the article's URL has no ?limit


def test_the_engine_schema_additions() -> None:
    """Named checks need a condition; a request's sleep takes k6 durations; a named check of
    one condition compiles to that plain condition (no overhead over an unnamed one)."""
    import pytest

    from isobench.errors import ConfigError
    from isobench.load.engine import Plan
    from isobench.load.scenario import ScenarioSet

    base = {"executor": "shared-iterations", "vus": 1, "iterations": 1}
    with pytest.raises(ConfigError, match="has no condition"):
        ScenarioSet.parse({**base, "requests": [{"path": "/", "checks": [{"name": "x"}]}]})
    sset = ScenarioSet.parse({**base, "requests": [
        {"path": "/", "sleep": "250ms", "checks": [{"name": "ok", "status": [200]},
                                                   {"name": "two", "status": 200,
                                                    "body_contains": "ok"}]}]})
    assert sset.scenarios["default"].requests[0].sleep == (0.25, 0.25)  # type: ignore[index]
    plan = Plan(sset, "http://127.0.0.1:1")
    compiled = plan.requests_for(0, plan.new_store(0.0))[0]
    assert [(s.name, kind) for s, kind, _ in compiled.checks] == [("ok", "status"),
                                                                  ("two", "all")]
    assert compiled.sleep == (0.25, 0.25) and compiled.needs_body
