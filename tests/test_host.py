"""Host facts and doctor lines that need no root: the scheduler's autogroup setting."""

from __future__ import annotations

import pytest

from isobench.util import host


@pytest.mark.parametrize(("text", "enabled", "says"), [
    ("1", True, "sysctl kernel.sched_autogroup_enabled=0"),
    ("0", False, "nice works across sessions"),
    (None, None, "nice works across sessions"),
])
def test_autogroup_is_a_fact_and_a_doctor_line(monkeypatch: pytest.MonkeyPatch, text: str | None,
                                               enabled: bool | None, says: str) -> None:
    monkeypatch.setattr(host, "_read", lambda path: text)
    assert host.autogroup_enabled() is enabled
    check = host._autogroup_check()
    assert check.ok  # advice, never a failure: measuring still works, only less quietly
    assert says in check.detail
