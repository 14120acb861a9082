"""Settings that could only give a wrong number are refused at parse time (exit 2, one line)."""

from __future__ import annotations

from pathlib import Path

import pytest

from isobench.cli import _run_overrides, build_parser, main
from isobench.config.benchfile import load_benchfile
from isobench.errors import ConfigError


@pytest.mark.parametrize("duration", ["0s", "0", 0, "0ms", "0.0m"])
def test_a_zero_duration_is_refused(duration: str | int) -> None:
    with pytest.raises(ConfigError, match=r"duration: .*must be more than 0 s"):
        load_benchfile(None, {"duration": duration})


def test_a_positive_duration_is_kept() -> None:
    assert load_benchfile(None, {"duration": "500ms"}).duration_s == 0.5
    assert load_benchfile(None, {}).duration_s is None  # the scenario's own duration


def test_cli_zero_duration_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                              ) -> None:
    out = tmp_path / "run"
    rc = main(["run", "--workload", "burn", "--runtimes", "native", "--duration", "0s",
               "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2
    assert len(err.strip().splitlines()) == 1, err
    assert "must be more than 0 s" in err
    assert not out.exists()  # nothing was started or written


def test_max_error_rate_flag_and_field() -> None:
    args = build_parser().parse_args(["run", "--max-error-rate", "0.05"])
    assert load_benchfile(None, _run_overrides(args)).max_error_rate == 0.05
    assert load_benchfile(None, {}).max_error_rate == 0.01
    with pytest.raises(ConfigError, match="max_error_rate"):
        load_benchfile(None, {"max_error_rate": 1.5})
