"""Three-way verdicts on constructed data with known answers, and the words that say them.

Every dataset here is built so the decision is far from its boundary (a 45 % drop with 0.5 %
noise, ratios equal to 1 ± 0.1 %, three rounds scattered by ±10 %): no seed or bootstrap draw
can flip it.
"""

from __future__ import annotations

import math

import pytest

from isobench.analysis.stats import (
    analyze,
    assign_verdicts,
    change_text,
    decide,
    headline,
    interval,
    sentence,
)
from isobench.results import TrialRecord

BASE = [1000.0, 1180.0, 910.0, 1050.0, 960.0]  # a host that drifts ±10 % between rounds
WIGGLE = [1.004, 0.996, 1.002, 0.998, 1.0]


def trial(runtime: str, rnd: int, rps: float, p95: float = 10.0, emulated: bool = False,
          status: str = "ok") -> TrialRecord:
    return TrialRecord(
        arm=runtime, trial=rnd, position=rnd, round=rnd, status=status, started_at=0.0,
        ended_at=1.0,
        load={"metrics": {"http_reqs": {"count": rps * 20, "rate": rps},
                          "http_req_duration": {"med": p95 / 2, "p(95)": p95, "p(99)": p95 * 2}}},
        facts={"emulated": emulated},
    )


def run(other: dict[str, list[float]], *, emulated: tuple[str, ...] = (), **kw: object) -> dict:
    trials = [trial("native", i, v, p95=10000 / v) for i, v in enumerate(BASE)]
    for name, values in other.items():
        trials += [trial(name, i, v, p95=10000 / v, emulated=name in emulated)
                   for i, v in enumerate(values)]
    return analyze(trials, **kw)  # type: ignore[arg-type]


def primary(result: dict, runtime: str) -> dict:
    (comp,) = [c for c in result["comparisons"] if c["runtime"] == runtime and c["primary"]]
    return comp


def test_each_kind_on_data_with_a_known_answer() -> None:
    result = run({
        "slow": [b * 0.55 * w for b, w in zip(BASE, WIGGLE, strict=True)],
        "fast": [b * 1.30 * w for b, w in zip(BASE, WIGGLE, strict=True)],
        "same": [b * w**0.1 for b, w in zip(BASE, WIGGLE, strict=True)],
        "noisy": [BASE[0] * 0.80, BASE[1] * 1.15, BASE[2] * 1.0],
        "vm": [b * 0.1 for b in BASE],
    }, emulated=("vm",))
    kinds = {rt: primary(result, rt)["verdict_kind"] for rt in ("slow", "fast", "same", "noisy",
                                                                "vm")}
    assert kinds == {"slow": "slower", "fast": "faster", "same": "equivalent",
                     "noisy": "inconclusive", "vm": "emulated"}
    slow = primary(result, "slow")
    assert slow["estimator"] == "paired" and slow["ci"][0] < 0.55 < slow["ci"][1]
    assert slow["ci"][1] - slow["ci"][0] < 0.02  # the drift cancels within rounds
    assert slow["verdict"] == "slow serves 44.8\u201345.2 % fewer requests per second than native"
    assert primary(result, "same")["verdict"].startswith(
        "same is within \u00b15 % of native on req/s (90 % CI [")
    noisy = primary(result, "noisy")
    assert noisy["rounds_needed"] >= 1
    assert noisy["verdict"].startswith("noisy: inconclusive on req/s (")
    assert noisy["verdict"].endswith("more rounds would decide")
    assert result["headline"] == [primary(result, rt)["verdict"]
                                  for rt in ("fast", "noisy", "same", "slow", "vm")]
    assert headline(result)[-1] == "vm: emulated \u2014 no verdict"
    # the secondaries: p95 moves the other way (10000/rps) and is decided on its own terms
    p95 = next(c for c in result["comparisons"] if c["runtime"] == "slow"
               and c["metric"] == "p95_ms")
    assert not p95["primary"] and p95["verdict_kind"] == "slower"
    assert p95["verdict"].startswith("slow's p95 latency is ")


def test_too_few_trials_make_no_claim() -> None:
    result = run({"lonely": [BASE[0] * 0.5]})
    comp = primary(result, "lonely")
    assert comp["verdict_kind"] == "too_few" and comp["significant"] is None
    assert comp["verdict"] == "lonely: too few trials to compare req/s"


