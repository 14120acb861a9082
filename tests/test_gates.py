"""--fail-if gates: parsed strictly, judged on the CI bound, never on the point estimate."""

from __future__ import annotations

from typing import Any

import pytest

from isobench.analysis.gates import evaluate, failed, parse_gate
from isobench.errors import ConfigError
from isobench.results_model import Analysis


def _comp(rt: str, metric: str, lo: float, hi: float, emulated: bool = False) -> dict[str, Any]:
    return {"runtime": rt, "metric": metric, "ci_pct": [lo, hi], "emulated": emulated,
            "change_pct": (lo + hi) / 2}


def _analysis(*comps: dict[str, Any]) -> Analysis:
    return Analysis.from_json({"comparisons": list(comps), "metrics": [{"name": "rps"}],
                               "emulated": ["vm"], "primary": "rps"})


@pytest.mark.parametrize("text", ["docker-bridge:rps<-5%", " *:p95_ms > +10 % ",
                                  "gvisor:primary<-2.5%", "a@B:p(95)>0%"])
def test_parse_accepts(text: str) -> None:
    gate = parse_gate(text)
    assert gate.op in "<>" and gate.runtime and gate.metric


@pytest.mark.parametrize("text", ["docker-bridge rps<-5%", "x:rps<-5", "x:rps=5%", "", "x:<5%"])
def test_parse_rejects_in_one_line(text: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_gate(text)
    assert "\n" not in str(err.value) and "fix:" in str(err.value)


@pytest.mark.parametrize(
    ("gate", "lo", "hi", "status"),
    [
        ("d:rps<-5%", -12.0, -6.0, "failed"),   # surely worse than -5 %
        ("d:rps<-5%", -12.0, -4.0, "passed"),   # point estimate -8 % but CI reaches -4 %
        ("d:rps<-5%", -3.0, 2.0, "passed"),
        ("d:p95_ms>+10%", 11.0, 30.0, "failed"),
        ("d:p95_ms>+10%", 5.0, 30.0, "passed"),
    ],
)
def test_judged_on_the_ci_bound(gate: str, lo: float, hi: float, status: str) -> None:
    metric = gate.split(":")[1].split("<")[0].split(">")[0]
    [result] = evaluate([parse_gate(gate)], _analysis(_comp("d", metric, lo, hi)))
    assert result.status == status, result


def test_wildcard_primary_emulated_and_missing() -> None:
    analysis = _analysis(_comp("a", "rps", -20, -10), _comp("b", "rps", -1, 1),
                         _comp("vm", "rps", -95, -90, emulated=True))
    results = evaluate([parse_gate("*:primary<-5%")], analysis)
    by_rt = {r.runtime: r.status for r in results}
    assert by_rt == {"a": "failed", "b": "passed", "vm": "skipped"}
    [missing] = evaluate([parse_gate("gvisor:rps<-5%")], analysis)
    assert missing.status == "failed" and "no comparison" in missing.reason
    assert len(failed(results)) == 1
