"""Storage backends of the records API, chosen by environment variables.

``RECORDS_STORAGE`` picks the backend: ``sqlite`` (default), ``postgres`` or ``mongodb``. When it is
unset, ``MONGODB_URI`` selects MongoDB and ``DATABASE_URL`` PostgreSQL, as in the seed app.

- sqlite: the file ``RECORDS_SQLITE_PATH`` (default ``<workload dir>/data/records.db``),
  generated at image build time, opened read-only and immutable (the rootfs is read-only in
  every runtime).
- postgres: ``DATABASE_URL`` (``postgresql://...``), psycopg 3.
- mongodb: ``MONGODB_URI``, database ``MONGODB_DB`` (default ``sample_training``), collection
  ``companies`` (the seed's), pymongo. Data loaded by our loader has ``seq``; MongoDB's own sample
  data set (no ``seq``) is read with ``sort(_id).skip(start).limit(limit)`` instead.

Every backend holds the same table/collection: one row per company, keyed by ``seq`` (0..N-1),
the plain fields as columns, ``_id`` as an object id (text in SQL), ``created_at`` as a native date
(text in SQLite). A request reads ``limit`` rows from ``seq >= start`` in ``seq`` order (an
index range scan), wrapping around at the end, and turns them into the seed's documents.

The app's handler is synchronous, so FastAPI runs it in its thread pool (as motor, the seed's
driver, runs pymongo calls in a thread pool); each pool thread keeps its own SQL connection.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from .schema import PLAIN_FIELDS

TABLE = "companies"
DEFAULT_SQLITE_PATH = Path(__file__).resolve().parent.parent / "data" / "records.db"
SELECT_COLUMNS = ("oid", *PLAIN_FIELDS, "created_at")


class Storage(Protocol):
    """What the app needs from a backend."""

    name: str

    def count(self) -> int:
        """Number of companies; raises when the storage does not answer."""

    def fetch(self, start: int, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` documents with ``seq >= start``, in ``seq`` order."""

    def close(self) -> None:
        """Release connections."""


def _date_text(value: Any) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def row_to_doc(row: Sequence[Any]) -> dict[str, Any]:
    """A ``SELECT_COLUMNS`` row → the seed's document (``_id.$oid``, ``created_at.$date``)."""
    doc: dict[str, Any] = {"_id": {"$oid": str(row[0])}}
    doc.update(zip(PLAIN_FIELDS, row[1:-1], strict=True))
    created = row[-1]
    doc["created_at"] = None if created is None else {"$date": _date_text(created)}
    return doc


class _PerThread:
    """One DB-API connection per thread, opened on first use."""

    def __init__(self, connect: Any) -> None:
        self._connect = connect
        self._local = threading.local()
        self._all: list[Any] = []
        self._lock = threading.Lock()

    def get(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def drop(self) -> None:
        """Forget this thread's connection (after an error), closing it."""
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with self._lock:
                if conn in self._all:
                    self._all.remove(conn)
            with contextlib.suppress(Exception):
                conn.close()

    def close_all(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            with contextlib.suppress(Exception):
                conn.close()


class SqliteStorage:
    """The embedded SQLite file, read-only."""

    name = "sqlite"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        uri = f"file:{self.path}?mode=ro&immutable=1"
        self._sql = (
            f"SELECT {', '.join(SELECT_COLUMNS)} FROM {TABLE} WHERE seq >= ? ORDER BY seq LIMIT ?"
        )
        self._conns = _PerThread(lambda: sqlite3.connect(uri, uri=True, check_same_thread=False))

    def count(self) -> int:
        if not self.path.is_file():
            raise FileNotFoundError(f"SQLite data file {self.path} does not exist")
        (n,) = self._conns.get().execute(f"SELECT count(*) FROM {TABLE}").fetchone()
        return int(n)

    def fetch(self, start: int, limit: int) -> list[dict[str, Any]]:
        rows = self._conns.get().execute(self._sql, (start, limit)).fetchall()
        return [row_to_doc(r) for r in rows]

    def close(self) -> None:
        self._conns.close_all()


class PostgresStorage:
    """PostgreSQL through psycopg 3, one autocommit connection per thread."""

    name = "postgres"

    def __init__(self, url: str) -> None:
        import psycopg

        self.url = url
        self._psycopg = psycopg
        self._sql = (
            f"SELECT {', '.join(SELECT_COLUMNS)} FROM {TABLE} WHERE seq >= %s ORDER BY seq LIMIT %s"
        )
        self._conns = _PerThread(lambda: psycopg.connect(url, autocommit=True, connect_timeout=2))

    def _run(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return list(self._conns.get().execute(sql, tuple(params)).fetchall())
        except self._psycopg.OperationalError:
            self._conns.drop()
            raise

    def count(self) -> int:
        return int(self._run(f"SELECT count(*) FROM {TABLE}")[0][0])

    def fetch(self, start: int, limit: int) -> list[dict[str, Any]]:
        return [row_to_doc(r) for r in self._run(self._sql, (start, limit))]

    def close(self) -> None:
        self._conns.close_all()


class MongoStorage:
    """MongoDB through pymongo (thread-safe client with its own pool)."""

    name = "mongodb"

    def __init__(self, uri: str, database: str = "sample_training") -> None:
        from pymongo import MongoClient

        self._client: Any = MongoClient(uri, serverSelectionTimeoutMS=1000, tz_aware=True)
        self._coll = self._client[database][TABLE]
        self._projection = {f: 1 for f in (*PLAIN_FIELDS, "created_at")}
        self._has_seq: bool | None = None

    def count(self) -> int:
        n = int(self._coll.estimated_document_count())
        if self._has_seq is None and n > 0:
            self._has_seq = self._coll.find_one({"seq": {"$exists": True}}, {"_id": 1}) is not None
        return n

    def fetch(self, start: int, limit: int) -> list[dict[str, Any]]:
        if self._has_seq is False:  # the real sample data set (no ``seq``): skip/limit by _id
            cursor = self._coll.find({}, self._projection).sort("_id", 1).skip(start).limit(limit)
        else:
            cursor = (
                self._coll.find({"seq": {"$gte": start}}, self._projection)
                .sort("seq", 1)
                .limit(limit)
            )
        out = []
        for d in cursor:
            row = (d["_id"], *(d.get(f) for f in PLAIN_FIELDS), d.get("created_at"))
            out.append(row_to_doc(row))
        return out

    def close(self) -> None:
        self._client.close()


def from_env(env: dict[str, str] | None = None) -> Storage:
    """The backend the environment asks for (see the module docstring)."""
    env = dict(os.environ if env is None else env)
    kind = env.get("RECORDS_STORAGE", "").strip().lower()
    if not kind:
        if env.get("MONGODB_URI"):
            kind = "mongodb"
        elif env.get("DATABASE_URL"):
            kind = "postgres"
        else:
            kind = "sqlite"
    if kind == "sqlite":
        return SqliteStorage(env.get("RECORDS_SQLITE_PATH") or DEFAULT_SQLITE_PATH)
    if kind == "postgres":
        url = env.get("DATABASE_URL", "")
        if not url:
            raise ValueError("RECORDS_STORAGE=postgres needs DATABASE_URL=postgresql://...")
        return PostgresStorage(url)
    if kind == "mongodb":
        uri = env.get("MONGODB_URI", "")
        if not uri:
            raise ValueError("RECORDS_STORAGE=mongodb needs MONGODB_URI=mongodb://...")
        return MongoStorage(uri, env.get("MONGODB_DB") or "sample_training")
    raise ValueError(f"unknown RECORDS_STORAGE {kind!r}: use sqlite, postgres or mongodb")
