"""The QEMU VM runtime: its image (ext4 disk, kernel, initramfs, guest agent), KVM probe, runtime.

The plug-in is ``isobench.runtimes.qemu``; its public names live in ``runtime.py``."""

from isobench.runtimes.qemu.runtime import (
    AGENT_GUEST_PORT,
    CMDLINE,
    EXIT_MARK,
    GUEST_BIN,
    PANIC_MARK,
    QEMU,
    QemuRuntime,
    VmConfig,
    clean_vms,
    qemu_argv,
    render_launch,
    tail,
    vm_dir,
)

__all__ = [
    "AGENT_GUEST_PORT",
    "CMDLINE",
    "EXIT_MARK",
    "GUEST_BIN",
    "PANIC_MARK",
    "QEMU",
    "QemuRuntime",
    "VmConfig",
    "clean_vms",
    "qemu_argv",
    "render_launch",
    "tail",
    "vm_dir",
]
