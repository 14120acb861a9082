"""Presets: the set-ups of the two articles isobench checks (with their figures), and the named
workloads and runtimes the suite and calibration commands default to (the only place outside
``plugins.py`` and the plug-ins that names them; see ``tests/test_layout.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from isobench.errors import ConfigError

MICRO_BENCHMARKS = ("redis", "postgres", "mariadb", "sysbench-cpu", "sysbench-memory", "fio", "xz",
                    "iperf3", "sockperf")
"""The micro suite's benchmarks (workload names), in table order."""

SUITE_DEFAULT_RUNTIMES = ("native", "docker-bridge", "docker-host", "gvisor", "vm")
"""The runtimes ``isobench suite`` runs when ``--runtimes`` is not given."""

CALIBRATION_WORKLOAD = "burn"
"""``isobench calibrate``'s workload: ``/work?units=N`` is a fixed-instruction CPU loop."""

CALIBRATION_RUNTIME = "native"
"""The runtime ``isobench calibrate`` measures on unless told otherwise."""


@dataclass(frozen=True)
class ArticleClaim:
    """A figure an article reports, to print beside isobench's measurement of the same thing.

    Attributes:
        label: what it is, in the article's words.
        metric: where isobench's figure comes from: ``load:<metric>:<stat>`` (the load summary),
            ``telemetry:<key>`` (the trial's telemetry), ``derived:<name>`` (computed from the
            telemetry, see ``claims.DERIVED``), ``startup_s`` or ``size`` (the runtime's artifact).
        values: the article's figure per side (``vm`` / ``container``).
        unit: unit of the values.
        scale: factor from isobench's unit to the article's.
    """

    label: str
    metric: str
    values: dict[str, float]
    unit: str
    scale: float = 1.0


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    benchfile: dict[str, Any]
    claims: tuple[ArticleClaim, ...] = field(default_factory=tuple)
    # which isobench runtime stands for each side of the article's comparison
    sides: dict[str, str] = field(default_factory=dict)
    note: str = ""
    # what --quick means for this preset, over the general quick settings
    quick: dict[str, Any] = field(default_factory=dict)


PRESETS: dict[str, Preset] = {
    "seed-003": Preset(
        name="seed-003",
        title="FastAPI /records on a VM vs in Docker (k6: 10 VUs, 30 s, sleep(1))",
        benchfile={
            "workload": "records-api",
            "scenario": "seed-003",
            "runtimes": ["native", "docker-bridge", "vm"],
            "trials": 3,
        },
        claims=(
            ArticleClaim(
                "http_reqs rate", "load:http_reqs:rate", {"vm": 5.10, "container": 4.97}, "req/s"
            ),
            ArticleClaim(
                "http_req_duration avg",
                "load:http_req_duration:avg",
                {"vm": 907.8, "container": 960.4},
                "ms",
            ),
        ),
        sides={"vm": "vm", "container": "docker-bridge"},
        note=(
            "With 10 VUs and sleep(1) the rate cannot exceed 10 req/s whatever the runtime: it "
            "measures think time plus latency, not the runtime. The article's 5.10 vs 4.97 req/s "
            "(-2.5 %) is one run per side with a remote MongoDB dominating latency. Run the "
            "default scenario (saturating) to see what the runtime costs."
        ),
    ),
    "seed-000": Preset(
        name="seed-000",
        title="Validator (snapshotter) node on a VM vs in a container",
        benchfile={
            "workload": "validator",
            "scenario": "default",
            "runtimes": ["native", "docker-bridge", "docker-host", "vm"],
            "trials": 3,
            "duration": "60s",
        },
        claims=(
            ArticleClaim(
                "CPU user % of a core (mpstat)",
                "derived:cpu_user_percent",
                {"vm": 5.17, "container": 0.09},
                "%",
            ),
            ArticleClaim(
                "network KB/s in+out (nethogs)",
                "derived:net_kb_per_s",
                {"vm": 21.209, "container": 5.968},
                "KB/s",
            ),
            ArticleClaim("image size", "size", {"vm": 10e9, "container": 0.5e9}, "bytes"),
        ),
        sides={"vm": "vm", "container": "docker-bridge"},
        note=(
            "The article read mpstat inside the VM and on the container's host - two different "
            "systems. isobench measures every runtime from the host (a VM: every QEMU thread) and "
            "shows the VM guest's own view beside it in the report. The VM image size here is the "
            "ext4 disk of the same rootfs, not a full distribution install."
        ),
        quick={"duration": "15s", "trials": 2},
    ),
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown preset '{name}'", fix=f"use one of: {', '.join(sorted(PRESETS))}"
        ) from None
