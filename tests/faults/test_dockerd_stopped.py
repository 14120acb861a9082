"""dockerd stopped in the middle of a docker-bridge trial, for real.

``isobench run --workload burn --runtimes docker-bridge --trials 2 --duration 14s`` runs; 1 s
into trial 1's measured load the test stops dockerd (SIGTERM, as a host's shutdown or an upgrade
would) and waits until it is gone. dockerd stops its containers on the way out (SIGTERM, SIGKILL
after their 10 s stop timeout), so the workload dies inside the 14 s load. Then:

- trial 1 is ``failed`` with a one-line reason (the death, when it was seen, the errors), never a
  figure; trial 2 fails to start, with the engine's own words; no trial counts without its data;
- the run ends cleanly (exit 1: a trial failed; no traceback, no hang);
- dockerd is started again the way ``scripts/setup-host.sh`` starts it
  (``scripts/start-dockerd.sh``) and ``docker info`` answers before the test ends;
- ``isobench clean`` then removes what the run could not (its container, which dockerd kept),
  and nothing of the run is left: no container with its label, no state record, no docker-proxy
  on its port, no mount.

It stops the host's Docker engine: run it only under the heavy lock, with no other container
running (it skips when one is: stopping dockerd would stop it too). About 30 s.

(A shorter load is not enough: while dockerd waits for a container to stop, the container still
serves, and a trial that ends before it dies is rightly ok.)
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import pytest

from isobench.runtimes.docker import dockerd_pids
from isobench.util import paths
from isobench.util.netutil import http_status
from tests.faults.test_kill_mid_trial import container_port, run_containers

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def docker_answers() -> bool:
    return subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"],
                          capture_output=True, timeout=30).returncode == 0


def restart_dockerd() -> None:
    """As setup-host.sh does (unless a supervisor such as systemd already restarted it)."""
    deadline = time.monotonic() + 20
    while dockerd_alive() and not docker_answers() and time.monotonic() < deadline:
        time.sleep(0.5)  # a supervisor is bringing it back
    if not docker_answers():
        subprocess.run(["bash", str(ROOT / "scripts" / "start-dockerd.sh")], check=False,
                       timeout=120)


def dockerd_alive() -> bool:
    return any(psutil.pid_exists(p) for p in dockerd_pids())


def _stop_dockerd_in_trial_1(run_id: str, proc: subprocess.Popen[str],
                             done: dict[str, Any]) -> None:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        for cid in run_containers(run_id):
            port = container_port(cid)
            if port and http_status(port, "/healthz") == 200:
                time.sleep(1.0)
                done["port"] = port
                pids = dockerd_pids()
                for pid in pids:
                    os.kill(pid, 15)
                done["stopped"] = pids
                for pid in pids:
                    with contextlib.suppress(psutil.NoSuchProcess, psutil.TimeoutExpired):
                        psutil.Process(pid).wait(timeout=60)
                done["gone_after"] = time.time()
                return
        time.sleep(0.1)


def test_dockerd_stopped_mid_trial(tmp_path: Path, need_docker: None) -> None:
    if subprocess.run(["docker", "ps", "-q"], capture_output=True, text=True,
                      timeout=30).stdout.strip():
        pytest.skip("other containers are running: stopping dockerd would stop them")
    if not dockerd_pids():
        pytest.skip("no dockerd pid file: this dockerd is not one the test can restart")
    run_id = f"fault-dockerd-{uuid.uuid4().hex[:8]}"
    out = tmp_path / run_id
    proc = subprocess.Popen(
        [sys.executable, "-m", "isobench.cli", "run", "--workload", "burn", "--runtimes",
         "docker-bridge", "--trials", "2", "--duration", "14s", "--warmup", "0", "--no-report",
         "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "COLUMNS": "250"})
    done: dict[str, Any] = {}
    stopper = threading.Thread(target=_stop_dockerd_in_trial_1, args=(run_id, proc, done),
                               daemon=True)
    stopper.start()
    try:
        stdout, stderr = proc.communicate(timeout=300)
        stopper.join(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=60)
        stopper.join(timeout=90)
        restart_dockerd()
    assert docker_answers(), "dockerd did not come back"
    assert "stopped" in done, stdout[-3000:] + stderr
    assert "Traceback" not in stdout + stderr
    assert proc.returncode == 1, stdout[-3000:] + stderr
    trials = [json.loads(x) for x in (out / "trials.jsonl").read_text().splitlines()]
    assert [t["trial"] for t in trials] == [0, 1]
    first, second = trials
    assert first["status"] == "failed", first
    assert first["error"] and "\n" not in first["error"]
    assert first["error"].startswith("workload exited at "), first["error"]
    assert second["status"] == "failed", second
    assert second["error"] and "\n" not in second["error"]  # "Cannot connect to the Docker
    assert "--help'" not in second["error"], second["error"]  # daemon ..." (or shutting down)
    for trial in trials:  # every trial is data with its figures, or failed with its reason
        assert trial["status"] in ("ok", "failed")
        if trial["status"] == "failed":
            assert trial["error"], trial
    summary = json.loads((out / "summary.json").read_text())
    ok = [t for t in trials if t["status"] == "ok"]
    rps = (summary.get("per_runtime", {}).get("docker-bridge", {}).get("metrics", {})
           .get("rps", {}))
    assert rps.get("n", 0) == len(ok)

    clean = subprocess.run([sys.executable, "-m", "isobench.cli", "clean"], capture_output=True,
                           text=True, cwd=ROOT, timeout=300)
    assert clean.returncode in (0, 1), clean.stdout + clean.stderr  # 1: something else unchecked
    assert run_containers(run_id, running=False) == []
    assert not list(paths.state_dir().glob(f"*/*{run_id}*"))
    assert [m for m in Path("/proc/mounts").read_text().splitlines() if run_id in m] == []
    proxies = [p.pid for p in psutil.process_iter(["name", "cmdline"])
               if (p.info.get("name") or "") == "docker-proxy"
               and str(done["port"]) in (p.info.get("cmdline") or [])]
    assert proxies == []
