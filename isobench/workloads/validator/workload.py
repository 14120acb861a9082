"""The validator-node workload (the second article: a Powerloom-style snapshotter node).

The node (``node/``, copied into the rootfs as ``validator_node``) verifies ed25519-signed
blocks, keeps state in SQLite under a writable path, re-gossips to peers and submits a signed
snapshot every epoch, all over one TCP port. The host-side driver (``driver.py``) plays the
producer, the peers, the collector and an RPC read load through 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from isobench.images.spec import VENV, WORKLOAD_DIR, RootfsSpec
from isobench.util.clientnet import ClientPath, require_local
from isobench.workloads.base import LaunchSpec, Workload
from isobench.workloads.validator.scenario import DEFAULT_SCENARIO, ChainScenario

if TYPE_CHECKING:
    from isobench.run.validity import Limits
    from isobench.workloads.validator.ledger import Ledger

NODE_PACKAGE = "validator_node"
"""Import name of the node package inside the rootfs."""

PIP_REQUIREMENTS = ("PyNaCl==1.6.2", "cffi==2.1.1", "pycparser==3.12")
"""The node's only third-party dependency (ed25519 via libsodium), pinned with its own deps."""

_OPTION_ENV = {
    "block_time": "VALIDATOR_BLOCK_TIME",
    "epoch_blocks": "VALIDATOR_EPOCH_BLOCKS",
    "seed": "VALIDATOR_SEED",
    "data_dir": "VALIDATOR_DATA_DIR",
    "send_queue": "VALIDATOR_SEND_QUEUE",
}


def seed_000_article() -> dict[str, dict[str, float]]:
    """The second article's figures (validator node on a cloud VM vs in a Docker container).

    CPU user time from ``mpstat``, network from ``nethogs``, and image size: a ~10 GB VM image
    against a Docker image of about 5 % of that.
    """
    return {
        "cpu_user_percent": {"vm": 5.17, "container": 0.09},
        "net_kb_per_s": {"vm": 21.209, "container": 5.968},
        "image_size_bytes": {"vm": 10e9, "container": 0.5e9},
    }


