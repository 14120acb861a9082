"""The validator scenario: the benchfile's ``scenario`` mapping, checked and typed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from isobench.config.durations import parse_duration
from isobench.errors import ConfigError

DEFAULT_SCENARIO: dict[str, Any] = {
    "duration": "60s", "block_time": 1.0, "txs_per_block": 50, "peers": 4,
    "forged_fraction": 0.02, "rpc_rate": 20,
}

_IGNORED = {"name", "thresholds", "description"}


@dataclass(frozen=True)
class ChainScenario:
    """What the driver plays. Durations in seconds.

    Attributes:
        duration: how long blocks are produced (and RPC load runs).
        block_time: seconds between blocks.
        txs_per_block: signed transfers per block.
        peers: gossip peers that connect to the node.
        forged_fraction: share of transfers with an invalid signature (exact over the run).
        rpc_rate: JSON-RPC reads per second (0: none).
        rpc_connections: most RPC requests in flight (then iterations are dropped).
        accounts: funded accounts.
        seed: makes keys and the transaction stream reproducible.
        block_deadline: a block not acked as applied within this is missed (default:
            ``block_time``: applied before the next block is due).
        ping_interval: seconds between each peer's pings (0: none).
        drain_timeout: after the last block, how long to wait for outstanding acks/snapshots.
        idle: no traffic at all, just wait ``duration`` (``executor: idle``).
    """

    duration: float = 60.0
    block_time: float = 1.0
    txs_per_block: int = 50
    peers: int = 4
    forged_fraction: float = 0.02
    rpc_rate: float = 20.0
    rpc_connections: int = 8
    accounts: int = 1000
    seed: int = 0
    block_deadline: float = 0.0
    ping_interval: float = 0.5
    drain_timeout: float = 15.0
    idle: bool = False

    def __post_init__(self) -> None:
        checks = [
            (self.duration > 0, "duration must be > 0"),
            (self.block_time > 0, "block_time must be > 0"),
            (self.txs_per_block >= 0, "txs_per_block must be >= 0"),
            (self.peers >= 0, "peers must be >= 0"),
            (0 <= self.forged_fraction <= 1, "forged_fraction must be within 0..1"),
            (self.rpc_rate >= 0, "rpc_rate must be >= 0"),
            (self.rpc_connections >= 1, "rpc_connections must be >= 1"),
            (self.accounts >= 2, "accounts must be >= 2"),
            (self.block_deadline >= 0, "block_deadline must be >= 0"),
            (self.ping_interval >= 0, "ping_interval must be >= 0"),
            (self.drain_timeout >= 0, "drain_timeout must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"validator scenario: {message}",
                                  fix="correct the scenario in the benchfile")
        if self.block_deadline == 0:
            object.__setattr__(self, "block_deadline", self.block_time)

    @classmethod
    def from_mapping(cls, scenario: Mapping[str, Any]) -> ChainScenario:
        """Parse the benchfile form; durations accept ``"60s"``, ``"500ms"``, numbers."""
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, raw in scenario.items():
            if key in _IGNORED:
                continue
            if key == "executor":
                values["idle"] = raw == "idle"
                if raw not in ("idle", "validator"):
                    raise ConfigError(f"validator scenario: unknown executor {raw!r}",
                                      fix="use 'validator' (the default) or 'idle'")
                continue
            if key not in known or key == "idle":
                raise ConfigError(f"validator scenario: unknown key {key!r}",
                                  fix=f"use some of: {', '.join(sorted(DEFAULT_SCENARIO))}, "
                                      "rpc_connections, accounts, seed, block_deadline, "
                                      "ping_interval, drain_timeout")
            try:
                if key in ("duration", "block_time", "block_deadline", "ping_interval",
                           "drain_timeout"):
                    values[key] = parse_duration(raw)
                elif known[key].type in ("int", int):
                    values[key] = int(raw)
                else:
                    values[key] = float(raw)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"validator scenario: bad {key} {raw!r}",
                                  fix="use a number (durations: '60s', '500ms')") from exc
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
