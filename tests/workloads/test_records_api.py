"""records-api: the workload contract, the schema and the deterministic generator (no server)."""

from __future__ import annotations

import hashlib
import json
import statistics
import subprocess
import sys

import pytest

from isobench import plugins
from isobench.images.spec import VENV, WORKLOAD_DIR
from isobench.workloads.records_api.app import generator
from isobench.workloads.records_api.app.schema import FIELDS, CompaniesSchema
from isobench.workloads.records_api.workload import APP_DIR, RecordsApiWorkload

# fmt: off
SEED_FIELDS = [
    "_id", "name", "permalink", "crunchbase_url", "homepage_url", "blog_url", "blog_feed_url",
    "twitter_username", "category_code", "number_of_employees", "founded_year", "founded_month",
    "founded_day", "deadpooled_year", "tag_list", "alias_list", "email_address", "phone_number",
    "description", "created_at", "overview",
]
# fmt: on


def test_registered_under_its_name() -> None:
    cls = plugins.load("workload", "records-api")
    assert cls is RecordsApiWorkload
    assert cls.name == "records-api"


def test_schema_serializes_the_seed_fields_by_alias() -> None:
    doc = next(generator.companies(1, 1))
    model = CompaniesSchema.model_validate(doc)
    out = model.model_dump(by_alias=True)
    assert list(out) == SEED_FIELDS == list(FIELDS)
    assert set(out["_id"]) == {"$oid"} and len(out["_id"]["$oid"]) == 24
    assert set(out["created_at"]) == {"$date"}
    assert out == doc


def test_generator_same_seed_same_bytes_other_seed_other_bytes() -> None:
    def digest(seed: int) -> str:
        h = hashlib.sha256()
        for doc in generator.companies(2000, seed):
            h.update(generator.dumps(doc).encode())
        return h.hexdigest()

    assert digest(1) == digest(1)
    assert digest(1) != digest(2)


def test_generate_cli_is_deterministic_across_processes() -> None:
    argv = [
        sys.executable,
        "-m",
        "isobench.workloads.records_api.app",
        "generate",
        "--count",
        "300",
        "--seed",
        "7",
    ]
    first = subprocess.run(argv, capture_output=True, check=True, timeout=60).stdout
    second = subprocess.run(argv, capture_output=True, check=True, timeout=60).stdout
    assert first == second
    lines = first.decode().splitlines()
    assert len(lines) == 300
    assert list(json.loads(lines[0])) == SEED_FIELDS


def test_sizes_match_the_seed_traffic() -> None:
    """24 MB over 162 responses of 100 records: ~148 KB per page, ~1.5 KB per record."""
    docs = list(generator.companies(10_000, 1))
    sizes = [len(generator.dumps(d).encode()) for d in docs]
    mean = statistics.fmean(sizes)
    assert 1350 <= mean <= 1650, mean
    # real records vary: a long overview tail, not one fixed size
    cv = statistics.pstdev(sizes) / mean
    assert 0.15 <= cv <= 0.6, cv
    assert min(sizes) < 0.7 * mean and max(sizes) > 2 * mean
    pages = [sum(sizes[i : i + 100]) + 101 for i in range(0, len(sizes), 100)]
    assert all(125_000 <= p <= 175_000 for p in pages), (min(pages), max(pages))
    assert 140_000 <= statistics.fmean(pages) <= 160_000
    assert len({d["permalink"] for d in docs}) == len(docs)
    assert len({d["_id"]["$oid"] for d in docs}) == len(docs)


def test_rootfs_spec_pins_deps_and_builds_the_sqlite_file() -> None:
    spec = RecordsApiWorkload().rootfs_spec()
    assert spec.name == "records-api"
    names = {r.split("==")[0] for r in spec.pip_requirements}
    assert names == {"fastapi", "uvicorn", "pydantic", "psycopg[binary]", "pymongo"}
    assert all("==" in r for r in spec.pip_requirements)
    assert spec.files == {f"{WORKLOAD_DIR}/records_app": APP_DIR}
    assert (APP_DIR / "main.py").is_file()
    (cmd,) = spec.build_commands
    assert f"{VENV}/bin/python" in cmd and "load-sqlite" in cmd
    assert f"{WORKLOAD_DIR}/data/records.db" in cmd
    assert cmd[cmd.index("--count") + 1] == "10000" and cmd[cmd.index("--seed") + 1] == "1"


def test_launch_spec_one_worker_and_backend_env() -> None:
    spec = RecordsApiWorkload().launch_spec().render("0.0.0.0", 8123)
    assert spec.argv[:4] == (f"{VENV}/bin/python", "-m", "uvicorn", "records_app.main:app")
    argv = list(spec.argv)
    assert argv[argv.index("--host") + 1] == "0.0.0.0"
    assert argv[argv.index("--port") + 1] == "8123"
    assert argv[argv.index("--workers") + 1] == "1"
    assert "--no-access-log" in argv
    assert spec.ready_path == "/healthz"
    assert spec.env["RECORDS_STORAGE"] == "sqlite"
    assert "DATABASE_URL" not in spec.env and "MONGODB_URI" not in spec.env

    pg = RecordsApiWorkload(
        {"storage": "postgres", "database_url": "postgresql://u@127.0.0.1:5432/db"}
    ).launch_spec()
    assert pg.env["RECORDS_STORAGE"] == "postgres"
    assert pg.env["DATABASE_URL"] == "postgresql://u@127.0.0.1:5432/db"
    mongo = RecordsApiWorkload({"storage": "mongodb", "mongodb_uri": "mongodb://x"}).launch_spec()
    assert mongo.env["MONGODB_URI"] == "mongodb://x"
    assert "--no-access-log" not in RecordsApiWorkload({"access_log": True}).launch_spec().argv


def test_check_reasons() -> None:
    assert RecordsApiWorkload().check() is None
    assert "MongoDB" in (RecordsApiWorkload({"storage": "mongodb"}).check() or "")
    assert RecordsApiWorkload({"storage": "mongodb", "mongodb_uri": "mongodb://h"}).check() is None
    assert "database-url" in (RecordsApiWorkload({"storage": "postgres"}).check() or "")
    assert "unknown" in (RecordsApiWorkload({"storage": "redis"}).check() or "")


@pytest.mark.parametrize(
    ("method", "vus", "duration", "think"),
    [("default_scenario", 16, "20s", 0), ("seed_scenario", 10, "30s", 1)],
)
def test_scenarios(method: str, vus: int, duration: str, think: int) -> None:
    scenario = getattr(RecordsApiWorkload(), method)()
    assert scenario == {
        "executor": "constant-vus",
        "vus": vus,
        "duration": duration,
        "think_time": think,
        "requests": [
            {
                "method": "GET",
                "path": "/records?limit=100",
                "name": "records",
                "checks": {"status": 200},
            }
        ],
    }
