"""The suite's plan and table builder, the workloads' metric hooks and the readiness probes."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from isobench import plugins
from isobench.analysis.stats import DEFAULT_METRICS, analyze
from isobench.errors import ConfigError, IsobenchError, StartError
from isobench.report.rundata import metric_specs_from_manifest
from isobench.results import TrialRecord
from isobench.results_model import Analysis
from isobench.run.suite import (
    MICRO_BENCHMARKS,
    build_table,
    markdown,
    no_figure_note,
    parse_options,
    plan_suite,
)
from isobench.util import clientnet
from isobench.workloads.base import LaunchSpec
from isobench.workloads.burn import BurnWorkload
from isobench.workloads.micro import servers
from isobench.workloads.micro.common import (
    gauge,
    iperf3_answers,
    sockperf_answers,
    wait_probe,
)
from isobench.workloads.micro.local import SysbenchCpuWorkload


def trial(runtime: str, i: int, value: float, emulated: bool = False) -> TrialRecord:
    load = {"metrics": {"sysbench_cpu_events": gauge(value),
                        "sysbench_cpu_latency_ms": gauge(1000.0 / value)}}
    return TrialRecord(runtime, i, i, i, "ok", 0.0, 1.0, load=load,
                       facts={"emulated": emulated})


def cpu_analysis() -> Analysis:
    trials = []
    for i in range(5):
        trials.append(trial("native", i, 1000.0 + i))
        trials.append(trial("docker-host", i, 1000.0 + i + (-1) ** i * 3))  # the same ±0.3 %
        trials.append(trial("gvisor", i, 800.0 + i))  # 20 % slower, no overlap
        trials.append(trial("vm", i, 50.0 + i, emulated=True))
    trials.append(TrialRecord("gvisor", 9, 9, 9, "failed", 0.0, 1.0, error="boom"))
    return Analysis.from_json(analyze(trials, metrics=SysbenchCpuWorkload().metric_specs()))


def test_table_rows_cells_and_emulated_column() -> None:
    runtimes = ["native", "docker-host", "gvisor", "vm"]
    table = build_table({"sysbench-cpu": {"analysis": cpu_analysis(), "dir": "x"},
                         "redis": {"error": "redis-benchmark is not installed"}}, runtimes)
    assert [r["metric"] for r in table["rows"]] == ["sysbench_cpu_events",
                                                     "sysbench_cpu_latency_ms"]
    row = table["rows"][0]
    assert row["baseline"]["median"] == 1002.0
    assert row["cells"]["docker-host"]["ratio"] == pytest.approx(1.0, abs=0.004)
    assert row["cells"]["docker-host"]["mark"].startswith("\u2248")
    gv = row["cells"]["gvisor"]
    assert gv["ratio"] == pytest.approx(802 / 1002)
    assert gv["significant"] and gv["mark"] == "worse"
    assert table["rows"][1]["cells"]["gvisor"]["mark"] == "worse"  # latency up is worse too
    assert row["cells"]["vm"]["mark"] == "emulated"
    assert table["emulated"] == ["vm"]
    assert table["errors"] == {"redis": "redis-benchmark is not installed"}
    assert table["failed"] == {"sysbench-cpu": {"gvisor": 1}}
    assert table["complete"] is False
    md = markdown(table)
    assert "| vm (emulated) \u00f7 native |" in md
    assert "| sysbench-cpu | sysbench cpu events/s | 1,002 events/s | 1.00 [" in md
    assert "0.80 [" in md and "worse" in md
    assert "redis: did not run: redis-benchmark is not installed" in md
    assert "sysbench-cpu: failed trials (gvisor 1)" in md


def test_the_table_names_the_workload_options_it_ran_with() -> None:
    table = {**build_table({}, ["native"]), "workload_options": {"fio": {"fio_buffer": "huge"}}}
    assert "Workload options (`--option`): fio: fio_buffer=huge." in markdown(table)
    assert "Workload options" not in markdown(build_table({}, ["native"]))
    quiet = {**build_table({}, ["native"]), "settings": {"telemetry": {"samplers": []}}}
    assert "Telemetry: off (no sampler ran" in markdown(quiet)
    assert "Telemetry: on" in markdown({**build_table({}, ["native"]), "settings": {}})


def test_a_runtime_without_trials_shows_no_figure() -> None:
    table = build_table({"sysbench-cpu": {"analysis": cpu_analysis()}}, ["native", "kata"])
    assert table["rows"][0]["cells"]["kata"] == {"ratio": None, "note": "no trials",
                                                 "n_ok": 0, "n_failed": 0}
    assert "no figure (no trials)" in markdown(table)


def test_a_runtime_with_one_ok_trial_says_so_not_no_trials() -> None:
    """Seen in a real table: gVisor's iperf3 had 1 ok and 2 failed trials, and the cell read
    "no trials"."""
    trials = [trial("native", i, 1000.0 + i) for i in range(3)]
    trials += [trial("gvisor", 0, 800.0),
               *(TrialRecord("gvisor", i, i, i, "failed", 0.0, 1.0, error="reset")
                 for i in (1, 2))]
    analysis = Analysis.from_json(analyze(trials, metrics=SysbenchCpuWorkload().metric_specs()))
    table = build_table({"sysbench-cpu": {"analysis": analysis}}, ["native", "gvisor"])
    cell = table["rows"][0]["cells"]["gvisor"]
    assert cell["ratio"] is None and (cell["n_ok"], cell["n_failed"]) == (1, 2)
    assert "no figure (1 ok trial, 2 failed: too few for a ratio)" in markdown(table)
    assert no_figure_note(2, 0, n_base=1) == "2 ok trials: too few for a ratio"
    assert no_figure_note(0, 3) == "3 trials failed" and no_figure_note(0, 1) == "1 trial failed"


def test_a_figure_of_zero_has_no_ratio_and_says_so_not_too_few() -> None:
    """Seen in a real table: the VM's iperf3 retransmits were 0 in each of 3 ok trials, and the
    cell read "3 ok trials: too few for a ratio"."""
    trials = [trial("native", i, 1000.0 + i) for i in range(3)]
    trials += [TrialRecord("vm", i, i, i, "ok", 0.0, 1.0, load={"metrics": {
        "sysbench_cpu_events": gauge(0.0), "sysbench_cpu_latency_ms": gauge(1.0)}})
        for i in range(3)]
    analysis = Analysis.from_json(analyze(trials, metrics=SysbenchCpuWorkload().metric_specs()))
    table = build_table({"sysbench-cpu": {"analysis": analysis}}, ["native", "vm"])
    cell = table["rows"][0]["cells"]["vm"]
    assert cell["ratio"] is None and (cell["n_ok"], cell["n_failed"]) == (3, 0)
    assert cell["note"] == "median 0: no ratio (a figure of 0 or below on one side)"


def test_plan_suite_validates_and_applies_quick() -> None:
    plan = plan_suite("micro", ["native", "vm"], ["redis", "xz"], Path("/tmp/x"), quick=True)
    assert plan.benchmarks == ("redis", "xz")
    data = plan.benchfile_data("redis")
    assert data["workload"] == "redis" and data["runtimes"] == ["native", "vm"]
    assert data["trials"] == 3 and data["duration"] == "3s"
    assert plan_suite("micro", None, None, Path("/tmp/x"), trials=7).overrides["trials"] == 7
    # no sampler by default (isobench's sampling costs server figures a few per cent)
    assert data["telemetry"] == {"samplers": []}
    sampled = plan_suite("micro", ["native"], ["redis"], Path("/tmp/x"), telemetry=True)
    assert "telemetry" not in sampled.benchfile_data("redis")
    assert plan_suite("micro", None, None, Path("/tmp/x")).benchmarks == MICRO_BENCHMARKS
    with pytest.raises(ConfigError, match="no benchmark nope"):
        plan_suite("micro", None, ["redis", "nope"], Path("/tmp/x"))
    with pytest.raises(ConfigError, match="unknown suite"):
        plan_suite("macro", None, None, Path("/tmp/x"))


def test_every_micro_benchmark_is_a_registered_workload_with_its_own_metrics() -> None:
    for name in MICRO_BENCHMARKS:
        workload = plugins.load("workload", name)({})
        specs = workload.metric_specs()
        assert specs and all(not s.name.startswith(("http_", "rps")) for s in specs), name
        assert workload.rootfs_spec().name == "micro"


def test_metric_specs_follow_the_manifests_workload() -> None:
    specs = metric_specs_from_manifest({"config": {"workload": "redis", "workload_options": {}}})
    assert specs[0].name == "redis_get_ops"
    assert metric_specs_from_manifest({"config": {"workload": "burn"}}) == DEFAULT_METRICS
    assert metric_specs_from_manifest({"config": {"workload": "gone"}}) == DEFAULT_METRICS
    assert metric_specs_from_manifest({}) == DEFAULT_METRICS
    assert BurnWorkload().metric_specs() == DEFAULT_METRICS


@pytest.fixture
def fake_redis() -> Iterator[int]:
    """A TCP server answering PING with +PONG (and INFO with a version)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    stop = threading.Event()

    def serve() -> None:
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            with conn:
                data = conn.recv(100)
                if data.startswith(b"PING"):
                    conn.sendall(b"+PONG\r\n")
                elif data.startswith(b"INFO"):
                    body = b"# Server\r\nredis_version:7.0.15\r\n"
                    conn.sendall(b"$%d\r\n%s\r\n" % (len(body), body))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield srv.getsockname()[1]
    stop.set()
    thread.join()
    srv.close()


