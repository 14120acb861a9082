"""The micro suite's parsers on real captured outputs (tests/workloads/data/, captured on this
project's host from the Debian 12 packages: redis-tools 7.0.15, sysbench 1.0.20, fio 3.33,
iperf3 3.12, sockperf 3.7), and on outputs that carry no result."""

from __future__ import annotations

from pathlib import Path

import pytest

from isobench.errors import IsobenchError
from isobench.workloads.micro import parsers

DATA = Path(__file__).parent / "data"


def text(name: str) -> str:
    return (DATA / name).read_text()


def test_redis_benchmark_csv() -> None:
    out = parsers.redis_benchmark_csv(text("redis_benchmark_p1.csv"))
    assert set(out) == {"SET", "GET"}
    assert out["GET"]["rps"] == 43196.54
    assert out["GET"]["p50_ms"] == 0.663
    assert out["GET"]["p99_ms"] == 2.975
    assert out["SET"]["rps"] == 30395.14
    assert out["SET"]["p99_ms"] == 6.015
    piped = parsers.redis_benchmark_csv(text("redis_benchmark_p16.csv"))
    assert piped["GET"]["rps"] == 285714.28


def test_redis_benchmark_without_csv_is_refused() -> None:
    with pytest.raises(IsobenchError, match="no CSV header"):
        parsers.redis_benchmark_csv(text("redis_benchmark_p1_plain.txt"))
    with pytest.raises(IsobenchError, match="no CSV header"):
        parsers.redis_benchmark_csv("")
    header = text("redis_benchmark_p1.csv").splitlines()[0]
    with pytest.raises(IsobenchError, match="no result rows"):
        parsers.redis_benchmark_csv(header + "\n")
    with pytest.raises(IsobenchError, match="no throughput"):
        parsers.redis_benchmark_csv(header + '\n"GET","0.00","0","0","0","0","0","0"\n')


def test_sysbench_cpu() -> None:
    out = parsers.sysbench_cpu(text("sysbench_cpu.txt"))
    assert out == {"events_per_s": 1417.78, "events": 2837.0, "latency_avg_ms": 0.70}
    assert parsers.sysbench_version(text("sysbench_cpu.txt")) == "1.0.20"


def test_sysbench_memory() -> None:
    read = parsers.sysbench_memory(text("sysbench_memory_read.txt"))
    assert read == {"mib_per_s": 42222.64, "mib": 42265.0, "ops_per_s": 42222.64}
    write = parsers.sysbench_memory(text("sysbench_memory_write.txt"))
    assert write["mib_per_s"] == 23073.68
    # sysbench prints "(%8.2f per second)": below 10,000 ops/s (an emulated VM) it pads with
    # spaces, "( 2467.03 per second)"
    slow = text("sysbench_memory_read.txt").replace(
        "Total operations: 42265 (42222.64 per second)",
        "Total operations: 2468 ( 2467.03 per second)")
    assert parsers.sysbench_memory(slow)["ops_per_s"] == 2467.03


def test_sysbench_output_cut_short_is_refused() -> None:
    cut = text("sysbench_cpu.txt").split("CPU speed:")[0]
    with pytest.raises(IsobenchError, match="events/s: not found"):
        parsers.sysbench_cpu(cut)
    with pytest.raises(IsobenchError, match="not found"):
        parsers.sysbench_memory(text("sysbench_cpu.txt"))


def test_fio_direct_random_read() -> None:
    out = parsers.fio_json(text("fio_randread_direct.json"))
    assert out["iops"] == pytest.approx(11208.895552)
    assert out["mb_per_s"] == pytest.approx(45.911636)
    assert out["p99_ms"] == pytest.approx(0.164864)
    assert out["direct"] == 1.0


def test_fio_buffered_sequential_write_with_a_warning_line_first() -> None:
    out = parsers.fio_json("fio: some warning\n" + text("fio_seqwrite_buffered.json"))
    assert out["mb_per_s"] == pytest.approx(5922.017679)
    assert out["direct"] == 0.0


def test_fio_failures() -> None:
    with pytest.raises(IsobenchError, match="no JSON"):
        parsers.fio_json("fio: pid=1, err=22/file:filesetup.c, error=Invalid argument")
    with pytest.raises(IsobenchError, match="does not parse"):
        parsers.fio_json(text("fio_randread_direct.json")[:500])
    with pytest.raises(IsobenchError, match="one job"):
        parsers.fio_json('{"jobs": []}')
    with pytest.raises(IsobenchError, match="error 22"):
        parsers.fio_json('{"jobs": [{"error": 22}]}')
    with pytest.raises(IsobenchError, match="moved no data"):
        parsers.fio_json('{"jobs": [{"error": 0, "read": {"io_bytes": 0}}]}')


def test_iperf3() -> None:
    up = parsers.iperf3_json(text("iperf3_up.json"))
    assert up["gbit_per_s"] == pytest.approx(13.820588568995891)
    assert up["retransmits"] == 4.0
    assert parsers.iperf3_json(text("iperf3_reverse.json"))["gbit_per_s"] == pytest.approx(
        13.004218480285836)


def test_iperf3_failures() -> None:
    with pytest.raises(IsobenchError, match="unable to connect"):
        parsers.iperf3_json('{"start": {}, "error": "unable to connect to server"}')
    with pytest.raises(IsobenchError, match="does not parse"):
        parsers.iperf3_json("")
    with pytest.raises(IsobenchError, match="no received throughput"):
        parsers.iperf3_json('{"end": {}}')


def test_sockperf_pingpong_with_colour_codes() -> None:
    out = parsers.sockperf_pingpong(text("sockperf_pingpong.txt"))
    assert out == {"avg_us": 9.622, "p50_us": 8.517, "p99_us": 20.540, "observations": 80433.0}


def test_sockperf_without_summary_is_refused() -> None:
    head = text("sockperf_pingpong.txt").split("Test ended")[0]
    with pytest.raises(IsobenchError, match="sockperf latency: not found"):
        parsers.sockperf_pingpong(head)
