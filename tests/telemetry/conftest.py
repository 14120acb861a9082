"""Fixtures for telemetry tests: a real burn app process on 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest

from isobench.runtimes.base import Instance
from isobench.util.netutil import free_port
from isobench.workloads.burn import APP_DIR
from tests.fixtures.procs import stop


def get(port: int, path: str, timeout: float = 30.0) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as resp:
        data: bytes = resp.read()
    return data


@pytest.fixture
def burn_app() -> Iterator[Instance]:
    """The burn app as a plain host process, wrapped in an Instance like the native runtime's."""
    port = free_port()
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, str(APP_DIR / "app.py"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                get(port, "/healthz", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        yield Instance(runtime="native", host_port=port, launched_at=t0, pids=[proc.pid])
    finally:
        stop(proc)
