"""A sub-millisecond wake-up for the arrival-rate scheduler.

libuv (uvloop) timers have millisecond resolution, which would add up to 1 ms of scheduling error
to every open-model iteration (and so to its latency, measured from the intended start). On Linux
a ``timerfd`` on CLOCK_MONOTONIC (the clock of ``time.perf_counter``) registered with
``loop.add_reader`` wakes the loop at the exact deadline instead, without spinning. Elsewhere
:class:`PreciseTimer` falls back to a coarse timer plus a short ``call_soon`` spin.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
from collections.abc import Callable

_CLOCK_MONOTONIC = 1
_TFD_NONBLOCK = 0o4000
_TFD_CLOEXEC = 0o2000000
_TFD_TIMER_ABSTIME = 1


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.timerfd_create  # noqa: B018 - probe the symbol
        libc.timerfd_settime  # noqa: B018
        return libc
    except (OSError, AttributeError):
        return None


_LIBC = _libc()


class PreciseTimer:
    """Calls ``callback`` at (or just after) absolute ``perf_counter`` deadlines.

    One pending deadline at a time: :meth:`arm` replaces the previous one.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
        self.loop = loop
        self.callback = callback
        self.fd = -1
        self._spec = _Itimerspec()
        self._deadline = 0.0
        if _LIBC is not None:
            fd = _LIBC.timerfd_create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC)
            if fd >= 0:
                self.fd = fd
                loop.add_reader(fd, self._ready)

    @property
    def precise(self) -> bool:
        return self.fd >= 0

    def arm(self, deadline: float) -> None:
        """Wake at ``deadline`` (a ``time.perf_counter()`` value)."""
        self._deadline = deadline
        if self.fd >= 0:
            sec = int(deadline)
            self._spec.it_value.tv_sec = sec
            self._spec.it_value.tv_nsec = max(int((deadline - sec) * 1e9), 1)
            if _LIBC is not None and _LIBC.timerfd_settime(
                self.fd, _TFD_TIMER_ABSTIME, ctypes.byref(self._spec), None
            ) == 0:
                return
        # fallback: coarse sleep until ~2 ms before, then spin on call_soon
        from time import perf_counter

        wait = deadline - perf_counter()
        if wait > 0.003:
            self.loop.call_later(wait - 0.002, self._spin)
        else:
            self.loop.call_soon(self._spin)

    def _spin(self) -> None:
        from time import perf_counter

        if perf_counter() >= self._deadline:
            self.callback()
        else:
            self.loop.call_soon(self._spin)

    def _ready(self) -> None:
        try:
            os.read(self.fd, 8)
        except BlockingIOError:
            return
        self.callback()

    def close(self) -> None:
        if self.fd >= 0:
            self.loop.remove_reader(self.fd)
            os.close(self.fd)
            self.fd = -1
