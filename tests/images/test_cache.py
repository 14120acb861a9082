"""``clean --cache``: only isobench's cache layout and the image tags it recorded, never a directory
that is not its cache, never an image chosen by (inheritable) label, never under a live run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from isobench.images.cache import record_tag, recorded_tags, remove_build_cache
from isobench.util import locks, paths
from isobench.util.proc import CommandResult, FakeRunner, SubprocessRunner


class _Runner:
    """Docker scripted by a FakeRunner; ``rm`` for real (inside tmp_path)."""

    def __init__(self, fake: FakeRunner) -> None:
        self.fake = fake

    def run(self, argv: Sequence[str], *, check: bool = True, timeout: float | None = None,
            input: bytes | str | None = None, env: Mapping[str, str] | None = None,
            cwd: Path | None = None) -> CommandResult:
        if argv[0] == "rm":
            return SubprocessRunner().run(argv, check=check, timeout=timeout)
        return self.fake.run(argv, check=check, timeout=timeout)


@pytest.fixture(autouse=True)
def private_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ISOBENCH_STATE", str(tmp_path / "state"))


def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("ISOBENCH_CACHE", str(cache))
    assert paths.cache_dir() == cache and (cache / paths.CACHE_TAG).is_file()  # new: tagged
    (cache / "rootfs" / "abc").mkdir(parents=True)
    (cache / "images" / "k").mkdir(parents=True)
    return cache


def test_removes_its_layout_and_its_recorded_tags_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = _cache(tmp_path, monkeypatch)
    (cache / "notes.txt").write_text("the user's")
    record_tag(cache, "isobench/w:0123", "sha256:w")
    record_tag(cache, "isobench/base:latest", "sha256:old")  # since re-pointed by the user
    fake = FakeRunner({
        "docker version": (0, "24"),
        "docker image inspect --format {{.Id}} isobench/w:0123": (0, "sha256:w\n"),
        "docker image inspect --format {{.Id}} isobench/base:latest": (0, "sha256:theirs\n"),
    })
    done = remove_build_cache(_Runner(fake))
    assert ("docker", "rmi", "isobench/w:0123") in fake.calls
    assert not any(c[:2] == ("docker", "rmi") and "isobench/base:latest" in c for c in fake.calls)
    assert not any("images" in c and "--filter" in c for c in fake.calls)  # never by label
    assert not any("-f" in c for c in fake.calls if c[:2] == ("docker", "rmi"))
    assert "docker image tag isobench/w:0123" in done.removed
    assert not (cache / "rootfs").exists() and not (cache / "images").exists()
    assert (cache / "notes.txt").read_text() == "the user's"
    assert any("1 entries isobench did not create" in k for k in done.kept)
    assert done.unchecked == []


def test_refuses_a_directory_that_is_not_its_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    (home / "rootfs").mkdir(parents=True)
    (home / "thesis.tex").write_text("x")
    monkeypatch.setenv("ISOBENCH_CACHE", str(home))
    paths.cache_dir()  # an existing directory of other files is never tagged
    assert not (home / paths.CACHE_TAG).exists()
    fake = FakeRunner()
    done = remove_build_cache(_Runner(fake))
    assert fake.calls == [] and done.removed == []
    assert len(done.unchecked) == 1 and "does not look like isobench's cache" in done.unchecked[0]
    assert (home / "rootfs").is_dir() and (home / "thesis.tex").exists()


def test_refused_while_a_run_uses_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = _cache(tmp_path, monkeypatch)
    with locks.cache_in_use(cache):
        done = remove_build_cache(_Runner(FakeRunner()))
    assert (cache / "rootfs" / "abc").is_dir()
    assert "in use by a live isobench run" in done.unchecked[0]


def test_docker_down_keeps_the_tag_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = _cache(tmp_path, monkeypatch)
    record_tag(cache, "isobench/w:0123", "sha256:w")
    fake = FakeRunner({"docker version": (1, "Cannot connect to the Docker daemon")})
    done = remove_build_cache(_Runner(fake))
    assert "daemon not reachable" in done.unchecked[0]
    assert "1 image tags not checked" in done.unchecked[0]
    assert [t for _, t, _ in recorded_tags(cache)] == ["isobench/w:0123"]
    assert not (cache / "rootfs").exists()
