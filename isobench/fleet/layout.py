"""The fleet directory and each host's outcome in it.

Layout of ``fleet-runs/<run>/``::

    fleet.json                  version, benchfile sha256, isobench run arguments, inventory
    <host>/                     the host's isobench run directory, exactly as ``isobench run``
                                wrote it there (present only when whole)
    fleet/status/<host>.json    the host's outcome: state ``ok`` | ``failed`` | ``unreachable`` |
                                ``missing``, its reason, ``isobench run``'s exit code, versions
    fleet/tree/<host>           Ansible's tree callback: the host's last task result
    fleet/incoming/<host>.tgz   the fetched archive (removed once unpacked)
    fleet/dist/, fleet/scripts/, fleet/vars.json   what the playbook copies to the hosts

A host is *complete* when its status says ``ok`` and its run directory has ``manifest.json`` and
``trials.jsonl``; a re-run skips complete hosts and tries every other one again.
"""

from __future__ import annotations

import json
import shutil
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from isobench.errors import IsobenchError

FLEET_VERSION = 1
META = "fleet"
STATES = ("ok", "failed", "unreachable", "missing")


@dataclass
class HostStatus:
    """One host's outcome. ``reason`` is one line for a person; ``detail`` the evidence (the
    failed task's output tail)."""

    host: str
    state: str
    reason: str = ""
    rc: int | None = None
    task: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    detail: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.state == "ok"


def meta_dir(fleet_dir: Path) -> Path:
    return fleet_dir / META


def tree_dir(fleet_dir: Path) -> Path:
    return meta_dir(fleet_dir) / "tree"


def status_path(fleet_dir: Path, host: str) -> Path:
    return meta_dir(fleet_dir) / "status" / f"{host}.json"


def incoming_path(fleet_dir: Path, host: str) -> Path:
    return meta_dir(fleet_dir) / "incoming" / f"{host}.tgz"


def check_names(hosts: Iterable[str]) -> None:
    """Refuse host names that cannot be a directory of their own in the fleet directory."""
    for h in hosts:
        if h in ("", ".", "..", META) or "/" in h:
            raise IsobenchError(f"host name {h!r} cannot name a directory in the fleet directory",
                                fix="rename the host in the inventory (ansible_host= keeps the "
                                    "address)")


def claim(fleet_dir: Path, *, benchfile_sha256: str, run_args: list[str], inventory: str) -> None:
    """Create ``fleet_dir`` (with ``fleet.json``), or check that an existing one was made with
    the same benchfile and run arguments (so every host in it measured the same thing).

    Raises:
        IsobenchError: ``fleet_dir`` holds a fleet run of another benchfile or other arguments.
    """
    for sub in ("status", "tree", "incoming"):
        (meta_dir(fleet_dir) / sub).mkdir(parents=True, exist_ok=True)
    path = fleet_dir / "fleet.json"
    want = {"version": FLEET_VERSION, "benchfile_sha256": benchfile_sha256,
            "run_args": run_args}
    if path.exists():
        have = json.loads(path.read_text())
        for key in ("benchfile_sha256", "run_args"):
            if have.get(key) != want[key]:
                raise IsobenchError(
                    f"{fleet_dir} was started with another {key.replace('_', ' ')} "
                    f"({have.get(key)!r}); its hosts would not be comparable",
                    fix="use a new --out, or the same benchfile and flags as before")
        return
    path.write_text(json.dumps({**want, "inventory": inventory}, indent=2) + "\n")


def is_complete(fleet_dir: Path, host: str) -> bool:
    run = fleet_dir / host
    return (read_status(fleet_dir, host).complete and (run / "manifest.json").is_file()
            and (run / "trials.jsonl").is_file())


def read_status(fleet_dir: Path, host: str) -> HostStatus:
    """The recorded outcome; ``missing`` when there is none."""
    try:
        data = json.loads(status_path(fleet_dir, host).read_text())
    except (OSError, ValueError):
        return HostStatus(host, "missing", "no outcome recorded (Ansible never reached this host)")
    known = {k: data[k] for k in HostStatus.__dataclass_fields__ if k in data}
    return HostStatus(**{**known, "host": host})


