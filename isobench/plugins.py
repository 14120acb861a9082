"""Plug-ins by explicit registry, imported lazily; third parties add theirs by entry point.



"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from isobench.errors import ConfigError

RUNTIMES: dict[str, str] = {
    "native": "isobench.runtimes.native:NativeRuntime",
    "docker-bridge": "isobench.runtimes.docker:DockerBridgeRuntime",
    "docker-host": "isobench.runtimes.docker:DockerHostRuntime",
    "gvisor": "isobench.runtimes.docker:GvisorRuntime",
    "podman-bridge": "isobench.runtimes.podman:PodmanBridgeRuntime",
    "podman-host": "isobench.runtimes.podman:PodmanHostRuntime",
    "vm": "isobench.runtimes.qemu:QemuRuntime",
}

WORKLOADS: dict[str, str] = {
    "records-api": "isobench.workloads.records_api.workload:RecordsApiWorkload",
    "validator": "isobench.workloads.validator.workload:ValidatorWorkload",
    "burn": "isobench.workloads.burn:BurnWorkload",
    "image": "isobench.workloads.image:ImageWorkload",
    # the micro suite (isobench suite micro)
    "redis": "isobench.workloads.micro.servers:RedisWorkload",
    "iperf3": "isobench.workloads.micro.servers:Iperf3Workload",
    "sockperf": "isobench.workloads.micro.servers:SockperfWorkload",
    "sysbench-cpu": "isobench.workloads.micro.local:SysbenchCpuWorkload",
    "sysbench-memory": "isobench.workloads.micro.local:SysbenchMemoryWorkload",
    "fio": "isobench.workloads.micro.local:FioWorkload",
    "xz": "isobench.workloads.micro.local:XzWorkload",
    "postgres": "isobench.workloads.micro.databases:PostgresWorkload",
    "mariadb": "isobench.workloads.micro.databases:MariadbWorkload",
}

ARTIFACTS: dict[str, str] = {
    "docker_image": "isobench.images.docker_image:build_artifact",
    "vm": "isobench.runtimes.qemu.image:build_artifact",
}
"""Artifact name → its builder ``(ArtifactBuild) -> BuiltArtifact`` (``rootfs`` is always built)."""

SAMPLERS: dict[str, str] = {
    "cpu": "isobench.telemetry.cpu:CpuSampler",
    "memory": "isobench.telemetry.memory:MemorySampler",
    "network": "isobench.telemetry.network:NetworkSampler",
    "disk": "isobench.telemetry.disk:DiskSampler",
    "guest": "isobench.telemetry.guest:GuestSampler",
}

_GROUPS = {
    "runtime": ("isobench.runtimes", RUNTIMES),
    "workload": ("isobench.workloads", WORKLOADS),
    "sampler": ("isobench.samplers", SAMPLERS),
    "artifact": ("isobench.artifacts", ARTIFACTS),
}


def names(family: str) -> list[str]:
    """Every registered name of a family (``runtime``, ``workload``, ``sampler``)."""
    group, table = _GROUPS[family]
    extra = [ep.name for ep in entry_points().select(group=group)]
    return sorted({*table, *extra})


def load(family: str, name: str) -> Any:
    """The class registered under ``name``; a ConfigError naming the valid names otherwise."""
    group, table = _GROUPS[family]
    target = table.get(name)
    if target is None:
        for ep in entry_points().select(group=group):
            if ep.name == name:
                return ep.load()
        raise ConfigError(
            f"unknown {family} '{name}'", fix=f"use one of: {', '.join(names(family))}"
        )
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)
