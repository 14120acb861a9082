"""``isobench clean``: remove what runs whose owner died left behind, and nothing else.

Every object isobench creates records its owner (``isobench.util.locks.Owner``: boot id, pid, start
time) in its state record or its labels. Each runtime plug-in removes its own leftovers through a
classmethod hook::

    @classmethod
    def leftovers(cls, live: Live, runner: CommandRunner) -> Cleaned

``live(owner)`` says whether an object must stay (its owner still runs; ``owner`` is None for a
record without one, from an older isobench). This module only iterates the registered runtimes
(``isobench.plugins``), the telemetry counter tables and the remote client's namespaces
(``isobench.util.clientnet``); it knows no runtime by name.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from isobench.results import atomic_write_json
from isobench.util.locks import Owner
from isobench.util.proc import CommandRunner

Live = Callable[[Owner | None], bool]


def read_state_files(directory: Path) -> list[dict[str, Any]]:
    """Every instance state record (``*.json``) in a runtime's state ``directory``, live or left
    by a killed run, each with ``state_file`` set to its path; unreadable ones are passed over."""
    states = []
    for path in sorted(directory.glob("*.json")):
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(path.read_text())
            data.setdefault("state_file", str(path))
            states.append(data)
    return states


def save_state(state: dict[str, Any], **more: Any) -> None:
    """Add ``more`` to an instance state record and write it to its ``state_file``, atomically
    (the temporary name does not match ``*.json``: :func:`read_state_files` never reads half a
    record). A start writes its record before it makes anything, then again each time it makes
    more, so a run killed at any step leaves what ``clean`` needs to remove it."""
    state.update(more)
    atomic_write_json(Path(state["state_file"]), state)


@dataclass
class Cleaned:
    """What a clean did: removed, kept (owner alive), and could not check or remove."""

    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)

    def extend(self, other: Cleaned) -> None:
        self.removed += other.removed
        self.kept += other.kept
        self.unchecked += other.unchecked

    def keeps(self, what: str, owner: Owner | None, live: Live) -> bool:
        """True (and noted) when ``what`` must stay; False when it is to be removed."""
        if not live(owner):
            return False
        if owner is None:
            self.unchecked.append(f"{what}: no owner recorded (older isobench); "
                                  "`isobench clean --force` removes it")
        else:
            self.kept.append(f"{what}: {owner.describe()} is live")
        return True


def owner_live(force: bool = False) -> Live:
    """The default liveness: an object stays while its owner runs; with ``force`` nothing stays."""
    if force:
        return lambda owner: False
    return lambda owner: owner is None or owner.alive()


def only_run(run_id: str) -> Live:
    """Remove only run ``run_id``'s objects, whether its owner lives or not (tests, ``up``)."""
    return lambda owner: owner is None or owner.run_id != run_id


def runtime_hooks() -> list[Callable[[Live, CommandRunner], Cleaned]]:
    """The ``leftovers`` hook of every registered runtime, each underlying function once."""
    from isobench import plugins

    hooks: list[Callable[[Live, CommandRunner], Cleaned]] = []
    seen: set[object] = set()
    for name in plugins.names("runtime"):
        try:
            cls = plugins.load("runtime", name)
        except Exception as exc:  # a broken third-party plug-in must not stop the others
            hooks.append(_broken(name, exc))
            continue
        hook = getattr(cls, "leftovers", None)
        if hook is None:
            continue
        key = getattr(hook, "__func__", hook)
        if key not in seen:
            seen.add(key)
            hooks.append(hook)
    return hooks


def _broken(name: str, exc: Exception) -> Callable[[Live, CommandRunner], Cleaned]:
    def hook(live: Live, runner: CommandRunner) -> Cleaned:
        return Cleaned(unchecked=[f"runtime {name}: cannot load ({exc}) — its objects not checked"])

    return hook


def clean_leftovers(runner: CommandRunner, *, force: bool = False,
                    live: Live | None = None) -> Cleaned:
    """Remove the leftovers of dead runs (all of isobench's objects with ``force``).

    Args:
        runner: command runner.
        force: remove every object isobench created, live owner or not.
        live: a liveness of one's own (``only_run``); overrides ``force``.

    Returns:
        One line per object removed, kept or not checked (e.g. the Docker daemon is down).
    """
    live = live or owner_live(force)
    done = Cleaned()
    for hook in runtime_hooks():
        done.extend(hook(live, runner))
    from isobench.telemetry.nftcount import leftovers as counter_leftovers
    from isobench.util.clientnet import leftovers as client_net_leftovers

    done.extend(counter_leftovers(live))
    done.extend(client_net_leftovers(live, runner))
    return done
