"""records-api: the real app under uvicorn on the host, over real SQLite and PostgreSQL.

PostgreSQL: a throwaway cluster (initdb + pg_ctl as the ``postgres`` user, in a temp dir, TCP on
127.0.0.1 only, unix socket in the temp dir), removed afterwards. MongoDB: runs only when
``MONGODB_URI`` points at a server (none can be installed on this host); skipped otherwise.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from isobench.workloads.records_api.app import generator, loaders
from tests.conftest import require
from tests.fixtures.procs import stop

# fmt: off
SEED_FIELDS = [
    "_id", "name", "permalink", "crunchbase_url", "homepage_url", "blog_url", "blog_feed_url",
    "twitter_username", "category_code", "number_of_employees", "founded_year", "founded_month",
    "founded_day", "deadpooled_year", "tag_list", "alias_list", "email_address", "phone_number",
    "description", "created_at", "overview",
]
# fmt: on
COUNT = 10_000
SEED = 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(env: dict[str, str], timeout: float = 30.0, ready: int = 200) -> Iterator[str]:
    """Run the app with uvicorn (1 worker) on 127.0.0.1; yield its base URL once /healthz answers
    with status ``ready``."""
    port = _free_port()
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "isobench.workloads.records_api.app.main:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--no-access-log",
    ]
    full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env}
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            argv,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[2],
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    log.seek(0)
                    pytest.fail(f"app exited rc={proc.returncode}: {log.read().decode()[-2000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(base + "/healthz", timeout=3).status_code == ready:
                        break
                if time.monotonic() > deadline:
                    log.seek(0)
                    pytest.fail(f"app not ready in {timeout}s: {log.read().decode()[-2000:]}")
                time.sleep(0.1)
            yield base
        finally:
            stop(proc, timeout=10)


@pytest.fixture(scope="module")
def sqlite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("records") / "records.db"
    assert loaders.load_sqlite(path, generator.companies(COUNT, SEED)) == COUNT
    return path


@pytest.fixture(scope="module")
def sqlite_app(sqlite_file: Path) -> Iterator[str]:
    with serve({"RECORDS_STORAGE": "sqlite", "RECORDS_SQLITE_PATH": str(sqlite_file)}) as base:
        yield base


def _check_page(body: bytes) -> list[dict[str, Any]]:
    records = json.loads(body)
    assert isinstance(records, list) and len(records) == 100
    for rec in records:
        assert list(rec) == SEED_FIELDS
        assert list(rec["_id"]) == ["$oid"] and len(rec["_id"]["$oid"]) == 24
        assert list(rec["created_at"]) == ["$date"] and rec["created_at"]["$date"].endswith("Z")
    return records


def test_sqlite_records_schema_sizes_and_rotation(sqlite_app: str) -> None:
    with httpx.Client(base_url=sqlite_app, timeout=10) as client:
        health = client.get("/healthz").json()
        assert health == {"status": "ok", "storage": "sqlite", "records": COUNT}
        bodies = [client.get("/records", params={"limit": 100}).content for _ in range(3)]
    firsts = [_check_page(b)[0]["_id"]["$oid"] for b in bodies]
    assert len(set(firsts)) == 3, "consecutive calls must read different pages"
    for body in bodies:  # the seed's traffic: ~24 MB / 162 responses
        assert 125_000 <= len(body) <= 175_000, len(body)


def test_sqlite_offset_returns_generated_documents_and_wraps(sqlite_app: str) -> None:
    docs = list(generator.companies(COUNT, SEED))
    r = httpx.get(sqlite_app + "/records", params={"limit": 100, "offset": 250}, timeout=10)
    assert r.status_code == 200
    assert json.loads(r.content) == docs[250:350]
    # the served bytes are the generator's compact JSON
    assert r.content == ("[" + ",".join(generator.dumps(d) for d in docs[250:350]) + "]").encode()
    wrap = httpx.get(sqlite_app + "/records", params={"limit": 100, "offset": 9950}, timeout=10)
    assert json.loads(wrap.content) == docs[9950:] + docs[:50]


@pytest.mark.parametrize("limit", ["0", "1001", "-5", "abc"])
def test_limit_out_of_range_is_422(sqlite_app: str, limit: str) -> None:
    r = httpx.get(sqlite_app + "/records", params={"limit": limit}, timeout=10)
    assert r.status_code == 422


@pytest.mark.parametrize("limit", [1, 1000])
def test_limit_bounds_are_accepted(sqlite_app: str, limit: int) -> None:
    r = httpx.get(sqlite_app + "/records", params={"limit": limit}, timeout=10)
    assert r.status_code == 200 and len(r.json()) == limit


def test_healthz_is_503_until_the_storage_answers(tmp_path: Path) -> None:
    path = tmp_path / "late.db"
    env = {"RECORDS_STORAGE": "sqlite", "RECORDS_SQLITE_PATH": str(path)}
    with serve(env, ready=503) as base, httpx.Client(base_url=base, timeout=10) as client:
        assert client.get("/healthz").json()["status"] == "unavailable"
        assert client.get("/records").status_code == 503
        loaders.load_sqlite(path, generator.companies(500, SEED))
        health = client.get("/healthz").json()
        assert health == {"status": "ok", "storage": "sqlite", "records": 500}
        assert len(client.get("/records").json()) == 100


@pytest.mark.parametrize(
    "env",
    [
        {"RECORDS_STORAGE": "postgres", "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"},
        {"RECORDS_STORAGE": "mongodb", "MONGODB_URI": "mongodb://127.0.0.1:1/"},
    ],
    ids=["postgres", "mongodb"],
)
def test_unreachable_database_keeps_healthz_at_503(env: dict[str, str]) -> None:
    """Nothing listens on 127.0.0.1:1: the server runs, but is not ready, and says why."""
    with serve(env, ready=503) as base, httpx.Client(base_url=base, timeout=15) as client:
        health = client.get("/healthz")
        assert health.status_code == 503 and health.json()["error"]
        assert client.get("/records").status_code == 503


# --- PostgreSQL, for real -------------------------------------------------------------------------


def _pg_bin(name: str) -> str | None:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(found[-1]) if found else shutil.which(name)


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    require(os.geteuid() == 0, "needs root (runs a throwaway PostgreSQL as the postgres user)")
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    require(
        initdb is not None and pg_ctl is not None,
        "PostgreSQL not installed (apt-get install postgresql)",
    )
    try:
        pg_user = pwd.getpwnam("postgres")
    except KeyError:
        require(False, "no postgres user (apt-get install postgresql)")
        raise
    assert initdb and pg_ctl
    tmp = Path(tempfile.mkdtemp(prefix="isobench-pg-"))
    os.chown(tmp, pg_user.pw_uid, pg_user.pw_gid)
    data = tmp / "data"
    port = _free_port()

    def as_pg(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["runuser", "-u", "postgres", "--", *argv],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    started = False
    try:
        r = as_pg(
            initdb,
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        )
        assert r.returncode == 0, r.stderr
        opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {tmp} -c fsync=off"
        r = as_pg(
            pg_ctl, "-D", str(data), "-o", opts, "-l", str(tmp / "log"), "-w", "-t", "60", "start"
        )
        started = r.returncode == 0
        assert started, r.stderr + (tmp / "log").read_text(errors="replace")
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        assert loaders.load_postgres(url, generator.companies(COUNT, SEED)) == COUNT
        yield url
    finally:
        if started:
            as_pg(pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.integration
def test_postgres_backend_serves_the_same_records_as_sqlite(
    postgres_url: str, sqlite_app: str
) -> None:
    with (
        serve({"RECORDS_STORAGE": "postgres", "DATABASE_URL": postgres_url}) as base,
        httpx.Client(base_url=base, timeout=10) as client,
    ):
        assert client.get("/healthz").json() == {
            "status": "ok",
            "storage": "postgres",
            "records": COUNT,
        }
        page = client.get("/records", params={"limit": 100})
        assert page.status_code == 200
        _check_page(page.content)
        assert 125_000 <= len(page.content) <= 175_000
        second = client.get("/records", params={"limit": 100}).json()
        assert second[0]["_id"] != page.json()[0]["_id"]
        for offset in (0, 4321, 9950):
            pg = client.get("/records", params={"limit": 100, "offset": offset}).content
            lite = httpx.get(
                sqlite_app + "/records", params={"limit": 100, "offset": offset}, timeout=10
            ).content
            assert pg == lite, f"postgres and sqlite differ at offset {offset}"
        assert client.get("/records", params={"limit": 0}).status_code == 422


# --- MongoDB: only against a real server the user provides ----------------------------------------


@pytest.mark.integration
def test_mongodb_backend() -> None:
    uri = os.environ.get("MONGODB_URI")
    if not uri:
        pytest.skip("not run: MONGODB_URI is not set (no MongoDB server can be installed here)")
    database = "isobench_test"
    assert loaders.load_mongodb(uri, generator.companies(COUNT, SEED), database) == COUNT
    docs = list(generator.companies(COUNT, SEED))
    env = {"RECORDS_STORAGE": "mongodb", "MONGODB_URI": uri, "MONGODB_DB": database}
    with serve(env) as base, httpx.Client(base_url=base, timeout=10) as client:
        assert client.get("/healthz").json()["storage"] == "mongodb"
        _check_page(client.get("/records", params={"limit": 100}).content)
        assert client.get("/records", params={"offset": 77}).json() == docs[77:177]
