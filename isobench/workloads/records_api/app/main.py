"""The records API: the seed article's FastAPI ``/records`` app, with pluggable storage.

``GET /records?limit=100`` returns ``limit`` companies (1..1000, else 422) validated and serialized
through ``response_model=list[CompaniesSchema]`` as in the seed. Which records: a process-wide
call counter ``n`` rotates the start, ``start = (n * limit) mod N`` over the N stored companies,
and the read wraps around at the end; so consecutive calls walk the whole data set page by page
(every call does a real index range scan and reads ~150 KB of rows, nothing is served from an
application cache). ``offset=K`` pins the start (for tests and reproducible probes).

``GET /healthz`` answers 200 once the storage answers (and holds at least one company), 503 before.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import JSONResponse

from . import storage as storage_mod
from .schema import CompaniesSchema


class _State:
    """The storage backend, opened lazily so the server starts before the storage answers."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.storage: storage_mod.Storage | None = None
        self.total = 0
        self.calls = itertools.count()
        self.last_error = ""

    def ready(self) -> storage_mod.Storage:
        """The backend with a known, non-zero record count; raises when it does not answer."""
        if self.storage is not None and self.total > 0:
            return self.storage
        # one probe at a time; concurrent callers (readiness polls) fail fast instead of queueing
        if not self.lock.acquire(blocking=False):
            raise RuntimeError(self.last_error or "storage check in progress")
        try:
            if self.storage is not None and self.total > 0:
                return self.storage
            if self.storage is None:
                self.storage = storage_mod.from_env()
            try:
                total = self.storage.count()
            except Exception as exc:
                self.last_error = f"{self.storage.name} storage does not answer: {exc}"[:300]
                raise RuntimeError(self.last_error) from exc
            if total <= 0:
                self.last_error = f"{self.storage.name} storage holds no companies"
                raise RuntimeError(self.last_error)
            self.total = total
            return self.storage
        finally:
            self.lock.release()

    def close(self) -> None:
        with self.lock:
            if self.storage is not None:
                self.storage.close()
            self.storage = None
            self.total = 0


state = _State()


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    yield
    state.close()


app = FastAPI(title="isobench records-api", lifespan=lifespan)


@app.get("/healthz")
def healthz() -> JSONResponse:
    """200 with the backend name and record count once the storage answers, else 503."""
    try:
        backend = state.ready()
    except Exception as exc:
        return JSONResponse({"status": "unavailable", "error": str(exc)[:300]}, status_code=503)
    return JSONResponse({"status": "ok", "storage": backend.name, "records": state.total})


@app.get("/records", response_model=list[CompaniesSchema])
def get_records(
    limit: int = Query(100, ge=1, le=1000),
    offset: int | None = Query(None, ge=0),
) -> list[dict[str, Any]]:
    """``limit`` companies from a rotating start (see the module docstring)."""
    try:
        backend = state.ready()
    except Exception as exc:
        raise HTTPException(status_code=503, detail=f"storage unavailable: {exc}") from exc
    total = state.total
    start = (next(state.calls) * limit if offset is None else offset) % total
    docs = backend.fetch(start, limit)
    if len(docs) < limit and total > len(docs):
        docs += backend.fetch(0, min(limit, total) - len(docs))
    return docs
