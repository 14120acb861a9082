"""The response schema of ``GET /records``: the seed article's ``CompaniesSchema``.

The seed (FastAPI + motor, MongoDB ``sample_training.companies``) declares 20 optional fields
plus ``_id: {"$oid": str}`` and ``created_at: {"$date": str}``. Field names and order are the
seed's.
Pydantic v2 does not allow field names starting with an underscore, so ``_id``/``$oid``/``$date``
are aliases; FastAPI serializes a ``response_model`` by alias, so the wire form is the seed's.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ObjectIdModel(BaseModel):
    """Extended JSON object id: ``{"$oid": "<24 hex digits>"}``."""

    model_config = ConfigDict(populate_by_name=True)

    oid: str = Field(alias="$oid")


class DateModel(BaseModel):
    """Extended JSON (relaxed) date: ``{"$date": "2007-05-25T06:51:27Z"}``."""

    model_config = ConfigDict(populate_by_name=True)

    date: str = Field(alias="$date")


class CompaniesSchema(BaseModel):
    """One company, as the seed's ``/records`` returns it."""

    model_config = ConfigDict(populate_by_name=True)

    id: ObjectIdModel = Field(alias="_id")
    name: str | None = None
    permalink: str | None = None
    crunchbase_url: str | None = None
    homepage_url: str | None = None
    blog_url: str | None = None
    blog_feed_url: str | None = None
    twitter_username: str | None = None
    category_code: str | None = None
    number_of_employees: int | None = None
    founded_year: int | None = None
    founded_month: int | None = None
    founded_day: int | None = None
    deadpooled_year: int | None = None
    tag_list: str | None = None
    alias_list: str | None = None
    email_address: str | None = None
    phone_number: str | None = None
    description: str | None = None
    created_at: DateModel | None = None
    overview: str | None = None


FIELDS: tuple[str, ...] = (
    "_id",
    "name",
    "permalink",
    "crunchbase_url",
    "homepage_url",
    "blog_url",
    "blog_feed_url",
    "twitter_username",
    "category_code",
    "number_of_employees",
    "founded_year",
    "founded_month",
    "founded_day",
    "deadpooled_year",
    "tag_list",
    "alias_list",
    "email_address",
    "phone_number",
    "description",
    "created_at",
    "overview",
)
"""The wire field names, in the seed's order."""

INT_FIELDS: frozenset[str] = frozenset(
    {"number_of_employees", "founded_year", "founded_month", "founded_day", "deadpooled_year"}
)
"""Fields stored as integers; every other plain field is text."""

PLAIN_FIELDS: tuple[str, ...] = tuple(f for f in FIELDS if f not in {"_id", "created_at"})
"""Fields stored as-is in every backend (``_id`` and ``created_at`` have native types)."""
