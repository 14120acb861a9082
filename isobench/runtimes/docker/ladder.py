"""The Docker ladder of ``isobench explain``: native to docker-bridge, one layer a step.

Every step is one arm of one interleaved plan; each adds exactly one layer over the step before::

    native            the workload chrooted into the rootfs, taskset, a memory cgroup (baseline)
    bare-container    + a container: namespaces, overlay2, runc and containerd-shim; host network,
                        seccomp/AppArmor unconfined, no cgroup limits (pinned by taskset inside,
                        as native is), log driver none
    seccomp           + Docker's default seccomp (and AppArmor, where the kernel has it) profile
    cgroups           + cgroup CPU set and memory limit (``--cpuset-cpus``, ``--memory``)
    docker-host       + dockerd's default logging driver (json-file): docker-host as users run it
    remote-client     + the load client in its own network namespace over a veth (host network)
    bridge-dnat       + bridge network, the port published on the veth's host address: DNAT
    docker-bridge     + docker-proxy: the client on 127.0.0.1 (docker-bridge as users run it)

The two ``remote`` steps need the remote load-client path (a per-arm ``client``); without it
the last step adds the bridge network and docker-proxy together, and says so.
"""

from __future__ import annotations

import dataclasses

from isobench.runtimes.base import LadderStep

BARE = {"security": "unconfined", "limits": "affinity", "log_driver": "none"}
"""``runtime_options`` of the bare container (see ``DockerRuntime.OPTIONS``)."""


def docker_chain(remote_client: bool) -> list[LadderStep]:
    """Every step from native to docker-bridge (module docstring), the remote ones only when
    ``remote_client`` (the per-arm remote load-client path) is available."""
    steps = [
        LadderStep("native", "native: a process chrooted into the rootfs", "native"),
        LadderStep("bare-container", "+ container: namespaces, overlay2, runc + shim",
                   "docker-host", dict(BARE),
                   note="host network, seccomp/AppArmor unconfined, no cgroup limits (pinned by "
                   "taskset inside, as native is), log driver none"),
        LadderStep("seccomp", "+ default seccomp/AppArmor profiles", "docker-host",
                   {k: v for k, v in BARE.items() if k != "security"},
                   note="AppArmor only where the kernel enables it (docker info SecurityOptions)"),
        LadderStep("cgroups", "+ cgroup cpuset and memory limit", "docker-host",
                   {"log_driver": "none"}),
        LadderStep("docker-host", "+ default logging driver (json-file): docker-host",
                   "docker-host", note="dockerd's default driver (docker info LoggingDriver)"),
    ]
    if remote_client:
        steps += [
            LadderStep("remote-client", "+ client in its own netns over a veth (host network)",
                       "docker-host", client="remote"),
            LadderStep("bridge-dnat", "+ bridge network, reached through DNAT", "docker-bridge",
                       client="remote"),
            LadderStep("docker-bridge", "+ docker-proxy, client on 127.0.0.1: docker-bridge",
                       "docker-bridge", client="local"),
        ]
    else:
        steps.append(LadderStep(
            "docker-bridge", "+ bridge network and docker-proxy: docker-bridge", "docker-bridge",
            note="DNAT and docker-proxy not measured apart: that needs the remote client path"))
    return steps


def ladder_between(source: str, target: str, remote_client: bool) -> list[LadderStep] | None:
    """The steps from runtime ``source`` to runtime ``target`` (both as users run them), or
    None when the chain does not hold both in that order. The first step is the baseline."""
    chain = docker_chain(remote_client)
    names = [s.arm for s in chain]
    if source not in names or target not in names:
        return None
    i, j = names.index(source), names.index(target)
    if i >= j:
        return None
    steps = chain[i:j + 1]
    steps[0] = dataclasses.replace(steps[0], label=f"{source} (baseline)", note="")
    return steps
