"""The Docker runtimes (bridge, host network, gVisor): one package.

The plug-in is ``isobench.runtimes.docker``; its public names live in ``runtime.py``."""

from isobench.runtimes.docker.runtime import (
    ENGINE_FIX,
    DockerBridgeRuntime,
    DockerHostRuntime,
    DockerRuntime,
    GvisorRuntime,
    find_docker_proxy,
    host_veth,
)

__all__ = [
    "ENGINE_FIX",
    "DockerBridgeRuntime",
    "DockerHostRuntime",
    "DockerRuntime",
    "GvisorRuntime",
    "find_docker_proxy",
    "host_veth",
]
