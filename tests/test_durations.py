"""One duration grammar: the benchfile, the load engine and the validator agree on every value."""

from __future__ import annotations

import pytest

from isobench.config.durations import DurationError, parse_duration
from isobench.errors import ConfigError


@pytest.mark.parametrize(("text", "seconds"), [
    ("20s", 20.0), ("500ms", 0.5), ("1m30s", 90.0), ("1h", 3600.0), ("250us", 250e-6),
    ("2.5", 2.5), (30, 30.0), (0, 0.0), (" 2M ", 120.0), ("1h2m3s", 3723.0),
])
def test_accepted(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["", "abc", "10x", "-5", -1, True, "5 s s", "s10", None, "1m 30", "5m3", "s"])
def test_refused_in_one_line(text: object) -> None:
    with pytest.raises(DurationError) as err:
        parse_duration(text)
    assert isinstance(err.value, ConfigError) and isinstance(err.value, ValueError)
    assert "\n" not in str(err.value) and "fix:" in str(err.value)


def test_every_stage_uses_the_one_grammar() -> None:
    from isobench.config import benchfile
    from isobench.load import scenario
    from isobench.workloads.validator import scenario as validator_scenario

    assert benchfile.parse_duration is parse_duration
    assert scenario.parse_duration is parse_duration
    assert validator_scenario.parse_duration is parse_duration
