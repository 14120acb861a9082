"""The guest initramfs: static busybox, the virtio modules, and isobench's init and telemetry agent.

Packed in Python as a deterministic ``newc`` cpio archive (zero mtimes, sorted entries, a
``/dev/console`` node without needing root), gzip-compressed. Cached by kernel version and the
hash of everything that goes in.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from isobench.errors import BuildError
from isobench.runtimes.qemu.kernel import ORDER_FILE, apt_run, cache_lock, download_deb
from isobench.util.proc import CommandRunner

GUEST_DIR = Path(__file__).parent / "guest"
"""Guest-side files shipped with isobench: ``init.sh`` (becomes ``/init``) and ``stats.sh`` (the
telemetry agent's CGI, becomes ``/www/cgi-bin/stats``)."""

BUILDER_VERSION = "1"
"""Bump when the layout built here changes, to invalidate cached initramfs images."""

BUSYBOX_PACKAGE = "busybox-static"


@dataclass(frozen=True)
class _Entry:
    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)


def _newc_header(name: bytes, entry: _Entry, ino: int) -> bytes:
    fields = (
        ino,
        entry.mode,
        0,  # uid
        0,  # gid
        1,  # nlink
        0,  # mtime
        len(entry.data),
        0,  # devmajor
        0,  # devminor
        entry.rdev[0],
        entry.rdev[1],
        len(name) + 1,
        0,  # check
    )
    return b"070701" + b"".join(f"{f:08x}".encode() for f in fields)


def _pad4(n: int) -> bytes:
    return b"\0" * (-n % 4)


def pack_newc(entries: dict[str, _Entry]) -> bytes:
    """A ``newc`` cpio archive of ``entries`` (path without leading slash → entry), sorted."""
    out = io.BytesIO()
    for ino, (path, entry) in enumerate(sorted(entries.items()), start=1):
        name = path.encode()
        header = _newc_header(name, entry, ino)
        out.write(header + name + b"\0")
        out.write(_pad4(len(header) + len(name) + 1))
        out.write(entry.data)
        out.write(_pad4(len(entry.data)))
    trailer = _newc_header(b"TRAILER!!!", _Entry(0), 0)
    out.write(trailer + b"TRAILER!!!\0")
    out.write(_pad4(len(trailer) + 11))
    return out.getvalue()


def _dir() -> _Entry:
    return _Entry(stat.S_IFDIR | 0o755)


def _file(data: bytes, executable: bool = False) -> _Entry:
    return _Entry(stat.S_IFREG | (0o755 if executable else 0o644), data)


def _guest_files() -> dict[str, _Entry]:
    return {
        "init": _file((GUEST_DIR / "init.sh").read_bytes(), executable=True),
        "www": _dir(),
        "www/cgi-bin": _dir(),
        "www/cgi-bin/stats": _file((GUEST_DIR / "stats.sh").read_bytes(), executable=True),
    }


def guest_files_hash() -> str:
    """Hash of the guest files (init, agent) shipped with isobench."""
    h = hashlib.sha256(BUILDER_VERSION.encode())
    for path, entry in sorted(_guest_files().items()):
        h.update(path.encode() + b"\0" + f"{entry.mode:o}".encode() + b"\0" + entry.data)
    return h.hexdigest()


def ensure_busybox(cache: Path, runner: CommandRunner) -> Path:
    """A static busybox binary from Debian's ``busybox-static``, cached per package version."""
    out = apt_run(runner, ["apt-cache", "show", "--no-all-versions", BUSYBOX_PACKAGE])
    version = next(
        (ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Version:")), ""
    )
    if not version:
        raise BuildError(f"apt knows no {BUSYBOX_PACKAGE}", fix="run apt-get update")
    safe = version.replace(":", "_").replace("/", "_")
    target = cache / "vm" / "busybox" / safe / "busybox"
    if target.is_file():
        return target
    with cache_lock(cache / "vm" / "locks" / f"busybox-{safe}.lock"):
        if target.is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as tmp_s:
            tmp = Path(tmp_s)
            tmp.chmod(0o755)
            deb = download_deb(runner, BUSYBOX_PACKAGE, tmp)
            runner.run(["dpkg-deb", "-x", str(deb), str(tmp / "tree")], timeout=300)
            binary = tmp / "tree" / "bin" / "busybox"
            if not binary.is_file():
                raise BuildError(f"{deb.name} has no bin/busybox", fix="report a bug")
            os.replace(binary, target)
    return target


def build_initramfs(busybox: Path, modules_dir: Path, applets: list[str]) -> bytes:
    """The gzip-compressed initramfs image (deterministic for identical inputs)."""
    entries: dict[str, _Entry] = {
        d: _dir() for d in ("bin", "dev", "proc", "sys", "tmp", "newroot", "lib", "lib/modules")
    }
    entries["dev/console"] = _Entry(stat.S_IFCHR | 0o600, rdev=(5, 1))
    entries["bin/busybox"] = _file(busybox.read_bytes(), executable=True)
    for applet in applets:
        if applet and "/" not in applet and applet != "busybox":
            entries[f"bin/{applet}"] = _Entry(stat.S_IFLNK | 0o777, b"busybox")
    order = (modules_dir / ORDER_FILE).read_text().split()
    for name in order:
        entries[f"lib/modules/{name}"] = _file((modules_dir / name).read_bytes())
    entries[f"lib/modules/{ORDER_FILE}"] = _file(("\n".join(order) + "\n").encode())
    entries.update(_guest_files())
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=6, mtime=0) as gz:
        gz.write(pack_newc(entries))
    return buf.getvalue()


def ensure_initramfs(
    cache: Path, runner: CommandRunner, modules_dir: Path, kernel_version: str
) -> Path:
    """The cached initramfs for ``kernel_version`` and the current guest files; built if missing.

    Args:
        cache: the isobench cache directory.
        runner: runs apt and busybox.
        modules_dir: from :func:`isobench.runtimes.qemu.kernel.ensure_kernel`.
        kernel_version: from the same.

    Returns:
        Path of the gzip'd cpio image.
    """
    busybox = ensure_busybox(cache, runner)
    h = hashlib.sha256(guest_files_hash().encode())
    h.update(hashlib.sha256(busybox.read_bytes()).digest())
    for name in sorted(os.listdir(modules_dir)):
        h.update(name.encode() + (modules_dir / name).read_bytes())
    target = cache / "vm" / "initrd" / f"initrd-{kernel_version}-{h.hexdigest()[:16]}.img"
    if target.is_file():
        return target
    with cache_lock(cache / "vm" / "locks" / f"{target.name}.lock"):
        if target.is_file():
            return target
        applets = runner.run([str(busybox), "--list"], timeout=30).stdout.split()
        data = build_initramfs(busybox, modules_dir, applets)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
    return target
