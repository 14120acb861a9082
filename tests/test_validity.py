"""The trial verdict (isobench.run.validity): a table of summaries and the reason each must give.

Also the real load engine against tiny stdlib servers on 127.0.0.1: an app that answers 500 and
one that accepts but never answers must give a reason, never a figure.
"""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from isobench.run.validity import Limits, death_reason, http_failure, trial_failure
from isobench.util.netutil import free_port
from isobench.workloads.burn import BurnWorkload
from isobench.workloads.validator.workload import ValidatorWorkload


def summary(reqs: int, failed: int, *, checks: tuple[int, int] | None = None,
            thresholds: dict[str, Any] | None = None) -> dict[str, Any]:
    """A k6 summary with ``reqs`` requests of which ``failed`` failed (k6: a failed request is a
    *pass* of http_req_failed), optional (passes, fails) of checks and threshold outcomes."""
    metrics: dict[str, Any] = {
        "http_reqs": {"type": "counter", "values": {"count": reqs, "rate": reqs / 10}},
        "http_req_failed": {"type": "rate", "values": {
            "rate": failed / reqs if reqs else 0.0, "passes": failed, "fails": reqs - failed}},
    }
    if checks is not None:
        p, f = checks
        metrics["checks"] = {"type": "rate", "values": {"rate": p / (p + f), "passes": p,
                                                        "fails": f}}
    return {"metrics": metrics, "thresholds": thresholds or {},
            "state": {"testRunDurationMs": 10_000.0}}


FAILED_THRESHOLD = {"http_req_failed": {"rate<0.01": {"ok": False, "value": 0.995}}}
PASSED_THRESHOLD = {"http_req_duration": {"p(95)<500": {"ok": True, "value": 12.0}}}

CASES = [
    # (name, summary, exited, duration, limits, expected None or substrings of the reason)
    ("healthy", summary(27_000, 0), None, 10, Limits(), None),
    ("1 % errors is still allowed", summary(1000, 10), None, 10, Limits(), None),
    ("killed mid-trial", summary(27_311, 27_180), "workload exited at 4.0 s: code 137", 10,
     Limits(), ["workload exited at 4.0 s: code 137", "99.5 % of requests failed"]),
    ("99.5 % failed, alive", summary(10_000, 9_950), None, 10, Limits(),
     ["99.5 % of requests failed (9,950 of 10,000"]),
    ("just over 1 %", summary(1000, 11), None, 10, Limits(), ["1.1 % of requests failed"]),
    ("a looser limit", summary(1000, 11), None, 10, Limits(max_error_rate=0.05), None),
    ("a zero limit", summary(100_000, 1), None, 10, Limits(max_error_rate=0.0),
     ["< 0.1 % of requests failed (1 of 100,000"]),
    ("every request failed (HTTP 500)", summary(66_330, 66_330), None, 10, Limits(),
     ["100.0 % of requests failed (66,330 of 66,330; at most 1.0 % allowed)"]),
    ("accepts but never answers", summary(0, 0), None, 10, Limits(),
     ["served 0 requests in 10 s"]),
    ("too few successful requests", summary(7, 0), None, 10, Limits(),
     ["served 7 successful requests in 10 s (at least 10 needed)"]),
    ("the absolute floor", summary(4, 0), None, 1, Limits(), ["(at least 5 needed)"]),
    ("the floor reached", summary(5, 0), None, 1, Limits(), None),
    ("checks count as errors", summary(1000, 0, checks=(800, 200)), None, 10, Limits(),
     ["20.0 % of checks failed (200 of 1,000)"]),
    ("checks within the limit", summary(1000, 0, checks=(995, 5)), None, 10, Limits(), None),
    ("a failed threshold", summary(1000, 0, thresholds=FAILED_THRESHOLD), None, 10, Limits(),
     ["threshold http_req_failed rate<0.01 failed (value 0.995)"]),
    ("a passed threshold", summary(1000, 0, thresholds=PASSED_THRESHOLD), None, 10, Limits(),
     None),
    ("no summary at all", {}, None, 10, Limits(), ["the load produced no summary"]),
]


