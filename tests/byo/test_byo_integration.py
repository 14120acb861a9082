"""Users' own images in every runtime, for real: Docker builds, containers, chroot and QEMU.

The hello-image example (``FROM isobench/base``) reports its environment and working directory;
each runtime must show the image's Env and WorkingDir to the app, reached through 127.0.0.1 (a VM:
its own address).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from isobench import plugins
from isobench.images.build import build_artifacts
from isobench.images.docker_image import ensure_base_image
from isobench.images.user_image import build_tag
from isobench.run.trial import host_port_for
from isobench.runtimes.base import Resources, Runtime, RuntimeContext
from isobench.util import paths
from isobench.util.netutil import wait_ready
from isobench.util.proc import SubprocessRunner
from isobench.workloads.image import ImageWorkload

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
HELLO = ROOT / "examples" / "hello-image" / "Dockerfile"
SEED = ROOT / "examples" / "seed-003" / "Dockerfile"
HELLO_OPTIONS: dict[str, Any] = {
    "dockerfile": str(HELLO), "ready_path": "/healthz",
    "env": {"BIND": "{bind}", "APP_MODE": "bench"},
}


@pytest.fixture(scope="module")
def base_image(need_docker: None) -> str:
    return ensure_base_image(cache=paths.cache_dir(), runner=SubprocessRunner())


def get(endpoint: str, path: str) -> Any:
    with urllib.request.urlopen(f"{endpoint}{path}", timeout=30) as resp:
        return json.loads(resp.read())


def containers(run_id: str) -> list[str]:
    out = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=isobench.run={run_id}"],
                         capture_output=True, text=True, check=True, timeout=30)
    return out.stdout.split()


def run_once(workload: ImageWorkload, runtime_name: str, path: str, tmp_path: Path,
             deadline: float = 120.0) -> tuple[Any, Runtime, str]:
    """Start the workload in one runtime as a trial would, GET ``path``, stop it."""
    run_id = f"byo-{os.getpid()}-{runtime_name}"
    runtime: Runtime = plugins.load("runtime", runtime_name)(
        RuntimeContext(run_id=run_id, work_dir=tmp_path))
    reason = runtime.check()
    if reason:
        pytest.fail(f"{runtime_name} unavailable: {reason}")
    arts = build_artifacts(workload.rootfs_spec(), {"rootfs", runtime.artifact})
    spec = workload.launch_spec()
    port = host_port_for(runtime, spec)
    instance = runtime.start(arts, spec, Resources(), port)
    try:
        wait_ready(instance.host_port, spec.ready_path, launched_at=instance.launched_at,
                   deadline_s=deadline, exited=lambda: runtime.exited(instance),
                   host=instance.host_address)
        body = get(instance.endpoint, path)
    finally:
        runtime.stop(instance)
    return body, runtime, run_id


@pytest.fixture(scope="module")
def hello(base_image: str) -> ImageWorkload:
    workload = ImageWorkload(dict(HELLO_OPTIONS))
    assert workload.check() is None
    return workload


@pytest.mark.parametrize("runtime_name",
                         ["native", "docker-bridge", "docker-host", "gvisor", "vm"])
def test_hello_image_in_every_runtime(hello: ImageWorkload, runtime_name: str,
                                      tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if runtime_name == "vm":
        request.getfixturevalue("need_qemu")
    body, runtime, run_id = run_once(hello, runtime_name, "/", tmp_path,
                                     deadline=240.0 if runtime_name == "vm" else 60.0)
    assert body["greeting"] == "hello from the image"  # the image's ENV
    assert body["cwd"] == "/srv/hello"  # the image's WORKDIR
    assert body["data"] == "built by docker build"  # a file a RUN step wrote, read from cwd
    assert body["env"]["APP_MODE"] == "bench"  # the user's override
    assert body["env"]["PATH"].startswith("/opt/isobench/venv/bin:")  # the base image's ENV
    assert body["env"]["HOME"] == "/home/hello"
    assert body["uid"] != 0  # the image's USER
    if runtime.kind == "container":
        assert containers(run_id) == []


def test_seed_003_answers_records_native_and_docker_host(base_image: str,
                                                         tmp_path: Path) -> None:
    workload = ImageWorkload({
        "dockerfile": str(SEED), "ready_path": "/records",
        # the image's CMD binds 0.0.0.0; on the host network keep it on 127.0.0.1
        "cmd": "uvicorn main:app --host {bind} --port 8000",
    })
    assert workload.check() is None
    spec = workload.launch_spec()
    assert spec.port == 8000 and spec.workdir == "/app"
    for runtime_name in ("native", "docker-host"):
        records, _, _ = run_once(workload, runtime_name, "/records", tmp_path / runtime_name)
        assert isinstance(records, list) and len(records) == 100
        assert {"_id", "name", "overview"} <= set(records[0])


@pytest.fixture
def tiny_tags() -> Iterator[list[str]]:
    tags: list[str] = []
    yield tags
    subprocess.run(["docker", "rmi", *tags], capture_output=True, timeout=120, check=False)


def build_tiny(tmp_path: Path, lines: str, tags: list[str]) -> ImageWorkload:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(f"FROM isobench/base\n{lines}\n")
    tags.append(build_tag(dockerfile, tmp_path))
    return ImageWorkload({"dockerfile": str(dockerfile)})


def test_refusals_for_real_images(base_image: str, tmp_path: Path, tiny_tags: list[str]) -> None:
    (tmp_path / "h").mkdir()
    health = build_tiny(tmp_path / "h", 'EXPOSE 9000\nHEALTHCHECK CMD ["/bin/true"]\n'
                                        'CMD ["python3", "-m", "http.server", "9000"]', tiny_tags)
    reason = health.check()
    assert reason is not None and "HEALTHCHECK only" in reason
    (tmp_path / "v").mkdir()
    volume = build_tiny(tmp_path / "v", 'RUN mkdir /data && echo rows > /data/db\nVOLUME /data\n'
                                        'EXPOSE 9000\nCMD ["python3", "-m", "http.server", "9000"]',
                        tiny_tags)
    reason = volume.check()
    assert reason is not None and "VOLUME /data" in reason
    (tmp_path / "p").mkdir()
    noport = build_tiny(tmp_path / "p", 'CMD ["python3", "-m", "http.server", "9000"]', tiny_tags)
    reason = noport.check()
    assert reason is not None and "--port" in reason
    missing = ImageWorkload({"image": "isobench/does-not-exist:never"})
    reason = missing.check()
    assert reason is not None and "no registry is reachable" in reason


@pytest.fixture
def up_process(hello: ImageWorkload, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    code = (
        "import sys; from isobench.run.up import up; from isobench.runtimes.base import Resources;"
        "from isobench.workloads.image import ImageWorkload;"
        f"sys.exit(up('docker-bridge', ImageWorkload({HELLO_OPTIONS!r}), Resources(),"
        f" work_dir=__import__('pathlib').Path({str(tmp_path)!r})))"
    )
    proc = subprocess.Popen([sys.executable, "-u", "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def test_up_serves_until_ctrl_c_then_cleans_up(up_process: subprocess.Popen[str]) -> None:
    assert up_process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 120
    endpoint = container = None
    while time.monotonic() < deadline and (endpoint is None or container is None):
        line = up_process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("endpoint: "):
            endpoint = line.split()[1]
        if line.startswith("shell: docker exec -it "):
            container = line.split()[4]
    assert endpoint and container, "".join(lines)
    assert endpoint.startswith("http://127.0.0.1:") and endpoint.endswith("/healthz")
    with urllib.request.urlopen(endpoint, timeout=10) as resp:
        assert resp.status == 200
    exec_env = subprocess.run(["docker", "exec", container, "/bin/sh", "-c", "echo $GREETING"],
                              capture_output=True, text=True, timeout=30)
    assert exec_env.stdout.strip() == "hello from the image"
    up_process.send_signal(signal.SIGINT)
    rest, _ = up_process.communicate(timeout=60)
    assert up_process.returncode == 0, "".join(lines) + rest
    gone = subprocess.run(["docker", "ps", "-aq", "--filter", f"name=^{container}$"],
                          capture_output=True, text=True, timeout=30)
    assert gone.stdout.strip() == ""


def test_taken_fixed_port_fails_the_run_in_one_line(hello: ImageWorkload, tmp_path: Path) -> None:
    """A user's app fixed to a port that something else holds: one line, nothing started."""
    import socket

    port = hello.launch_spec().port
    assert port is not None
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", port))
        holder.listen()
        proc = subprocess.run(
            [sys.executable, "-m", "isobench.cli", "run", "--dockerfile", str(HELLO),
             "--ready-path", "/healthz", "--runtimes", "native", "--quick", "--no-report",
             "--out", str(tmp_path / "run")],
            capture_output=True, text=True, timeout=600,
        )
    assert proc.returncode == 2, proc.stdout[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"port {port} on 127.0.0.1 is already taken" in lines[0], lines
    assert not (tmp_path / "run" / "trials.jsonl").exists()
