"""The validator workload's contract: rootfs, launch spec, scenarios, the article's figures."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from isobench.errors import ConfigError
from isobench.plugins import load
from isobench.workloads.validator.driver import run_driver
from isobench.workloads.validator.workload import (
    NODE_PACKAGE,
    ValidatorWorkload,
    seed_000_article,
)


def test_registered_under_its_name() -> None:
    assert load("workload", "validator") is ValidatorWorkload
    assert ValidatorWorkload.name == "validator"


def test_rootfs_ships_the_node_package_and_pinned_deps() -> None:
    spec = ValidatorWorkload().rootfs_spec()
    assert all("==" in req for req in spec.pip_requirements)
    assert any(req.lower().startswith("pynacl==") for req in spec.pip_requirements)
    (dest, src), = spec.files.items()
    assert dest == f"/opt/isobench/workload/{NODE_PACKAGE}"
    assert (Path(src) / "__main__.py").is_file()


def test_node_imports_nothing_from_the_host_package() -> None:
    src = Path(ValidatorWorkload().rootfs_spec().files[f"/opt/isobench/workload/{NODE_PACKAGE}"])
    allowed_third_party = {"nacl"}
    for path in src.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                roots = {str(node.module).split(".")[0]}
            else:
                continue
            for root in roots:
                assert root == "__future__" or root in allowed_third_party or root in (
                    __import__("sys").stdlib_module_names), f"{path.name} imports {root}"


def test_launch_spec_renders_bind_port_and_options() -> None:
    spec = ValidatorWorkload({"block_time": 2, "epoch_blocks": 5}).launch_spec()
    rendered = spec.render("0.0.0.0", 8123)
    assert rendered.argv == ("/opt/isobench/venv/bin/python", "-m", NODE_PACKAGE,
                             "--host", "0.0.0.0", "--port", "8123")
    assert rendered.env["VALIDATOR_BLOCK_TIME"] == "2.0"
    assert rendered.env["VALIDATOR_EPOCH_BLOCKS"] == "5"
    assert rendered.env["PYTHONPATH"] == "/opt/isobench/workload"
    assert rendered.env["VALIDATOR_DATA_DIR"].startswith("/tmp/")
    assert rendered.ready_path == "/healthz" and rendered.writable_paths == ("/tmp",)


def test_check_flags_bad_options() -> None:
    assert ValidatorWorkload().check() is None
    assert "unknown" in str(ValidatorWorkload({"blocktime": 1}).check())
    assert "/tmp" in str(ValidatorWorkload({"data_dir": "/var/lib/x"}).check())


def test_default_scenario_is_the_briefs() -> None:
    assert ValidatorWorkload().default_scenario() == {
        "duration": "60s", "block_time": 1.0, "txs_per_block": 50, "peers": 4,
        "forged_fraction": 0.02, "rpc_rate": 20,
    }


def test_article_figures() -> None:
    figures = seed_000_article()
    assert figures["cpu_user_percent"] == {"vm": 5.17, "container": 0.09}
    assert figures["net_kb_per_s"] == {"vm": 21.209, "container": 5.968}
    sizes = figures["image_size_bytes"]
    assert sizes["container"] / sizes["vm"] == pytest.approx(0.05)


def test_drive_refuses_non_loopback_endpoints() -> None:
    with pytest.raises(ConfigError):
        run_driver("http://10.0.0.5:8000", {"duration": "1s"})


def test_idle_scenario_sends_nothing() -> None:
    summary = run_driver("http://127.0.0.1:9", {"executor": "idle", "duration": "0.1s"})
    assert summary["metrics"] == {}
