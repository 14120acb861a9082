"""Faults for real around the workload's port: exposure beyond loopback, a port shared with a
stranger, and ``isobench up`` holding its CPUs.

- examples/hello-image natively listens on 0.0.0.0:18081: its trial fails with the one-line
  reason naming the fix, and is never measured; with ``--allow-exposed`` the trial counts and its
  facts record the exposure.
- A second process joins the app's fixed port with ``SO_REUSEPORT`` before the app is ready: the
  trial fails naming that process, never measured.
- ``isobench up native`` holds CPU 0: a run on CPU 0 is refused (exit 2, one line, the pid).

Real Docker (the image build) and the native runtime; run under the heavy lock. About 25 s.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from isobench.images.docker_image import ensure_base_image
from isobench.run import exposure
from isobench.util import paths
from isobench.util.locks import FileLock, cpu_lock_path
from isobench.util.proc import SubprocessRunner

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
HELLO = ROOT / "examples" / "hello-image" / "Dockerfile"
PORT = 18081
SHORT = ["--trials", "1", "--duration", "1s", "--warmup", "0", "--no-report"]


@pytest.fixture(scope="module")
def base_image(need_docker: None) -> str:
    return ensure_base_image(cache=paths.cache_dir(), runner=SubprocessRunner())


def _cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "isobench.cli", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT,
                          env={**os.environ, "COLUMNS": "250"})


def _trials(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]


def test_hello_image_natively_on_all_addresses_is_refused(base_image: str,
                                                          tmp_path: Path) -> None:
    out = tmp_path / "exposed"
    proc = _cli("run", "--dockerfile", str(HELLO), "--ready-path", "/healthz", "--runtimes",
                "native", *SHORT, "--out", str(out))
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    (trial,) = _trials(out)
    assert trial["status"] == "failed"
    reason = trial["error"]
    assert reason.startswith(f"the workload listens on 0.0.0.0:{PORT} (tcp, pid "), reason
    assert "reachable from other machines" in reason and "--allow-exposed" in reason, reason
    assert "make it bind 127.0.0.1" in reason and "\n" not in reason
    assert not trial["load"], "an exposed workload was measured"

    allowed = tmp_path / "allowed"
    proc = _cli("run", "--dockerfile", str(HELLO), "--ready-path", "/healthz", "--runtimes",
                "native", *SHORT, "--allow-exposed", "--out", str(allowed))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    (trial,) = _trials(allowed)
    assert trial["status"] == "ok", trial["error"]
    (seen,) = trial["facts"]["exposed"]
    assert seen.startswith(f"0.0.0.0:{PORT} (tcp, pid "), seen


REUSEPORT_APP = (
    "python3 -c \"import http.server as h, time; h.ThreadingHTTPServer.allow_reuse_port = True; "
    "s = h.ThreadingHTTPServer(('127.0.0.1', 18081), h.SimpleHTTPRequestHandler); "
    "time.sleep(4); s.serve_forever()\""
)
"""Binds 127.0.0.1:18081 with SO_REUSEPORT at once, answers only 4 s later: time enough for the
stranger to join the port before the app is ready."""


def _listener_pid(port: int) -> int | None:
    """A process listening on 127.0.0.1:port (from /proc), or None."""
    entries = [e for e in exposure.table() if exposure.reaches_loopback_port(e, port)]
    held = exposure.owners(e.inode for e in entries)
    return next(iter(held.values()), None)


def _join_port(done: dict[str, Any], stop: threading.Event) -> None:
    """Wait for the app's listener, then listen on the same port with SO_REUSEPORT as its user
    (the kernel shares a port only between sockets of one uid), never answering."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not stop.is_set():
        pid = _listener_pid(PORT)
        if pid:
            uid = os.stat(f"/proc/{pid}").st_uid
            code = ("import os, socket, sys, time; os.setuid(int(sys.argv[1])); "
                    "s = socket.socket(); "
                    "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1); "
                    "s.bind(('127.0.0.1', 18081)); s.listen(); print('joined', flush=True); "
                    "time.sleep(120)")
            stranger = subprocess.Popen([sys.executable, "-c", code, str(uid)],
                                        stdout=subprocess.PIPE, text=True)
            done["stranger"] = stranger
            done["line"] = stranger.stdout.readline() if stranger.stdout else ""
            return
        time.sleep(0.02)


def test_a_stranger_on_the_apps_port_with_so_reuseport_fails_the_trial(base_image: str,
                                                                       tmp_path: Path) -> None:
    out = tmp_path / "clash"
    done: dict[str, Any] = {}
    stop = threading.Event()
    joiner = threading.Thread(target=_join_port, args=(done, stop), daemon=True)
    joiner.start()
    try:
        proc = _cli("run", "--dockerfile", str(HELLO), "--ready-path", "/", "--runtimes",
                    "native", *SHORT, "--cmd", REUSEPORT_APP, "--out", str(out))
    finally:
        stop.set()
        joiner.join(timeout=10)
        stranger = done.get("stranger")
        if stranger is not None:
            stranger.kill()
            stranger.wait(timeout=10)
    assert done.get("line", "").strip() == "joined", done
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    (trial,) = _trials(out)
    assert trial["status"] == "failed"
    reason = trial["error"]
    assert f"127.0.0.1:{PORT} is also served by 127.0.0.1:{PORT} (tcp, pid {stranger.pid} " \
        in reason, reason
    assert "outside the instance" in reason and "\n" not in reason
    assert not trial["load"], "a trial whose port a stranger shares was measured"


def test_up_holds_the_cpu_a_run_then_cannot_have(tmp_path: Path, need_root: None) -> None:
    up = subprocess.Popen([sys.executable, "-u", "-m", "isobench.cli", "up", "native",
                           "--workload", "burn", "--cpuset-cpus", "0"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                          env={**os.environ, "COLUMNS": "250"})
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            line = up.stdout.readline() if up.stdout else ""
            if not line:
                break
            lines.append(line)
            if "press Ctrl-C" in line:
                break
        assert any("press Ctrl-C" in x for x in lines), "".join(lines)
        assert not any("warning:" in x for x in lines), "".join(lines)  # burn binds 127.0.0.1
        out = tmp_path / "run"
        proc = _cli("run", "--workload", "burn", "--runtimes", "native", *SHORT,
                    "--out", str(out), timeout=120)
        assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr
        err = [x for x in proc.stderr.splitlines() if x.strip()]
        assert len(err) == 1, proc.stderr
        assert f"CPU 0 is pinned by another run: isobench pid {up.pid} (isobench up native)" \
            in err[0], err
        assert not (out / "trials.jsonl").exists()
    finally:
        up.send_signal(signal.SIGINT)
        rest, _ = up.communicate(timeout=60)
    assert up.returncode == 0, "".join(lines) + rest
    lock = FileLock(cpu_lock_path(0))  # released: the lock file no longer names up
    assert lock.holder().get("pid") != up.pid
