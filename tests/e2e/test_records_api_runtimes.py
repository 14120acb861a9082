"""The spine, for real: the records API built once, fetched through 127.0.0.1 in every runtime
(the VM: on its own address, over isobench's veth)."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from isobench import plugins
from isobench.images.build import build_artifacts
from isobench.images.spec import Artifacts
from isobench.runtimes.base import Resources, Runtime, RuntimeContext
from isobench.util.netutil import free_port, wait_ready
from isobench.workloads.records_api.workload import RecordsApiWorkload

pytestmark = pytest.mark.integration

RUNTIMES = ["native", "docker-bridge", "docker-host", "vm"]


@pytest.fixture(scope="module")
def artifacts(need_docker: None, need_qemu: None) -> Artifacts:
    spec = RecordsApiWorkload({}).rootfs_spec()
    return build_artifacts(spec, {"rootfs", "docker_image", "vm"})


def _get_json(endpoint: str, path: str) -> tuple[int, object, int]:
    with urllib.request.urlopen(f"{endpoint}{path}", timeout=60) as resp:
        body = resp.read()
        return resp.status, json.loads(body), len(body)


def _leftovers(run_id: str, pids: list[int]) -> dict[str, object]:
    """What of this instance is still there: its containers, processes, mounts."""
    docker = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=isobench.run={run_id}"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    alive = [
        pid
        for pid in pids
        if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    ]
    mounts = [line for line in Path("/proc/mounts").read_text().splitlines() if run_id in line]
    return {"containers": docker, "pids": alive, "mounts": mounts}


@pytest.mark.parametrize("name", RUNTIMES)
def test_records_through_loopback(name: str, artifacts: Artifacts, tmp_path) -> None:
    run_id = f"e2e{int(time.time())}{name}"
    runtime: Runtime = plugins.load("runtime", name)(
        RuntimeContext(work_dir=tmp_path, run_id=run_id)
    )
    assert runtime.check() is None
    workload = RecordsApiWorkload({})
    spec = workload.launch_spec()
    port = free_port()
    instance = runtime.start(artifacts, spec, Resources(), port)
    try:
        deadline = 240.0 if runtime.emulated else 60.0
        startup = wait_ready(
            instance.host_port,
            spec.ready_path,
            launched_at=instance.launched_at,
            deadline_s=deadline,
            exited=lambda: runtime.exited(instance),
            host=instance.host_address,
        )
        assert startup > 0
        status, body, size = _get_json(instance.endpoint, "/records?limit=100")
        assert status == 200
        assert isinstance(body, list) and len(body) == 100
        first = body[0]
        assert set(first["_id"]) == {"$oid"} and "$date" in first["created_at"]
        assert 100_000 < size < 250_000, f"{size} bytes for 100 records"
        with pytest.raises(urllib.error.HTTPError) as err:
            _get_json(instance.endpoint, "/records?limit=0")
        assert err.value.code == 422
        if name == "vm":
            assert instance.facts.get("accel") in {"kvm", "tcg"}
            assert runtime.emulated == (instance.facts.get("accel") == "tcg")
    finally:
        runtime.stop(instance)
    left = _leftovers(run_id, instance.pids)
    assert left == {"containers": "", "pids": [], "mounts": []}, left
