"""``python -m validator_node --host BIND --port PORT``: run the validator node."""

from __future__ import annotations

import argparse
import asyncio
import logging

from .server import Node, NodeConfig


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="validator_node", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    node = Node(NodeConfig.from_env())
    asyncio.run(node.run(args.host, args.port))


if __name__ == "__main__":
    main()
