"""Who owns what isobench creates, and the one file lock everything uses.

* ``Owner``: the process that created an object, as (boot id, pid, start time). The start time is
  field 22 of ``/proc/<pid>/stat`` (clock ticks since boot), so a reused pid is not mistaken for
  the owner, and the boot id makes records that survived a reboot (containers do) dead.
* State records: one JSON file per created object under ``paths.state_dir()/<kind>/<name>.json``
  carrying its ``owner``; ``isobench clean`` removes objects whose owner is dead.
* ``FileLock``: an ``flock`` on a file. Exclusive holders write who they are into the file, so a
  refusal can name the other process. The kernel drops the lock when its holder dies (however it
  dies), so a lock never outlives its run; lock files are never deleted (that would race).
* ``run_locks``: what a run holds for its lifetime: its run directory, each CPU it pins, and a
  shared hold on the build cache (``clean --cache`` refuses while one is held).
* ``artifact_lock``: concurrent builds of one artifact: the second waits, then reuses the result.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from isobench.errors import IsobenchError
from isobench.util import paths

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


class LockBusy(IsobenchError):
    """Another live process holds a lock this one needs (one line naming it)."""


# --- ownership ------------------------------------------------------------------------------------


def boot_id() -> str:
    """This boot's id (``/proc/sys/kernel/random/boot_id``), '' when unreadable."""
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return ""


def start_ticks(pid: int) -> int | None:
    """Field 22 of ``/proc/<pid>/stat`` (start time, clock ticks after boot); None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()  # the command name may hold spaces and ')'
    try:
        return int(fields[19]) if fields[0] != "Z" else None  # field 3 is fields[0]
    except (IndexError, ValueError):
        return None


@dataclass(frozen=True)
class Owner:
    """The process that created an object, and the run it did it for."""

    pid: int
    start: int
    boot: str
    run_id: str = ""

    @classmethod
    def current(cls, run_id: str = "") -> Owner:
        pid = os.getpid()
        return cls(pid, start_ticks(pid) or 0, boot_id(), run_id)

    def alive(self) -> bool:
        """True while the very process that created the object runs (not a reuse of its pid)."""
        return (self.pid > 0 and self.boot == boot_id()
                and start_ticks(self.pid) == self.start)

    def to_json(self) -> dict[str, Any]:
        return {"pid": self.pid, "start": self.start, "boot": self.boot, "run_id": self.run_id}

    @classmethod
    def from_json(cls, data: Any) -> Owner | None:
        """From ``to_json`` output; None when absent or malformed (an older isobench's record)."""
        try:
            return cls(int(data["pid"]), int(data["start"]), str(data["boot"]),
                       str(data.get("run_id", "")))
        except (TypeError, KeyError, ValueError):
            return None

    def labels(self, prefix: str = paths.LABEL) -> dict[str, str]:
        """Docker labels naming this owner, set at ``docker run``/``create`` time only."""
        return {f"{prefix}.created-by": "isobench", f"{prefix}.run": self.run_id,
                f"{prefix}.owner-pid": str(self.pid), f"{prefix}.owner-start": str(self.start),
                f"{prefix}.owner-boot": self.boot}

    @classmethod
    def from_labels(cls, labels: Mapping[str, str], prefix: str = paths.LABEL) -> Owner | None:
        try:
            return cls(int(labels[f"{prefix}.owner-pid"]), int(labels[f"{prefix}.owner-start"]),
                       labels[f"{prefix}.owner-boot"], labels.get(f"{prefix}.run", ""))
        except (KeyError, ValueError):
            return None

    def describe(self) -> str:
        return f"run {self.run_id}, pid {self.pid}" if self.run_id else f"pid {self.pid}"


# --- state records --------------------------------------------------------------------------------


def record_dir(kind: str) -> Path:
    path = paths.state_dir() / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_record(kind: str, name: str, data: Mapping[str, Any], owner: Owner) -> Path:
    """Record a created object (atomically) under ``state_dir()/<kind>/<name>.json``."""
    path = record_dir(kind) / f"{name}.json"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({**data, "owner": owner.to_json()}, sort_keys=True, default=str))
    os.replace(tmp, path)
    return path


