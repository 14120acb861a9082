"""Parsers of the benchmarks' own output. Pure functions: text in, figures out.

Each raises ``ParseError`` (an IsobenchError) with a one-line reason when the output carries no
result, so a trial is recorded failed, never as a zero.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from typing import Any

from isobench.errors import IsobenchError


class ParseError(IsobenchError):
    """A benchmark's output did not carry the expected result."""


def _float(pattern: str, text: str, what: str) -> float:
    match = re.search(pattern, text, re.MULTILINE)
    if not match:
        raise ParseError(f"{what}: not found in the output ({_tail(text)})")
    return float(match.group(1))


def _tail(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return repr(lines[-1][:120]) if lines else "empty output"


# --- redis-benchmark ------------------------------------------------------------------------------


def redis_benchmark_csv(text: str) -> dict[str, dict[str, float]]:
    """``redis-benchmark --csv`` (Redis 7) → ``{"GET": {"rps", "p50_ms", "p99_ms", ...}}``.

    The header row names the columns (``test, rps, avg_latency_ms, ..., p50_latency_ms,
    p99_latency_ms``); older versions without latency columns yield ``rps`` only.
    """
    rows = [r for r in csv.reader(io.StringIO(text)) if r]
    if not rows or rows[0][0] != "test":
        raise ParseError(f"redis-benchmark: no CSV header in the output ({_tail(text)})")
    header = rows[0]
    names = {"rps": "rps", "avg_latency_ms": "avg_ms", "p50_latency_ms": "p50_ms",
             "p95_latency_ms": "p95_ms", "p99_latency_ms": "p99_ms", "max_latency_ms": "max_ms"}
    out: dict[str, dict[str, float]] = {}
    for row in rows[1:]:
        if len(row) != len(header):
            raise ParseError(f"redis-benchmark: malformed CSV row {row!r}")
        test = row[0].split()[0].upper()
        values = {names[h]: float(v) for h, v in zip(header, row, strict=True) if h in names}
        if values.get("rps", 0.0) <= 0:
            raise ParseError(f"redis-benchmark: test {test} reports no throughput")
        out[test] = values
    if not out:
        raise ParseError("redis-benchmark: the CSV output has no result rows")
    return out


# --- sysbench -------------------------------------------------------------------------------------


def sysbench_cpu(text: str) -> dict[str, float]:
    """``sysbench cpu run`` → ``{"events_per_s", "events", "latency_avg_ms", "latency_p95_ms"}``."""
    out = {
        "events_per_s": _float(r"events per second:\s+([\d.]+)", text, "sysbench cpu events/s"),
        "events": _float(r"total number of events:\s+(\d+)", text, "sysbench cpu events"),
        "latency_avg_ms": _float(r"^\s+avg:\s+([\d.]+)", text, "sysbench cpu latency"),
    }
    if out["events"] <= 0:
        raise ParseError("sysbench cpu: no events were run")
    return out


def sysbench_memory(text: str) -> dict[str, float]:
    """``sysbench memory run`` → ``{"mib_per_s", "ops_per_s", "mib"}``."""
    out = {
        "mib_per_s": _float(r"MiB transferred \(([\d.]+) MiB/sec\)", text, "sysbench memory MiB/s"),
        "mib": _float(r"^([\d.]+) MiB transferred", text, "sysbench memory MiB"),
        "ops_per_s": _float(r"Total operations:\s+\d+\s+\(\s*([\d.]+) per second\)", text,
                            "sysbench memory operations/s"),
    }
    if out["mib"] <= 0:
        raise ParseError("sysbench memory: nothing was transferred")
    return out


def sysbench_version(text: str) -> str:
    match = re.search(r"^sysbench ([\w.+~-]+)", text, re.MULTILINE)
    return match.group(1) if match else "unknown"


# --- fio ------------------------------------------------------------------------------------------


def fio_json(text: str) -> dict[str, float]:
    """``fio --output-format=json`` of one job → ``{"mb_per_s", "iops", "p99_ms", "direct"}``.

    Reads the direction that moved data (read or write); MB/s is 10^6 bytes/s; p99 is the
    completion latency's 99th percentile. fio may print warnings before the JSON: they are
    skipped.
    """
    start = text.find("{")
    if start < 0:
        raise ParseError(f"fio: no JSON in the output ({_tail(text)})")
    try:
        data: dict[str, Any] = json.loads(text[start:])
    except ValueError as exc:
        raise ParseError(f"fio: the JSON output does not parse ({exc})") from exc
    jobs = data.get("jobs") or []
    if len(jobs) != 1:
        raise ParseError(f"fio: expected one job in the output, found {len(jobs)}")
    job = jobs[0]
    if job.get("error"):
        raise ParseError(f"fio: the job failed with error {job['error']}")
    for direction in ("read", "write"):
        part = job.get(direction) or {}
        if part.get("io_bytes", 0) > 0:
            pct = (part.get("clat_ns") or {}).get("percentile") or {}
            p99 = pct.get("99.000000")
            if p99 is None:
                raise ParseError(f"fio: no p99 completion latency for the {direction}s")
            options = {**(data.get("global options") or {}), **(job.get("job options") or {})}
            return {
                "mb_per_s": float(part["bw_bytes"]) / 1e6,
                "iops": float(part["iops"]),
                "p99_ms": float(p99) / 1e6,
                "direct": float(str(options.get("direct", "0")) == "1"),
            }
    raise ParseError("fio: the job moved no data")


# --- iperf3 ---------------------------------------------------------------------------------------


def iperf3_json(text: str) -> dict[str, float]:
    """``iperf3 -c ... -J`` → ``{"gbit_per_s", "retransmits"}`` (received side of the test)."""
    try:
        data: dict[str, Any] = json.loads(text)
    except ValueError as exc:
        raise ParseError(f"iperf3: the JSON output does not parse ({exc})") from exc
    if data.get("error"):
        raise ParseError(f"iperf3: {data['error']}")
    end = data.get("end") or {}
    received = end.get("sum_received") or {}
    sent = end.get("sum_sent") or {}
    bps = received.get("bits_per_second")
    if not bps:
        raise ParseError("iperf3: no received throughput in the output")
    return {"gbit_per_s": float(bps) / 1e9, "retransmits": float(sent.get("retransmits", 0))}


def iperf3_moved_nothing(text: str) -> bool:
    """Whether an ``iperf3 -c ... -J`` output shows no data moved: it parses, has no interval,
    and its end has no sent or received byte (a run that failed before its test started)."""
    try:
        data = json.loads(text)
    except ValueError:
        return False
    if not isinstance(data, dict) or data.get("intervals"):
        return False
    end = data.get("end") or {}
    return not any((end.get(side) or {}).get("bytes") for side in ("sum_sent", "sum_received"))


# --- sockperf -------------------------------------------------------------------------------------


def sockperf_pingpong(text: str) -> dict[str, float]:
    """``sockperf ping-pong`` → ``{"p50_us", "p99_us", "avg_us", "observations"}``.

    sockperf reports one-way latency (half the measured round trip), in µs.
    """
    out = {
        "avg_us": _float(r"Summary: Latency is ([\d.]+) usec", text, "sockperf latency"),
        "p50_us": _float(r"percentile 50\.000 =\s+([\d.]+)", text, "sockperf p50"),
        "p99_us": _float(r"percentile 99\.000 =\s+([\d.]+)", text, "sockperf p99"),
        "observations": _float(r"Total (\d+) observations", text, "sockperf observations"),
    }
    if out["observations"] <= 0:
        raise ParseError("sockperf: no observations")
    return out


# --- pgbench --------------------------------------------------------------------------------------


def pgbench_summary(text: str) -> dict[str, float]:
    """``pgbench`` (PostgreSQL 15) end-of-run report → ``{"tps", "latency_avg_ms",
    "transactions", "failed"}``. ``tps`` is pgbench's figure "without initial connection
    time"; a run that processed no transaction is a ParseError, never a zero."""
    out = {
        "tps": _float(r"^tps = ([\d.]+) \(without initial connection time\)", text, "pgbench tps"),
        "latency_avg_ms": _float(r"^latency average = ([\d.]+) ms", text,
                                 "pgbench latency average"),
        "transactions": _float(r"^number of transactions actually processed: (\d+)", text,
                               "pgbench transactions"),
    }
    failed = re.search(r"^number of failed transactions: (\d+)", text, re.MULTILINE)
    out["failed"] = float(failed.group(1)) if failed else 0.0
    if out["transactions"] <= 0 or out["tps"] <= 0:
        raise ParseError("pgbench: no transaction was processed")
    return out


def pgbench_log_latencies_ms(logs: Iterable[str]) -> list[float]:
    """Latencies (ms) of pgbench's per-transaction logs (``-l``): one line per transaction,
    ``client_id transaction_no time script_no time_epoch time_us [schedule_lag] [retries]``
    where ``time`` is the transaction's elapsed time in µs (or ``failed``/``skipped``, left
    out: they have no latency)."""
    values: list[float] = []
    for text in logs:
        for line in text.splitlines():
            parts = line.split()
            if len(parts) < 6:
                continue
            if not parts[2].isdigit():
                continue  # "failed" / "skipped"
            values.append(int(parts[2]) / 1000.0)
    return values


# --- sysbench oltp --------------------------------------------------------------------------------


def sysbench_oltp(text: str) -> dict[str, float]:
    """``sysbench oltp_read_write run`` (1.0) → ``{"tps", "qps", "latency_avg_ms",
    "latency_p95_ms", "transactions", "ignored_errors"}``."""
    out = {
        "transactions": _float(r"^\s+transactions:\s+(\d+)", text, "sysbench oltp transactions"),
        "tps": _float(r"^\s+transactions:\s+\d+\s+\(\s*([\d.]+) per sec\.\)", text,
                      "sysbench oltp transactions/s"),
        "qps": _float(r"^\s+queries:\s+\d+\s+\(\s*([\d.]+) per sec\.\)", text,
                      "sysbench oltp queries/s"),
        "latency_avg_ms": _float(r"^\s+avg:\s+([\d.]+)", text, "sysbench oltp latency avg"),
        "latency_p95_ms": _float(r"^\s+95th percentile:\s+([\d.]+)", text,
                                 "sysbench oltp latency p95"),
    }
    ignored = re.search(r"^\s+ignored errors:\s+(\d+)", text, re.MULTILINE)
    out["ignored_errors"] = float(ignored.group(1)) if ignored else 0.0
    if out["transactions"] <= 0:
        raise ParseError("sysbench oltp: no transaction was run")
    return out
