import socket
import time

import pytest

from isobench.errors import StartError
from isobench.util.netutil import ensure_port_free, free_port, wait_ready


def test_port_taken_is_a_clear_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(StartError, match=f"port {port} on 127.0.0.1 is already taken"):
            ensure_port_free(port)
    ensure_port_free(free_port())


def test_wait_ready_fails_fast_when_instance_exits() -> None:
    start = time.monotonic()
    with pytest.raises(StartError, match="exited before it was ready: boom"):
        wait_ready(free_port(), "/", launched_at=start, deadline_s=30, exited=lambda: "boom")
    assert time.monotonic() - start < 5


def test_wait_ready_deadline() -> None:
    start = time.monotonic()
    with pytest.raises(StartError, match="no HTTP 200"):
        wait_ready(free_port(), "/", launched_at=start, deadline_s=0.3, exited=lambda: None)
