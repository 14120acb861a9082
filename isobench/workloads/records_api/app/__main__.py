"""Command line: generate the companies and load them into a storage backend.

    python -m <package> generate --count 10000 --seed 1 [--out FILE]   # JSON lines (stdout)
    python -m <package> load-sqlite PATH [--count N --seed S]
    python -m <package> load-postgres postgresql://... [--count N --seed S]
    python -m <package> load-mongodb mongodb://... [--database sample_training]

``<package>`` is ``isobench.workloads.records_api.app`` on the host and ``records_app`` inside the
rootfs (run with ``PYTHONPATH=/opt/isobench/workload``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import generator, loaders

DEFAULT_COUNT = 10_000
DEFAULT_SEED = 1


def _parser() -> argparse.ArgumentParser:
    summary = (__doc__ or "").split("\n")[0]
    parser = argparse.ArgumentParser(prog="records-api-data", description=summary)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, target in (
        ("generate", None),
        ("load-sqlite", "path of the SQLite file to write"),
        ("load-postgres", "postgresql:// URL"),
        ("load-mongodb", "mongodb:// URI"),
    ):
        cmd = sub.add_parser(name)
        if target:
            cmd.add_argument("target", help=target)
        cmd.add_argument("--count", type=int, default=DEFAULT_COUNT)
        cmd.add_argument("--seed", type=int, default=DEFAULT_SEED)
        if name == "generate":
            cmd.add_argument("--out", help="write JSON lines here instead of stdout")
        if name == "load-mongodb":
            cmd.add_argument("--database", default="sample_training")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.count < 1:
        print("--count must be at least 1", file=sys.stderr)
        return 2
    docs = generator.companies(args.count, args.seed)
    if args.command == "generate":
        out = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout  # noqa: SIM115
        try:
            for doc in docs:
                out.write(generator.dumps(doc) + "\n")
        finally:
            if out is not sys.stdout:
                out.close()
        return 0
    if args.command == "load-sqlite":
        n = loaders.load_sqlite(args.target, docs)
    elif args.command == "load-postgres":
        n = loaders.load_postgres(args.target, docs)
    else:
        n = loaders.load_mongodb(args.target, docs, args.database)
    print(f"loaded {n} companies ({args.command[5:]})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
