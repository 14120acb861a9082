"""The ladder in the reports: the terminal table and the HTML section with its waterfall, on a
synthetic run directory with a ``ladder.json`` beside its manifest."""

from __future__ import annotations

import json
from pathlib import Path

from isobench.report.html import write_html
from isobench.report.ladder import ladder_lines, ladder_result, read_ladder
from isobench.report.rundata import load_run
from tests.fixtures.make_run import make_run

LADDER = {
    "version": 1, "from": "native", "to": "docker-bridge",
    "steps": [
        {"arm": "native", "label": "native (baseline)", "runtime": "native", "options": {},
         "client": None, "note": ""},
        {"arm": "docker-host", "label": "+ container, host network", "runtime": "docker-host",
         "options": {}, "client": None, "note": ""},
        {"arm": "docker-bridge", "label": "+ bridge network and docker-proxy",
         "runtime": "docker-bridge", "options": {}, "client": None, "note": "not apart"},
    ],
    "notes": ["steps remote-client, bridge-dnat left out"],
}


def test_a_ladder_run_gets_its_table_and_waterfall(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    (run / "ladder.json").write_text(json.dumps(LADDER))
    ladder = read_ladder(run)
    assert ladder is not None
    result = ladder_result(load_run(run, with_samples=False), ladder)
    assert result is not None and result.agree is True
    assert [s.arm for s in result.steps] == ["docker-host", "docker-bridge"]
    lines = ladder_lines(result, ladder)
    assert lines[2].startswith("native (baseline)")
    assert any(line.startswith("+ bridge network and docker-proxy") and "worse" in line
               for line in lines)
    assert any(line.startswith("end to end") for line in lines)
    assert any("product of the steps" in line and "agree" in line for line in lines)
    assert any("remote-client, bridge-dnat left out" in line for line in lines)
    html = write_html(run).read_text()
    section = html[html.index("Why is it slower? Step by step"):]
    assert "<svg" in section[:200_000] and "Where the gap comes from" in section
    assert "end to end (measured)" in section


def test_other_runs_have_no_ladder_section(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    assert read_ladder(run) is None
    assert "Why is it slower" not in write_html(run).read_text()
