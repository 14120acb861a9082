"""``burn``: a test workload with known costs, for checking telemetry in every runtime.

Stdlib-only HTTP server (``burn_app/app.py``), so its rootfs needs nothing beyond ``python3``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from isobench.images.spec import WORKLOAD_DIR, RootfsSpec
from isobench.workloads.base import LaunchSpec, Workload

APP_DIR = Path(__file__).parent / "burn_app"


class BurnWorkload(Workload):
    """Endpoints that burn CPU, hold memory and move a known number of bytes.

    ``/healthz``, ``/burn?seconds=S``, ``/alloc?mb=N``, ``/free``, ``/payload?bytes=N``,
    ``POST /echo``. Options: ``payload_bytes`` (default 65536) for the default scenario.
    """

    name = "burn"
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

    def default_scenario(self) -> dict[str, Any]:
        size = int(self.options.get("payload_bytes", 65536))
        return {
            "executor": "constant-vus",
            "vus": 4,
            "duration": "20s",
            "requests": [{"method": "GET", "path": f"/payload?bytes={size}"}],
        }
