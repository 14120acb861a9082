"""Faults for real: the workload is killed in the middle of a trial's measured load.

Each test runs ``isobench run --workload burn --runtimes R --trials 2 --duration 6s --warmup 0``
and, from a thread of the test, kills that run's own workload during trial 1 (found by the run
id: its container label, its native state record, its VM state record; nothing else is ever
touched). Then:

- trial 1 is recorded ``failed`` with a reason naming the death (and no figure is printed for it);
- the run goes on: trial 2 is ``ok`` and is the only trial the statistics use;
- ``isobench run`` exits 1 (a run with a failed trial exits 1; 0 only when every trial counted);
- nothing of the run is left behind (containers, QEMU processes and their namespaces, native
  state, mounts).

Whole file: about 2 minutes (native ~15 s, docker-bridge ~20 s, gvisor ~25 s, vm under TCG
~40 s including two boots). Run under the heavy lock::

    flock /tmp/isobench-heavy.lock python -m pytest -q tests/faults
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from isobench.util import clientnet, paths
from isobench.util.locks import read_records
from isobench.util.netutil import http_status

pytestmark = pytest.mark.integration

DURATION_S = 6.0
KILL_AFTER_S = 2.0
"""Seconds into trial 1's measured load (warm-up 0) at which the workload is killed."""


# -- finding this run's own objects ------------------------------------------------------------
def _docker(*args: str) -> str:
    out = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=60)
    return out.stdout


def run_containers(run_id: str, *, running: bool = True) -> list[str]:
    """Ids of the containers labelled with this run id."""
    flags = [] if running else ["-a"]
    return _docker("ps", *flags, "-q", "--filter", f"label=isobench.run={run_id}").split()


def container_port(cid: str) -> int | None:
    """The 127.0.0.1 port the test reaches a container's burn app on."""
    published = _docker("port", cid).split()
    for word in published:
        if word.startswith("127.0.0.1:"):
            return int(word.rsplit(":", 1)[1])
    try:  # host network: the port is on the app's command line
        args = json.loads(_docker("inspect", "--format", "{{json .Args}}", cid).strip() or "[]")
        return int(args[args.index("--port") + 1])
    except (ValueError, IndexError):  # gone meanwhile (a trial ending), or no --port
        return None


def native_pids(run_id: str) -> list[int]:
    """Pids of this run's live native workloads, from the runtime's state records."""
    pids = []
    for path in (paths.state_dir() / "native").glob(f"{run_id}-*.json"):
        with contextlib.suppress(OSError, ValueError):
            state = json.loads(path.read_text())
            if state.get("run_id") == run_id and state.get("pid"):
                pids.append(int(state["pid"]))
    return [p for p in pids if psutil.pid_exists(p)]


def qemu_pids(marker: str) -> list[int]:
    """QEMU processes whose command line holds this run's directory (its work dir is inside)."""
    out = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmd = " ".join(proc.info.get("cmdline") or [])
        if (proc.info.get("name") or "").startswith("qemu-system") and marker in cmd:
            out.append(int(proc.pid))
    return out


def vm_records(run_id: str) -> list[dict[str, Any]]:
    """The VM runtime's state records of this run (each names its QEMU pid, work dir, network)."""
    found = []
    for path in (paths.state_dir() / "vm").glob("*.json"):
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(path.read_text())
            if data.get("run_id") == run_id and data.get("pid") and data.get("net"):
                found.append(data)
    return found


def vm_of(run_id: str, out: Path) -> tuple[str, int] | None:
    """(QEMU pid, the burn app's port in the guest) of this run's live VM."""
    for data in vm_records(run_id):
        pid = int(data["pid"])
        if pid not in qemu_pids(str(out)):
            continue
        with contextlib.suppress(OSError):
            match = re.search(r"--port (\d+)", (Path(data["work_dir"]) / "launch.sh").read_text())
            if match:
                return str(pid), int(match.group(1))
    return None


