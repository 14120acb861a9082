"""Build companies.db: 10,000 deterministic companies shaped like MongoDB's sample companies.

Each document serializes to about 1.5 KB (the article's traffic: ~150 KB per 100 records).
Usage: python make_db.py [PATH] [COUNT] [SEED]
"""

import json
import random
import sqlite3
import sys
from datetime import datetime, timezone

WORDS = ("platform service users online social network content video mobile data search "
         "advertising company provides customers solutions software web based media business "
         "technology products market applications music photos sharing community developers "
         "the and of to a in for with on its").split()


def company(rng, i):
    name = "".join(rng.choice("bcdfglmnprstvz") + rng.choice("aeiou") for _ in range(3)).title()
    slug = f"{name.lower()}-{i}"
    created = rng.randint(1178000000, 1388000000)
    length = min(max(rng.lognormvariate(6.5, 0.55), 120), 6000)
    overview = ""
    while len(overview) < length:
        overview += " ".join(rng.choice(WORDS) for _ in range(15)).capitalize() + ". "
    return {
        "_id": {"$oid": f"{created:08x}{rng.getrandbits(64):016x}"},
        "name": name, "permalink": slug,
        "crunchbase_url": f"http://www.crunchbase.com/company/{slug}",
        "homepage_url": f"http://www.{slug}.com", "blog_url": f"http://blog.{slug}.com/",
        "blog_feed_url": f"http://blog.{slug}.com/feed/", "twitter_username": name.lower(),
        "category_code": rng.choice(["web", "software", "mobile", "enterprise", "games_video"]),
        "number_of_employees": rng.randint(1, 5000), "founded_year": rng.randint(1980, 2012),
        "founded_month": rng.randint(1, 12), "founded_day": rng.randint(1, 28),
        "deadpooled_year": None, "tag_list": ", ".join(rng.sample(WORDS[:30], 5)),
        "alias_list": None, "email_address": f"info@{slug}.com",
        "phone_number": f"415-{rng.randint(200, 999)}-{rng.randint(0, 9999):04d}",
        "description": " ".join(rng.sample(WORDS[:30], 4)),
        "created_at": {"$date": datetime.fromtimestamp(created, timezone.utc)
                       .strftime("%Y-%m-%dT%H:%M:%SZ")},
        "overview": f"<p>{overview.strip()}</p>",
    }


def main(path="companies.db", count=10000, seed=1):
    rng = random.Random(int(seed))
    db = sqlite3.connect(path)
    db.execute("DROP TABLE IF EXISTS companies")
    db.execute("CREATE TABLE companies (id INTEGER PRIMARY KEY, doc TEXT NOT NULL)")
    db.executemany("INSERT INTO companies VALUES (?, ?)",
                   ((i, json.dumps(company(rng, i), separators=(",", ":")))
                    for i in range(int(count))))
    db.commit()
    db.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
