"""Environment values stay out of the manifest and every report unless ``--show-env`` asks.

The manifest a run writes (``RunOrchestrator.manifest``) is built with a secret in ``--env`` and
``k6_env``; then every output ``isobench report`` writes from it is searched for the secret. With
``show_env`` the values are shown (the user asked); the private 0600 benchfile that ``--resume``
reads always has them.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from isobench.cli import _run_overrides, build_parser, main
from isobench.config.benchfile import Benchfile, load_benchfile
from isobench.images.spec import Artifacts
from isobench.results import RunStore
from isobench.run.orchestrator import REDACTED, Prepared, RunOrchestrator
from isobench.runtimes.base import Resources
from tests.fixtures.make_run import make_run

SECRET = "s3cr3t-value-4711"


def _manifest(tmp_path: Path, show_env: bool) -> dict[str, Any]:
    options = {"dockerfile": "Dockerfile", "env": [f"API_TOKEN={SECRET}", "MODE=bench"]}
    bench = Benchfile(workload="image", workload_options=options, runtimes=["native"],
                      k6="script.js", k6_env={"PASSWORD": SECRET}, show_env=show_env)
    workload = SimpleNamespace(name="image", options=options,
                               primary_metric_for=lambda scenario: "rps")
    prep = Prepared(workload=workload, runtimes={}, artifacts=Artifacts("k", Path("/")),  # type: ignore[arg-type]
                    scenario_name="default", scenario={}, resources=Resources())
    return RunOrchestrator(bench, RunStore(tmp_path / "unused")).manifest(prep)


def test_show_env_flag_reaches_the_benchfile() -> None:
    assert load_benchfile(None, _run_overrides(build_parser().parse_args(
        ["run", "--show-env"]))).show_env is True
    assert load_benchfile(None, _run_overrides(build_parser().parse_args(["run"]))).show_env \
        is False
    assert load_benchfile(None, _run_overrides(build_parser().parse_args(
        ["run", "--allow-exposed"]))).allow_exposed is True


def test_values_are_redacted_by_default_keys_shown(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, show_env=False)
    text = json.dumps(manifest)
    assert SECRET not in text
    assert manifest["config"]["workload_options"]["env"] == [f"API_TOKEN={REDACTED}",
                                                             f"MODE={REDACTED}"]
    assert manifest["benchfile"]["k6_env"] == {"PASSWORD": REDACTED}


def test_show_env_shows_the_values(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, show_env=True)
    assert manifest["config"]["workload_options"]["env"] == [f"API_TOKEN={SECRET}",
                                                             "MODE=bench"]
    assert manifest["benchfile"]["k6_env"] == {"PASSWORD": SECRET}


@pytest.mark.parametrize("show_env", [False, True])
def test_no_report_carries_a_value_the_manifest_hides(tmp_path: Path, show_env: bool) -> None:
    run = make_run(tmp_path / "run")
    store = RunStore(run)
    manifest = store.read_manifest()
    made = _manifest(tmp_path, show_env)
    manifest["benchfile"] = made["benchfile"]
    manifest["config"]["workload_options"] = made["config"]["workload_options"]
    manifest["config"].pop("workload", None)
    manifest["config"]["workload"] = "records-api"  # the fixture's metrics
    manifest.pop("version", None)
    store.write_manifest(manifest)
    store.write_private_benchfile({"k6_env": {"PASSWORD": SECRET}})
    assert main(["report", str(run), "--no-print", "--export-json", str(run / "x.json"),
                 "--export-csv", str(run / "x.csv"), "--export-markdown",
                 str(run / "x.md")]) == 0
    holding = sorted(p.name for p in run.rglob("*") if p.is_file()
                     and SECRET.encode() in p.read_bytes())
    if show_env:  # asked for: in the manifest and the reports that carry the set-up
        assert {"benchfile.private.json", "manifest.json", "analysis.json"} <= set(holding)
    else:
        assert holding == ["benchfile.private.json"]
    assert (run / "benchfile.private.json").stat().st_mode & 0o077 == 0
