"""build_artifacts: the tiny rootfs + Docker image, sizes, and the cost of an unchanged rebuild."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from isobench.errors import ConfigError
from isobench.images.build import build_artifacts
from isobench.images.docker_image import ensure_docker_image, image_ref, import_argv
from isobench.images.spec import RootfsSpec
from isobench.util.proc import FakeRunner
from tests.runtimes.conftest import TEST_CACHE, tiny_spec


def test_ensure_docker_image_skips_existing_and_imports_missing(tmp_path: Path) -> None:
    fake = FakeRunner({"docker image inspect": (0, "sha256:abc")})
    ref = ensure_docker_image(Path("/r"), "0123456789abcdef", "w", runner=fake, cache=tmp_path)
    assert ref == "isobench/w:0123456789ab" == image_ref("w", "0123456789abcdef")
    assert len(fake.calls) == 1
    fake = FakeRunner({"docker image inspect": (1, "")})
    ensure_docker_image(Path("/r"), "0123456789abcdef", "w", runner=fake, cache=tmp_path)
    assert fake.calls[1] == tuple(import_argv(Path("/r"), ref, "0123456789abcdef"))
    pipeline = fake.calls[1][2]
    assert "pipefail" in pipeline and "tar --numeric-owner -C /r -c ." in pipeline
    assert "docker import --change 'LABEL isobench.key=0123456789abcdef'" in pipeline
    assert "isobench=1" not in pipeline and pipeline.endswith(ref)


def test_unknown_artifact_kind() -> None:
    with pytest.raises(ConfigError):
        build_artifacts(RootfsSpec(name="x"), {"rootfs", "iso"}, runner=FakeRunner())


@pytest.mark.integration
def test_tiny_artifacts_and_sizes(need_docker) -> None:
    started = time.monotonic()
    art = build_artifacts(tiny_spec(), {"rootfs", "docker_image"}, cache=TEST_CACHE)
    first = time.monotonic() - started
    started = time.monotonic()
    again = build_artifacts(tiny_spec(), {"rootfs", "docker_image"}, cache=TEST_CACHE)
    warm = time.monotonic() - started
    print(f"\n[bench] build_artifacts(rootfs+docker_image): first call {first:.2f} s, "
          f"unchanged spec {warm:.3f} s; sizes {dict(art.sizes)}")
    assert again == art
    du = int(subprocess.run(["du", "-sb", str(art.rootfs)], capture_output=True, text=True,
                            check=True).stdout.split()[0])
    assert art.sizes["rootfs"] == du
    assert art.sizes["docker_image"] > 0.8 * du
    manifest = json.loads((art.rootfs / "opt/isobench/manifest.json").read_text())
    assert manifest["key"] == art.key
    assert (art.rootfs / "opt/isobench/workload/built.txt").read_text() == "built\n"
    assert (art.rootfs / "opt/isobench/venv/lib/python3.11/site-packages/six.py").exists()
    assert not list((art.rootfs / "usr/share/doc").iterdir())
    image = str(art.get("docker_image"))
    labels = subprocess.run(["docker", "image", "inspect", "--format", "{{json .Config.Labels}}",
                             image], capture_output=True, text=True, check=True)
    image_labels = json.loads(labels.stdout)
    assert image_labels["isobench.key"] == art.key  # descriptive; owner labels only on containers
    assert "isobench.run" not in image_labels and "isobench.created-by" not in image_labels


def test_vm_sizes_tell_allocated_from_apparent(tmp_path: Path) -> None:
    from isobench.runtimes.qemu.image import VmArtifacts, vm_sizes

    disk = tmp_path / "disk.img"
    with disk.open("wb") as fh:
        fh.write(b"\1" * 65536)
        fh.truncate(64 * 1024 * 1024)  # sparse tail
    kernel, initrd = tmp_path / "vmlinuz", tmp_path / "initrd"
    kernel.write_bytes(b"k" * 1000)
    initrd.write_bytes(b"i" * 500)
    sizes = vm_sizes(VmArtifacts(disk=disk, kernel=kernel, initrd=initrd, kernel_version="6"))
    assert sizes["vm_disk_apparent"] == 64 * 1024 * 1024
    assert 65536 <= sizes["vm_disk"] < 1024 * 1024
    assert sizes["vm_boot"] == 1500