def test_a_missing_round_partner_is_left_out_and_two_rounds_fall_back_to_unpaired() -> None:
    trials = [trial("native", i, v) for i, v in enumerate(BASE)]
    trials += [trial("b", i, v * 0.5) for i, v in enumerate(BASE)]
    trials[1].status = "failed"  # native's round 1 failed: b's round-1 trial has no partner
    comp = primary(analyze(trials), "b")
    assert comp["estimator"] == "paired" and comp["n_pairs"] == 4
    few = [trial("native", i, v) for i, v in enumerate(BASE[:3])]
    few += [trial("b", i + 1, v * 0.5) for i, v in enumerate(BASE[:3])]  # rounds 1,2,3 vs 0,1,2
    comp = primary(analyze(few), "b")
    assert comp["estimator"] == "paired" and comp["n_pairs"] == 2
    unpaired = primary(analyze(few, paired=False), "b")
    assert unpaired["estimator"] == "unpaired" and unpaired["n_pairs"] is None


def _comp(metric: str, *, ratio: float, ci: tuple[float, float], ci90: tuple[float, float],
          p: float, p_tost: float = 1.0, is_primary: bool = False) -> dict:
    return {"runtime": "rt", "baseline": "native", "metric": metric, "label": metric,
            "better": "lower", "emulated": False, "primary": is_primary, "ratio": ratio,
            "ci": list(ci), "ci90": list(ci90), "change_pct": (ratio - 1) * 100,
            "ci_pct": [(ci[0] - 1) * 100, (ci[1] - 1) * 100], "p": p, "p_tost": p_tost,
            "rounds_needed": 4}


def test_primary_alone_secondaries_after_holm() -> None:
    comps = [_comp("main", ratio=1.1, ci=(1.01, 1.2), ci90=(1.03, 1.18), p=0.03,
                   is_primary=True)]
    comps += [_comp(f"m{i}", ratio=1.1, ci=(1.01, 1.2), ci90=(1.03, 1.18), p=0.03)
              for i in range(3)]
    assert assign_verdicts(comps, alpha=0.05, margin=0.05) == 3
    assert comps[0]["verdict_kind"] == "slower" and comps[0]["p_adjusted"] == 0.03
    for c in comps[1:]:
        assert c["p_adjusted"] == pytest.approx(0.09)
        assert c["verdict_kind"] == "inconclusive" and c["significant"] is False
        assert "its CI excludes 0 %, but not after Holm over 3 secondary comparisons" in \
            c["verdict"]


def test_equivalence_needs_the_90_ci_inside_the_margin() -> None:
    inside = _comp("x", ratio=1.0, ci=(0.94, 1.055), ci90=(0.951, 1.049), p=0.9, p_tost=0.04,
                   is_primary=True)
    outside = _comp("x", ratio=1.0, ci=(0.94, 1.06), ci90=(0.949, 1.049), p=0.9, p_tost=0.06,
                    is_primary=True)
    assert [decide(c, margin=0.05, alpha=0.05) for c in (inside, outside)] == [
        "equivalent", "inconclusive"]
    assert decide(outside, margin=0.06, alpha=0.05) == "equivalent"
    # a secondary also needs its Holm-adjusted TOST p below alpha
    assert decide({**inside, "primary": False, "p_tost_adjusted": 0.2}, margin=0.05,
                  alpha=0.05) == "inconclusive"
    assert "within \u00b16 % of native" in sentence({**outside, "verdict_kind": "equivalent",
                                                   "margin_pct": 6.0})


