import os
import signal

import pytest

from isobench.run.signals import shielded, stop_signals_interrupt


def test_first_signal_interrupts_later_ones_are_ignored() -> None:
    before = signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(KeyboardInterrupt), stop_signals_interrupt():
            os.kill(os.getpid(), signal.SIGTERM)
            signal.pthread_sigmask(signal.SIG_BLOCK, [])  # a point where the handler runs
        # the cleanup after the first signal: a second one is ignored
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, before)
        signal.signal(signal.SIGINT, signal.default_int_handler)


def test_handlers_come_back_after_a_quiet_block() -> None:
    with stop_signals_interrupt():
        pass
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_shielded_block_ignores_ctrl_c() -> None:
    with shielded():
        os.kill(os.getpid(), signal.SIGINT)  # would raise KeyboardInterrupt outside
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
