"""report.html: self-contained, rendered in headless Chromium, plots present and drawn."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from isobench.report.html import write_html
from tests.conftest import require

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--enable-logging=stderr", "--v=0",
]


def chromium(args: list[str]) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("chromium")
    require(binary is not None, "chromium not installed (apt-get install chromium)")
    assert binary is not None
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=120, check=False,
        )


def test_report_is_self_contained(run_dir: Path) -> None:
    text = write_html(run_dir).read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert "url(http" not in text and "<script" not in text
    assert "not comparable" in text and "Holm" in text
    assert "Idle overhead" in text and "Plan order" in text


def test_report_renders_in_chromium(run_dir: Path) -> None:
    report = write_html(run_dir)
    dom = chromium(["--dump-dom", report.as_uri()])
    assert dom.returncode == 0, dom.stderr[-2000:]
    svgs = re.findall(r"<svg\b", dom.stdout)
    # throughput, latency, startup, size, cpu/req, memory, net/req, forest, 4 series, 2 idle
    assert len(svgs) >= 12, len(svgs)
    assert dom.stdout.count("<path") > 200  # plots have drawn content, not empty frames
    assert "Emulated runtime: vm" in dom.stdout
    for marker in ("Uncaught", "ERROR:CONSOLE", "Failed to load resource"):
        assert marker not in dom.stderr
    shot = report.with_name("report.png")
    res = chromium([f"--screenshot={shot}", "--window-size=1400,3000", report.as_uri()])
    assert res.returncode == 0 and shot.exists(), res.stderr[-2000:]
    assert "Uncaught" not in res.stderr and "ERROR:CONSOLE" not in res.stderr
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (3000, 1400)
    assert pixels.std() > 20  # not blank
    # the plot area (below the verdict table) holds coloured bars: many non-grey pixels
    rgb = np.asarray(Image.open(shot).convert("RGB"), dtype=int)[800:2400]
    chroma = rgb.max(axis=2) - rgb.min(axis=2)
    assert (chroma > 60).mean() > 0.01
    with contextlib.suppress(OSError):  # a copy for a human to look at; another user may own it
        shutil.copy(shot, Path("/tmp/isobench-report-screenshot.png"))


@pytest.mark.parametrize("idle_only", [True])
def test_idle_only_run_renders(tmp_path: Path, idle_only: bool) -> None:
    from isobench.results import RunStore
    from tests.fixtures.make_run import make_run

    full = make_run(tmp_path / "full", idle=idle_only)
    store = RunStore(tmp_path / "idle")
    store.write_manifest(RunStore(full).read_manifest())
    for t in RunStore(full).trials():
        if t.facts.get("scenario") == "idle":
            store.append_trial(t)
    text = write_html(tmp_path / "idle").read_text()
    assert "Idle overhead" in text and text.count("<svg") >= 3


@pytest.mark.parametrize("width", [1024, 1400])
def test_report_layout_at_common_widths(run_dir: Path, tmp_path: Path, width: int) -> None:
    """As a person would open it: no horizontal page overflow, the latency chart present, every
    chart titled with its unit, no console errors (measured by Chromium on a copy of the report
    with a probe script appended; the report itself has no script)."""
    report = write_html(run_dir)
    probe = tmp_path / "probe.html"
    script = (
        "<script>const d=document.documentElement;"
        "document.body.setAttribute('data-probe', d.scrollWidth + ' ' + d.clientWidth);"
        "</script>"
    )
    probe.write_text(report.read_text().replace("</body>", script + "</body>"))
    dom = chromium([f"--window-size={width},900", "--dump-dom", probe.as_uri()])
    assert dom.returncode == 0, dom.stderr[-2000:]
    match = re.search(r'data-probe="(\d+) (\d+)"', dom.stdout)
    assert match, "probe script did not run"
    scroll_width, client_width = int(match[1]), int(match[2])
    assert scroll_width <= client_width, (scroll_width, client_width)
    for marker in ("Uncaught", "ERROR:CONSOLE"):
        assert marker not in dom.stderr
    svgs = re.findall(r"<svg\b.*?</svg>", dom.stdout, flags=re.S)
    texts = [" ".join(re.findall(r">([^<>]+)</text>", svg)) for svg in svgs]
    assert any("Latency percentiles" in t for t in texts)
    units = ("req", "ms", " s", "%", "MiB", "GiB", "KB/s", "MB/s", "bytes", "change")
    for t in texts:
        assert any(u in t for u in units), t[:200]
