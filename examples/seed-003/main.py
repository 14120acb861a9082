"""The first article's /records API (FastAPI + MongoDB sample companies), adapted to SQLite.

As in the article: one FastAPI app, ``GET /records`` returns 100 companies validated through
``CompaniesSchema``, a new database connection per request, the same first 100 documents every
time (MongoDB's ``find(limit=100)``). The documents are stored as Extended JSON text in
``companies.db`` (built by ``make_db.py``); set ``DATABASE_PATH`` to use another file.
"""

import json
import os
import sqlite3
from typing import Any, List, Optional, Union

from fastapi import Depends, FastAPI, HTTPException, status
from pydantic import BaseModel, Field

app = FastAPI()
DATABASE_PATH = os.getenv("DATABASE_PATH", "companies.db")


class _Id(BaseModel):
    oid: str = Field(..., alias="$oid")


class CreatedAt(BaseModel):
    date: str = Field(..., alias="$date")


class CompaniesSchema(BaseModel):
    id: _Id = Field(..., alias="_id")
    name: Optional[str] = None
    permalink: Optional[str] = None
    crunchbase_url: Optional[str] = None
    homepage_url: Optional[str] = None
    blog_url: Optional[str] = None
    blog_feed_url: Optional[str] = None
    twitter_username: Optional[str] = None
    category_code: Optional[str] = None
    number_of_employees: Optional[int] = None
    founded_year: Optional[int] = None
    founded_month: Optional[int] = None
    founded_day: Optional[int] = None
    deadpooled_year: Optional[int] = None
    tag_list: Optional[str] = None
    alias_list: Optional[str] = None
    email_address: Optional[str] = None
    phone_number: Optional[str] = None
    description: Optional[str] = None
    created_at: Union[CreatedAt, Any] = None
    overview: Optional[str] = None


def get_db():
    db = sqlite3.connect(f"file:{DATABASE_PATH}?mode=ro", uri=True)
    try:
        yield db
    finally:
        db.close()


@app.get("/records", response_model=List[CompaniesSchema])
def get_records(db: sqlite3.Connection = Depends(get_db)):
    try:
        rows = db.execute("SELECT doc FROM companies ORDER BY id LIMIT 100").fetchall()
    except sqlite3.Error as e:
        print(e)
        raise HTTPException(
            status_code=status.HTTP_500_INTERNAL_SERVER_ERROR, detail="Something went wrong"
        ) from e
    return [json.loads(doc) for (doc,) in rows]
