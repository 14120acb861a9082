"""``isobench clean`` removes only what dead runs left, and runs exclude each other.

(a) a user's container of ``isobench/base`` (which README tells users to build FROM) survives
    ``isobench clean`` and ``isobench clean --cache``;
(b) ``isobench clean`` during a live run (native + docker-bridge) leaves that run's instances, and
    every trial of the run is ok;
(c) a second run pinned to the same CPUs is refused (exit 2, one line naming the first run's pid);
(d) ``--resume`` of the live run is refused the same way, and adds no trial records.

Real Docker and the native runtime; run under the heavy lock (nothing else on the host runs).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

BASE = "isobench/base"


def _cli(*args: str, env: dict[str, str] | None = None,
         timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "isobench.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def _docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120)


def _exists(container: str) -> bool:
    return _docker("container", "inspect", container).returncode == 0


@pytest.fixture(scope="module")
def base_image(need_docker: None) -> str:
    """``isobench/base``, built with ``isobench base-image`` when missing."""
    if _docker("image", "inspect", BASE).returncode != 0:
        built = _cli("base-image", timeout=1800)
        assert built.returncode == 0, built.stderr[-2000:]
    return BASE


def test_clean_spares_a_users_container_of_isobench_base(base_image: str, tmp_path: Path) -> None:
    name = f"victim-{uuid.uuid4().hex[:8]}"
    started = _docker("run", "-d", "--name", name, "--entrypoint", "sleep", base_image, "600")
    assert started.returncode == 0, started.stderr
    try:
        clean = _cli("clean")
        assert clean.returncode in (0, 1), clean.stderr  # 1: something else was not checkable
        assert name not in clean.stdout, clean.stdout
        assert _exists(name), f"isobench clean removed the user's container\n{clean.stdout}"
        # --cache, on a private cache holding one tag isobench recorded: that tag goes, the
        # user's container and the image it runs stay
        cache = tmp_path / "cache"
        env = {**os.environ, "ISOBENCH_CACHE": str(cache)}
        tag = f"isobench/h2-clean-test:{uuid.uuid4().hex[:8]}"
        assert _docker("tag", base_image, tag).returncode == 0
        from isobench.images.cache import record_tag

        image_id = _docker("image", "inspect", "--format", "{{.Id}}", tag).stdout.strip()
        cache.mkdir()
        (cache / "CACHEDIR.TAG").write_text("Signature: 8a477f597d28d172789f06886806bc55\n"
                                            "# isobench build cache\n")
        record_tag(cache, tag, image_id)
        clean = _cli("clean", "--cache", env=env)
        assert f"removed docker image tag {tag}" in clean.stdout, clean.stdout
        assert _docker("image", "inspect", tag).returncode != 0
        assert _exists(name) and _docker("image", "inspect", base_image).returncode == 0
    finally:
        _docker("rm", "-f", name)


def _trials(run: Path) -> list[dict[str, object]]:
    path = run / "trials.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def _container_of(run_id: str) -> str | None:
    out = _docker("ps", "-q", "--no-trunc", "--filter", f"label=isobench.run={run_id}").stdout
    return out.split()[0] if out.split() else None


def _native_of(run_id: str) -> str | None:
    from isobench.runtimes.native import load_states

    return next((str(s["id"]) for s in load_states() if s.get("run_id") == run_id), None)


def test_a_live_run_is_left_alone_and_excludes_a_second_run(
    base_image: str, tmp_path: Path
) -> None:
    run = tmp_path / "live-run"
    first = subprocess.Popen(
        [sys.executable, "-m", "isobench.cli", "run", "--workload", "burn",
         "--runtimes", "native,docker-bridge", "--trials", "2", "--duration", "12s",
         "--warmup", "0", "--no-report", "--out", str(run)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    checked: dict[str, str] = {}  # kind → the clean output during one of its trials
    refusals: dict[str, subprocess.CompletedProcess[str]] = {}
    try:
        deadline = time.monotonic() + 400
        while first.poll() is None and len(checked) < 2:
            assert time.monotonic() < deadline, "the run did not get through its trials"
            for kind, find in (("container", _container_of), ("native instance", _native_of)):
                obj = find(run.name)
                if kind in checked or obj is None:
                    continue
                before = len(_trials(run))
                clean = _cli("clean")
                checked[kind] = clean.stdout
                assert f"removed {kind}" not in clean.stdout, clean.stdout
                assert f"kept {kind}" in clean.stdout, clean.stdout
                if len(_trials(run)) == before:  # that trial is still running: its object too
                    assert find(run.name) == obj, f"{kind} {obj} vanished after clean"
                if not refusals:
                    refusals["cpus"] = _cli("run", "--workload", "burn", "--runtimes", "native",
                                            "--trials", "1", "--duration", "2s", "--no-report",
                                            "--out", str(tmp_path / "second-run"), timeout=120)
                    refusals["resume"] = _cli("run", "--resume", str(run), "--no-report",
                                              timeout=120)
            time.sleep(0.3)
        _, err = first.communicate(timeout=400)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 0, err[-3000:]
    assert set(checked) == {"container", "native instance"}
    trials = _trials(run)
    assert len(trials) == 4 and {t["status"] for t in trials} == {"ok"}, trials
    assert json.loads((run / "manifest.json").read_text())["status"] == "complete"

    cpus = refusals["cpus"]
    assert cpus.returncode == 2, (cpus.stdout, cpus.stderr)
    assert len(cpus.stderr.strip().splitlines()) == 1, cpus.stderr
    assert "is pinned by another run" in cpus.stderr and f"pid {first.pid}" in cpus.stderr
    assert str(run.resolve()) in cpus.stderr
    assert not (tmp_path / "second-run" / "manifest.json").exists()

    resume = refusals["resume"]
    assert resume.returncode == 2, (resume.stdout, resume.stderr)
    assert len(resume.stderr.strip().splitlines()) == 1, resume.stderr
    assert "is in use by isobench pid" in resume.stderr and str(first.pid) in resume.stderr