@pytest.mark.parametrize(("summ", "exited", "duration", "limits", "expected"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_trial_failure_table(summ: dict[str, Any], exited: str | None, duration: float,
                             limits: Limits, expected: list[str] | None) -> None:
    reason = trial_failure(summ, exited, duration, limits)
    if expected is None:
        assert reason is None
        return
    assert reason is not None
    assert "\n" not in reason
    for part in expected:
        assert part in reason, reason
    if exited:
        assert reason.startswith(exited)  # the death first: it is the cause


def test_idle_scenarios_are_judged_on_liveness_only() -> None:
    assert trial_failure({}, None, 30, rule=None) is None
    assert trial_failure({}, "workload exited by the end of the load: x", 30, rule=None) == (
        "workload exited by the end of the load: x")


def test_min_ok_is_one_per_second_with_a_floor() -> None:
    limits = Limits()
    assert [limits.min_ok(d) for d in (0, 1, 5, 10, 10.2, 3600)] == [5, 5, 5, 10, 11, 3600]


def test_death_reason_says_when() -> None:
    assert death_reason("x", 12.44, True) == "workload exited at 12.4 s of the measured load: x"
    assert death_reason("x", None, True) == "workload exited by the end of the load: x"
    assert death_reason("x", None, False) == "workload exited before the measured load: x"


def test_the_workload_hook_defaults_to_the_http_rule() -> None:
    burn = BurnWorkload()
    assert burn.validate(summary(1000, 0), 10) is None
    assert burn.validate(summary(1000, 500), 10) == http_failure(summary(1000, 500), 10)
    assert burn.validate(summary(1000, 500), 10, Limits(max_error_rate=0.6)) is None


def test_the_validator_fails_a_node_that_applied_no_block() -> None:
    def chain(applied: int) -> dict[str, Any]:
        return {"metrics": {
            "validator_blocks_sent": {"type": "counter", "values": {"count": 40, "rate": 4.0}},
            "validator_blocks_applied": {"type": "counter", "values": {"count": applied,
                                                                       "rate": applied / 10}},
        }, "thresholds": {}}

    node = ValidatorWorkload()
    assert node.validate(chain(0), 10) == "the node applied 0 of 40 blocks sent in 10 s"
    assert node.validate(chain(40), 10) is None
    # no RPC load ran: the HTTP rule would call this "served 0 requests", the validator's does not
    assert trial_failure(chain(40), None, 10, rule=node.validate) is None


# -- the real load engine against broken apps -----------------------------------------------------
class _Answer500(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        status = 200 if self.path == "/healthz" else 500
        body = b"oops\n"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serve_500() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answer500)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def accept_never_answer() -> Iterator[int]:
    """A socket that listens (the kernel accepts) and never reads or answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield int(sock.getsockname()[1])


SCENARIO = {"executor": "constant-vus", "vus": 2, "duration": "1s", "gracefulStop": "0s",
            "requests": [{"method": "GET", "path": "/payload?bytes=10"}]}


def test_an_app_answering_500_is_a_failed_trial_not_a_rate() -> None:
    with serve_500() as port:
        result = BurnWorkload().drive(f"http://127.0.0.1:{port}", SCENARIO)
    assert result["metrics"]["http_reqs"]["values"]["count"] > 0  # it did "serve" requests
    reason = trial_failure(result, None, 1.0, rule=BurnWorkload().validate)
    assert reason is not None and "100.0 % of requests failed" in reason, reason


def test_an_app_that_never_answers_served_nothing() -> None:
    with accept_never_answer() as port:
        result = BurnWorkload().drive(f"http://127.0.0.1:{port}", SCENARIO)
    reason = trial_failure(result, None, 1.0, rule=BurnWorkload().validate)
    assert reason is not None and "served 0 requests in 1 s" in reason, reason


def test_nothing_listening_is_a_failed_trial() -> None:
    result = BurnWorkload().drive(f"http://127.0.0.1:{free_port()}", SCENARIO)
    reason = trial_failure(result, None, 1.0, rule=BurnWorkload().validate)
    assert reason is not None and "of requests failed" in reason, reason
