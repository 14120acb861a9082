"""What ``doctor`` says about QEMU and KVM: only a probe boot proves KVM works."""

from __future__ import annotations

import shutil
from pathlib import Path

from isobench.runtimes.base import HostCheck
from isobench.util.proc import SubprocessRunner


def qemu_check() -> HostCheck:
    """qemu-system-x86_64 is installed (its version)."""
    if shutil.which("qemu-system-x86_64") is None:
        return HostCheck("qemu", False, "qemu-system-x86_64 not found",
                         "apt-get install qemu-system-x86")
    out = SubprocessRunner().run(["qemu-system-x86_64", "--version"], check=False, timeout=10)
    return HostCheck("qemu", out.ok, (out.stdout.strip().splitlines() or ["?"])[0])


def kvm_check(probe: bool) -> HostCheck:
    """Whether VMs get hardware acceleration: a probe boot of the guest kernel under KVM."""
    if not Path("/dev/kvm").exists():
        return HostCheck("kvm", False,
                         "/dev/kvm absent: VMs run under TCG (emulated, not comparable)",
                         "enable hardware virtualisation (nested VMX/SVM) for this host")
    if not probe:
        return HostCheck("kvm", False, "/dev/kvm exists, but only a probe boot proves it works "
                                       "(run `isobench doctor` without --no-probe)")
    try:
        from isobench.runtimes.qemu.initramfs import ensure_initramfs
        from isobench.runtimes.qemu.kernel import ensure_kernel
        from isobench.runtimes.qemu.kvm_probe import probe_kvm
        from isobench.util import paths

        runner = SubprocessRunner()
        kernel, modules, version = ensure_kernel(paths.cache_dir(), runner)
        initrd = ensure_initramfs(paths.cache_dir(), runner, modules, version)
        result = probe_kvm(kernel, initrd)
    except Exception as exc:  # doctor reports, it does not crash
        return HostCheck("kvm", False, f"probe boot could not run: {exc}")
    if result.usable:
        return HostCheck("kvm", True, "a probe boot of the guest kernel under KVM answered in "
                                      f"{result.seconds:.1f} s")
    return HostCheck("kvm", False,
                     f"probe boot under KVM failed: {result.reason}; VMs run under TCG "
                     "(emulated: every VM figure is marked not comparable)",
                     "a host with hardware VMX/SVM exposed (here /dev/kvm is not hardware KVM)")
