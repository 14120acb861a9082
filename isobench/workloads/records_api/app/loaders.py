"""Load generated companies into SQLite (at image build time), PostgreSQL or MongoDB.

Every loader replaces the ``companies`` table/collection, so loading twice gives the same data.
Rows carry ``seq`` (0..N-1, the order of generation), which the app's range reads use.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .schema import INT_FIELDS, PLAIN_FIELDS
from .storage import TABLE

BATCH = 1000


def _sql_columns(date_type: str) -> str:
    cols = ["seq INTEGER PRIMARY KEY", "oid TEXT NOT NULL"]
    cols += [f"{f} {'INTEGER' if f in INT_FIELDS else 'TEXT'}" for f in PLAIN_FIELDS]
    cols.append(f"created_at {date_type}")
    return ", ".join(cols)


def _parse_date(doc: dict[str, Any]) -> datetime | None:
    created = doc.get("created_at")
    if created is None:
        return None
    return datetime.strptime(created["$date"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _rows(docs: Iterable[dict[str, Any]], text_dates: bool) -> Iterator[tuple[Any, ...]]:
    for seq, doc in enumerate(docs):
        created: Any = _parse_date(doc)
        if text_dates and created is not None:
            created = doc["created_at"]["$date"]
        yield (seq, doc["_id"]["$oid"], *(doc[f] for f in PLAIN_FIELDS), created)


def load_sqlite(path: str | os.PathLike[str], docs: Iterable[dict[str, Any]]) -> int:
    """Write ``docs`` into a fresh SQLite file at ``path`` (atomically); returns the count.

    The same documents give the same file bytes with the same SQLite library.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(tmp)
    try:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute(f"CREATE TABLE {TABLE} ({_sql_columns('TEXT')})")
        marks = ", ".join("?" * (len(PLAIN_FIELDS) + 3))
        cur = conn.executemany(f"INSERT INTO {TABLE} VALUES ({marks})", _rows(docs, True))
        count = cur.rowcount
        conn.commit()
        conn.execute("VACUUM")
    finally:
        conn.close()
    os.replace(tmp, path)
    return int(count)


def load_postgres(url: str, docs: Iterable[dict[str, Any]]) -> int:
    """Replace the ``companies`` table at ``url`` with ``docs`` (COPY); returns the count."""
    import psycopg

    count = 0
    with psycopg.connect(url) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        conn.execute(f"CREATE TABLE {TABLE} ({_sql_columns('TIMESTAMPTZ')})")
        columns = ", ".join(("seq", "oid", *PLAIN_FIELDS, "created_at"))
        with conn.cursor() as cur, cur.copy(f"COPY {TABLE} ({columns}) FROM STDIN") as copy:
            for row in _rows(docs, False):
                copy.write_row(row)
                count += 1
        conn.execute(f"ANALYZE {TABLE}")
    return count


def load_mongodb(
    uri: str, docs: Iterable[dict[str, Any]], database: str = "sample_training"
) -> int:
    """Replace ``<database>.companies`` at ``uri`` with ``docs``; returns the count.

    ``_id`` becomes an ObjectId and ``created_at`` a date, as ``mongoimport`` makes of the sample
    data set's Extended JSON.
    """
    from bson import ObjectId
    from pymongo import ASCENDING, MongoClient

    client: Any = MongoClient(uri, serverSelectionTimeoutMS=5000)
    try:
        coll = client[database][TABLE]
        coll.drop()
        batch: list[dict[str, Any]] = []
        count = 0
        for seq, doc in enumerate(docs):
            item = {f: doc[f] for f in PLAIN_FIELDS}
            item.update(_id=ObjectId(doc["_id"]["$oid"]), seq=seq, created_at=_parse_date(doc))
            batch.append(item)
            if len(batch) >= BATCH:
                coll.insert_many(batch, ordered=True)
                count += len(batch)
                batch = []
        if batch:
            coll.insert_many(batch, ordered=True)
            count += len(batch)
        coll.create_index([("seq", ASCENDING)], unique=True)
    finally:
        client.close()
    return count
