"""The burn workload's known-cost work loop and its ``work_units`` option."""

from __future__ import annotations

import importlib.util
import json
import threading
import urllib.request
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from types import ModuleType

import pytest

from isobench.util.netutil import free_port
from isobench.workloads.burn import APP_DIR, MAX_UNITS, BurnWorkload, work_scenario


def _app() -> ModuleType:
    spec = importlib.util.spec_from_file_location("burn_app", APP_DIR / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


APP = _app()


def test_work_is_deterministic_and_depends_on_units_only() -> None:
    assert APP.work(0) == 1  # no units: the seed, untouched
    assert APP.work(3) == APP.work(3) == 3865056677  # pinned: a changed loop changes u
    assert len({APP.work(n) for n in range(1, 8)}) == 7


def test_work_composes_unit_by_unit() -> None:
    """N units are exactly N times one unit's loop: the state after a units feeds the next b."""
    assert APP.work(5) == APP.work(3, seed=APP.work(2))
    assert 0 <= APP.work(7) < 2**32  # 32-bit state: small ints, no growing allocation


def test_app_max_units_matches_the_workload() -> None:
    assert APP.MAX_UNITS == MAX_UNITS


@pytest.fixture
def server() -> Iterator[int]:
    port = free_port()
    httpd = ThreadingHTTPServer(("127.0.0.1", port), APP.Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_work_endpoint_answers_the_checksum(server: int) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{server}/work?units=3", timeout=10) as r:
        assert r.status == 200 and r.headers["Content-Type"] == "application/json"
        assert json.loads(r.read()) == {"units": 3, "checksum": APP.work(3)}


def test_work_endpoint_refuses_bad_units(server: int) -> None:
    for query in ("units=-1", f"units={MAX_UNITS + 1}", "units=x"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://127.0.0.1:{server}/work?{query}", timeout=10)
        assert err.value.code == 400


def test_default_scenario_requests_work_when_work_units_is_set() -> None:
    assert "/payload" in BurnWorkload().default_scenario()["requests"][0]["path"]
    scenario = BurnWorkload({"work_units": 76}).default_scenario()
    assert scenario == work_scenario(76)
    assert scenario["executor"] == "constant-vus" and scenario["vus"] >= 2
    assert scenario["requests"] == [{"method": "GET", "path": "/work?units=76"}]


def test_work_units_are_checked() -> None:
    assert BurnWorkload({"work_units": 0}).check() is None
    for bad in (-1, MAX_UNITS + 1, "76", 1.5, True):
        reason = BurnWorkload({"work_units": bad}).check()
        assert reason is not None and "work_units" in reason


def test_options_do_not_change_the_rootfs() -> None:
    assert BurnWorkload({"work_units": 95}).rootfs_spec() == BurnWorkload().rootfs_spec()
