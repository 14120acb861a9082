"""A tiny rootfs built once per session (cached under /var/tmp/isobench-test-cache), reusable by
every runtime's integration tests.

The rootfs holds an ``echo`` app: a stdlib http.server that answers every GET with JSON of its
environment, working directory, allowed CPUs, uid and pid. ``/healthz`` answers 200 as well.
"""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

import pytest

from isobench.images.spec import VENV, WORKLOAD_DIR, Artifacts, RootfsSpec
from isobench.util import netutil
from isobench.workloads.base import LaunchSpec

TEST_CACHE = Path(os.environ.get("ISOBENCH_TEST_CACHE", "/var/tmp/isobench-test-cache"))

ECHO_APP = textwrap.dedent(
    '''
    """Answers every GET with JSON describing the process (isobench test app)."""
    import json
    import os
    import sys
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({
                "env": dict(os.environ),
                "cwd": os.getcwd(),
                "cpus": sorted(os.sched_getaffinity(0)),
                "uid": os.getuid(),
                "pid": os.getpid(),
                "executable": sys.executable,
                "path": self.path,
            }).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass


    if __name__ == "__main__":
        ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), Handler).serve_forever()
    '''
).lstrip()


def echo_source(cache: Path = TEST_CACHE) -> Path:
    """The echo app written to a stable path (same bytes → same rootfs key)."""
    src = cache / "src" / "echo_app"
    src.mkdir(parents=True, exist_ok=True)
    app = src / "echo_app.py"
    if not app.exists() or app.read_text() != ECHO_APP:
        app.write_text(ECHO_APP)
    return src


def tiny_spec(cache: Path = TEST_CACHE) -> RootfsSpec:
    """A small rootfs: minbase + python3, one pure-python wheel, the echo app, a build command."""
    return RootfsSpec(
        name="isobench-test",
        pip_requirements=("six==1.16.0",),
        files={WORKLOAD_DIR: echo_source(cache)},
        build_commands=(("/bin/sh", "-c", f"echo built > {WORKLOAD_DIR}/built.txt"),),
    )


def echo_launch(user: str | None = None) -> LaunchSpec:
    """Launch the echo app on {bind}:{port} with a marker variable and a working directory."""
    return LaunchSpec(
        argv=(f"{VENV}/bin/python", f"{WORKLOAD_DIR}/echo_app.py", "{bind}", "{port}"),
        env={"ISOBENCH_MARKER": "hello-{port}", "PYTHONUNBUFFERED": "1"},
        workdir=WORKLOAD_DIR,
        ready_path="/healthz",
        user=user,
    )


@pytest.fixture(scope="session")
def tiny_rootfs(need_root: None) -> Artifacts:
    """The tiny rootfs (built once, then cached across sessions) as Artifacts(rootfs only)."""
    from isobench.images.build import build_artifacts

    started = time.monotonic()
    artifacts = build_artifacts(tiny_spec(), {"rootfs"}, cache=TEST_CACHE)
    print(f"\n[bench] tiny rootfs ready in {time.monotonic() - started:.2f} s: {artifacts.rootfs}")
    return artifacts


@pytest.fixture(scope="session")
def tiny_docker(need_docker: None, tiny_rootfs: Artifacts) -> Artifacts:
    """The tiny rootfs plus its Docker image."""
    from isobench.images.build import build_artifacts

    return build_artifacts(tiny_spec(), {"rootfs", "docker_image"}, cache=TEST_CACHE)


def get_json(url: str, timeout: float = 2.0) -> dict:
    """GET a URL on 127.0.0.1 and decode its JSON body."""
    import json
    import urllib.request

    with urllib.request.urlopen(url, timeout=timeout) as resp:
        assert resp.status == 200
        return json.loads(resp.read())


def wait_ready(runtime, instance, deadline_s: float = 30.0) -> float:
    """Poll /healthz until 200, failing fast when the instance exited; seconds since launch."""
    return netutil.wait_ready(
        instance.host_port, "/healthz", launched_at=instance.launched_at,
        deadline_s=deadline_s, exited=lambda: runtime.exited(instance),
        host=instance.host_address,
    )


def mounts_containing(text: str) -> list[str]:
    with open("/proc/self/mounts") as fh:
        return [line.split()[1] for line in fh if text in line]
