"""ImageWorkload, the base_image artifacts and the Docker port mapping, with a FakeRunner."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from isobench.errors import BuildError
from isobench.images.build import build_artifacts
from isobench.images.spec import RootfsSpec
from isobench.images.user_image import ImageConfig, build_argv, image_dir, inspect_image
from isobench.runtimes.base import Resources, RuntimeContext
from isobench.runtimes.docker import DockerBridgeRuntime, DockerHostRuntime
from isobench.util.proc import CommandResult, FakeRunner
from isobench.workloads.base import LaunchSpec
from isobench.workloads.image import ImageWorkload

KEY = "cd" * 32
ID = f"sha256:{KEY}"


def inspect_json(**config: object) -> str:
    base: dict[str, object] = {
        "Cmd": ["python3", "app.py"], "Env": ["PATH=/usr/bin:/bin", "GREETING=hi"],
        "WorkingDir": "/srv", "User": "app", "ExposedPorts": {"8080/tcp": {}}}
    base.update(config)
    return json.dumps([{"Id": ID, "Size": 4096, "Config": base}])


def cached_export(cache: Path) -> Path:
    """A finished export in the cache (as export_rootfs leaves it), so no root/tar is needed."""
    rootfs = image_dir(cache, KEY) / "rootfs"
    (rootfs / "usr" / "bin").mkdir(parents=True)
    (rootfs / "usr" / "bin" / "python3").write_text("")
    (rootfs / "etc").mkdir()
    (rootfs / "etc" / "passwd").write_text("app:x:1000:1000::/home/app:/bin/sh\n")
    (image_dir(cache, KEY) / "config.json").write_text("{}")
    return rootfs


def workload(tmp_path: Path, runner: FakeRunner, **options: object) -> ImageWorkload:
    return ImageWorkload({"image": "myapp:1", **options}, runner=runner, cache=tmp_path)


def test_image_workload_translates_the_inspected_config(tmp_path: Path) -> None:
    cached_export(tmp_path)
    runner = FakeRunner({"docker image inspect myapp:1": (0, inspect_json())})
    w = workload(tmp_path, runner, ready_path="/healthz", env=["MODE=bench", "BIND={bind}"])
    assert w.check() is None
    assert w.rootfs_spec() == RootfsSpec(name=f"image-{KEY[:12]}", base_image=ID)
    spec = w.launch_spec()
    assert spec == LaunchSpec(
        argv=("/usr/bin/python3", "app.py"),
        env={"PATH": "/usr/bin:/bin", "GREETING": "hi", "MODE": "bench", "BIND": "{bind}",
             "HOME": "/home/app"},
        workdir="/srv", ready_path="/healthz", user="app", writable_paths=("/tmp",), port=8080)
    assert w.default_scenario()["requests"][0]["path"] == "/healthz"
    assert runner.calls == [("docker", "image", "inspect", "myapp:1")]  # inspected once


def test_refusals_reach_check_as_one_line(tmp_path: Path) -> None:
    cached_export(tmp_path)
    runner = FakeRunner({"docker image inspect myapp:1": (0, inspect_json(ExposedPorts=None))})
    reason = workload(tmp_path, runner).check()
    assert reason is not None and "exposes no TCP port" in reason and "\n" not in reason
    assert "--port" in reason
    runner = FakeRunner({"docker image inspect myapp:1": (
        0, inspect_json(Healthcheck={"Test": ["CMD", "/bin/true"]}))})
    reason = workload(tmp_path, runner).check()
    assert reason is not None and "HEALTHCHECK only" in reason


def test_options_must_name_one_source(tmp_path: Path) -> None:
    both = ImageWorkload({"image": "a", "dockerfile": "Dockerfile"}, runner=FakeRunner(),
                         cache=tmp_path)
    neither = ImageWorkload({}, runner=FakeRunner(), cache=tmp_path)
    for w in (both, neither):
        reason = w.check()
        assert reason is not None and "--dockerfile PATH or --image NAME" in reason


def test_missing_image_names_the_registry_fix(tmp_path: Path) -> None:
    argv = ("docker", "image", "inspect", "nope:1")
    runner = FakeRunner({"docker image inspect nope:1": CommandResult(
        argv, 1, "", "Error: No such image: nope:1")})
    with pytest.raises(BuildError, match="not in the local Docker engine") as info:
        inspect_image("nope:1", runner=runner)
    assert "no registry is reachable" in str(info.value)


def test_base_image_artifacts_are_the_image_itself(tmp_path: Path) -> None:
    rootfs = cached_export(tmp_path)
    runner = FakeRunner({
        "docker image inspect myapp:1": (0, inspect_json()),
        "docker image inspect --format {{.Size}}": (0, "4096\n"),
        "du -sb": (0, f"5000\t{rootfs}\n"),
    })
    arts = build_artifacts(RootfsSpec(name="x", base_image="myapp:1"),
                           {"rootfs", "docker_image"}, cache=tmp_path, runner=runner)
    assert arts.key == KEY and arts.rootfs == rootfs
    assert arts.get("docker_image") == ID  # no re-import
    assert dict(arts.sizes) == {"rootfs": 5000, "docker_image": 4096}
    assert not any("import" in " ".join(c) for c in runner.calls)


def test_base_image_with_content_is_refused(tmp_path: Path) -> None:
    spec = RootfsSpec(name="x", base_image="myapp:1", debian_packages=("curl",))
    with pytest.raises(BuildError, match="sets base_image and also debian_packages"):
        build_artifacts(spec, {"rootfs"}, cache=tmp_path, runner=FakeRunner())


def test_build_argv_legacy_builder_and_wheelhouse() -> None:
    argv = build_argv(Path("/c/Dockerfile"), Path("/c"), "isobench/byo-c:1", Path("/w/iid"), 4321)
    assert argv[:2] == ["docker", "build"] and argv[-1] == "/c"
    pairs = set(itertools.pairwise(argv))
    assert ("--network", "host") in pairs and "--label" not in argv
    assert ("--build-arg", "PIP_FIND_LINKS=http://127.0.0.1:4321/") in pairs
    assert ("--build-arg", "PIP_NO_INDEX=1") in pairs
    assert not any("PIP" in a for a in build_argv(Path("/c/D"), Path("/c"), "t", Path("i")))


def _run_argv(cls: type[DockerBridgeRuntime] | type[DockerHostRuntime], spec: LaunchSpec,
              host_port: int) -> list[str]:
    runtime = cls(RuntimeContext(runner=FakeRunner(), run_id="r1"))
    rendered = spec.render(cls.bind, spec.listen_port(host_port))
    return runtime.run_argv(ID, "isobench-r1-x-0", rendered, Resources(), host_port)


def test_bridge_publishes_host_port_to_the_fixed_listen_port() -> None:
    spec = LaunchSpec(argv=("/usr/bin/python3", "app.py"), env={"BIND": "{bind}"},
                      workdir="/srv", user="app", port=8080)
    argv = _run_argv(DockerBridgeRuntime, spec, 41000)
    pairs = set(itertools.pairwise(argv))
    assert ("--publish", "127.0.0.1:41000:8080") in pairs
    assert ("--env", "BIND=0.0.0.0") in pairs and ("--workdir", "/srv") in pairs
    assert ("--user", "app") in pairs and ("--entrypoint", "/usr/bin/python3") in pairs
    assert argv[-2:] == [ID, "app.py"]
    # without a fixed port the workload listens on the host port itself, as before
    argv = _run_argv(DockerBridgeRuntime, LaunchSpec(argv=("/bin/x", "{port}")), 41001)
    assert "127.0.0.1:41001:41001" in argv and argv[-1] == "41001"
    host = _run_argv(DockerHostRuntime, spec, 8080)
    assert "--publish" not in host and ("--env", "BIND=127.0.0.1") in set(
        itertools.pairwise(host))


def test_image_config_key_is_the_id_hex() -> None:
    assert ImageConfig(id=ID).key == KEY
