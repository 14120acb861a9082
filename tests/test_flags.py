"""Flags with Docker's names and units, deprecated spellings, and --dry-run."""

from __future__ import annotations

import pytest

from isobench.cli import _run_overrides, build_parser, main
from isobench.config.memsize import parse_memory_mib
from isobench.errors import ConfigError


@pytest.mark.parametrize(("text", "mib", "deprecated"), [
    ("1g", 1024, False), ("512m", 512, False), ("1.5g", 1536, False), ("262144k", 256, False),
    ("1024", 1024, True), ("2G", 2048, False), ("512MiB", 512, False), ("1073741824b", 1024, False),
])
def test_memory_sizes(text: str, mib: int, deprecated: bool) -> None:
    assert parse_memory_mib(text) == (mib, deprecated)


@pytest.mark.parametrize("text", ["0", "1k", "lots", "-5m", "1t"])
def test_bad_memory_sizes(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_memory_mib(text)


def test_docker_names_and_deprecated_aliases(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    new = _run_overrides(parser.parse_args(["run", "--cpuset-cpus", "0", "--memory", "1g"]))
    old = _run_overrides(parser.parse_args(["run", "--cpus", "0", "--memory", "1024"]))
    assert new["resources"] == old["resources"] == {"cpus": [0], "memory_mb": 1024}
    err = capsys.readouterr().err
    assert "--cpuset-cpus" in err and "1024m" in err


def test_every_run_flag_has_help() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in ("run", "up", "report", "compare"):
        for action in sub.choices[name]._actions:  # type: ignore[union-attr]
            if action.dest != "help":
                assert action.help, f"{name} {action.option_strings or action.dest} has no help"


def test_dry_run_prints_plan_and_builds_nothing(capsys: pytest.CaptureFixture[str],
                                                tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--dry-run", "--workload", "burn", "--runtimes", "native,vm",
                 "--trials", "2"]) == 0
    out = capsys.readouterr().out
    assert "rounds: 2" in out and "estimated time" in out and "native" in out
    assert list(tmp_path.iterdir()) == []
