"""Integration: the node from the one rootfs, in a Docker container with a read-only root.

Built through the image stage (``build_artifacts``), started with the workload's launch spec,
reached only through a port published on 127.0.0.1, driven by the real chain driver.
"""

from __future__ import annotations

import subprocess
import time
import urllib.request
import uuid

import pytest

from isobench.images.build import build_artifacts
from isobench.util.netutil import free_port
from isobench.workloads.validator.workload import ValidatorWorkload

pytestmark = pytest.mark.integration


def test_node_in_docker_from_the_rootfs(need_docker: None) -> None:
    workload = ValidatorWorkload()
    artifacts = build_artifacts(workload.rootfs_spec(), {"docker_image"})
    assert artifacts.get("docker_image")
    spec = workload.launch_spec().render("0.0.0.0", 8000)
    port, name = free_port(), f"isobench-validator-test-{uuid.uuid4().hex[:8]}"
    argv = ["docker", "run", "-d", "--name", name, "--label", "isobench=1", "--read-only",
            "--tmpfs", "/tmp", "--memory", "1g", "-p", f"127.0.0.1:{port}:8000",
            "-w", spec.workdir]
    for key, value in spec.env.items():
        argv += ["-e", f"{key}={value}"]
    image = artifacts.get("docker_image")
    subprocess.run([*argv, image, *spec.argv], check=True, capture_output=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}{spec.ready_path}", timeout=1)
                break
            except OSError:
                assert time.monotonic() < deadline, "node in Docker never became ready"
                time.sleep(0.1)
        summary = workload.drive(f"http://127.0.0.1:{port}",
                                 {**workload.default_scenario(), "duration": "12s"})
        m = {k: v["values"] for k, v in summary["metrics"].items()}
        assert m["validator_blocks_applied"]["count"] == 12
        assert m["validator_blocks_missed"]["count"] == 0
        assert m["validator_forged_rejected"]["count"] == m["validator_forged_sent"]["count"] > 0
        assert m["validator_snapshots"]["count"] == 1
        assert m["validator_balance_mismatch"]["count"] == 0
        assert m["http_req_failed"]["passes"] == 0
        stop = subprocess.run(["docker", "stop", "-t", "10", name], capture_output=True,
                              check=True)
        assert stop.returncode == 0
        code = subprocess.run(["docker", "inspect", "-f", "{{.State.ExitCode}}", name],
                              capture_output=True, text=True, check=True).stdout.strip()
        assert code == "0", "node did not exit cleanly on SIGTERM as PID 1"
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