def test_redis_ready_needs_a_pong(fake_redis: int) -> None:
    assert servers.redis_pong("127.0.0.1", fake_redis)
    assert servers.redis_version("127.0.0.1", fake_redis) == "7.0.15"
    startup = servers.RedisWorkload().ready(
        fake_redis, LaunchSpec(argv=("x",)), launched_at=time.monotonic(), deadline_s=5,
        exited=lambda: None)
    assert 0 <= startup < 5


def test_a_silent_listener_is_not_redis_but_is_a_tcp_server() -> None:
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        port = srv.getsockname()[1]
        assert not servers.redis_pong("127.0.0.1", port)
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()  # accepted
    with pytest.raises(ConnectionRefusedError):  # closed: refused
        socket.create_connection(("127.0.0.1", port), timeout=0.5)


def _one_reply_server(reply: Callable[[bytes], bytes], size: int) -> tuple[socket.socket, int]:
    """A listener whose first accepted connection gets ``reply(first size bytes)``."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            data = b""
            while len(data) < size:
                chunk = conn.recv(size - len(data))
                if not chunk:
                    return
                data += chunk
            conn.sendall(reply(data))

    threading.Thread(target=serve, daemon=True).start()
    return srv, srv.getsockname()[1]


def test_iperf3_and_sockperf_are_ready_only_when_they_answer_their_protocol() -> None:
    # what a forwarder can do before the server runs (QEMU's user network did): accept, say nothing
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()  # accepted
        assert not iperf3_answers("127.0.0.1", port)
        assert not sockperf_answers("127.0.0.1", port)
    srv, port = _one_reply_server(lambda cookie: b"\x09" if len(cookie) == 37 else b"", 37)
    with srv:
        assert iperf3_answers("127.0.0.1", port)
    srv, port = _one_reply_server(
        lambda ping: struct.pack("!QHI", *struct.unpack("!QHI", ping)[:1], 2, 14), 14)
    with srv:
        assert sockperf_answers("127.0.0.1", port)


def test_probe_reports_an_exited_instance() -> None:
    with pytest.raises(StartError, match="exited before it was ready: killed"):
        wait_probe("127.0.0.1", 1, lambda host, port: False, "probe",
                   launched_at=time.monotonic(), deadline_s=5, exited=lambda: "killed")


def test_redis_drive_runs_the_client_and_parses(monkeypatch: pytest.MonkeyPatch,
                                                fake_redis: int) -> None:
    data = Path(__file__).parent / "data"
    calls: list[list[str]] = []

    def fake_client(argv: list[str], **kw: object) -> str:
        calls.append(argv)
        pipeline = argv[argv.index("-P") + 1]
        return (data / f"redis_benchmark_p{pipeline}.csv").read_text()

    monkeypatch.setattr(servers, "run_client", fake_client)
    summary = servers.RedisWorkload().drive(f"http://127.0.0.1:{fake_redis}",
                                            {"duration": "2s"}, cpus=(1,))
    t = TrialRecord("native", 0, 0, 0, "ok", 0.0, 1.0, load=summary)
    assert t.metric("redis_get_ops", "value") == 43196.54
    assert t.metric("redis_set_p16_ops", "value") == 54794.52
    assert t.metric("redis_get_p99_ms", "value") == 2.975
    # a probe before each run (GET, 5,000 and 50,000 requests) measured 43,196.54 and
    # 285,714.28 ops/s: a 2 s test then sends rate × 2 s requests, capped at 50,000/s × 2 s
    # (× 10 pipelined)
    assert [c[c.index("-n") + 1] for c in calls] == ["5000", "86393", "50000", "571428"]
    assert [c[c.index("-t") + 1] for c in calls] == ["get", "set,get", "get", "set,get"]
    assert summary["facts"]["requests"] == {1: 86393, 16: 571428}
    assert summary["facts"]["server_version"] == "7.0.15"
    assert set(summary["raw"]) == {"P1", "P16"}


def test_iperf3_tries_a_run_again_that_came_before_the_server_was_ready_and_moved_nothing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``iperf3 -s`` takes the next test only once it has ended the last one (seconds under
    TCG): a client refused meanwhile, or whose control connection was reset before any data
    moved (iperf3 -J exits 0 with an "error"), is tried again and counted by error; a reset
    after data moved, or any other error, fails at once."""
    data = Path(__file__).parent / "data"
    refused = '{"start": {}, "intervals": [], "end": {}, ' \
        '"error": "unable to connect to server: Connection refused"}'
    reset = '{"start": {"connected": []}, "intervals": [], "end": {}, ' \
        '"error": "unable to receive control message: Connection reset by peer"}'
    answers = {"to": [refused, refused, (data / "iperf3_up.json").read_text()],
               "from": [reset, (data / "iperf3_reverse.json").read_text()]}

    def fake_client(argv: list[str], **kw: object) -> str:
        return answers["from" if "-R" in argv else "to"].pop(0)

    monkeypatch.setattr(servers, "run_client", fake_client)
    monkeypatch.setattr(servers.time, "sleep", lambda s: None)
    with pytest.raises(ConfigError, match=r"neither 127\.0\.0\.1 nor"):  # no namespace of ours
        servers.Iperf3Workload().drive("http://198.18.0.2:5201", {"duration": "2s"})
    monkeypatch.setattr(clientnet, "own_address", lambda host: host == "198.18.0.2")  # a VM's
    summary = servers.Iperf3Workload().drive("http://198.18.0.2:5201", {"duration": "2s"})
    assert summary["facts"]["retried_before_data"] == {
        "to_runtime": {"iperf3: unable to connect to server: Connection refused": 2},
        "from_runtime": {"iperf3: unable to receive control message: Connection reset by peer": 1}}
    assert summary["facts"]["argv"]["to_runtime"][:3] == ["iperf3", "-c", "198.18.0.2"]
    t = TrialRecord("vm", 0, 0, 0, "ok", 0.0, 1.0, load=summary)
    assert t.metric("iperf3_to_runtime_gbit_s", "value") > 0

    moved = json.loads((data / "iperf3_up.json").read_text())
    moved["error"] = "unable to receive control message: Connection reset by peer"
    for fails in ('{"error": "unable to send control message: Bad file descriptor"}',
                  json.dumps(moved)):  # the reset came after the test's data moved
        answers["to"] = [fails, (data / "iperf3_up.json").read_text()]
        with pytest.raises(IsobenchError, match=json.loads(fails)["error"].split(":")[-1]):
            servers.Iperf3Workload().drive("http://198.18.0.2:5201", {"duration": "2s"})


