"""The Docker runtimes (bridge, host network, gVisor): one package.

The plug-in is ``isobench.runtimes.docker``; its public names live in ``runtime.py``."""

from isobench.runtimes.docker.runtime import (
    CONTAINER_LABELS,
    DOCKERD_PIDFILE,
    ENGINE_FIX,
    RECORDS,
    DockerBridgeRuntime,
    DockerHostRuntime,
    DockerRuntime,
    GvisorRuntime,
    container_exit,
    dockerd_pids,
    find_docker_proxy,
    host_veth,
    list_containers,
)

__all__ = [
    "CONTAINER_LABELS",
    "DOCKERD_PIDFILE",
    "ENGINE_FIX",
    "RECORDS",
    "DockerBridgeRuntime",
    "DockerHostRuntime",
    "DockerRuntime",
    "GvisorRuntime",
    "container_exit",
    "dockerd_pids",
    "find_docker_proxy",
    "host_veth",
    "list_containers",
]
