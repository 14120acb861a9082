from pathlib import Path

import pytest

from isobench.images.cache import remove_build_cache
from isobench.proc import FakeRunner


def test_remove_build_cache_removes_labelled_images_and_the_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    (cache / "rootfs" / "abc").mkdir(parents=True)
    monkeypatch.setenv("ISOBENCH_CACHE", str(cache))
    runner = FakeRunner({"docker images": (0, "111\n222\n111\n")})
    removed = remove_build_cache(runner)
    assert ("docker", "rmi", "-f", "111") in runner.calls
    assert ("docker", "rmi", "-f", "222") in runner.calls
    assert removed[:2] == ["docker image 111", "docker image 222"]
    assert not (cache / "rootfs").exists()
