"""``isobench explain --from native --to docker-bridge`` for real: every step of the ladder runs as
an arm of one interleaved run, every step gets a ratio with a CI, the report holds the waterfall,
and nothing of the run is left behind (no container, no native mount, cgroup or record).

Nothing statistical is asserted (2 rounds of 2 s on a shared host): only that each step was
measured and estimated, so a correct tool passes every time.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from isobench import plugins
from isobench.report.ladder import ladder_result, read_ladder
from isobench.report.rundata import load_run
from isobench.runtimes.cleanup import only_run
from isobench.util.proc import SubprocessRunner

pytestmark = pytest.mark.integration


def test_explain_native_to_docker_bridge(need_docker: None, tmp_path: Path) -> None:
    out = tmp_path / "explain-run"
    proc = subprocess.run(
        [sys.executable, "-m", "isobench.cli", "explain", "--from", "native", "--to",
         "docker-bridge", "--workload", "burn", "--quick", "--trials", "2", "--duration", "2s",
         "--warmup", "0.5s", "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ladder = read_ladder(out)
    assert ladder is not None
    arms = [s["arm"] for s in ladder["steps"]]
    assert arms[0] == "native" and arms[-1] == "docker-bridge" and len(arms) >= 6
    result = ladder_result(load_run(out, with_samples=False), ladder)
    assert result is not None
    assert [s.arm for s in result.steps] == arms[1:]
    for step in (*result.steps, result.total):
        assert step.ratio is not None and step.low is not None and step.high is not None, step
        assert step.low <= step.ratio <= step.high
    assert result.agree is True  # complete rounds: the steps telescope to the end-to-end ratio
    assert "end to end" in proc.stdout and "product of the steps" in proc.stdout
    html = (out / "report.html").read_text()
    assert "Why is it slower? Step by step" in html and html.count("<svg") >= 2
    for name in ("native", "docker-bridge", "docker-host"):
        left = plugins.load("runtime", name).leftovers(only_run(out.name), SubprocessRunner())
        assert left.removed == [], f"{name} left these behind: {left.removed}"
