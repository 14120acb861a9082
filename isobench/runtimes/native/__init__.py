"""The native runtime: the rootfs run as a bare process (chroot + overlay).

The plug-in is ``isobench.runtimes.native``; its public names live in ``runtime.py``."""

from isobench.runtimes.native.runtime import (
    DEFAULT_PATH,
    NativeRuntime,
    launch_argv,
    load_states,
    native_state_dir,
    resolve_user,
    teardown_native,
)

__all__ = [
    "DEFAULT_PATH",
    "NativeRuntime",
    "launch_argv",
    "load_states",
    "native_state_dir",
    "resolve_user",
    "teardown_native",
]
