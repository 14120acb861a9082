"""Local servers for the load-engine tests (127.0.0.1 only, cleaned up after use)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.conftest import require
from tests.load.servers import AsyncServer, nginx


@pytest.fixture(scope="module")
def nginx_url() -> Iterator[str]:
    require(shutil.which("nginx") is not None, "nginx not installed (apt-get install nginx-light)")
    with nginx(cpu=None) as url:
        yield url


@pytest.fixture()
def async_server() -> Iterator[AsyncServer]:
    with AsyncServer(stall_s=1.0, slow_s=0.05) as srv:
        yield srv
