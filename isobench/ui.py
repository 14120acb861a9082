"""Live terminal progress for a run (rich): build steps, trial i/n with ETA, live req/s."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from isobench.results import TrialRecord
from isobench.run.plan import PlannedTrial


class RichEvents:
    """Implements orchestrator.Events on a rich console."""

    def __init__(self, console: Console, emulated: set[str] | None = None) -> None:
        self.console = console
        self.emulated = emulated or set()
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[live]}"),
            console=console,
            transient=False,
        )
        self.overall: Any = None
        self.current: Any = None
        self._started = False

    def __enter__(self) -> RichEvents:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._started:
            self.progress.stop()

    def step(self, text: str) -> None:
        self.console.log(f"[cyan]build[/] {text}")

    def _ensure_started(self, total: int) -> None:
        if not self._started:
            self.progress.start()
            self._started = True
            self.overall = self.progress.add_task("trials", total=total, live="")

    def trial_started(self, planned: PlannedTrial, total: int, duration_s: float) -> None:
        self._ensure_started(total)
        if self.current is not None:
            self.progress.remove_task(self.current)
        tag = " (emulated)" if planned.runtime in self.emulated else ""
        self.current = self.progress.add_task(
            f"{planned.arm}{tag} #{planned.trial + 1}", total=max(duration_s, 1.0), live="starting"
        )
        self._trial_t0 = time.monotonic()

    def trial_progress(self, planned: PlannedTrial, progress: dict[str, Any]) -> None:
        if self.current is None:
            return
        elapsed = float(progress.get("elapsed", time.monotonic() - self._trial_t0))
        rate = progress.get("rate")
        live = f"{rate:,.0f} req/s" if isinstance(rate, int | float) else ""
        if "blocks_applied" in progress:
            live = f"{progress['blocks_applied']} blocks applied"
        self.progress.update(self.current, completed=elapsed, live=live)

    def trial_finished(self, planned: PlannedTrial, record: TrialRecord) -> None:
        if self.current is not None:
            self.progress.remove_task(self.current)
            self.current = None
        self.progress.advance(self.overall)
        if record.status == "ok":
            rate = record.metric("http_reqs", "rate")
            startup = f"startup {record.startup_s:.2f} s" if record.startup_s else ""
            figure = f"{rate:,.1f} req/s" if rate is not None else ""
            self.console.log(f"[green]ok[/] {planned.arm} #{planned.trial + 1}: {figure} {startup}")
        else:
            reason = escape(record.error or "no reason recorded")
            self.console.log(f"[red]failed[/] {planned.arm} #{planned.trial + 1}: {reason}")
