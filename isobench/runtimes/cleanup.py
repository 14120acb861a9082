"""Remove what a killed or crashed run left behind: containers, native instances, VMs."""

from __future__ import annotations

import contextlib
import importlib

from isobench.paths import LABEL
from isobench.proc import CommandRunner


def clean_containers(runner: CommandRunner, run_id: str | None = None) -> list[str]:
    """Force-remove every container labelled ``isobench=1`` (only run ``run_id``'s if given)."""
    label = f"label={LABEL}.run={run_id}" if run_id is not None else f"label={LABEL}=1"
    found = runner.run(["docker", "ps", "-aq", "--filter", f"label={LABEL}=1", "--filter", label],
                       check=False, timeout=60)
    if not found.ok:
        return []
    ids = found.stdout.split()
    if not ids:
        return []
    runner.run(["docker", "rm", "-f", "--volumes", *ids], check=False, timeout=300)
    return [f"removed container {cid[:12]}" for cid in ids]


def clean_native(runner: CommandRunner, run_id: str | None = None) -> list[str]:
    """Kill, unmount and remove every native instance recorded in the state directory."""
    from isobench.runtimes.native import load_states, teardown_native

    done: list[str] = []
    for state in load_states():
        if run_id is not None and state.get("run_id") != run_id:
            continue
        steps = teardown_native(state, runner)
        done.append(f"native {state.get('id')}: " + (", ".join(steps) or "state removed"))
    return done


def clean_leftovers(runner: CommandRunner, run_id: str | None = None) -> list[str]:
    """Everything isobench may have left: containers, native instances, then VMs (if the VM
    runtime provides ``isobench.runtimes.qemu.clean_vms``).

    Args:
        runner: command runner.
        run_id: only this run's containers and native instances (VMs: all of them).

    Returns:
        One line per thing removed.
    """
    done = clean_containers(runner, run_id)
    done += clean_native(runner, run_id)
    with contextlib.suppress(ImportError):
        qemu = importlib.import_module("isobench.runtimes.qemu")
        clean_vms = getattr(qemu, "clean_vms", None)
        if callable(clean_vms):
            done += list(clean_vms())
    from isobench.telemetry.nftcount import cleanup_leftovers as clean_counters

    done += [f"nftables counter table {t}" for t in clean_counters()]
    return done
