"""Shared fixtures. Integration tests need real Docker / QEMU: in CI (CI=true) a missing
capability fails the test instead of skipping it, so a green CI always means "ran for real"."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(condition: bool, reason: str) -> None:
    """Skip locally, fail in CI, when a capability an integration test needs is missing."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


def docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    proc = subprocess.run(
        ["docker", "version", "--format", "{{.Server.Version}}"],
        capture_output=True,
        timeout=20,
        check=False,
    )
    return proc.returncode == 0


@pytest.fixture(scope="session")
def need_root() -> None:
    require(os.geteuid() == 0, "needs root (chroot, cgroups, mounts)")


@pytest.fixture(scope="session")
def need_docker(need_root: None) -> None:
    require(docker_answers(), "Docker engine not answering (run scripts/start-dockerd.sh)")


@pytest.fixture(scope="session")
def need_qemu(need_root: None) -> None:
    require(shutil.which("qemu-system-x86_64") is not None, "qemu-system-x86_64 not installed")