class ValidatorWorkload(Workload):
    """Blockchain validator/snapshotter node: steady background work, chatty gossip, RPC reads.

    Options (all optional): ``block_time`` (the node's slot clock, s), ``epoch_blocks``
    (blocks per snapshot), ``seed`` (the node's key), ``data_dir`` (SQLite state, must be under
    a writable path), ``send_queue`` (frames buffered per gossip peer).
    """

    name = "validator"
    option_names = frozenset(_OPTION_ENV)
    primary_metric = "block_lag_p95_ms"
    description = "ed25519-verifying validator node with gossip, snapshots and JSON-RPC"

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self._ledgers: dict[str, Ledger] = {}
        """Endpoint → chain model of the last drive: the measured drive continues the chain
        the warm-up left on the same node (a fresh node at height 0 starts a fresh chain)."""

    def rootfs_spec(self) -> RootfsSpec:
        return RootfsSpec(
            name="validator",
            pip_requirements=PIP_REQUIREMENTS,
            files={f"{WORKLOAD_DIR}/{NODE_PACKAGE}": Path(__file__).parent / "node"},
        )

    def launch_spec(self) -> LaunchSpec:
        env = {"PYTHONPATH": WORKLOAD_DIR, "PYTHONDONTWRITEBYTECODE": "1",
               "PYTHONUNBUFFERED": "1", "VALIDATOR_DATA_DIR": "/tmp/validator"}
        block_time = self.options.get("block_time", DEFAULT_SCENARIO["block_time"])
        env["VALIDATOR_BLOCK_TIME"] = str(float(block_time))
        for key, var in _OPTION_ENV.items():
            if key in self.options and key != "block_time":
                env[var] = str(self.options[key])
        return LaunchSpec(
            argv=(f"{VENV}/bin/python", "-m", NODE_PACKAGE, "--host", "{bind}",
                  "--port", "{port}"),
            env=env,
            workdir=WORKLOAD_DIR,
            ready_path="/healthz",
            writable_paths=("/tmp",),
        )

    def default_scenario(self) -> dict[str, Any]:
        return dict(DEFAULT_SCENARIO)

    def steady_scenario(self) -> dict[str, Any]:
        """A light steady load: the node's background cost with little traffic."""
        return {**DEFAULT_SCENARIO, "txs_per_block": 10, "peers": 2, "rpc_rate": 2}

    def check(self) -> str | None:
        unknown = set(self.options) - set(_OPTION_ENV)
        if unknown:
            return f"unknown validator option(s): {', '.join(sorted(unknown))}"
        data_dir = str(self.options.get("data_dir", "/tmp/validator"))
        if not data_dir.startswith("/tmp/"):
            return "data_dir must be under /tmp (the only writable path of the rootfs)"
        return None

    def validate(
        self, summary: Mapping[str, Any], duration_s: float, limits: Limits | None = None
    ) -> str | None:
        """The validator's rule: the node must have applied blocks.

        A node that applied none of the blocks sent (a dead, wedged or refusing node) measured
        nothing; its trial fails with ``applied 0 of N blocks sent``. A node that died mid-run is
        caught beside this by the trial's liveness check. The RPC read load is secondary and not
        judged here (its error rate is in the summary).
        """
        metrics = summary.get("metrics") or {}

        def count(name: str) -> int:
            values = (metrics.get(name) or {}).get("values") or {}
            return int(values.get("count", 0) or 0)

        applied, sent = count("validator_blocks_applied"), count("validator_blocks_sent")
        if applied == 0:
            return f"the node applied 0 of {sent} blocks sent in {duration_s:g} s"
        return None

    def drive(
        self,
        endpoint: str,
        scenario: Mapping[str, Any],
        *,
        cpus: tuple[int, ...] | None = None,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        client: ClientPath | None = None,
    ) -> dict[str, Any]:
        """Play the chain against the node at ``endpoint``, pinned to ``cpus`` if given.

        The calling thread is pinned for the run and its previous affinity restored after.
        """
        from isobench.workloads.validator.driver import run_driver

        require_local(client, self.name)
        sc = ChainScenario.from_mapping(scenario)
        with _pinned(cpus):
            return run_driver(endpoint, sc, on_progress=on_progress, ledgers=self._ledgers)

    def drive_many(
        self,
        endpoints: list[str],
        scenario: Mapping[str, Any],
        *,
        cpus: tuple[int, ...] | None = None,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Play one chain per node, all at once from one loop pinned to ``cpus`` if given.

        Replica ``i`` (``endpoints[i]``) runs the scenario with ``seed + i``. Returns one
        summary in ``drive``'s shape whose ``validator_*``/``http_*`` metrics cover every
        replica (counts summed, latency histograms merged), plus ``validator_replicas``
        (``count``), ``validator_block_lag_worst_p95`` (the worst replica's p95 block lag, ms),
        ``validator_blocks_missed_worst``, ``validator_driver_loop_lag`` and a per-replica
        digest under ``"replicas"``. Progress dicts are merged (counts summed) about 1/s.

        Raises:
            ConfigError: no endpoint, one neither on loopback nor isobench's own, or a bad
                scenario.
            ValidatorDriveError: a node could not be driven (the message names the replica).
        """
        from isobench.workloads.validator.replicas import run_replicas

        sc = ChainScenario.from_mapping(scenario)
        with _pinned(cpus):
            return run_replicas(endpoints, sc, on_progress=on_progress, ledgers=self._ledgers)


@contextlib.contextmanager
def _pinned(cpus: tuple[int, ...] | None) -> Iterator[None]:
    """Pin the calling thread to ``cpus`` (if given) for the block, then restore its affinity."""
    previous = os.sched_getaffinity(0) if cpus else None
    if cpus:
        os.sched_setaffinity(0, set(cpus))
    try:
        yield
    finally:
        if previous is not None:
            os.sched_setaffinity(0, previous)
