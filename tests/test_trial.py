import http.server
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from isobench.errors import ConfigError
from isobench.images.spec import Artifacts
from isobench.load.api import LoadError
from isobench.results import TrialRecord
from isobench.run.trial import (
    Trial,
    TrialSetup,
    check_replicas,
    combine_telemetry,
    scenario_seconds,
)
from isobench.runtimes.base import Instance, Resources, Runtime
from isobench.workloads.base import LaunchSpec
from isobench.workloads.burn import BurnWorkload


class _HostNet(Runtime):
    name = "fake-host"
    kind = "process"
    artifact = "rootfs"

    def check(self) -> None:
        return None

    def start(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    def stop(self, instance) -> None:  # type: ignore[no-untyped-def]
        pass


class _OwnNet(_HostNet):
    shares_host_network = False


def test_replica_costs_add_up_host_figures_do_not() -> None:
    a = {"cpu_seconds": 1.0, "rss_bytes_peak": 100.0, "host_cpu_user_percent_mean": 40.0,
         "cpu_wall_seconds": 10.0, "net_source_iface": 1.0}
    b = {"cpu_seconds": 3.0, "rss_bytes_peak": 50.0, "host_cpu_user_percent_mean": 60.0,
         "cpu_wall_seconds": 10.2, "net_source_iface": 1.0}
    merged = combine_telemetry([a, b])
    assert merged["cpu_seconds"] == 4.0
    assert merged["rss_bytes_peak"] == 150.0
    assert merged["host_cpu_user_percent_mean"] == 50.0
    assert merged["cpu_wall_seconds"] == pytest.approx(10.1)
    assert merged["net_source_iface"] == 1.0
    assert combine_telemetry([a]) == a


def test_fixed_port_replicas_on_the_host_network_are_refused() -> None:
    fixed = LaunchSpec(argv=("/app",), port=8000)
    with pytest.raises(ConfigError, match="cannot share the host network"):
        check_replicas(_HostNet(), fixed, 2)
    check_replicas(_OwnNet(), fixed, 2)
    check_replicas(_HostNet(), fixed, 1)
    check_replicas(_HostNet(), LaunchSpec(argv=("/app", "{port}")), 3)


def test_scenario_seconds_takes_the_longest_sub_scenario() -> None:
    assert scenario_seconds({"duration": "20s"}) == 20.0
    assert scenario_seconds({"scenarios": {"a": {"duration": "5s"}, "b": {"duration": "1m"}}}) == 60
    assert scenario_seconds({"executor": "per-vu-iterations"}) == 0.0


# -- the verdict of a whole trial: fake runtime (a stdlib server) and fake load ----------------
class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


class _FakeRuntime(_OwnNet):
    """Starts a /healthz server; ``dies`` says when ``exited`` starts reporting a death:
    ``"never"``, ``"after-ready"`` (as an app that lost its port to another process) or
    ``"mid-load"`` (the workload's drive sets ``killed``)."""

    def __init__(self, dies: str = "never") -> None:
        super().__init__()
        self.dies = dies
        self.ready_seen = False
        self.killed = threading.Event()
        self.stopped: list[Instance] = []

    def start(self, artifacts, spec, resources, host_port):  # type: ignore[no-untyped-def]
        server = http.server.ThreadingHTTPServer(("127.0.0.1", host_port), _Health)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return Instance(runtime=self.name, host_port=host_port, launched_at=time.monotonic(),
                        handle=server)

    def exited(self, instance: Instance) -> str | None:
        if self.dies == "after-ready" and self.ready_seen:
            return "fake process exited with code 1: OSError: [Errno 98] Address already in use"
        if self.dies == "mid-load" and self.killed.is_set():
            return "fake container exited with code 137 (SIGKILL)"
        return None

    def stop(self, instance: Instance) -> None:
        instance.handle.shutdown()
        instance.handle.server_close()
        self.stopped.append(instance)


class _FakeLoad(BurnWorkload):
    """Returns a canned summary after ``seconds``; kills the fake runtime half way if asked."""

    def __init__(self, runtime: _FakeRuntime, result: dict[str, Any], seconds: float = 1.2,
                 kill: bool = False) -> None:
        super().__init__()
        self.runtime, self.result, self.seconds, self.kill = runtime, result, seconds, kill

    def drive(self, endpoint, scenario, *, cpus=None, on_progress=None):  # type: ignore[no-untyped-def]
        self.runtime.ready_seen = True
        time.sleep(self.seconds / 2)
        if self.kill:
            self.runtime.killed.set()
        time.sleep(self.seconds / 2)
        return json.loads(json.dumps(self.result))


def _healthy(reqs: int = 5000, failed: int = 0) -> dict[str, Any]:
    return {"metrics": {
        "http_reqs": {"type": "counter", "values": {"count": reqs, "rate": reqs / 1.2}},
        "http_req_failed": {"type": "rate", "values": {"rate": failed / reqs, "passes": failed,
                                                       "fails": reqs - failed}},
    }, "thresholds": {}, "state": {"testRunDurationMs": 1200.0}}


def _run(runtime: _FakeRuntime, load: _FakeLoad, warmup: float = 0.0) -> TrialRecord:
    setup = TrialSetup(workload=load, runtime=runtime, artifacts=Artifacts("k", Path("/")),
                       scenario_name="default", scenario={"duration": "1.2s"},
                       resources=Resources(), warmup_s=warmup, telemetry_samplers=[])
    record = TrialRecord(arm=runtime.name, trial=0, position=0, round=0, status="failed",
                         started_at=time.time(), ended_at=0.0)
    return Trial(setup, {"runtime": runtime.name, "trial": 0}, lambda _: None).run(record)


def test_a_healthy_trial_is_ok() -> None:
    runtime = _FakeRuntime()
    record = _run(runtime, _FakeLoad(runtime, _healthy()))
    assert record.status == "ok" and record.error is None
    assert len(runtime.stopped) == 1


def test_a_workload_killed_mid_load_fails_with_when() -> None:
    runtime = _FakeRuntime("mid-load")
    record = _run(runtime, _FakeLoad(runtime, _healthy(5000, 4975), kill=True))
    assert record.status == "failed"
    assert record.error is not None
    assert record.error.startswith("workload exited at ")
    assert "of the measured load: fake container exited with code 137 (SIGKILL)" in record.error
    assert "99.5 % of requests failed" in record.error
    at = float(record.error.split("exited at ")[1].split(" s ")[0])
    assert 0.4 <= at <= 1.3, record.error  # killed at 0.6 s, watched every 0.5 s
    assert record.load["metrics"]["http_reqs"]["values"]["count"] == 5000  # kept for diagnosis
    assert len(runtime.stopped) == 1


def test_a_death_seen_only_at_the_end_still_fails() -> None:
    """Even a death the watch had no time to see is caught by the look after the load."""
    runtime = _FakeRuntime("mid-load")
    record = _run(runtime, _FakeLoad(runtime, _healthy(), seconds=0.1, kill=True))
    assert record.status == "failed"
    assert record.error is not None
    assert record.error.startswith("workload exited by the end of the load: fake container")


def test_an_app_that_lost_its_port_fails_even_though_someone_answered() -> None:
    """The EADDRINUSE case: readiness got a 200 from another process, the instance is dead."""
    runtime = _FakeRuntime("after-ready")
    record = _run(runtime, _FakeLoad(runtime, _healthy()))
    assert record.status == "failed"
    assert record.error is not None and "Address already in use" in record.error
    assert record.error.startswith("workload exited ")


def test_dead_before_ready_check_is_a_start_error() -> None:
    runtime = _FakeRuntime("after-ready")
    runtime.ready_seen = True  # dead already when readiness succeeds
    record = _run(runtime, _FakeLoad(runtime, _healthy()))
    assert record.status == "failed"
    assert record.error is not None
    assert "answered, but the instance exited" in record.error
    assert record.load == {}


def test_a_failing_load_gets_the_probe_of_the_ready_path() -> None:
    runtime = _FakeRuntime()
    record = _run(runtime, _FakeLoad(runtime, _healthy(5000, 5000)))
    assert record.status == "failed"
    assert record.error is not None
    assert "100.0 % of requests failed" in record.error
    assert record.error.endswith("(after the load, GET /healthz: HTTP 200)")


def test_a_failed_threshold_fails_the_trial() -> None:
    runtime = _FakeRuntime()
    result = _healthy() | {"thresholds": {"http_req_failed": {"rate<0.01": {"ok": False,
                                                                             "value": 0.02}}}}
    record = _run(runtime, _FakeLoad(runtime, result))
    assert record.status == "failed"
    assert record.error is not None
    assert record.error == "threshold http_req_failed rate<0.01 failed (value 0.02)"


def test_a_death_in_the_warm_up_says_so() -> None:
    runtime = _FakeRuntime("mid-load")
    record = _run(runtime, _FakeLoad(runtime, _healthy(), seconds=3.0, kill=True), warmup=3.0)
    assert record.status == "failed"
    assert record.error is not None
    assert record.error.startswith("workload exited before the measured load: fake container")


class _CrashingLoad(_FakeLoad):
    def drive(self, endpoint, scenario, *, cpus=None, on_progress=None):  # type: ignore[no-untyped-def]
        super().drive(endpoint, scenario)
        raise LoadError("load engine failed: connection reset")


def test_a_load_error_is_led_by_the_death_that_caused_it() -> None:
    runtime = _FakeRuntime("mid-load")
    record = _run(runtime, _CrashingLoad(runtime, _healthy(), kill=True))
    assert record.status == "failed"
    assert record.error is not None
    assert record.error.startswith("workload exited ")
    assert record.error.endswith("; then: load engine failed: connection reset")


def test_load_time_series_samples_carry_units() -> None:
    from isobench.load.api import TIMESERIES_FIELDS
    from isobench.run.trial import LOAD_UNITS, _timeseries_samples

    assert set(TIMESERIES_FIELDS) - {"t"} <= set(LOAD_UNITS)
    row = {field: 1.0 for field in TIMESERIES_FIELDS}
    samples = _timeseries_samples([row], 100.0, {"runtime": "native"})
    assert {s.metric: s.unit for s in samples}["load_rate"] == "req/s"
    assert all(s.unit for s in samples)
