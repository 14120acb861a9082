from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.make_run import make_run


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("run") / "run", idle=True)
