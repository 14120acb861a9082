"""Rootful Podman as a runtime: ``podman-bridge`` and ``podman-host`` (see :mod:`.runtime`)."""

from isobench.runtimes.podman.runtime import PodmanBridgeRuntime, PodmanHostRuntime, PodmanRuntime

__all__ = ["PodmanBridgeRuntime", "PodmanHostRuntime", "PodmanRuntime"]
