"""The sampler contract (after pyperf's psutil memory sampler: a thread polling, stop returns).

Lifecycle, per trial::

    sampler = SamplerClass(instance, interval=1.0, labels={"runtime": ..., "trial": ...})
    reason = sampler.check()          # None, or why it cannot measure this instance
    sampler.start()                   # begins polling in a background thread
    ... load runs ...
    samples = sampler.stop()          # joins the thread; returns every Sample taken
    totals = sampler.summary()        # aggregated figures for the trial record

Samples carry ``labels`` in their metadata plus ``source`` (``host`` or ``guest``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from isobench.results import Sample
from isobench.runtimes.base import Instance


class Sampler(ABC):
    """Measures one aspect of an instance over time."""

    name: ClassVar[str]

    def __init__(
        self, instance: Instance, interval: float = 1.0, labels: Mapping[str, Any] | None = None
    ) -> None:
        self.instance = instance
        self.interval = interval
        self.labels = dict(labels or {})

    def check(self) -> str | None:
        """None if this sampler can measure the instance, else a one-line reason."""
        return None

    @abstractmethod
    def start(self) -> None:
        """Begin sampling (non-blocking)."""

    @abstractmethod
    def stop(self) -> list[Sample]:
        """Stop sampling and return every sample taken."""

    @abstractmethod
    def summary(self) -> dict[str, float]:
        """Aggregates over the sampling window (call after ``stop``)."""
