"""Driver and fleet-directory logic without Ansible running: the command built, host listing,
each host's outcome from what the playbook leaves, skipping complete hosts."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from isobench.errors import IsobenchError
from isobench.fleet import driver, layout

LIST_HOSTS = """
playbook: /x/playbook.yaml

  play #1 (all): Run an isobench benchfile on every host	TAGS: []
    pattern: ['all']
    hosts (3):
      hostA
      hostB
      db-1.example
"""


def test_list_hosts_output_is_parsed_in_order() -> None:
    assert driver.parse_list_hosts(LIST_HOSTS) == ["hostA", "hostB", "db-1.example"]
    assert driver.parse_list_hosts("no hosts here") == []


def test_command_limits_to_the_hosts_to_do_and_passes_ansible_args(tmp_path: Path) -> None:
    opts = driver.FleetOptions("inv.ini", tmp_path / "b.yaml", tmp_path / "out", serial=True,
                               forks=8, ansible_args=["-u", "root", "--private-key", "k"])
    cmd = driver.playbook_command(opts, ["a", "b"], tmp_path / "vars.json", "ap")
    assert cmd[:5] == ["ap", "-i", "inv.ini", "--limit", "a,b"]
    assert cmd[5:7] == ["--forks", "1"]  # --serial wins over --forks
    assert cmd[-5:-1] == ["-u", "root", "--private-key", "k"]
    assert cmd[-1] == str(driver.PLAYBOOK)
    parallel = driver.FleetOptions("inv.ini", tmp_path / "b.yaml", tmp_path / "out")
    assert "--forks" not in driver.playbook_command(parallel, ["a"], tmp_path / "v", "ap")


def test_tree_callback_is_added_to_the_users_callbacks(tmp_path: Path) -> None:
    env = driver.ansible_env(tmp_path, {"ANSIBLE_CALLBACKS_ENABLED": "timer"})
    assert env["ANSIBLE_CALLBACKS_ENABLED"] == "timer,ansible.builtin.tree"
    assert env["ANSIBLE_CALLBACK_TREE_DIR"] == str(tmp_path / "fleet" / "tree")


def test_a_fleet_directory_refuses_another_benchfile(tmp_path: Path) -> None:
    layout.claim(tmp_path, benchfile_sha256="a", run_args=["--quick"], inventory="i")
    layout.claim(tmp_path, benchfile_sha256="a", run_args=["--quick"], inventory="other")
    with pytest.raises(IsobenchError, match="another benchfile"):
        layout.claim(tmp_path, benchfile_sha256="b", run_args=["--quick"], inventory="i")
    with pytest.raises(IsobenchError, match="another run args"):
        layout.claim(tmp_path, benchfile_sha256="a", run_args=[], inventory="i")


def test_host_named_like_the_meta_directory_is_refused() -> None:
    with pytest.raises(IsobenchError):
        layout.check_names(["ok", "fleet"])


def _pack(tmp: Path, files: dict[str, str]) -> Path:
    src = tmp / "src"
    src.mkdir()
    for name, text in files.items():
        (src / name).write_text(text)
    archive = tmp / "run.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src, arcname=".")
    return archive


def _write(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def test_collect_each_outcome(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet-1"
    layout.claim(fleet, benchfile_sha256="a", run_args=[], inventory="i")
    archive = _pack(tmp_path, {"manifest.json": "{}", "trials.jsonl": ""})
    archive.rename(layout.incoming_path(fleet, "a"))
    _write(layout.status_path(fleet, "a"), {"state": "fetched", "rc": 1,
                                            "versions": {"docker": "Docker version 1"}})
    _write(layout.status_path(fleet, "b"), {
        "state": "failed", "task": "Run the benchfile", "rc": 2, "msg": "non-zero return code",
        "stderr_tail": ["error: unknown workload 'x' (fix: ...)"]})
    _write(layout.tree_dir(fleet) / "c", {"unreachable": True, "msg": "All items completed",
                                          "results": [{"unreachable": True, "msg": "Task failed: "
                                                       "Failed to connect: Connection refused"}]})
    a, b, c, d = (layout.collect(fleet, h) for h in "abcd")
    assert a.state == "ok" and a.rc == 1 and "exited 1" in a.reason
    assert (fleet / "a" / "manifest.json").is_file()
    assert not layout.incoming_path(fleet, "a").exists()
    assert layout.is_complete(fleet, "a")
    assert b.state == "failed"
    assert b.reason == "Run the benchfile failed: exit 2: error: unknown workload 'x' (fix: ...)"
    assert c.state == "unreachable"
    assert c.reason == "unreachable: Failed to connect: Connection refused"
    assert d.state == "missing"
    assert [layout.read_status(fleet, h).state for h in "abcd"] == [
        "ok", "failed", "unreachable", "missing"]
    assert not any(layout.is_complete(fleet, h) for h in "bcd")
    layout.forget_attempt(fleet, "b")
    assert layout.read_status(fleet, "b").state == "missing"


def test_an_archive_without_a_manifest_is_not_a_run(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet-1"
    layout.claim(fleet, benchfile_sha256="a", run_args=[], inventory="i")
    _pack(tmp_path, {"x.txt": "x"}).rename(layout.incoming_path(fleet, "a"))
    _write(layout.status_path(fleet, "a"), {"state": "fetched", "rc": 0})
    status = layout.collect(fleet, "a")
    assert status.state == "failed" and "manifest.json" in status.reason
    assert not (fleet / "a").exists()
    assert [p.name for p in fleet.iterdir() if p.name.startswith(".")] == []


def test_wheel_is_built_from_a_copy_of_the_checkout(tmp_path: Path) -> None:
    root = driver.checkout_root()
    files = driver._source_files(root)
    assert Path("isobench/fleet/playbook.yaml") in files
    assert not any(p.parts[0] in (".venv", ".git") for p in files)


def test_bad_input_exits_2_and_makes_nothing(tmp_path: Path) -> None:
    from isobench.cli import main

    out = tmp_path / "out"
    assert main(["fleet", "run", "-i", "x", "-f", str(tmp_path / "none.yaml"),
                 "--out", str(out)]) == 2
    assert not out.exists()
