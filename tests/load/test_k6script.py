"""k6 scripts → engine scenarios: the corpus in tests/load/k6_scripts/, k6's option precedence,
and the one-line refusals (construct + line:column)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from isobench.errors import ConfigError
from isobench.load.k6script import K6ScriptError, Overrides, parse_stage, translate, translate_file
from isobench.load.scenario import ScenarioSet

CORPUS = Path(__file__).parent / "k6_scripts"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "seed-003" / "script.js"


def tr(name: str, **kw: Any) -> dict[str, Any]:
    out = translate_file(CORPUS / name, **kw)
    ScenarioSet.parse(out)  # always a valid engine scenario
    return out


def refusal(name_or_source: str, **kw: Any) -> str:
    with pytest.raises(K6ScriptError) as info:
        if name_or_source.endswith(".js"):
            translate_file(CORPUS / name_or_source, **kw)
        else:
            translate(name_or_source, filename="t.js", **kw)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


# -- the corpus ----
def test_the_articles_script_with_its_command_line() -> None:
    assert EXAMPLE.read_text() == (CORPUS / "article.js").read_text()
    assert tr("article.js", overrides=Overrides(vus=10, duration="30s")) == {
        "executor": "constant-vus", "vus": 10, "duration": "30s",
        "requests": [{"method": "GET", "path": "/records", "sleep": 1.0}]}


def test_without_options_k6_runs_one_iteration_of_one_vu() -> None:
    assert tr("article.js") == {"executor": "per-vu-iterations", "vus": 1, "iterations": 1,
                                "requests": [{"method": "GET", "path": "/records", "sleep": 1.0}]}


def test_options_tags_thresholds_and_a_check() -> None:
    assert tr("options_basic.js") == {
        "executor": "constant-vus", "vus": 4, "duration": "90s", "tags": {"team": "api"},
        "requests": [{"method": "GET", "path": "/index.html", "sleep": 0.5,
                      "checks": [{"name": "status is 200", "status": [200]}]}],
        "thresholds": {"http_req_duration": ["p(95)<500", "avg<200"],
                       "http_req_failed": ["rate<0.01"]}}


def test_stages_become_ramping_vus_with_vus_as_start_and_numbers_as_milliseconds() -> None:
    assert tr("stages.js") == {
        "executor": "ramping-vus", "startVUs": 1,
        "stages": [{"duration": "10s", "target": 20}, {"duration": "60s", "target": 20},
                   {"duration": "5s", "target": 0}],
        "requests": [{"method": "GET", "path": "/", "sleep": 1.0,
                      "headers": {"User-Agent": "MyK6UserAgentString/1.0"}}]}


def test_two_scenarios_with_their_executors_exec_functions_and_env() -> None:
    out = tr("scenarios.js")
    assert out == {"scenarios": {
        "browse": {"executor": "constant-arrival-rate", "rate": 50, "timeUnit": "1s",
                   "duration": "30s", "preAllocatedVUs": 10, "maxVUs": 50,
                   "tags": {"kind": "read"},
                   "requests": [{"method": "GET", "path": "/records?limit=100"}]},
        "write": {"executor": "ramping-vus", "startVUs": 0,
                  "stages": [{"duration": "20s", "target": 5}, {"duration": "10s", "target": 0}],
                  "gracefulRampDown": "5s", "startTime": "10s",
                  "requests": [{"method": "POST", "path": "/records",
                                "body": '{"name":"widget","qty":2}',
                                "headers": {"Content-Type": "application/json"},
                                "sleep": 2.0}]}}}


def test_thresholds_with_tag_filters_objects_and_trend_stats() -> None:
    out = tr("thresholds.js")
    assert out["executor"] == "shared-iterations" and out["iterations"] == 100
    assert out["requests"] == [
        {"method": "GET", "path": "/", "name": "home",
         "checks": [{"name": "home ok", "status": [200]}]},
        {"method": "GET", "path": "/json", "tags": {"group": "::api"}}]
    assert out["thresholds"] == {
        "http_req_duration{name:home}": ["p(99)<1000"],
        "http_req_duration{group:::api}": [
            {"threshold": "p(95)<300", "abortOnFail": True, "delayAbortEval": "10s"}],
        "checks{check:home ok}": ["rate>0.99"], "checks": ["rate>0.9"],
        "iterations": ["count>=100"]}
    assert out["summaryTrendStats"] == ["avg", "p(50)", "p(99)", "max"]


def test_check_forms() -> None:
    checks = tr("checks.js")["requests"][0]["checks"]
    by_name = {c.pop("name"): c for c in checks}
    assert by_name == {
        "is 200": {"status": [200]},
        "2xx": {"status": list(range(200, 300))},
        "ok or created": {"status": [200, 201]},
        "listed": {"status": [200, 204]},
        "has data": {"body_contains": "data"},
        "indexOf": {"body_contains": "ok"},
        "json field": {"json_field": "data.ok"},
        "json chain": {"json_field": "data.ok"},
        "fast": {"max_duration": "250ms"},
        "json type": {"headers": {"Content-Type": "application/json"}},
        "all at once": {"status": [200], "body_contains": "ok"}}


def test_groups_tag_their_requests_like_k6() -> None:
    assert tr("groups.js")["requests"] == [
        {"method": "GET", "path": "/", "tags": {"group": "::front page"},
         "checks": [{"name": "front ok", "status": [200]}]},
        {"method": "GET", "path": "/style.css", "tags": {"group": "::front page::assets"},
         "sleep": 1.0}]


def test_batch_requests_in_every_form() -> None:
    assert tr("batch.js")["requests"] == [
        {"method": "GET", "path": "/a", "checks": [{"name": "a ok", "status": [200]}]},
        {"method": "GET", "path": "/b", "name": "bee"},
        {"method": "POST", "path": "/c", "body": "x=1",
         "checks": [{"name": "c ok", "status": [201]}]},
        {"method": "GET", "path": "/"},
        {"method": "GET", "path": "/info", "checks": [{"name": "info ok", "status": [200]}]}]


def test_post_bodies_json_stringify_form_objects_and_params() -> None:
    out = tr("post_json.js")
    json_h = {"Content-Type": "application/json", "X-Trace": "k6"}
    assert out["timeout"] == "5s"
    assert out["requests"] == [
        {"method": "POST", "path": "/users", "headers": json_h,
         "body": '{"user":"ada","roles":["admin","dev"],"age":36,"ratio":1.5,"active":true}',
         "checks": [{"name": "created", "status": [201]}]},
        {"method": "POST", "path": "/login", "body": "pass=x+y&user=ada",
         "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
        {"method": "PUT", "path": "/users/1", "body": '{\n  "age": 37\n}', "headers": json_h},
        {"method": "PATCH", "path": "/users/1", "body": '{"age":38}', "headers": json_h},
        {"method": "DELETE", "path": "/users/1", "headers": json_h},
        {"method": "GET", "path": "/users?page=2", "headers": json_h}]


def test_env_defaults_and_values() -> None:
    out = tr("env_defaults.js")
    assert (out["vus"], out["duration"]) == (5, "10s")
    assert out["requests"] == [
        {"method": "GET", "path": "/records?limit=100"},
        {"method": "GET", "path": "/records/a%20b", "headers": {"X-Env": "none"}, "sleep": 0.25}]
    env = {"BASE_URL": "http://10.1.2.3:9000", "LIMIT": "7", "VUS": "3", "SECONDS": "4",
           "TAG": "ci", "PAUSE": "2"}
    out = tr("env_defaults.js", env=env)
    assert (out["vus"], out["duration"]) == (3, "4s")
    assert out["requests"] == [
        {"method": "GET", "path": "/records?limit=7"},
        {"method": "GET", "path": "/records/a%20b", "headers": {"X-Env": "ci"}, "sleep": 2.0}]


def test_constant_loops_helpers_and_branches_are_unrolled() -> None:
    paths = [r["path"] for r in tr("loops.js")["requests"]]
    assert paths == ["/records/1", "/records/2", "/records/3", "/a", "/b"]
    paths = [r["path"] for r in tr("loops.js", env={"EXTRA": "1"})["requests"]]
    assert paths[-1] == "/extra"


# -- k6's precedence rules ----
def test_cli_duration_replaces_the_scripts_scenarios_with_one_constant_vus() -> None:
    src = ("import http from 'k6/http';\nexport const options = { scenarios: { s: {\n"
           "  executor: 'per-vu-iterations', vus: 2, iterations: 3, exec: 'other' } } };\n"
           "export function other() { http.get('http://x/other'); }\n"
           "export default function () { http.get('http://x/'); }\n")
    assert "scenarios" in translate(src)
    out = translate(src, overrides=Overrides(vus=10, duration="30s"))
    assert out == {"executor": "constant-vus", "vus": 10, "duration": "30s",
                   "requests": [{"method": "GET", "path": "/"}]}
    # as in k6, the shortcut runs default(): a script without one is refused
    assert refusal("scenarios.js", overrides=Overrides(vus=10, duration="30s")) == (
        "k6 script scenarios.js line 6:24: scenario 'default' runs default(), which the script "
        "does not export (fix: export default function () {...})")


def test_cli_vus_alone_only_replaces_vus() -> None:
    out = tr("options_basic.js", overrides=Overrides(vus=9))
    assert (out["executor"], out["vus"], out["duration"]) == ("constant-vus", 9, "90s")
    assert "scenarios" in tr("scenarios.js", overrides=Overrides(vus=9))


def test_cli_iterations_and_stages() -> None:
    out = tr("options_basic.js", overrides=Overrides(iterations=20, vus=2))
    assert out["executor"] == "shared-iterations" and out["iterations"] == 20
    assert "maxDuration" not in out  # the script's duration went with the script's execution
    out = tr("article.js", overrides=Overrides(iterations=5, duration="10s"))
    assert out["maxDuration"] == "10s"
    out = tr("options_basic.js", overrides=Overrides(stages=(parse_stage("5s:3"),
                                                             parse_stage("1m:0"))))
    assert out["executor"] == "ramping-vus" and out["startVUs"] == 4
    assert out["stages"] == [{"duration": "5s", "target": 3}, {"duration": "60s", "target": 0}]


def test_conflicting_shortcuts_are_refused_as_k6_does() -> None:
    src = ("import http from 'k6/http';\nexport const options = {duration: '10s',\n"
           "  stages: [{duration: '1s', target: 1}]};\n"
           "export default function () { http.get('http://x/'); }\n")
    assert "`duration` and `stages` together" in refusal(src)
    with pytest.raises(ValueError):
        parse_stage("soon:3")


# -- refusals ----
def test_a_url_from_an_earlier_response_is_refused_with_line_and_column() -> None:
    assert refusal("refused_response_url.js") == (
        "k6 script refused_response_url.js line 7:54: a URL built from an earlier response "
        "(res.json().id) cannot run on isobench's engine (fix: use a fixed URL, or run k6 itself)")


def test_shared_array_is_refused_at_its_use() -> None:
    assert refusal("refused_shared_array.js").startswith(
        "k6 script refused_shared_array.js line 4:15: new SharedArray() from 'k6/data' cannot "
        "run on isobench's engine (fix: use constant data")


def test_vu_dependent_urls_websockets_and_setup_are_refused() -> None:
    assert refusal("refused_vu.js").startswith(
        "k6 script refused_vu.js line 4:38: a URL that depends on __VU cannot run")
    assert refusal("refused_websocket.js").startswith(
        "k6 script refused_websocket.js line 4:3: ws.connect() from 'k6/ws' cannot run")
    assert refusal("refused_setup.js").startswith(
        "k6 script refused_setup.js line 3:8: a setup() that does work cannot run")


HEAD = "import http from 'k6/http';\nimport { check, sleep } from 'k6';\n"


@pytest.mark.parametrize(("body", "expected"), [
    ("  const r = http.get('http://x/a');\n  if (r.status === 200) { http.get('http://x/b'); }",
     "line 5:7: a branch condition built from an earlier response (r.status)"),
    ("  http.asyncRequest('GET', 'http://x/');", "line 4:3: http.asyncRequest()"),
    ("  sleep(1);\n  http.get('http://x/');", "line 4:3: a sleep() before the iteration's first"),
    ("  http.get('http://x/');\n  http.get('http://y/');",
     "line 5:12: a request to a second server (http://y; the first was http://x)"),
    ("  http.get(`${__ENV.BASE}/a/${__ENV.ID}`);",
     "line 4:31: __ENV.ID (in a URL) is not set (fix: pass --k6-env ID=VALUE"),
    ("  const r = http.get('http://x/');\n  check(r, { 'neg': (r) => r.status !== 500 });",
     "line 5:28: a check condition the engine cannot evaluate (r.status !== 500)"),
    ("  const r = http.get('http://x/');\n  check(r, { 'h': (r) => r.headers['content-type'] "
     "=== 'x' });", "line 5:26: a header check on 'content-type', which k6 never finds"),
    ("  for (let i = 0; i < Math.random() * 3; i++) { http.get('http://x/'); }",
     "line 4:23: a loop bound computed at run time (Math.random())"),
    ("  const r = http.get('http://x/', { auth: 'digest' });",
     "line 4:35: the request parameter 'auth'"),
])
def test_refused_constructs(body: str, expected: str) -> None:
    msg = refusal(HEAD + "export default function () {\n" + body + "\n}\n")
    assert msg.startswith("k6 script t.js " + expected), msg


def test_refused_options() -> None:
    tail = "export default function () { http.get('http://x/'); }\n"
    msg = refusal(HEAD + "export const options = {\n  noConnectionReuse: true };\n" + tail)
    assert msg.startswith("k6 script t.js line 4:3: the option noConnectionReuse: true")
    msg = refusal(HEAD + "export const options = { thresholds: {\n  my_trend: ['p(95)<1'] } };\n"
                  + tail)
    assert msg.startswith("k6 script t.js line 4:3: the threshold 'my_trend' (unknown metric")
    msg = refusal(HEAD + "export const options = { thresholds: {\n"
                  "  'http_req_duration{expected_response:true}': ['p(95)<1'] } };\n" + tail)
    assert "filters on the tag 'expected_response'" in msg
    msg = refusal(HEAD + "export const options = { thresholds: {\n"
                  "  'http_req_duration{name:nope}': ['p(95)<1'] } };\n" + tail)
    assert "matches no request" in msg
    msg = refusal(HEAD + "export const options = { scenarios: { s: {\n"
                  "  executor: 'externally-controlled', vus: 1 } } };\n" + tail)
    assert "the executor 'externally-controlled'" in msg


def test_random_sleeps_become_uniform_ranges() -> None:
    src = HEAD + ("export default function () {\n  http.get('http://x/');\n"
                  "  sleep(1 + Math.random() * 2);\n  sleep(0.5);\n}\n")
    assert translate(src)["requests"] == [{"method": "GET", "path": "/", "sleep": [1.5, 3.5]}]
    src = src.replace("sleep(0.5)", "sleep(Math.random())")
    assert "two random sleeps in a row" in refusal(src)


def test_a_timeout_on_some_requests_only_is_refused() -> None:
    src = HEAD + ("export default function () {\n  http.get('http://x/', { timeout: '1s' });\n"
                  "  http.get('http://x/b');\n}\n")
    assert "requests with different timeouts in scenario 'default'" in refusal(src)


def test_syntax_beyond_es2017_and_garbage_are_one_line_errors() -> None:
    msg = refusal("const a = __ENV.A ?? 'x';\n")
    assert msg.startswith("k6 script t.js line 1:") and "cannot be parsed" in msg
    assert "a ?? b" in msg
    with pytest.raises(ConfigError, match="cannot be read"):
        translate_file(CORPUS / "no-such-script.js")


def test_custom_metrics_are_refused_where_used() -> None:
    src = ("import http from 'k6/http';\nimport { Trend } from 'k6/metrics';\n"
           "const t = new Trend('waiting');\n"
           "export default function () {\n  const r = http.get('http://x/');\n"
           "  t.add(r.timings.waiting);\n}\n")
    assert refusal(src).startswith(
        "k6 script t.js line 3:11: new Trend() from 'k6/metrics' cannot run on isobench's engine "
        "(fix: use k6's built-in metrics")