def vm_address(pid: str) -> str:
    """The guest's address of the VM with this QEMU pid: the second of its /30."""
    for path in (paths.state_dir() / "vm").glob("*.json"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            data = json.loads(path.read_text())
            if str(data.get("pid")) == pid:
                return str(list(ipaddress.IPv4Network(data["net"]["subnet"]).hosts())[1])
    return "127.0.0.1"


def _cmdline_port(pid: int, pattern: str) -> int | None:
    with contextlib.suppress(psutil.Error):
        match = re.search(pattern, " ".join(psutil.Process(pid).cmdline()))
        if match:
            return int(match.group(1))
    return None


class Victim:
    """How to find and kill one runtime's instance of a given run."""

    def __init__(self, find: Callable[[], tuple[str, int] | None],
                 kill: Callable[[str], None], host: Callable[[str], str] = lambda h: "127.0.0.1",
                 ) -> None:
        self.find = find  # → (handle, port) once the instance exists
        self.host = host  # handle → the address its port answers on
        self.kill = kill


def victim_for(runtime: str, run_id: str, out: Path) -> Victim:
    if runtime == "native":
        def find_native() -> tuple[str, int] | None:
            for pid in native_pids(run_id):
                port = _cmdline_port(pid, r"--port (\d+)")
                if port:
                    return str(pid), port
            return None

        return Victim(find_native, lambda pid: os.kill(int(pid), signal.SIGKILL))
    if runtime == "vm":
        return Victim(lambda: vm_of(run_id, out), lambda pid: os.kill(int(pid), signal.SIGKILL),
                      host=vm_address)

    def find_container() -> tuple[str, int] | None:
        for cid in run_containers(run_id):
            port = container_port(cid)
            if port:
                return cid, port
        return None

    def kill_container(cid: str) -> None:
        _docker("kill", cid)

    return Victim(find_container, kill_container)


# -- the run ------------------------------------------------------------------------------------
def _kill_during_first_trial(victim: Victim, proc: subprocess.Popen[str],
                             done: dict[str, Any]) -> None:
    """Wait for trial 1's instance to answer, let the load run KILL_AFTER_S, kill it."""
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            found = victim.find()
            if found and http_status(found[1], "/healthz", host=victim.host(found[0])) == 200:
                time.sleep(KILL_AFTER_S)
                victim.kill(found[0])
                done["killed"] = found[0]
                done["at"] = time.time()
                return
            time.sleep(0.1)
        done["error"] = "trial 1's instance never answered"
    except Exception as exc:  # reported by the test
        done["error"] = f"{type(exc).__name__}: {exc}"


def run_and_kill(runtime: str, tmp_path: Path) -> tuple[int, str, Path, dict[str, Any]]:
    run_id = f"fault-{runtime}-{uuid.uuid4().hex[:8]}"
    out = tmp_path / run_id
    proc = subprocess.Popen(
        [sys.executable, "-m", "isobench.cli", "run", "--workload", "burn", "--runtimes", runtime,
         "--trials", "2", "--duration", f"{DURATION_S:g}s", "--warmup", "0", "--no-report",
         "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    done: dict[str, Any] = {}
    killer = threading.Thread(target=_kill_during_first_trial,
                              args=(victim_for(runtime, run_id, out), proc, done), daemon=True)
    killer.start()
    try:
        output, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # the run's own cleanup
            proc.communicate(timeout=120)
    killer.join(timeout=10)
    assert "killed" in done, (done.get("error"), output[-3000:])
    return proc.returncode, output, out, done


def assert_failed_then_ok(rc: int, output: str, out: Path, death: str) -> dict[str, Any]:
    trials = [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]
    assert [t["trial"] for t in trials] == [0, 1], trials
    first, second = trials
    assert first["status"] == "failed", first
    reason = first["error"]
    assert reason.startswith("workload exited at "), reason
    assert "of the measured load" in reason, reason
    assert death in reason, reason
    assert "\n" not in reason
    assert second["status"] == "ok", second["error"]
    assert second["load"]["metrics"]["http_req_failed"]["values"]["rate"] <= 0.01
    # the terminal: trial 1 shown failed with its reason, never as a rate
    assert f"#1: {reason[:60]}" in " ".join(output.split()), output[-3000:]
    assert not re.search(r"ok \S+ #1:", output), output[-3000:]
    # the statistics use trial 2 only
    summary = json.loads((out / "summary.json").read_text())
    runtime = first["arm"]
    assert summary["per_runtime"][runtime]["metrics"]["rps"]["n"] == 1
    assert summary["per_runtime"][runtime]["metrics"]["rps"]["values"] == [
        second["load"]["metrics"]["http_reqs"]["values"]["rate"]]
    assert rc == 1, output[-3000:]
    return first


def assert_nothing_left(run_id: str, out: Path) -> None:
    assert run_containers(run_id, running=False) == []
    assert qemu_pids(str(out)) == []
    assert list((paths.state_dir() / "native").glob(f"{run_id}-*")) == []
    assert [m for m in Path("/proc/mounts").read_text().splitlines() if run_id in m] == []
    assert vm_records(run_id) == []
    assert [r for _, r in read_records(clientnet.RECORDS) if r.get("run_id") == run_id] == []


# -- the faults ---------------------------------------------------------------------------------
def test_native_app_killed(tmp_path: Path, need_root: None) -> None:
    rc, output, out, _ = run_and_kill("native", tmp_path)
    assert_failed_then_ok(rc, output, out, "was killed by signal 9 (SIGKILL)")
    assert_nothing_left(out.name, out)


def test_docker_bridge_container_killed(tmp_path: Path, need_docker: None) -> None:
    rc, output, out, _ = run_and_kill("docker-bridge", tmp_path)
    assert_failed_then_ok(rc, output, out, "exited with code 137 (SIGKILL)")
    assert_nothing_left(out.name, out)


def test_gvisor_container_killed(tmp_path: Path, need_docker: None) -> None:
    from isobench.runtimes.docker import GvisorRuntime
    from tests.conftest import require

    reason = GvisorRuntime().check()
    require(reason is None, f"gVisor unavailable: {reason}")
    rc, output, out, _ = run_and_kill("gvisor", tmp_path)
    assert_failed_then_ok(rc, output, out, "exited with code 137 (SIGKILL)")
    assert_nothing_left(out.name, out)


def test_vm_qemu_killed(tmp_path: Path, need_qemu: None) -> None:
    rc, output, out, _ = run_and_kill("vm", tmp_path)
    assert_failed_then_ok(rc, output, out, "was killed by signal 9 (SIGKILL)")
    assert_nothing_left(out.name, out)
