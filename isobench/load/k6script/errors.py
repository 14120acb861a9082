"""The one error a k6 script can raise: :class:`K6ScriptError`, a one-line :class:`ConfigError`
naming the construct, its ``line:column`` in the script, and a fix.

Message shape (columns are 1-based, as editors show them)::

    k6 script script.js line 12:5: a URL built from an earlier response (res.json().id)
    cannot run on isobench's engine (fix: use a fixed URL, or run k6 itself)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from isobench.errors import ConfigError

Node = Mapping[str, Any]

RUN_K6 = "run k6 itself"


def where(node: Node | None) -> tuple[int, int]:
    """(line, 1-based column) of an ESTree node with ``loc``; (0, 0) when unknown."""
    loc = (node or {}).get("loc") or {}
    start = loc.get("start") or {}
    return int(start.get("line", 0)), int(start.get("column", -1)) + 1


class K6ScriptError(ConfigError):
    """A k6 script (or its options) that isobench's engine cannot run as written."""

    def __init__(self, filename: str, line: int, column: int, what: str, fix: str,
                 *, verb: str = "cannot run on isobench's engine") -> None:
        self.filename = filename
        self.line = line
        self.column = column
        what = " ".join(what.split())  # one line, whatever the source looked like
        super().__init__(f"k6 script {filename} line {line}:{column}: {what} {verb}".rstrip(),
                         fix=fix)


def refuse(filename: str, node: Node | None, what: str, fix: str = RUN_K6, *,
           verb: str = "cannot run on isobench's engine") -> K6ScriptError:
    """The error for ``what`` at ``node`` (raise it)."""
    line, col = where(node)
    return K6ScriptError(filename, line, col, what, fix, verb=verb)