def read_records(kind: str) -> list[tuple[Path, dict[str, Any]]]:
    """Every record of a kind, as (file, data); unreadable files are returned with ``{}``."""
    found: list[tuple[Path, dict[str, Any]]] = []
    for path in sorted(record_dir(kind).glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            data = {}
        found.append((path, data if isinstance(data, dict) else {}))
    return found


def remove_record(kind: str, name: str) -> None:
    (record_dir(kind) / f"{name}.json").unlink(missing_ok=True)


# --- file locks -----------------------------------------------------------------------------------


class FileLock:
    """An ``flock`` on ``path`` (created if missing). Exclusive holders write ``info`` into it."""

    def __init__(self, path: Path, *, shared: bool = False,
                 info: Mapping[str, Any] | None = None) -> None:
        self.path = path
        self.shared = shared
        self.info = dict(info or {})
        self._fh: IO[str] | None = None

    def acquire(self, blocking: bool = True) -> bool:
        """Take the lock; False when ``blocking`` is off and another process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = self.path.open("a+")
        mode = fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX
        try:
            fcntl.flock(fh.fileno(), mode | (0 if blocking else fcntl.LOCK_NB))
        except OSError as exc:
            fh.close()
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return False
            raise
        if not self.shared:
            fh.seek(0)
            fh.truncate()
            fh.write(json.dumps({**Owner.current().to_json(), **self.info}, default=str))
            fh.flush()
        self._fh = fh
        return True

    def release(self) -> None:
        if self._fh is not None:
            fh, self._fh = self._fh, None
            if not self.shared:
                with contextlib.suppress(OSError):
                    fh.truncate(0)
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
            fh.close()

    def holder(self) -> dict[str, Any]:
        """What the exclusive holder wrote (``pid``, ...), ``{}`` if unknown."""
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(self.path.read_text() or "{}")
            if isinstance(data, dict):
                return data
        return {}

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` for the block (waits for the holder)."""
    with FileLock(path):
        yield


def _digest(path: Path) -> str:
    return hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]


def cpu_lock_path(cpu: int) -> Path:
    return paths.state_dir() / "locks" / f"cpu-{cpu}.lock"


def cache_lock_path(cache: Path) -> Path:
    """Kept in the state directory, so removing the cache never removes a held lock's file."""
    return paths.state_dir() / "locks" / f"cache-{_digest(cache)}.lock"


def run_lock_path(run_dir: Path) -> Path:
    return run_dir / ".isobench.lock"


def _who(holder: Mapping[str, Any]) -> str:
    pid = holder.get("pid", "?")
    where = holder.get("run_dir")
    command = holder.get("command")
    return (f"isobench pid {pid}" + (f" (run {where})" if where else "")
            + (f" ({command})" if command and not where else ""))


def _hold_cpus(stack: contextlib.ExitStack, cpus: Iterable[int], info: Mapping[str, Any]) -> None:
    """Take every CPU's lock (without waiting) onto ``stack``; LockBusy naming the holder."""
    for cpu in sorted(set(cpus)):
        lock = FileLock(cpu_lock_path(cpu), info=info)
        if not lock.acquire(blocking=False):
            raise LockBusy(f"CPU {cpu} is pinned by another run: {_who(lock.holder())}",
                           fix="wait for it to end, or pick other --cpuset-cpus/--loadgen-cpus")
        stack.callback(lock.release)


@contextlib.contextmanager
def cpu_locks(cpus: Iterable[int], command: str) -> Iterator[None]:
    """Hold every CPU in ``cpus`` (host-wide) for the block, as a run does: ``isobench up``
    pins the workload the same way, so a run on those CPUs is refused while it is up.

    Raises:
        LockBusy: another live process holds one of the CPUs (naming its pid); nothing is held.
    """
    with contextlib.ExitStack() as stack:
        _hold_cpus(stack, cpus, {"command": command, "cpus": sorted(set(cpus))})
        yield


@contextlib.contextmanager
def run_locks(run_dir: Path, cpus: Iterable[int], cache: Path | None = None) -> Iterator[None]:
    """Hold, for the block: ``run_dir``, every CPU in ``cpus`` (host-wide), a shared hold on
    ``cache`` (``paths.cache_dir()`` by default).

    Raises:
        LockBusy: another live run holds the run directory or one of the CPUs (naming its pid and
            run directory); nothing is held then.
    """
    pinned = sorted(set(cpus))
    info = {"run_dir": str(run_dir.resolve()), "cpus": pinned}
    with contextlib.ExitStack() as stack:
        own = FileLock(run_lock_path(run_dir), info=info)
        if not own.acquire(blocking=False):
            raise LockBusy(f"run directory {run_dir} is in use by {_who(own.holder())}",
                           fix="wait for that run to end; --resume is for an interrupted run")
        stack.callback(own.release)
        _hold_cpus(stack, pinned, info)
        stack.enter_context(cache_in_use(cache or paths.cache_dir()))
        yield


@contextlib.contextmanager
def artifact_lock(cache: Path, kind: str, key: str) -> Iterator[None]:
    """Exclusive, waiting: one builder of artifact ``kind``/``key`` at a time under ``cache``."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in key)
    with FileLock(cache / "locks" / f"{kind}-{safe}.lock"):
        yield


@contextlib.contextmanager
def cache_in_use(cache: Path) -> Iterator[None]:
    """A shared hold on ``cache`` for the block: builds and runs hold one, so ``clean --cache``
    cannot remove a tree under them."""
    with FileLock(cache_lock_path(cache), shared=True):
        yield


def cache_exclusive(cache: Path) -> FileLock | None:
    """An exclusive hold on ``cache`` if no build or run uses it (release it when done), else
    None."""
    lock = FileLock(cache_lock_path(cache), info={"purpose": "clean --cache"})
    return lock if lock.acquire(blocking=False) else None
