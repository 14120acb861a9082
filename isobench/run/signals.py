"""Signals: Ctrl-C and SIGTERM become KeyboardInterrupt; cleanup cannot be interrupted."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def stop_signals_interrupt(
    signals: tuple[signal.Signals, ...] = STOP_SIGNALS,
) -> Iterator[None]:
    """Within the block, the first of ``signals`` (Ctrl-C, SIGTERM, ...) raises KeyboardInterrupt
    (one cleanup path for all of them) and every later one is ignored, so pressing Ctrl-C again
    cannot cut the cleanup short. The previous handlers come back when the block ends without a
    signal; after one, they stay ignored: the process is on its way out."""
    fired = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal fired
        fired = True
        for sig in signals:
            signal.signal(sig, signal.SIG_IGN)
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        if not fired:
            for sig, old in previous.items():
                signal.signal(sig, old)


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Within the block, Ctrl-C and SIGTERM are ignored, so a second Ctrl-C cannot cut a
    cleanup short (leaving a container or a VM behind). A no-op outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