def test_the_words_print_the_real_asymmetric_interval() -> None:
    c = {"change_pct": -7.0, "ci_pct": [-9.7, 4.9]}
    assert change_text(c) == "\u22127.0 % [\u22129.7 %, +4.9 %]"
    assert interval(-3.04, 2.0) == "[\u22123.0 %, +2.0 %]"
    slow = {"runtime": "docker-bridge", "baseline": "native", "metric": "rps", "label": "req/s",
            "ratio": 0.55, "ci": [0.51, 0.59], "verdict_kind": "slower"}
    assert sentence(slow) == \
        "docker-bridge serves 41\u201349 % fewer requests per second than native"
    gvisor = {**slow, "runtime": "gvisor", "ratio": 0.97, "ci": [0.91, 1.02],
              "change_pct": -3.0, "ci_pct": [-9.0, 2.0], "verdict_kind": "inconclusive",
              "primary": True, "rounds_needed": 6}
    assert sentence(gvisor) == ("gvisor: inconclusive on req/s (\u22123.0 % [\u22129.0 %, "
                                "+2.0 %]); about 6 more rounds would decide")
    start = {**slow, "metric": "startup_s", "label": "startup", "ratio": 1.58,
             "ci": [1.51, 1.89]}
    assert sentence(start) == "docker-bridge's startup time is 51\u201389 % longer than native's"
    assert math.isclose(slow["ci"][0], 0.51)


def test_html_card_and_terminal_say_the_same_sentence(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import io

    from rich.console import Console

    from isobench.report.html import render
    from isobench.report.rundata import load_run
    from isobench.report.terminal import print_comparison
    from tests.fixtures.make_run import make_run

    data = load_run(make_run(tmp_path / "run"))
    page = render(data)
    buf = io.StringIO()
    print_comparison(Console(file=buf, width=300, color_system=None), data.analysis,
                     data.manifest)
    for text in data.analysis.raw["headline"]:
        assert text in buf.getvalue()
        assert text.replace("'", "&#x27;") in page
    bridge = primary({"comparisons": data.analysis.comparisons}, "docker-bridge")
    assert interval(*bridge["ci_pct"]) in page
    # the precision of each verdict: half the log-scale width of its primary CI
    lo, hi = bridge["ci"]
    width = (math.log(hi) - math.log(lo)) / 2 * 100
    assert f"docker-bridge \u00b1{width:.1f} % (95 % CI)" in buf.getvalue()


def _host_trial(runtime: str, rnd: int, rps: float, startup: float, mem_mib: float
                ) -> TrialRecord:
    return TrialRecord(
        arm=runtime, trial=rnd, position=rnd, round=rnd, status="ok", started_at=0.0,
        ended_at=1.0, startup_s=startup,
        load={"metrics": {"http_reqs": {"count": rps * 20, "rate": rps},
                          "http_req_duration": {"med": 5.0, "p(95)": 9.0, "p(99)": 13.0}}},
        telemetry={"rss_bytes_peak": mem_mib * 2**20},
    )


def test_the_issue_three_rounds_now_give_answers() -> None:
    """Issue 10: with 3 trials a runtime, startup ×1.58 and memory ×0.99 were both "no
    significant difference" after Holm over 18 comparisons."""
    drift = [1.0, 1.12, 0.91]
    trials = []
    for r, d in enumerate(drift):
        trials.append(_host_trial("native", r, 1800 * d, 0.20 * d, 60.0 * d))
        trials.append(_host_trial("docker-bridge", r, 1800 * 0.55 * d * (1 + 0.01 * (r - 1)),
                                  0.20 * 1.58 * d * (1 - 0.02 * (r - 1)),
                                  60.0 * d * (0.988, 0.990, 0.992)[r]))
        trials.append(_host_trial("docker-host", r, 1800 * d * (1 + 0.002 * (r - 1)),
                                  0.20 * 1.2 * d, 60.0 * d * 1.001))
    result = analyze(trials)
    by = {(c["runtime"], c["metric"]): c for c in result["comparisons"]}
    assert by["docker-bridge", "rps"]["verdict_kind"] == "slower"
    assert by["docker-bridge", "startup_s"]["verdict_kind"] == "slower"
    assert by["docker-bridge", "mem_peak_mib"]["verdict_kind"] == "equivalent"
    assert by["docker-host", "rps"]["verdict_kind"] == "equivalent"
    assert result["headline"][0] == \
        "docker-bridge serves 44\u201346 % fewer requests per second than native"
    assert result["headline"][1].startswith("docker-host is within \u00b15 % of native on req/s")


def test_compare_has_no_holm_of_its_own() -> None:
    import isobench.report.compare as compare

    assert not hasattr(compare, "holm")
    assert compare.assign_verdicts is assign_verdicts
