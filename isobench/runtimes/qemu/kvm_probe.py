"""Does KVM really boot a stock guest kernel here? Answered by booting one, with a deadline.

``/dev/kvm`` opening is not enough: on hosts with a paravirtual KVM (``kvm_pvm``) a Debian
kernel aborts (``failed to set MSR 0x10a``), stops (``KVM internal error``) or hangs. The probe
boots the guest kernel with the isobench initramfs in ``isb_mode=probe`` (init prints a marker
and powers off) and requires the marker within the timeout. Results are cached per kernel and
host boot in ``paths.state_dir()/kvm-probe.json``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from isobench.util import paths

MARKER = "ISOBENCH-PROBE-OK"
"""What the guest init prints on the serial console in probe mode."""

CACHE_FILE = "kvm-probe.json"

_KNOWN_ERRORS = (
    r"failed to set MSR 0x[0-9a-fA-F]+",
    r"KVM internal error[^\n]*",
    r"Could not access KVM kernel module[^\n]*",
    r"failed to initialize kvm[^\n]*",
    r"KVM_[A-Z_]+ failed[^\n]*",
    r"Kernel panic[^\n]*",
)


@dataclass(frozen=True)
class ProbeResult:
    """Whether VMs may use KVM here, why, and how long the probe took."""

    usable: bool
    reason: str
    seconds: float


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def _cache_key(kernel: Path) -> str:
    st = kernel.stat()
    return f"{kernel.parent.name}:{st.st_size}:{int(st.st_mtime)}:{_boot_id()}"


def _load_cache() -> dict[str, dict[str, object]]:
    try:
        data = json.loads((paths.state_dir() / CACHE_FILE).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _store(key: str, result: ProbeResult) -> None:
    data = _load_cache()
    data[key] = asdict(result)
    target = paths.state_dir() / CACHE_FILE
    tmp = target.with_name(f".{CACHE_FILE}.{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, target)


def cached_probe() -> ProbeResult | None:
    """The probe result recorded for this host boot (any kernel), if there is one."""
    boot = _boot_id()
    for key, value in _load_cache().items():
        if key.endswith(":" + boot):
            try:
                return ProbeResult(
                    bool(value["usable"]), str(value["reason"]), float(str(value["seconds"]))
                )
            except (KeyError, ValueError):
                continue
    return None


def probe_argv(kernel: Path, initrd: Path, log: Path, accel: str = "kvm") -> list[str]:
    """The QEMU command of the probe boot (``accel="tcg"`` only to test the probe itself)."""
    cpu = "host" if accel == "kvm" else "max"
    return [
        "qemu-system-x86_64", "-accel", accel, "-cpu", cpu, "-M", "q35", "-m", "256",
        "-smp", "1", "-nodefaults", "-display", "none", "-no-reboot",
        "-kernel", str(kernel), "-initrd", str(initrd),
        "-append", "console=ttyS0 panic=-1 isb_mode=probe",
        "-serial", f"file:{log}", "-monitor", "none",
    ]  # fmt: skip


def _explain(text: str) -> str | None:
    for pattern in _KNOWN_ERRORS:
        match = re.search(pattern, text)
        if match:
            return match.group(0).strip()
    return None


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:160] if lines else "(nothing)"


def run_probe(kernel: Path, initrd: Path, timeout: float, accel: str = "kvm") -> ProbeResult:
    """Boot once under KVM (uncached). The QEMU process is always killed before returning."""
    t0 = time.monotonic()
    if accel != "kvm":
        pass
    elif not os.path.exists("/dev/kvm"):
        return ProbeResult(False, "no /dev/kvm (KVM module not loaded or not exposed)", 0.0)
    elif not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return ProbeResult(False, "/dev/kvm not accessible to this user", 0.0)
    if shutil.which("qemu-system-x86_64") is None:
        return ProbeResult(False, "qemu-system-x86_64 not installed", 0.0)
    with tempfile.TemporaryDirectory(prefix="isobench-kvm-probe-") as tmp_s:
        log, err = Path(tmp_s) / "serial.log", Path(tmp_s) / "qemu.stderr"
        log.touch()
        with open(err, "wb") as err_fh:
            proc = subprocess.Popen(
                probe_argv(kernel, initrd, log, accel),
                stdin=subprocess.DEVNULL, stdout=err_fh, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        try:
            while True:
                console = log.read_text(errors="replace")
                elapsed = time.monotonic() - t0
                if MARKER in console:
                    why = f"guest booted under {accel} in {elapsed:.1f} s"
                    return ProbeResult(True, why, elapsed)
                rc = proc.poll()
                if rc is not None:
                    out = err.read_text(errors="replace") + "\n" + console
                    why = _explain(out) or f"qemu exited rc={rc}: {_last_line(out)}"
                    return ProbeResult(False, why, elapsed)
                if elapsed > timeout:
                    out = err.read_text(errors="replace") + "\n" + console
                    why = _explain(out) or (
                        f"guest hung: no boot marker within {timeout:.0f} s "
                        f"(last console line: {_last_line(console)})"
                    )
                    return ProbeResult(False, why, elapsed)
                time.sleep(0.05)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


def probe_kvm(kernel: Path, initrd: Path, *, timeout: float = 8.0) -> ProbeResult:
    """Whether a stock guest kernel boots under KVM here (cached per kernel and host boot).

    Args:
        kernel: guest vmlinuz (from ``ensure_kernel``).
        initrd: isobench initramfs (from ``ensure_initramfs``), whose init knows ``isb_mode=probe``.
        timeout: seconds the guest gets to print the probe marker.

    Returns:
        ``usable`` True only when the marker was seen; ``reason`` says what was seen otherwise
        (missing /dev/kvm, the QEMU/KVM error, or a hang).
    """
    key = _cache_key(kernel)
    cached = _load_cache().get(key)
    if cached is not None:
        try:
            return ProbeResult(
                bool(cached["usable"]), str(cached["reason"]), float(str(cached["seconds"]))
            )
        except (KeyError, ValueError):
            pass
    result = run_probe(kernel, initrd, timeout)
    if result.seconds > 0:  # a booted (or failed) probe, not a missing precondition
        _store(key, result)
    return result
