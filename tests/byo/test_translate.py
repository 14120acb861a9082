"""Image config → LaunchSpec, as ``docker run`` reads the config (unit tests, no Docker)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from isobench.errors import ConfigError
from isobench.images.user_image import ImageConfig
from isobench.runtimes.native import DEFAULT_PATH
from isobench.workloads.image import (
    Refusal,
    command_of,
    env_of,
    home_of,
    launch_from_config,
    port_of,
)

ID = "sha256:" + "ab" * 32


def cfg(**kw: object) -> ImageConfig:
    base: dict[str, object] = {"id": ID, "cmd": ("/app/serve",), "exposed_ports": ("8000/tcp",)}
    base.update(kw)
    return ImageConfig(**base)  # type: ignore[arg-type]


# --- Entrypoint + Cmd, exactly as Docker combines them -------------------------------------------


@pytest.mark.parametrize(
    ("entrypoint", "cmd", "override", "expected"),
    [
        (("/bin/ep", "-x"), ("a", "b"), None, ("/bin/ep", "-x", "a", "b")),  # ENTRYPOINT + CMD
        (("/bin/ep",), (), None, ("/bin/ep",)),  # ENTRYPOINT only
        ((), ("/bin/cmd", "a"), None, ("/bin/cmd", "a")),  # CMD only
        (("/bin/ep",), ("a",), ("z",), ("/bin/ep", "z")),  # docker run IMG z: Cmd replaced
        ((), ("/bin/cmd",), ("/bin/other", "1"), ("/bin/other", "1")),  # no ENTRYPOINT
        (("/bin/ep",), ("a",), (), ("/bin/ep",)),  # an empty override drops Cmd
        (("/bin/sh", "-c", "exec serve"), (), None, ("/bin/sh", "-c", "exec serve")),  # shell form
        ((), (), None, ()),
    ],
)
def test_entrypoint_and_cmd(entrypoint: tuple[str, ...], cmd: tuple[str, ...],
                            override: tuple[str, ...] | None, expected: tuple[str, ...]) -> None:
    assert command_of(cfg(entrypoint=entrypoint, cmd=cmd), override) == expected


def test_no_command_is_refused() -> None:
    with pytest.raises(Refusal, match="neither ENTRYPOINT nor CMD"):
        launch_from_config(cfg(cmd=()))


# --- Env, WorkingDir, User, HOME ------------------------------------------------------------------


def test_env_list_in_order_later_wins_then_overrides() -> None:
    config = cfg(env=("PATH=/usr/bin:/bin", "A=1", "B=x=y", "A=2", "BROKEN"))
    assert env_of(config) == {"PATH": "/usr/bin:/bin", "A": "2", "B": "x=y"}
    assert env_of(config, {"A": "3", "C": "{bind}"})["A"] == "3"
    spec = launch_from_config(config, env={"C": "{bind}"})
    assert spec.env["C"] == "{bind}" and spec.env["PATH"] == "/usr/bin:/bin"
    assert spec.render("127.0.0.1", 8000).env["C"] == "127.0.0.1"


def test_defaults_like_docker_run() -> None:
    spec = launch_from_config(cfg())
    assert spec.workdir == "/"
    assert spec.user is None
    assert spec.env["PATH"] == DEFAULT_PATH  # Docker's default when the image sets none
    assert spec.env["HOME"] == "/root"
    assert spec.ready_path == "/"
    assert spec.writable_paths == ("/tmp",)
    assert spec.port == 8000


def test_workdir_and_user_kept() -> None:
    spec = launch_from_config(cfg(working_dir="/srv/app", user="app:app"))
    assert (spec.workdir, spec.user) == ("/srv/app", "app:app")


def test_home_from_the_image_passwd(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/bash\napp:x:999:999::/home/app:/usr/sbin/nologin\n")
    assert home_of(tmp_path, "app") == "/home/app"
    assert home_of(tmp_path, "999:999") == "/home/app"
    assert home_of(tmp_path, None) == "/root"
    assert home_of(tmp_path, "ghost") == "/"  # Docker: HOME=/ for a user without an entry
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "serve").write_text("")
    assert launch_from_config(cfg(env=("HOME=/data",), user="app"), rootfs=tmp_path
                              ).env["HOME"] == "/data"


# --- ExposedPorts → port --------------------------------------------------------------------------


def test_port_from_exposed_ports() -> None:
    assert port_of(cfg(exposed_ports=("8000/tcp",)), None) == 8000
    assert port_of(cfg(exposed_ports=("53/udp", "8080/tcp")), None) == 8080
    assert port_of(cfg(exposed_ports=("8000/tcp", "9000/tcp")), 9000) == 9000
    assert launch_from_config(cfg(), port=7000).port == 7000


@pytest.mark.parametrize(
    ("ports", "message"),
    [((), "exposes no TCP port"), (("53/udp",), "exposes no TCP port"),
     (("8000/tcp", "9000/tcp"), "several TCP ports \\(8000, 9000\\)")],
)
def test_port_refusals(ports: tuple[str, ...], message: str) -> None:
    with pytest.raises(Refusal, match=message) as info:
        launch_from_config(cfg(exposed_ports=ports))
    assert "--port" in str(info.value)


def test_bad_port_and_ready_path() -> None:
    with pytest.raises(ConfigError):
        port_of(cfg(), 70000)
    with pytest.raises(ConfigError, match="must start with /"):
        launch_from_config(cfg(), ready_path="healthz")


# --- refusals of what the VM init / chroot cannot provide -----------------------------------------


def test_healthcheck_only_readiness_refused() -> None:
    config = cfg(healthcheck=("CMD-SHELL", "curl -f http://localhost:8000/ || exit 1"))
    with pytest.raises(Refusal, match="HEALTHCHECK only") as info:
        launch_from_config(config)
    assert "--ready-path" in str(info.value)
    assert launch_from_config(config, ready_path="/health").ready_path == "/health"


def test_volumes_empty_writable_with_data_refused(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "serve").write_text("")
    (tmp_path / "cache").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "db.sqlite").write_text("rows")
    spec = launch_from_config(cfg(volumes=("/cache",)), writable=("/var/log",), rootfs=tmp_path)
    assert spec.writable_paths == ("/tmp", "/cache", "/var/log")
    with pytest.raises(Refusal, match="VOLUME /data"):
        launch_from_config(cfg(volumes=("/cache", "/data")), rootfs=tmp_path)


def test_command_resolved_on_the_image_path(tmp_path: Path) -> None:
    (tmp_path / "opt" / "venv" / "bin").mkdir(parents=True)
    (tmp_path / "opt" / "venv" / "bin" / "uvicorn").write_text("")
    (tmp_path / "usr" / "bin").mkdir(parents=True)
    (tmp_path / "usr" / "bin" / "uvicorn").write_text("")
    config = cfg(cmd=("uvicorn", "main:app"), env=("PATH=/opt/venv/bin:/usr/bin",))
    assert launch_from_config(config, rootfs=tmp_path).argv == ("/opt/venv/bin/uvicorn",
                                                                 "main:app")
    with pytest.raises(Refusal, match="'gunicorn' is not on its PATH"):
        launch_from_config(cfg(cmd=("gunicorn",)), rootfs=tmp_path)
    with pytest.raises(Refusal, match="/app/missing does not exist"):
        launch_from_config(cfg(cmd=("/app/missing",)), rootfs=tmp_path)


# --- docker image inspect → ImageConfig -----------------------------------------------------------


def test_config_from_inspect() -> None:
    data = json.loads(json.dumps({
        "Id": ID, "Size": 1234,
        "Config": {"Entrypoint": None, "Cmd": ["python3", "app.py"], "Env": ["A=1"],
                   "WorkingDir": "", "User": "", "ExposedPorts": {"9000/tcp": {}, "80/tcp": {}},
                   "Volumes": None, "Healthcheck": {"Test": ["NONE"]}},
    }))
    config = ImageConfig.from_inspect(data)
    assert config.entrypoint == () and config.cmd == ("python3", "app.py")
    assert config.exposed_ports == ("80/tcp", "9000/tcp")
    assert config.healthcheck == ()  # HEALTHCHECK NONE disables a parent's check
    assert config.key == "ab" * 32 and config.size == 1234


def test_uses_base_image(tmp_path: Path) -> None:
    from isobench.workloads.image import uses_base_image

    cases = {"FROM isobench/base\n": True, "from --platform=linux/amd64 isobench/base:abc AS b\n":
             True, "FROM debian:bookworm\n": False, "FROM isobench/base-other\n": False,
             "# FROM isobench/base\nFROM scratch\n": False}
    for i, (text, expected) in enumerate(cases.items()):
        path = tmp_path / f"Dockerfile{i}"
        path.write_text(text)
        assert uses_base_image(path) is expected, text
    assert uses_base_image(tmp_path / "missing") is False
