"""``burn``: a test workload with known costs, for checking telemetry in every runtime.

Stdlib-only HTTP server (``burn_app/app.py``), so its rootfs needs nothing beyond ``python3``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from isobench.images.spec import WORKLOAD_DIR, RootfsSpec
from isobench.workloads.base import LaunchSpec, Workload

APP_DIR = Path(__file__).parent / "burn_app"
MAX_UNITS = 1_000_000
"""The app's bound on ``/work?units=N`` (``burn_app/app.py``)."""
WORK_VUS = 4
"""Connections of the work scenario: enough to keep the server's queue never empty."""


def work_scenario(units: int, duration: str = "20s") -> dict[str, Any]:
    """A saturating closed loop: ``WORK_VUS`` connections requesting ``/work?units=units``."""
    return {
        "executor": "constant-vus",
        "vus": WORK_VUS,
        "duration": duration,
        "requests": [{"method": "GET", "path": f"/work?units={units}"}],
    }


class BurnWorkload(Workload):
    """Endpoints that burn CPU, hold memory and move a known number of bytes.

    ``/healthz``, ``/burn?seconds=S``, ``/work?units=N``, ``/alloc?mb=N``, ``/free``,
    ``/payload?bytes=N``, ``POST /echo``.

    Options: ``payload_bytes`` (default 65536) for the default scenario; ``work_units``: when
    set, the default scenario requests ``/work?units=<work_units>`` instead (a saturating
    closed loop whose per-request CPU cost is a known multiple of one unit's; see
    ``isobench.run.calibrate``). Options change the scenario only, never the rootfs, so arms with
    different options run the same bits.
    """

    name = "burn"
    option_names = frozenset({"payload_bytes", "work_units"})
    primary_metric = "rps"
    description = "stdlib HTTP app that burns CPU, holds memory and serves payloads on demand"

    def rootfs_spec(self) -> RootfsSpec:
        return RootfsSpec(name="burn", files={f"{WORKLOAD_DIR}/app.py": APP_DIR / "app.py"})

    def launch_spec(self) -> LaunchSpec:
        return LaunchSpec(
            argv=(
                "/usr/bin/python3",
                f"{WORKLOAD_DIR}/app.py",
                "--host",
                "{bind}",
                "--port",
                "{port}",
            ),
            env={"PYTHONUNBUFFERED": "1", "PATH": "/usr/bin:/bin"},
            workdir=WORKLOAD_DIR,
            ready_path="/healthz",
        )

    def check(self) -> str | None:
        units = self.options.get("work_units")
        if units is not None and (not isinstance(units, int) or isinstance(units, bool)
                                  or not 0 <= units <= MAX_UNITS):
            return f"work_units must be an integer in 0..{MAX_UNITS}, not {units!r}"
        return None

    def default_scenario(self) -> dict[str, Any]:
        if self.options.get("work_units") is not None:
            return work_scenario(int(self.options["work_units"]))
        size = int(self.options.get("payload_bytes", 65536))
        return {
            "executor": "constant-vus",
            "vus": 4,
            "duration": "20s",
            "requests": [{"method": "GET", "path": f"/payload?bytes={size}"}],
        }