def test_iperf3_moved_nothing_reads_the_json() -> None:
    from isobench.workloads.micro.parsers import iperf3_moved_nothing

    data = Path(__file__).parent / "data"
    assert iperf3_moved_nothing('{"start": {}, "intervals": [], "end": {}, "error": "x"}')
    assert not iperf3_moved_nothing((data / "iperf3_up.json").read_text())
    assert not iperf3_moved_nothing('{"intervals": [], "end": {"sum_sent": {"bytes": 10}}}')
    assert not iperf3_moved_nothing("iperf3: error - not JSON")


def test_marks_say_what_the_test_found() -> None:
    from isobench.run.suite import _mark

    assert _mark({"verdict_kind": "slower"}) == "worse"
    assert _mark({"verdict_kind": "faster"}) == "better"
    assert _mark({"verdict_kind": "inconclusive"}) == "inconclusive"
    assert _mark({"verdict_kind": "equivalent", "margin_pct": 5.0}) == "\u2248 (within \u00b15 %)"
    assert _mark({"verdict_kind": "emulated"}) == "emulated"
    assert _mark({"verdict_kind": "too_few"}) == "too few trials"


def test_agent_names_the_filesystem_it_writes_to(tmp_path: Path) -> None:
    from tests.workloads.test_micro_agent import load_agent

    fs = load_agent().filesystem_of(str(tmp_path))
    assert " on /" in fs and not fs.startswith("unknown")


