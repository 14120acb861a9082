"""Deterministic companies, shaped like MongoDB's ``sample_training.companies``.

Only the fields the seed's ``CompaniesSchema`` returns are generated (the schema drops the rest).
Sizes follow the seed's traffic: 24 MB over 162 responses of 100 records is about 150 KB per
100 records, so a record serializes to about 1.5 KB on average. As in the real data set, most of
a record is its HTML ``overview``, whose length is drawn from a log-normal distribution (many
short ones, a long tail), so records vary in size as real ones do.

Everything comes from one ``random.Random(seed)``: the same ``count`` and ``seed`` give the same
documents, byte for byte, on every Python 3.11+.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from .schema import FIELDS

TARGET_RECORD_BYTES = 1480
"""Mean serialized size of one record: 24 MB / 162 responses / 100 records."""

_OVERVIEW_MEDIAN = 660
_OVERVIEW_SIGMA = 0.55
_OVERVIEW_MIN, _OVERVIEW_MAX = 120, 6000

# fmt: off
_SYLLABLES = (
    "ad", "al", "an", "ar", "bi", "bo", "ca", "cel", "co", "da", "de", "di", "do", "el", "en",
    "ex", "fi", "flo", "ga", "gen", "go", "ha", "in", "io", "ja", "ka", "ki", "la", "li", "lo",
    "ma", "me", "mi", "mo", "na", "ne", "no", "nu", "om", "pa", "pi", "po", "qua", "ra", "re",
    "ri", "ro", "sa", "se", "si", "so", "ta", "te", "ti", "to", "tra", "u", "va", "ve", "vi",
    "wa", "xo", "ya", "ze", "zi", "zo",
)
_SUFFIXES = ("", "", "", "ly", "ify", "io", "Labs", "Networks", "Media", "Systems", "Soft", "Hub")
_CATEGORIES = (
    "web", "software", "mobile", "enterprise", "advertising", "games_video", "ecommerce",
    "biotech", "consulting", "network_hosting", "search", "hardware", "public_relations",
    "social", "cleantech", "semiconductor", "security", "education", "finance", "other",
)
_WORDS = (
    "platform", "service", "users", "online", "social", "network", "content", "video", "mobile",
    "data", "search", "advertising", "company", "provides", "customers", "solutions", "software",
    "web", "based", "media", "business", "technology", "products", "market", "applications",
    "music", "photos", "sharing", "community", "developers", "enterprise", "management", "cloud",
    "analytics", "marketing", "devices", "open", "source", "real-time", "free", "premium", "site",
    "launched", "founded", "headquartered", "venture", "funding", "series", "investors", "team",
    "engineers", "built", "allows", "helps", "across", "millions", "worldwide", "leading",
    "innovative", "simple", "secure", "fast", "scalable", "personal", "local", "global",
    "consumers", "brands", "publishers", "partners", "tools", "information", "email", "games",
    "storage", "hosting", "commerce", "payments", "travel", "news", "reviews", "maps", "health",
    "education", "jobs", "events", "messaging", "search engine", "web browser", "the", "and",
    "of", "to", "a", "in", "for", "with", "on", "its", "their", "from", "by", "as", "is", "an",
)
# fmt: on
_CITIES_AREA = ("415", "650", "408", "212", "617", "206", "310", "512", "312", "303", "202")
_EPOCH_START = int(datetime(2007, 5, 1, tzinfo=UTC).timestamp())
_EPOCH_END = int(datetime(2013, 12, 31, tzinfo=UTC).timestamp())


def _name(rng: random.Random) -> str:
    core = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3)))
    suffix = rng.choice(_SUFFIXES)
    if suffix and suffix[0].isupper():
        return f"{core.capitalize()} {suffix}"
    return (core + suffix).capitalize()


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(8, 22))]
    return " ".join(words).capitalize() + "."


def _overview(rng: random.Random, name: str) -> str:
    target = math.exp(math.log(_OVERVIEW_MEDIAN) + _OVERVIEW_SIGMA * rng.gauss(0.0, 1.0))
    target = min(max(target, _OVERVIEW_MIN), _OVERVIEW_MAX)
    paragraphs: list[str] = []
    current: list[str] = [f"{name} is a {rng.choice(_WORDS)} {rng.choice(_WORDS)} company."]
    size = len(current[0]) + 7
    while size < target:
        sentence = _sentence(rng)
        current.append(sentence)
        size += len(sentence) + 1
        if len(current) >= rng.randint(3, 6):
            paragraphs.append("<p>" + " ".join(current) + "</p>")
            current = []
            size += 8
    if current:
        paragraphs.append("<p>" + " ".join(current) + "</p>")
    return "\n\n".join(paragraphs)


def _maybe(rng: random.Random, probability: float, value: Any) -> Any:
    return value if rng.random() < probability else None


def company(rng: random.Random, taken: set[str]) -> dict[str, Any]:
    """One company document in Extended JSON (relaxed) form, keys in the seed's order."""
    name = _name(rng)
    slug = name.lower().replace(" ", "-")
    permalink = slug
    n = 2
    while permalink in taken:
        permalink = f"{slug}-{n}"
        n += 1
    taken.add(permalink)
    host = permalink.replace("-", "")
    created = rng.randint(_EPOCH_START, _EPOCH_END)
    oid = f"{created:08x}{rng.getrandbits(64):016x}"
    founded_year = _maybe(rng, 0.85, rng.randint(1980, 2012))
    has_blog = rng.random() < 0.6
    doc: dict[str, Any] = {
        "_id": {"$oid": oid},
        "name": name,
        "permalink": permalink,
        "crunchbase_url": f"http://www.crunchbase.com/company/{permalink}",
        "homepage_url": f"http://www.{host}.com",
        "blog_url": f"http://blog.{host}.com/" if has_blog else "",
        "blog_feed_url": f"http://blog.{host}.com/feed/" if has_blog else "",
        "twitter_username": _maybe(rng, 0.6, host[:15]),
        "category_code": _maybe(rng, 0.9, rng.choice(_CATEGORIES)),
        "number_of_employees": _maybe(rng, 0.7, int(math.exp(rng.uniform(0.0, 9.0)))),
        "founded_year": founded_year,
        "founded_month": _maybe(rng, 0.6, rng.randint(1, 12)) if founded_year else None,
        "founded_day": _maybe(rng, 0.4, rng.randint(1, 28)) if founded_year else None,
        "deadpooled_year": _maybe(rng, 0.05, rng.randint(2001, 2013)),
        "tag_list": ", ".join(rng.choice(_WORDS[:60]) for _ in range(rng.randint(0, 8))),
        "alias_list": _maybe(rng, 0.15, f"{name} Inc"),
        "email_address": f"info@{host}.com" if rng.random() < 0.7 else "",
        "phone_number": (
            f"{rng.choice(_CITIES_AREA)}-{rng.randint(200, 999)}-{rng.randint(0, 9999):04d}"
            if rng.random() < 0.6
            else ""
        ),
        "description": _maybe(rng, 0.7, " ".join(rng.choice(_WORDS[:60]) for _ in range(4))),
        "created_at": {"$date": format_date(created)},
        "overview": _overview(rng, name),
    }
    assert tuple(doc) == FIELDS
    return doc


def format_date(epoch_seconds: int) -> str:
    """Extended JSON (relaxed) date string for whole UTC seconds: ``2007-05-25T06:51:27Z``."""
    return datetime.fromtimestamp(epoch_seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def companies(count: int, seed: int) -> Iterator[dict[str, Any]]:
    """``count`` deterministic company documents for ``seed``."""
    rng = random.Random(seed)
    taken: set[str] = set()
    for _ in range(count):
        yield company(rng, taken)


def dumps(doc: dict[str, Any]) -> str:
    """A document serialized as the API serves it (compact JSON)."""
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
