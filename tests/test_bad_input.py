"""Bad input gets one line naming the fix, exit 2, no traceback, and nothing made or lost.

Table-driven: each case is a command line (with files it needs) as a user would type it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from isobench import exitcodes


def _manifest(run: Path, text: str | None = None) -> Path:
    run.mkdir(parents=True, exist_ok=True)
    (run / "manifest.json").write_text(text if text is not None else json.dumps(
        {"version": 1, "run_id": run.name, "config": {"workload": "burn"},
         "benchfile": {"workload": "burn"}, "plan": {"seed": 0, "order": []}}))
    return run


def _binary_trials(tmp: Path) -> list[str]:
    run = _manifest(tmp / "run")
    (run / "trials.jsonl").write_bytes(bytes(range(256)) * 8)
    return ["report", str(run)]


def _binary_trials_compare(tmp: Path) -> list[str]:
    run = _manifest(tmp / "run")
    (run / "trials.jsonl").write_bytes(b"\x00\xff\xfe garbage\n" * 10)
    return ["compare", str(run), str(run)]


def _garbage_manifest_resume(tmp: Path) -> list[str]:
    run = _manifest(tmp / "run", "{not json")
    return ["run", "--resume", str(run)]


def _garbage_manifest(command: str) -> Callable[[Path], list[str]]:
    def make(tmp: Path) -> list[str]:
        run = _manifest(tmp / "run", "{garbage")
        return [command, str(run)] + ([str(run)] if command == "compare" else [])

    return make


def _bench(text: str | bytes, *flags: str) -> Callable[[Path], list[str]]:
    def make(tmp: Path) -> list[str]:
        path = tmp / "bench.yaml"
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
        return ["run", "-f", str(path), "--out", str(tmp / "run"), *flags]

    return make


CASES: dict[str, Callable[[Path], list[str]]] = {
    "binary benchfile": _bench(bytes(range(256)) * 4),
    "deeply nested benchfile": _bench("a: " + "[" * 5000 + "]" * 5000 + "\n"),
    "empty benchfile": _bench(""),
    "benchfile that is a list": _bench("- native\n- vm\n"),
    "memory 0": _bench("workload: burn\nruntimes: [native]\n", "--memory", "0"),
    "workload and load generator on one CPU": _bench(
        "workload: burn\nruntimes: [native]\nresources: {cpus: [0], loadgen_cpus: [0]}\n"),
    "baseline not among the runtimes": _bench(
        "workload: burn\nruntimes: [docker-host]\nbaseline: native\n"),
    "unknown executor": _bench(
        "workload: burn\nruntimes: [native]\nscenario: {executor: warp-speed, vus: 2}\n"),
    "a hundred million VUs": _bench(
        "workload: burn\nruntimes: [native]\nscenario: {executor: constant-vus, vus: 100000000,"
        " duration: 5s}\n"),
    "unknown primary metric": _bench("workload: burn\nruntimes: [native]\n", "--primary", "speed"),
    "duration 0s": _bench("workload: burn\nruntimes: [native]\n", "--duration", "0s"),
    "1m30s is a duration everywhere, but 'soon' is not": _bench(
        "workload: burn\nruntimes: [native]\nduration: soon\n"),
    "misspelt workload option": _bench(
        "workload: fio\nruntimes: [native]\nworkload_options: {fio_bufer: huge}\n"),
    "suite option misspelt": lambda tmp: ["suite", "micro", "--only", "fio", "--runtimes",
                                          "native", "--option", "fio.fio_bufer=huge",
                                          "--out", str(tmp / "suite")],
    "suite option without a benchmark": lambda tmp: ["suite", "micro", "--option",
                                                     "fio_buffer=huge", "--out", str(tmp / "s")],
    "suite option for a benchmark left out": lambda tmp: [
        "suite", "micro", "--only", "xz", "--option", "fio.fio_buffer=huge",
        "--out", str(tmp / "suite")],
    "report on a file": lambda tmp: ["report", "/etc/passwd"],
    "report on a missing dir": lambda tmp: ["report", str(tmp / "nope")],
    "report on a binary trials.jsonl": _binary_trials,
    "compare on a binary trials.jsonl": _binary_trials_compare,
    "resume a missing dir": lambda tmp: ["run", "--resume", str(tmp / "missing")],
    "resume with a garbage manifest": _garbage_manifest_resume,
    "--out under /proc": lambda tmp: ["run", "--workload", "burn", "--runtimes", "native",
                                      "--out", "/proc/isobench-cannot-be-here/run"],
    "report with a garbage manifest": _garbage_manifest("report"),
    "compare with a garbage manifest": _garbage_manifest("compare"),
    "malformed gate": lambda tmp: ["run", "--fail-if", "bridge is slow", "--out",
                                   str(tmp / "never")],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_one_line_error(case: str, tmp_path: Path) -> None:
    assert_one_line_error(CASES[case](tmp_path), tmp_path)


def assert_one_line_error(argv: list[str], tmp_path: Path) -> None:
    """Exit 2, one line ``error: ...`` on stderr, no traceback, nothing under tmp_path changed."""
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    proc = subprocess.run([sys.executable, "-m", "isobench.cli", *argv], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == exitcodes.USAGE, (proc.returncode, proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert after == before, "a bad input created or removed files"


@pytest.mark.integration
@pytest.mark.parametrize("where", ["run", "."])
def test_out_on_a_read_only_mount(where: str, tmp_path: Path, need_root: None) -> None:
    """A tmpfs mounted read-only by the test (unmounted after): ``--out`` in it, or it."""
    ro = tmp_path / "ro"
    ro.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "isobench-ro", str(ro)],
                   check=True, timeout=30)
    try:
        assert_one_line_error(["run", "--workload", "burn", "--runtimes", "native", "--out",
                               str(ro / where)], tmp_path)
    finally:
        subprocess.run(["umount", "-l", str(ro)], check=False, timeout=30)