def write_status(fleet_dir: Path, status: HostStatus) -> None:
    path = status_path(fleet_dir, status.host)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(status), indent=2) + "\n")
    tmp.replace(path)


def forget_attempt(fleet_dir: Path, host: str) -> None:
    """Drop what an earlier, incomplete attempt left for ``host`` (status, tree, archive)."""
    for path in (status_path(fleet_dir, host), tree_dir(fleet_dir) / host,
                 incoming_path(fleet_dir, host)):
        path.unlink(missing_ok=True)


def _tree_result(fleet_dir: Path, host: str) -> dict[str, Any]:
    try:
        data = json.loads((tree_dir(fleet_dir) / host).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def tree_msg(result: dict[str, Any]) -> str:
    """The message of Ansible's last result for a host; for a loop, its first failing item's."""
    for item in result.get("results") or []:
        if isinstance(item, dict) and (item.get("unreachable") or item.get("failed")):
            return tree_msg(item)
    msg = _one_line(result.get("msg"))
    return msg.removeprefix("Task failed: ")


def _one_line(text: Any) -> str:
    lines = [s.strip() for s in str(text or "").splitlines() if s.strip()]
    return lines[-1] if lines else ""


def failed_reason(raw: dict[str, Any]) -> str:
    """One line from the playbook's failure record: the task and its message or stderr."""
    msg = _one_line(raw.get("msg"))
    tail = [s for s in raw.get("stderr_tail") or [] if s.strip()]
    if raw.get("rc") not in (None, 0) and tail:
        msg = f"exit {raw['rc']}: {tail[-1].strip()}"
    return f"{raw.get('task') or 'a task'} failed" + (f": {msg}" if msg else "")


def collect(fleet_dir: Path, host: str) -> HostStatus:
    """Turn what the playbook left for ``host`` into its recorded outcome (module docstring);
    unpack its archive into ``<fleet dir>/<host>/`` when it came back."""
    try:
        raw = json.loads(status_path(fleet_dir, host).read_text())
    except (OSError, ValueError):
        raw = {}
    tree = _tree_result(fleet_dir, host)
    if raw.get("state") == "fetched":
        status = HostStatus(host, "ok", rc=raw.get("rc"), versions=dict(raw.get("versions") or {}))
        try:
            unpack(incoming_path(fleet_dir, host), fleet_dir / host)
        except (OSError, tarfile.TarError, IsobenchError) as exc:
            status = HostStatus(host, "failed", f"unpacking the fetched run failed: {exc}")
        if status.complete and status.rc not in (0, None):
            status.reason = f"isobench run exited {status.rc} (see the host's run directory)"
    elif raw.get("state") == "failed":
        status = HostStatus(host, "failed", failed_reason(raw), rc=raw.get("rc"),
                            task=raw.get("task"),
                            detail=[*raw.get("stdout_tail", []), *raw.get("stderr_tail", [])])
    elif tree.get("unreachable"):
        status = HostStatus(host, "unreachable", "unreachable: " + tree_msg(tree))
    elif tree:
        status = HostStatus(host, "failed", tree_msg(tree) or "failed (see Ansible's output)")
    else:
        status = HostStatus(host, "missing", "no outcome recorded (Ansible stopped before this "
                            "host finished: see its output)")
    write_status(fleet_dir, status)
    return status


def unpack(archive: Path, dest: Path) -> None:
    """Unpack ``archive`` into a temporary directory beside ``dest``, check it is a run
    directory (``manifest.json``), then replace ``dest`` with it; the archive is removed.

    Raises:
        IsobenchError: the archive holds no ``manifest.json``.
    """
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        if not (tmp / "manifest.json").is_file():
            raise IsobenchError(f"{archive} holds no manifest.json: not a run directory")
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    archive.unlink(missing_ok=True)


def hosts_in(fleet_dir: Path) -> list[str]:
    """Hosts the fleet directory knows: a status file or a run directory, sorted by name."""
    named = {p.stem for p in (meta_dir(fleet_dir) / "status").glob("*.json")}
    named |= {p.name for p in fleet_dir.iterdir()
              if p.is_dir() and p.name != META and (p / "manifest.json").is_file()}
    return sorted(named)
