"""Every registered runtime keeps the contract of ``isobench/runtimes/base.py``, tested the same
way for all of them (as k6 tests every executor against one shared file):

* start → the workload's readiness probe answers → ``exited()`` is None → the port listens on
  127.0.0.1 only (or, for a runtime reached on a veth of its own, on nothing of the host's,
  the instance's address being one of isobench's namespaces) → ``clean`` (the runtime's own
  ``leftovers`` hook) sees the live instance and keeps it → ``stop`` twice → the hook then
  finds nothing of that run left;
* a workload that dies at once is reported by ``exited()`` with a reason, and ``stop`` leaves
  nothing either;
* a requested volume (``LaunchSpec.volumes``) is empty, writable, not in memory, and its
  host backing store is gone after ``stop``;
* with a remote client (``Resources.host_address`` = the host end of isobench's veth) the
  workload answers on that address, from the host and from the client's namespace, and listens
  on no other address; a runtime that takes no remote client (``remote_client_refused``)
  refuses it at ``start`` in one line and leaves nothing.

Nothing here names a runtime: a new runtime package registered in ``plugins.RUNTIMES`` is
covered by adding it to the registry.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import psutil
import pytest

from isobench import plugins
from isobench.errors import StartError
from isobench.images.build import build_artifacts
from isobench.images.spec import Artifacts
from isobench.runtimes.base import Resources, Runtime, RuntimeContext
from isobench.runtimes.cleanup import only_run
from isobench.util.clientnet import ClientNet, own_address
from isobench.util.netutil import free_port
from isobench.util.proc import SubprocessRunner
from isobench.workloads.burn import BurnWorkload
from tests.conftest import require

pytestmark = pytest.mark.integration
_ARTIFACTS: dict[str, Artifacts] = {}


def _artifacts(kind: str) -> Artifacts:
    if kind not in _ARTIFACTS:
        _ARTIFACTS[kind] = build_artifacts(BurnWorkload().rootfs_spec(), {"rootfs", kind})
    return _ARTIFACTS[kind]


def _runtime(name: str, tmp_path: Path) -> tuple[Runtime, str]:
    run_id = f"contract-{name}-{uuid.uuid4().hex[:6]}"
    runtime: Runtime = plugins.load("runtime", name)(RuntimeContext(work_dir=tmp_path,
                                                                    run_id=run_id))
    reason = runtime.check()
    require(reason is None, f"{name}: {reason}")
    return runtime, run_id


def _nothing_left(runtime: Runtime, run_id: str) -> None:
    left = type(runtime).leftovers(only_run(run_id), SubprocessRunner())
    assert left.removed == [], f"stop left these behind: {left.removed}"


@pytest.mark.parametrize("name", plugins.names("runtime"))
def test_start_ready_stop_leaves_nothing(name: str, need_root: None, tmp_path: Path) -> None:
    runtime, run_id = _runtime(name, tmp_path)
    workload = BurnWorkload()
    spec = workload.launch_spec()
    port = free_port()
    instance = runtime.start(_artifacts(runtime.artifact), spec, Resources(), port)
    try:
        deadline = 180.0 if runtime.emulated else 60.0
        workload.ready(instance.host_port, spec, launched_at=instance.launched_at,
                       deadline_s=deadline, exited=lambda: runtime.exited(instance),
                       host=instance.host_address)
        assert runtime.exited(instance) is None
        listeners = [c for c in psutil.net_connections(kind="inet")
                     if c.status == psutil.CONN_LISTEN and c.laddr
                     and c.laddr.port == instance.host_port]
        if instance.host_address == "127.0.0.1":
            assert listeners and {c.laddr.ip for c in listeners} == {"127.0.0.1"}, listeners
        else:  # reached on a veth of its own (the VM): nothing of the host's listens for it
            assert own_address(instance.host_address) and not listeners, listeners
        seen = type(runtime).leftovers(lambda owner: True, SubprocessRunner())
        assert seen.kept and not seen.removed, "clean cannot see (or removed) a live instance"
    finally:
        runtime.stop(instance)
    runtime.stop(instance)  # idempotent
    _nothing_left(runtime, run_id)


@pytest.mark.parametrize("name", plugins.names("runtime"))
def test_a_workload_that_dies_is_reported_and_leaves_nothing(
    name: str, need_root: None, tmp_path: Path
) -> None:
    runtime, run_id = _runtime(name, tmp_path)
    spec = dataclasses.replace(BurnWorkload().launch_spec(),
                               argv=("/bin/sh", "-c", "echo contract-death >&2; exit 3"))
    instance = None
    try:
        instance = runtime.start(_artifacts(runtime.artifact), spec, Resources(), free_port())
        deadline = time.monotonic() + (180.0 if runtime.emulated else 60.0)
        reason = runtime.exited(instance)
        while reason is None and time.monotonic() < deadline:
            time.sleep(0.2)
            reason = runtime.exited(instance)
        assert reason, "exited() never reported the death"
    except Exception as exc:  # a start that refuses at once must say why, in one line
        if instance is not None:
            raise
        assert str(exc) and "\n" not in str(exc).strip()
    finally:
        if instance is not None:
            runtime.stop(instance)
    _nothing_left(runtime, run_id)


@pytest.mark.parametrize("name", plugins.names("runtime"))
def test_a_remote_client_reaches_it_on_the_veth_address_only(
    name: str, need_root: None, tmp_path: Path
) -> None:
    runtime, run_id = _runtime(name, tmp_path)
    workload = BurnWorkload()
    spec = workload.launch_spec()
    port = free_port()
    with ClientNet(SubprocessRunner(), run_id) as path:
        resources = Resources(host_address=path.address)
        if runtime.remote_client_refused:
            with pytest.raises(StartError, match="remote client") as refused:
                runtime.start(_artifacts(runtime.artifact), spec, resources, port)
            assert "\n" not in str(refused.value)
            _nothing_left(runtime, run_id)
            return
        instance = runtime.start(_artifacts(runtime.artifact), spec, resources, port)
        try:
            assert instance.host_address == path.address
            assert instance.endpoint == f"http://{path.address}:{port}"
            workload.ready(port, spec, launched_at=instance.launched_at,
                           deadline_s=180.0 if runtime.emulated else 60.0,
                           exited=lambda: runtime.exited(instance), host=path.address)
            listeners = {c.laddr.ip for c in psutil.net_connections(kind="inet")
                         if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port}
            assert listeners <= {path.address}, listeners  # a DNAT path needs no listener
            fetch = f"import urllib.request as u; print(u.urlopen('{instance.endpoint}/healthz'" \
                    ", timeout=10).status)"
            got = subprocess.run([*path.prefix, sys.executable, "-c", fetch],
                                 capture_output=True, text=True, timeout=60)
            assert got.stdout.strip() == "200", got.stderr[-500:]
            assert instance.facts.get("network_path") not in (None, "loopback", "docker-proxy")
        finally:
            runtime.stop(instance)
    _nothing_left(runtime, run_id)


VOLUME = "/var/lib/isobench-contract-vol"


@pytest.mark.parametrize("name", plugins.names("runtime"))
def test_a_volume_is_empty_writable_on_disk_and_gone_after_stop(
    name: str, need_root: None, tmp_path: Path
) -> None:
    """``LaunchSpec.volumes``: inside, the path is an empty directory the workload writes to,
    not a tmpfs or an overlay; ``facts["volumes"]`` names its host backing store, which no
    longer exists after ``stop``, and ``clean`` finds nothing left."""
    runtime, run_id = _runtime(name, tmp_path)
    workload = BurnWorkload()
    listing = ("import os; names = sorted(os.listdir('.')); "
               "open('listing.txt', 'w').write(' '.join(names))")
    serve = (f"cd {VOLUME} && /usr/bin/python3 -c \"{listing}\" && "
             f"grep ' {VOLUME} ' /proc/mounts > mount.txt; "
             "exec /usr/bin/python3 -m http.server --bind {bind} {port}")
    spec = dataclasses.replace(workload.launch_spec(), argv=("/bin/sh", "-c", serve),
                               ready_path="/listing.txt", volumes=(VOLUME,), volume_mb=256)
    port = free_port()
    instance = runtime.start(_artifacts(runtime.artifact), spec, Resources(), port)
    try:
        workload.ready(instance.host_port, spec, launched_at=instance.launched_at,
                       deadline_s=180.0 if runtime.emulated else 60.0,
                       exited=lambda: runtime.exited(instance), host=instance.host_address)

        def get(path: str) -> str:
            with urllib.request.urlopen(f"{instance.endpoint}{path}", timeout=10) as resp:
                return str(resp.read().decode())

        assert get("/listing.txt") == "", "the volume was not empty"  # written: it is writable
        fstype = get("/mount.txt").split()[2]
        assert fstype not in ("tmpfs", "ramfs", "overlay"), fstype
        served = instance.facts["volumes"][VOLUME]
        backing = Path(re.findall(r"(/[^\s(),]+)", served)[0])
        assert backing.exists() and "tmpfs" not in served, served
    finally:
        runtime.stop(instance)
    assert not backing.exists(), f"{backing} is left after stop"
    _nothing_left(runtime, run_id)
