"""Rootfs keys, layering, locking and failure handling."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from isobench.errors import BuildError
from isobench.images import rootfs
from isobench.images.rootfs import base_key, build_rootfs, debian_mirror, spec_key, wheels_key
from isobench.images.spec import RootfsSpec
from isobench.util.proc import CommandResult, FakeRunner, SubprocessRunner
from tests.runtimes.conftest import TEST_CACHE, tiny_spec


def _spec(src: Path, **kw) -> RootfsSpec:
    return RootfsSpec(name="t", files={"/opt/app": src}, **kw)


def test_key_follows_file_bytes_and_modes_not_pycache(tmp_path: Path) -> None:
    src = tmp_path / "app"
    (src / "pkg").mkdir(parents=True)
    (src / "pkg" / "m.py").write_text("x = 1\n")
    key = spec_key(_spec(src))
    assert key == spec_key(_spec(src))
    (src / "pkg" / "__pycache__").mkdir()
    (src / "pkg" / "__pycache__" / "m.cpython-311.pyc").write_bytes(b"junk")
    assert spec_key(_spec(src)) == key
    (src / "pkg" / "m.py").write_text("x = 2\n")
    changed = spec_key(_spec(src))
    assert changed != key
    os.chmod(src / "pkg" / "m.py", 0o755)
    assert spec_key(_spec(src)) != changed
    assert spec_key(_spec(src, build_commands=(("true",),))) != spec_key(_spec(src))


def test_layer_keys_ignore_workload_changes(tmp_path: Path) -> None:
    src = tmp_path / "f.txt"
    src.write_text("a")
    one = _spec(src, pip_requirements=("six",))
    key_one = spec_key(one)
    src.write_text("b")
    two = _spec(src, pip_requirements=("six",))
    assert spec_key(two) != key_one
    assert base_key(one) == base_key(two) and wheels_key(one) == wheels_key(two)
    assert base_key(_spec(src, debian_packages=("redis-server",))) != base_key(one)
    assert base_key(_spec(src, suite="trixie")) != base_key(one)
    assert wheels_key(_spec(src, pip_requirements=("six", "idna"))) != wheels_key(one)


def test_missing_source_is_a_build_error(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="does not exist"):
        spec_key(_spec(tmp_path / "nope"))


def test_mirror_from_deb822_and_one_line_sources(tmp_path: Path) -> None:
    d = tmp_path / "sources.list.d"
    d.mkdir()
    (d / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n\n"
        "Types: deb\nURIs: http://mirror.example/debian-security\n")
    assert debian_mirror((tmp_path / "sources.list", d)) == "http://mirror.example/debian"
    (tmp_path / "sources.list").write_text("deb http://other.example/debian/ bookworm main\n")
    assert debian_mirror((tmp_path / "sources.list", d)) == "http://other.example/debian"
    assert debian_mirror((tmp_path / "none",)) == rootfs.DEFAULT_MIRROR


def test_cached_spec_runs_no_command(tmp_path: Path) -> None:
    src = tmp_path / "f.txt"
    src.write_text("a")
    spec = _spec(src)
    key = spec_key(spec)
    done = tmp_path / "cache" / "rootfs" / key / "opt" / "isobench"
    done.mkdir(parents=True)
    (done / "manifest.json").write_text("{}")
    fake = FakeRunner()
    assert build_rootfs(spec, cache=tmp_path / "cache", runner=fake) == (key, done.parents[1])
    assert fake.calls == []


@pytest.mark.skipif(os.geteuid() != 0, reason="build_rootfs refuses to start without root")
def test_failed_step_names_step_and_log_and_leaves_nothing(tmp_path: Path) -> None:
    src = tmp_path / "f.txt"
    src.write_text("a")
    fake = FakeRunner({"debootstrap": CommandResult(("debootstrap",), 1, "", "E: no mirror")})
    cache = tmp_path / "cache"
    with pytest.raises(BuildError) as err:
        build_rootfs(_spec(src), cache=cache, runner=fake)
    assert "debootstrap" in err.value.message and "E: no mirror" in err.value.message
    log = Path(str(err.value.fix).split()[-1])
    assert log.is_file() and "E: no mirror" in log.read_text()
    leftovers = [p for p in (cache / "rootfs").rglob(".tmp-*")]
    assert leftovers == []
    assert not (cache / "rootfs" / spec_key(_spec(src))).exists()


@pytest.mark.integration
def test_concurrent_builds_of_one_key_build_once(need_root, tmp_path: Path) -> None:
    """Two processes build the same new spec at once: one builds, the other waits and reuses it.

    The fresh cache borrows the persistent debootstrap layer (symlink) so this takes seconds.
    """
    tiny = tiny_spec()
    persistent_base = TEST_CACHE / "rootfs" / "base" / base_key(tiny)
    build_rootfs(tiny, cache=TEST_CACHE, runner=SubprocessRunner())  # base exists afterwards
    cache = tmp_path / "cache"
    (cache / "rootfs" / "base").mkdir(parents=True)
    (cache / "rootfs" / "base" / base_key(tiny)).symlink_to(persistent_base)
    marker = tmp_path / "src" / "marker.txt"
    marker.parent.mkdir()
    marker.write_text(f"{time.time()}\n")
    code = (
        "import sys; from pathlib import Path\n"
        "from isobench.images.rootfs import build_rootfs\n"
        "from isobench.images.spec import RootfsSpec\n"
        "from isobench.util.proc import SubprocessRunner\n"
        f"spec = RootfsSpec(name='conc', files={{'/opt/marker.txt': Path({str(marker)!r})}})\n"
        f"print(build_rootfs(spec, cache=Path({str(cache)!r}), runner=SubprocessRunner())[1])\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert outs[0] == outs[1]
    built = Path(outs[0])
    assert (built / "opt" / "marker.txt").read_text() == marker.read_text()
    assert (built / "opt" / "isobench" / "venv" / "bin" / "python").exists()
    logs = list((cache / "rootfs" / "logs").glob("conc-*.log"))
    assert len(logs) == 1 and logs[0].read_text().count("building rootfs") == 1
    assert list((cache / "rootfs").glob(".tmp-*")) == []
    assert persistent_base.is_dir() and not persistent_base.is_symlink()
