"""Owners (pid reuse, reboot) and the flock-based locks: run directory, pinned CPUs, artifacts."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from isobench.util import locks
from isobench.util.locks import FileLock, LockBusy, Owner, artifact_lock, run_locks


@pytest.fixture(autouse=True)
def private_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "state"
    monkeypatch.setenv("ISOBENCH_STATE", str(state))
    monkeypatch.setenv("ISOBENCH_CACHE", str(tmp_path / "cache"))
    return state


def test_owner_alive_only_for_the_same_process() -> None:
    me = Owner.current("r1")
    assert me.alive() and me.run_id == "r1"
    assert Owner.from_json(me.to_json()) == me
    assert Owner.from_labels(me.labels()) == me
    assert not Owner(me.pid, me.start + 1, me.boot).alive()  # the pid, reused by another process
    assert not Owner(me.pid, me.start, "another-boot").alive()  # a record from before a reboot
    assert Owner.from_json({"pid": 1}) is None and Owner.from_json(None) is None


def test_owner_of_an_exited_process_is_dead() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        owner = Owner(child.pid, locks.start_ticks(child.pid) or -1, locks.boot_id())
        assert owner.alive()
    finally:
        child.kill()
        child.wait()
    assert not owner.alive()


def test_exclusive_lock_excludes_and_names_its_holder(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    first = FileLock(path, info={"run_dir": "/runs/a"})
    assert first.acquire(blocking=False)
    second = FileLock(path)  # another open file description: flock excludes it, same process or not
    assert not second.acquire(blocking=False)
    assert second.holder()["run_dir"] == "/runs/a"
    first.release()
    assert second.acquire(blocking=False)
    second.release()


def _holder_process(code: str) -> subprocess.Popen[str]:
    """A python child that runs ``code`` (holding locks), prints 'held', then sleeps."""
    child = subprocess.Popen(
        [sys.executable, "-c", f"{code}\nprint('held', flush=True)\nimport time; time.sleep(60)"],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    assert child.stdout is not None and child.stdout.readline().strip() == "held"
    return child


def test_run_locks_refuse_a_second_run_of_the_dir_and_of_its_cpus(tmp_path: Path) -> None:
    run_a, run_b = tmp_path / "run-a", tmp_path / "run-b"
    child = _holder_process(
        "from pathlib import Path; from isobench.util.locks import run_locks\n"
        f"ctx = run_locks(Path({str(run_a)!r}), [0, 1]); ctx.__enter__()")
    try:
        busy_dir = rf"run directory .*run-a is in use by isobench pid {child.pid}"
        with pytest.raises(LockBusy, match=busy_dir), run_locks(run_a, [5]):
            pass
        busy_cpu = rf"CPU 1 is pinned by another run: isobench pid {child.pid} \(run .*run-a\)"
        with pytest.raises(LockBusy, match=busy_cpu), run_locks(run_b, [1, 2]):
            pass
        with run_locks(run_b, [2, 3]):  # disjoint CPUs: fine
            pass
        with run_locks(run_b, [2]):  # and nothing of the refused attempts stayed held
            pass
    finally:
        child.kill()
        child.wait()
    with run_locks(run_a, [0, 1]):  # the kernel dropped the dead holder's locks
        pass


def test_artifact_lock_serialises_builders(tmp_path: Path) -> None:
    """The second builder never enters while the first holds the lock; it enters once released."""
    entered = threading.Event()

    def second() -> None:
        with artifact_lock(tmp_path, "docker", "abc"):
            entered.set()

    with artifact_lock(tmp_path, "docker", "abc"):
        thread = threading.Thread(target=second)
        thread.start()
        assert not entered.wait(0.3)  # a correct lock can only make this wait return False
    assert entered.wait(10)
    thread.join(10)


def test_clean_cache_is_refused_while_a_run_or_build_uses_the_cache(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with locks.cache_in_use(cache):
        assert locks.cache_exclusive(cache) is None
    hold = locks.cache_exclusive(cache)
    assert hold is not None
    hold.release()


def test_records_round_trip(private_state: Path) -> None:
    me = Owner.current("r2")
    path = locks.write_record("thing", "t1", {"x": 1}, me)
    assert path.parent == private_state / "thing"
    [(found, data)] = locks.read_records("thing")
    assert found == path and data["x"] == 1 and Owner.from_json(data["owner"]) == me
    locks.remove_record("thing", "t1")
    assert locks.read_records("thing") == []
