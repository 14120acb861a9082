"""The micro agent: only whitelisted benchmarks run; the host side checks exit status and output."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import pytest

from isobench.errors import IsobenchError
from isobench.results import TrialRecord
from isobench.workloads.micro import local
from isobench.workloads.micro.common import AGENT_DIR

DATA = Path(__file__).parent / "data"


def load_agent() -> ModuleType:
    spec = importlib.util.spec_from_file_location("micro_agent_under_test", AGENT_DIR / "agent.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[tuple[ModuleType, str]]:
    """The real agent on 127.0.0.1:<free port>, its work directory under tmp_path."""
    module = load_agent()
    module.CONFIG["workdir"] = str(tmp_path / "work")
    server = ThreadingHTTPServer(("127.0.0.1", 0), module.Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield module, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def get(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_parse_request_whitelist_and_bounds() -> None:
    module = load_agent()
    assert module.parse_request("/run?bench=sysbench-cpu&seconds=5") == ("sysbench-cpu", 5)
    for bad in ("/run?bench=rm", "/run?bench=", "/run", "/run?bench=sysbench-cpu;id",
                "/run?bench=../../bin/sh"):
        with pytest.raises(ValueError, match="unknown bench"):
            module.parse_request(bad)
    for seconds in ("0", "601", "-1", "1e3", "5;id", "%20"):
        with pytest.raises(ValueError, match="seconds must be"):
            module.parse_request(f"/run?bench=xz&seconds={seconds}")


def test_commands_are_fixed() -> None:
    module = load_agent()
    assert module.BENCHES["sysbench-cpu"](7) == [
        "sysbench", "cpu", "--cpu-max-prime=20000", "--threads=1", "--time=7", "run"]
    assert "--memory-block-size=1M" in module.BENCHES["sysbench-memory-read"](3)
    assert set(module.BENCHES) == {
        "sysbench-cpu", "sysbench-memory-read", "sysbench-memory-write", "fio-seqread",
        "fio-seqwrite", "fio-randread", "fio-randwrite", "fio-vol-seqread", "fio-vol-seqwrite",
        "fio-vol-randread", "fio-vol-randwrite", "xz"}


def test_unknown_bench_is_refused_and_runs_nothing(agent: tuple[ModuleType, str]) -> None:
    module, url = agent
    ran: list[int] = []
    module.BENCHES["sysbench-cpu"] = lambda s: ran.append(s) or ["true"]
    status, body = get(f"{url}/run?bench=sh")
    assert status == 404 and "unknown bench" in str(body["error"])
    assert ran == []
    assert get(f"{url}/healthz") == (200, {"ok": True})


def test_run_answers_output_and_exit_code(agent: tuple[ModuleType, str]) -> None:
    module, url = agent
    fixture = str(DATA / "sysbench_cpu.txt")
    module.BENCHES["sysbench-cpu"] = lambda s: ["cat", fixture]
    status, body = get(f"{url}/run?bench=sysbench-cpu&seconds=2")
    assert status == 200
    assert body["exit_code"] == 0 and body["argv"] == ["cat", fixture]
    assert "events per second:  1417.78" in str(body["stdout"])


def _trial(load: dict[str, object]) -> TrialRecord:
    return TrialRecord("native", 0, 0, 0, "ok", 0.0, 1.0, load=dict(load))


def test_drive_parses_the_agents_answer(agent: tuple[ModuleType, str]) -> None:
    module, url = agent
    module.BENCHES["sysbench-cpu"] = lambda s: ["cat", str(DATA / "sysbench_cpu.txt")]
    workload = local.SysbenchCpuWorkload()
    summary = workload.drive(url, {"duration": "2s"})
    trial = _trial(summary)
    specs = {s.name: s for s in workload.metric_specs()}
    assert workload.metric_specs()[0].name == "sysbench_cpu_events"
    assert specs["sysbench_cpu_events"].extract(trial) == 1417.78
    assert summary["raw"]["sysbench-cpu"]["exit_code"] == 0
    assert summary["facts"]["sysbench-cpu"]["argv"][0] == "cat"


def test_drive_fails_on_a_non_zero_exit(agent: tuple[ModuleType, str]) -> None:
    module, url = agent
    module.BENCHES["sysbench-cpu"] = lambda s: ["sh", "-c", "echo 'FATAL: no cpu' >&2; exit 3"]
    with pytest.raises(IsobenchError, match="sysbench-cpu exited 3 inside the runtime: FATAL"):
        local.SysbenchCpuWorkload().drive(url, {"duration": "1s"})


def test_drive_fails_when_no_result_was_printed(agent: tuple[ModuleType, str]) -> None:
    module, url = agent
    module.BENCHES["sysbench-cpu"] = lambda s: ["echo", "sysbench 1.0.20"]
    with pytest.raises(IsobenchError, match="not found in the output"):
        local.SysbenchCpuWorkload().drive(url, {"duration": "1s"})


def test_fio_records_whether_io_was_direct(agent: tuple[ModuleType, str]) -> None:
    module, url = agent
    module.BENCHES["fio-randread"] = lambda s: ["cat", str(DATA / "fio_randread_direct.json")]
    answer = local.FioWorkload().parse("fio-randread", get(f"{url}/run?bench=fio-randread")[1])
    assert answer["fio_randread_direct"] == 1.0
    assert answer["fio_randread_iops"] == pytest.approx(11208.895552)


def test_fio_asks_for_a_volume_and_keeps_the_root_metric_names() -> None:
    workload = local.FioWorkload({"fio_size_mb": 1024})
    spec = workload.launch_spec()
    assert spec.volumes == (local.FIO_VOLUME,) and spec.volume_mb == 1280
    assert spec.argv[-4:] == ("--volume-dir", local.FIO_VOLUME, "--fio-iomem", "malloc")
    assert local.FioWorkload().launch_spec().volume_mb == 1024
    names = [m.name for m in workload.metric_specs()]
    assert names[:6] == ["fio_randread_iops", "fio_randwrite_iops", "fio_seqread_mb_s",
                         "fio_seqwrite_mb_s", "fio_randread_p99_ms", "fio_randwrite_p99_ms"]
    assert {n.replace("fio_vol_", "fio_") for n in names[6:]} == set(names[:6])
    assert workload.benches[4:] == ("fio-vol-seqread", "fio-vol-seqwrite", "fio-vol-randread",
                                    "fio-vol-randwrite")


def test_fio_buffer_option_default_huge_and_refused(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    default = local.FioWorkload()
    assert default.check() is None and default.iomem() == "malloc"
    assert "--iomem=malloc" in default.options["parameters"]["buffer"]
    bad = local.FioWorkload({"fio_buffer": "hugepages"})
    reason = bad.check()
    assert reason and "fio_buffer must be one of default, huge, not 'hugepages'" in reason
    assert "(fix: fio_buffer: default or huge)" in reason
    huge = local.FioWorkload({"fio_buffer": "huge"})
    assert huge.launch_spec().argv[-2:] == ("--fio-iomem", "mmaphuge")
    assert "--iomem=mmaphuge" in huge.options["parameters"]["buffer"]
    monkeypatch.setattr(local, "free_huge_pages", lambda: 0)
    assert huge.check() == ("fio_buffer huge needs a free huge page on this host, it has none "
                            "(fix: sysctl vm.nr_hugepages=4)")
    monkeypatch.setattr(local, "free_huge_pages", lambda: 2)
    assert huge.check() is None


def test_free_huge_pages_reads_meminfo(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24000000 kB\nHugePages_Total:       4\n"
                       "HugePages_Free:        3\nHugepagesize:       2048 kB\n")
    assert local.free_huge_pages(str(meminfo)) == 3
    meminfo.write_text("MemTotal:       24000000 kB\n")
    assert local.free_huge_pages(str(meminfo)) == 0
    assert local.free_huge_pages(str(tmp_path / "absent")) == 0
    assert local.free_huge_pages() >= 0  # this kernel's own line parses


def test_agent_gives_fio_a_huge_page_buffer_when_asked(tmp_path: Path) -> None:
    module = load_agent()
    module.CONFIG["workdir"] = str(tmp_path)
    assert not any(a.startswith("--iomem") for a in module.BENCHES["fio-seqread"](3))
    module.CONFIG["fio_iomem"] = "mmaphuge"
    for bench in ("fio-seqread", "fio-randwrite"):
        assert module.BENCHES[bench](3)[-1] == "--iomem=mmaphuge"
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("HugePages_Total:       0\nHugePages_Free:        0\n")
    argv = module.BENCHES["fio-seqread"](3)
    assert module.huge_page_hint(argv, str(meminfo)) == (
        "fio_buffer huge: the kernel fio ran on has no huge page reserved "
        "(vm.nr_hugepages is 0 there)")
    meminfo.write_text("HugePages_Total:       4\nHugePages_Free:        4\n")
    assert module.huge_page_hint(argv, str(meminfo)) == ""
    assert module.huge_page_hint(["fio", "--iomem=malloc"], str(tmp_path / "absent")) == ""


def test_fio_volume_jobs_write_in_the_volume_and_refuse_without_one(
        agent: tuple[ModuleType, str], tmp_path: Path) -> None:
    module, url = agent
    status, body = get(f"{url}/run?bench=fio-vol-randread&seconds=1")
    assert status == 200 and body["exit_code"] == 127
    assert "no volume directory for fio-vol-randread" in str(body["stderr"])
    volume = tmp_path / "vol"
    volume.mkdir()
    module.CONFIG["volume_dir"] = str(volume)
    argv = module.BENCHES["fio-vol-randwrite"](3)
    assert f"--filename={volume}/fio.data" in argv and "--rw=randwrite" in argv
    assert "--bs=4k" in argv and "--runtime=3" in argv
    assert f"--filename={module.CONFIG['workdir']}/fio.data" in module.BENCHES["fio-seqread"](3)
    module.BENCHES["fio-vol-randread"] = lambda s: ["cat", str(DATA / "fio_randread_direct.json")]
    body = get(f"{url}/run?bench=fio-vol-randread")[1]
    assert body["facts"]["workdir"] == str(volume)  # type: ignore[index]
    answer = local.FioWorkload().parse("fio-vol-randread", body)
    assert answer["fio_vol_randread_iops"] == pytest.approx(11208.895552)
    assert answer["fio_vol_randread_direct"] == 1.0


def test_xz_is_timed_by_the_agent(agent: tuple[ModuleType, str], tmp_path: Path) -> None:
    module, url = agent
    module.XZ_INPUT_MB = 1
    status, body = get(f"{url}/run?bench=xz&seconds=1")
    assert status == 200 and body["exit_code"] == 0, body
    assert body["stdout"] == ""  # the compressed stream is discarded, not returned
    figures = local.XzWorkload().parse("xz", body)
    assert figures["xz_seconds"] > 0
    assert (tmp_path / "work" / "xz.input").stat().st_size == 2**20


def test_frame_pieces_counts_physically_contiguous_runs() -> None:
    module = load_agent()
    assert module.frame_pieces([]) == 0
    assert module.frame_pieces([7]) == 1
    assert module.frame_pieces([5, 6, 7, 10, 11, 20]) == 3
    assert module.frame_pieces(list(range(100, 356))) == 1  # one huge page's worth
    assert module.frame_pieces(list(range(256, 0, -1))) == 256  # each page on its own


BUFFER_CHILD = (  # private, and executable so that the kernel merges it with no neighbour
    "import mmap, sys, time\n"
    "buf = mmap.mmap(-1, 2**20 + 8192, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS,\n"
    "                prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)\n"
    "for i in range(0, len(buf), 4096): buf[i] = 1\n"
    "print('ready', flush=True); time.sleep(30)\n"
)


def test_the_layout_of_a_real_buffer_is_read_from_pagemap(need_root: None) -> None:
    """A real process with a touched 1 MiB buffer, the way fio's job process holds one: found
    through its parent (fio forks its job), counted from /proc/PID/pagemap (root)."""
    module = load_agent()
    parent = subprocess.Popen(["sh", "-c", f'"{sys.executable}" -c "$0"; true', BUFFER_CHILD],
                              stdout=subprocess.PIPE, text=True)
    children = Path(f"/proc/{parent.pid}/task/{parent.pid}/children")
    try:
        assert parent.stdout is not None and parent.stdout.readline().strip() == "ready"
        pieces = module.job_pieces(parent.pid)
        assert isinstance(pieces, int) and 1 <= pieces <= 258, pieces
        assert module.buffer_pieces(parent.pid) is None  # the parent holds no such buffer
    finally:
        for child in children.read_text().split() if children.exists() else []:
            os.kill(int(child), signal.SIGKILL)
        parent.wait()
    assert module.job_pieces(parent.pid) is None  # gone: nothing to read, no error


def test_run_command_exit_codes_and_timeout() -> None:
    module = load_agent()
    assert module.run_command(["sh", "-c", "echo out; echo err >&2; exit 3"], False, 10,
                              layout_within=2.0) == (3, b"out\n", b"err\n", None)
    code, out, err, pieces = module.run_command(["sleep", "30"], True, 0.3, None)
    assert (code, out, pieces) == (127, b"", None) and b"timed out" in err
    code, _, err, _ = module.run_command(["/nonexistent/fio"], False, 10, None)
    assert code == 127 and b"nonexistent" in err
