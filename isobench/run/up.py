"""``isobench up RUNTIME``: one runtime running the workload, until Ctrl-C.

For poking at an app the way a benchmark will run it: the same artifacts, pinning, memory limit
and port mapping as a trial. Prints the endpoint (127.0.0.1, or a VM's own address) and how to
get inside (``docker exec``, a ``chroot`` into the native overlay, the VM's serial console log),
waits until Ctrl-C (or SIGTERM, or the instance dies), then removes everything it started. It
holds the workload's CPU locks as a run does (``util.locks.cpu_locks``): a run on the same CPUs
is refused naming its pid, and it warns when the workload listens beyond loopback
(``run.exposure``).
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from isobench import plugins
from isobench.errors import IsobenchError
from isobench.images.build import build_artifacts
from isobench.run.exposure import check_instances
from isobench.run.signals import shielded, stop_signals_interrupt
from isobench.run.trial import host_port_for
from isobench.runtimes.base import Instance, Resources, Runtime, RuntimeContext
from isobench.util.locks import LockBusy, cpu_locks
from isobench.util.netutil import wait_ready
from isobench.workloads.base import Workload

READY_DEADLINE_S = 300.0
"""Generous: a VM under TCG takes seconds to boot, a big image seconds to export."""

Say = Callable[[str], None]


def up(runtime_name: str, workload: Workload, resources: Resources, *,
       say: Say = print, work_dir: Path | None = None) -> int:
    """Run ``workload`` in one runtime until interrupted; return the exit code.

    Args:
        runtime_name: a registered runtime (``native``, ``docker-bridge``, ``vm``...).
        workload: the workload, options applied.
        resources: pinning and memory limit, as for a trial.
        say: where the lines for the user go.
        work_dir: where logs go (default: a temporary directory removed at the end).

    Returns:
        0 after Ctrl-C/SIGTERM with everything removed; 1 when the instance died, did not get
        ready or another process serves its port; 2 when the runtime or workload cannot run
        here or a run already pins its CPUs (the reason, naming that run's pid, is printed).
    """
    run_id = f"up-{uuid.uuid4().hex[:8]}"
    own_dir = work_dir is None  # a temporary one, removed at the end
    ctx = RuntimeContext(run_id=run_id,
                         work_dir=work_dir or Path(tempfile.mkdtemp(prefix=f"isobench-{run_id}-")))
    runtime: Runtime = plugins.load("runtime", runtime_name)(ctx)
    instance: Instance | None = None
    held = contextlib.ExitStack()  # the workload's CPUs, as a run holds them
    try:
        held.enter_context(cpu_locks(resources.cpus, f"isobench up {runtime_name}"))
    except LockBusy as exc:
        say(f"error: {exc}")
        if own_dir:
            shutil.rmtree(ctx.work_dir, ignore_errors=True)
        return 2
    with held, stop_signals_interrupt((signal.SIGINT, signal.SIGTERM, signal.SIGHUP)):
        try:
            reason = runtime.check() or workload.check()
            if reason:
                say(f"error: cannot run {workload.name} in {runtime_name}: {reason}")
                return 2
            artifacts = build_artifacts(workload.rootfs_spec(), {"rootfs", runtime.artifact},
                                        progress=lambda s: say(f"  {s}"))
            spec = workload.launch_spec()
            host_port = host_port_for(runtime, spec)
            instance = runtime.start(artifacts, spec, resources, host_port)
            started = instance

            def exited() -> str | None:
                return runtime.exited(started)

            took = wait_ready(instance.host_port, spec.ready_path,
                              launched_at=instance.launched_at, deadline_s=READY_DEADLINE_S,
                              exited=exited, host=instance.host_address)
            say(f"{workload.name} is up in {runtime_name} after {took:.2f} s")
            exposed = check_instances([instance], allow_exposed=True).get("exposed")
            if exposed:
                say(f"warning: the workload listens on {', '.join(exposed)}, reachable from "
                    "other machines (a run fails its trials unless --allow-exposed)")
            say(f"endpoint: {instance.endpoint}{spec.ready_path}")
            say(runtime.shell_hint(instance, spec))
            if instance.log_path is not None:
                say(f"log: {instance.log_path}")
            say("press Ctrl-C to stop and clean up")
            while True:
                gone = runtime.exited(instance)
                if gone:
                    say(f"error: instance stopped: {gone}")
                    return 1
                time.sleep(1.0)
        except KeyboardInterrupt:
            say("stopping")
            return 0
        except IsobenchError as exc:
            say(f"error: {exc}")
            return 1
        finally:
            if instance is not None:
                with shielded():
                    runtime.stop(instance)
                say(f"removed the {runtime_name} instance")
            if own_dir:
                shutil.rmtree(ctx.work_dir, ignore_errors=True)