def test_suite_options_reach_their_benchmark_only() -> None:
    plan = plan_suite("micro", ["native"], ["redis", "postgres"], Path("/tmp/x"),
                      options=["redis.clients=10", "redis.pipelined_factor=4",
                               "postgres.clients=2"])
    assert plan.workload_options == {"redis": {"clients": 10, "pipelined_factor": 4},
                                     "postgres": {"clients": 2}}
    assert plan.benchfile_data("redis")["workload_options"] == {"clients": 10,
                                                                "pipelined_factor": 4}
    plain = plan_suite("micro", ["native"], ["redis", "xz"], Path("/tmp/x"),
                       options=["redis.clients=10"])
    assert "workload_options" not in plain.benchfile_data("xz")
    assert parse_options(["fio.fio_buffer=huge", "redis.clients=1e2"], MICRO_BENCHMARKS) == {
        "fio": {"fio_buffer": "huge"}, "redis": {"clients": "1e2"}}  # YAML 1.1: not a number


@pytest.mark.parametrize(("item", "message"), [
    ("fio.fio_bufer=huge", "workload fio has no option fio_bufer .*fio_buffer, fio_size_mb"),
    ("fio.fio_buffer=hug", "fio_buffer must be one of default, huge"),
    ("xz.level=9", "workload xz has no option level .*its options: none"),
    ("redis.clients", "not BENCHMARK.OPTION=VALUE"),
    ("clients=3", "not BENCHMARK.OPTION=VALUE"),
    ("nope.clients=3", "no benchmark 'nope'"),
    ("postgres.clients=3", "names postgres, which this run leaves out"),
    ("redis.clients=1e2", "option clients must be a positive integer, not '1e2'"),
    ("redis.clients=0", "option clients must be a positive integer, not 0"),
    ("fio.fio_size_mb=true", "option fio_size_mb must be a positive integer, not True"),
])
def test_suite_options_are_refused_before_anything_runs(item: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        plan_suite("micro", ["native"], ["fio", "xz", "redis"], Path("/tmp/x"), options=[item])


def test_misspelt_options_are_refused_by_declaring_workloads_only() -> None:
    from isobench.workloads.micro.local import FioWorkload

    FioWorkload.check_options({"fio_buffer": "huge", "fio_size_mb": 64})
    with pytest.raises(ConfigError, match="has no option parameters"):
        FioWorkload.check_options({"parameters": {}})  # the workload's own record, not an input
    with pytest.raises(ConfigError, match="workload burn has no option payload_byte "):
        BurnWorkload.check_options({"payload_byte": 1})

    class Undeclared(BurnWorkload):
        option_names = None

    Undeclared.check_options({"anything": 1})  # a plug-in that declares nothing: any key


def test_cli_suite_parses_and_refuses_unknown_benchmarks() -> None:
    from isobench.cli import build_parser, main

    args = build_parser().parse_args(["suite", "micro", "--only", "redis,xz", "--quick"])
    assert args.only == ["redis", "xz"] and args.quick and args.suite == "micro"
    assert main(["suite", "micro", "--only", "nope", "--runtimes", "native"]) == 2
    assert main(["suite", "micro", "--runtimes", "nonesuch"]) == 2


def test_micro_trials_are_validated_by_their_own_figures_not_http() -> None:
    from isobench.workloads.micro.common import gauge
    from isobench.workloads.micro.common import summary as make_summary

    workload = SysbenchCpuWorkload()
    names = [m.name for m in workload.metric_specs()]
    good = make_summary({n: gauge(100.0) for n in names}, {}, {}, 3.0)
    assert workload.validate(good, 3.0) is None
    none = make_summary({names[0]: gauge(0.0), **{n: gauge(1.0) for n in names[1:]}}, {}, {},
                        3.0)
    reason = workload.validate(none, 3.0)
    assert reason and "no usable figure" in reason
