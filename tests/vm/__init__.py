"""Tests of the VM runtime: guest kernel, initramfs, disk, QEMU, KVM probe."""
