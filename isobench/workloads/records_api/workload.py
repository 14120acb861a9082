"""The first article's workload: a FastAPI ``/records`` API returning 100 companies per call.

The app (``app/``, copied into the rootfs as the package ``records_app``) serves the seed's
``CompaniesSchema`` from SQLite (a data file generated at image build time, the default),
PostgreSQL (``database_url``) or MongoDB (``mongodb_uri``), with uvicorn and one worker, as the
seed's ``CMD`` does.

Options (``workload_options`` in the benchfile, ``--storage/--database-url/--mongodb-uri`` on the
command line):

- ``storage``: ``sqlite`` (default), ``postgres`` or ``mongodb``.
- ``database_url``: ``postgresql://user:pass@host:port/db`` for ``postgres``.
- ``mongodb_uri``: ``mongodb://...`` for ``mongodb``.
- ``access_log``: keep uvicorn's per-request access log (default off: a log line per request goes
  through each runtime's console path — a VM's serial port, Docker's log driver — and would
  measure that instead of the app).

The database URL is used from inside the runtime as given: ``127.0.0.1`` there is the runtime's own
loopback (for Docker bridge and the VM it is not the host's).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from isobench.images.spec import VENV, WORKLOAD_DIR, RootfsSpec
from isobench.workloads.base import LaunchSpec, Workload

APP_DIR = Path(__file__).resolve().parent / "app"
"""The app package on the host."""

PACKAGE = "records_app"
"""The app package's name inside the rootfs (``WORKLOAD_DIR/records_app``)."""

SQLITE_PATH = f"{WORKLOAD_DIR}/data/records.db"
"""The SQLite data file inside the rootfs, written by the build command."""

DATA_COUNT = 10_000
DATA_SEED = 1

PIP_REQUIREMENTS: tuple[str, ...] = (
    "fastapi==0.165.0",
    "uvicorn==0.54.0",
    "pydantic==2.14.3",
    "psycopg[binary]==3.3.9",
    "pymongo==4.20.0",
)
"""Pinned to the versions the host tests run against (``.venv``)."""

STORAGES = ("sqlite", "postgres", "mongodb")

RECORDS_REQUEST: dict[str, Any] = {
    "method": "GET",
    "path": "/records?limit=100",
    "name": "records",
    "checks": {"status": 200},
}


def _records_scenario(vus: int, duration: str, think_time: float) -> dict[str, Any]:
    """A closed-model scenario of ``GET /records?limit=100`` (a fresh copy each call)."""
    return {
        "executor": "constant-vus",
        "vus": vus,
        "duration": duration,
        "think_time": think_time,
        "requests": [dict(RECORDS_REQUEST, checks=dict(RECORDS_REQUEST["checks"]))],
    }


class RecordsApiWorkload(Workload):
    """FastAPI + uvicorn (1 worker) ``GET /records?limit=100`` over SQLite/PostgreSQL/MongoDB."""

    name: ClassVar[str] = "records-api"
    option_names: ClassVar[frozenset[str] | None] = frozenset({
        "storage", "database_url", "mongodb_uri", "access_log"})
    primary_metric: ClassVar[str] = "rps"
    description: ClassVar[str] = (
        "FastAPI /records (100 companies, ~150 KB per call) from SQLite, PostgreSQL or MongoDB"
    )

    @property
    def storage(self) -> str:
        """The chosen backend (``sqlite`` unless the options say otherwise)."""
        return str(self.options.get("storage") or "sqlite").strip().lower()

    def check(self) -> str | None:
        """None when the options are usable here, else a one-line reason."""
        storage = self.storage
        if storage not in STORAGES:
            return f"unknown records-api storage '{storage}' (use {', '.join(STORAGES)})"
        if storage == "mongodb" and not self.options.get("mongodb_uri"):
            return (
                "storage mongodb needs a MongoDB server (none can be installed here): "
                "pass --mongodb-uri mongodb://... loaded with "
                "`python -m isobench.workloads.records_api.app load-mongodb URI`"
            )
        if storage == "postgres" and not self.options.get("database_url"):
            return (
                "storage postgres needs --database-url postgresql://... loaded with "
                "`python -m isobench.workloads.records_api.app load-postgres URL`"
            )
        return None

    def rootfs_spec(self) -> RootfsSpec:
        """Python deps in the venv, the app at ``WORKLOAD_DIR/records_app``, the SQLite file."""
        return RootfsSpec(
            name="records-api",
            pip_requirements=PIP_REQUIREMENTS,
            files={f"{WORKLOAD_DIR}/{PACKAGE}": APP_DIR},
            build_commands=(
                (
                    "/usr/bin/env",
                    f"PYTHONPATH={WORKLOAD_DIR}",
                    "PYTHONDONTWRITEBYTECODE=1",
                    f"{VENV}/bin/python",
                    "-m",
                    PACKAGE,
                    "load-sqlite",
                    SQLITE_PATH,
                    "--count",
                    str(DATA_COUNT),
                    "--seed",
                    str(DATA_SEED),
                ),
            ),
        )

    def launch_env(self) -> dict[str, str]:
        """The app's environment for the chosen storage."""
        env = {
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": WORKLOAD_DIR,
            "LANG": "C.UTF-8",
            "RECORDS_STORAGE": self.storage,
            "RECORDS_SQLITE_PATH": SQLITE_PATH,
        }
        if self.options.get("database_url"):
            env["DATABASE_URL"] = str(self.options["database_url"])
        if self.options.get("mongodb_uri"):
            env["MONGODB_URI"] = str(self.options["mongodb_uri"])
        return env

    def launch_spec(self) -> LaunchSpec:
        """uvicorn with one worker on ``{bind}:{port}``, ready at ``/healthz``."""
        argv = [
            f"{VENV}/bin/python",
            "-m",
            "uvicorn",
            f"{PACKAGE}.main:app",
            "--app-dir",
            WORKLOAD_DIR,
            "--host",
            "{bind}",
            "--port",
            "{port}",
            "--workers",
            "1",
        ]
        if not self.options.get("access_log", False):
            argv.append("--no-access-log")
        return LaunchSpec(
            argv=tuple(argv),
            env=self.launch_env(),
            workdir=WORKLOAD_DIR,
            ready_path="/healthz",
            writable_paths=("/tmp",),
        )

    def default_scenario(self) -> dict[str, Any]:
        """Saturating closed model: 16 VUs back to back for 20 s."""
        return _records_scenario(vus=16, duration="20s", think_time=0)

    def seed_scenario(self) -> dict[str, Any]:
        """The article's k6 script: 10 VUs for 30 s, ``sleep(1)`` after each call."""
        return _records_scenario(vus=10, duration="30s", think_time=1)
