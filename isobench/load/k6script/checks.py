"""k6 ``check(res, {name: (r) => condition})`` → the engine's named checks.

Each entry becomes one named check (:class:`isobench.load.scenario.Checks` with ``name``) that
passes when all of its conditions hold. Conditions the engine evaluates exactly as k6 does::

    r.status === 200            (==, and 200 === r.status)
    r.status >= 200 && r.status < 300          (comparisons: a status range)
    r.status === 200 || r.status === 201       ([200, 201].includes(r.status))
    r.body.includes('text')     (r.body.indexOf('text') !== -1 / > -1 / >= 0)
    r.json('a.b') != null       (r.json().a.b != null; loose != so that null and absent match)
    r.timings.duration < 500    (<=; milliseconds)
    r.headers['Content-Type'] === 'application/json'   (canonical header name, as k6 has it)

joined with ``&&``. A request that got no response fails all its checks (as a k6 check that
throws). Anything else is refused with its line:column.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from isobench.load.k6script.consts import Evaluator, Undefined, to_string
from isobench.load.k6script.errors import RUN_K6, Node, refuse

_ALL_STATUSES = frozenset(range(100, 600))
_GJSON_PLAIN = re.compile(r"^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$")
_FIX = ("write the check as r.status === N, r.body.includes('...'), r.json('path') != null, "
        "r.timings.duration < N or r.headers['Name'] === '...' (joined by &&), or " + RUN_K6)


def canonical_header(name: str) -> str:
    """Go's canonical MIME header key (``content-type`` → ``Content-Type``), as k6 shows it."""
    return "-".join(p[:1].upper() + p[1:].lower() for p in name.split("-"))


class CheckTranslator:
    """Translates the check functions of one ``check()`` call."""

    def __init__(self, ev: Evaluator, local: Mapping[str, Any]) -> None:
        self.ev = ev
        self.mod = ev.mod
        self.local = local

    def _refuse(self, node: Node, what: str | None = None) -> Exception:
        return refuse(self.mod.filename, node,
                      what or f"a check condition the engine cannot evaluate "
                               f"({self.mod.snippet(node)})", _FIX)

    def checks(self, sets: Node) -> list[dict[str, Any]]:
        """The named checks of ``check()``'s second argument (an object literal)."""
        if sets.get("type") != "ObjectExpression":
            raise self._refuse(sets, f"a check() whose checks are not an object literal "
                                     f"({self.mod.snippet(sets)})")
        out = []
        for p in sets["properties"]:
            k = p["key"]
            if p.get("computed"):
                name = to_string(self.ev.eval(k, self.local, "check name"))
            else:
                name = k["name"] if k["type"] == "Identifier" else to_string(k.get("value"))
            out.append({"name": name, **self._function(p["value"])})
        return out

    def _function(self, fn: Node) -> dict[str, Any]:
        if fn.get("type") not in ("ArrowFunctionExpression", "FunctionExpression"):
            raise self._refuse(fn, f"a check that is not a function ({self.mod.snippet(fn)})")
        params = fn.get("params") or []
        if len(params) != 1 or params[0].get("type") != "Identifier":
            raise self._refuse(fn, f"a check function without one plain parameter "
                                   f"({self.mod.snippet(fn)})")
        body = fn["body"]
        if body.get("type") == "BlockStatement":
            stmts = body["body"]
            if len(stmts) != 1 or stmts[0]["type"] != "ReturnStatement" or not stmts[0].get(
                    "argument"):
                raise self._refuse(body, f"a check function body other than one return "
                                         f"({self.mod.snippet(body)})")
            body = stmts[0]["argument"]
        conds: dict[str, Any] = {}
        self._cond(body, params[0]["name"], conds)
        if "status" in conds:
            conds["status"] = sorted(conds["status"])
        return conds

    # -- conditions -------------------------------------------------------------------------------
    def _is(self, node: Node, r: str, *path: str) -> bool:
        """``node`` is ``r.path[0].path[1]...`` (non-computed, or a constant string key)."""
        for name in reversed(path):
            if node.get("type") != "MemberExpression":
                return False
            prop = node["property"]
            key = prop.get("value") if node.get("computed") else prop.get("name")
            if key != name:
                return False
            node = node["object"]
        return node.get("type") == "Identifier" and node["name"] == r

    def _const(self, node: Node) -> Any:
        return self.ev.eval(node, self.local, "check value")

    def _cond(self, node: Node, r: str, conds: dict[str, Any]) -> None:
        t = node.get("type")
        if t == "LogicalExpression" and node["operator"] == "&&":
            self._cond(node["left"], r, conds)
            self._cond(node["right"], r, conds)
            return
        if t == "LogicalExpression" and node["operator"] == "||":
            codes: set[int] = set()
            for side in (node["left"], node["right"]):
                sub: dict[str, Any] = {}
                self._cond(side, r, sub)
                if set(sub) != {"status"}:
                    raise self._refuse(node, f"an || of conditions other than statuses "
                                             f"({self.mod.snippet(node)})")
                codes |= sub["status"]
            self._status(node, codes, conds)
            return
        if t == "CallExpression" and node["callee"].get("type") == "MemberExpression":
            self._call(node, r, conds)
            return
        if t == "BinaryExpression":
            self._binary(node, r, conds)
            return
        raise self._refuse(node)

    def _status(self, node: Node, codes: set[int] | frozenset[int], conds: dict[str, Any]) -> None:
        prev = conds.get("status")
        conds["status"] = set(codes) if prev is None else prev & set(codes)
        if not conds["status"]:
            raise self._refuse(node, f"a status check no response can pass "
                                     f"({self.mod.snippet(node)})")

    def _set(self, node: Node, conds: dict[str, Any], key: str, value: Any) -> None:
        if key in conds and conds[key] != value:
            raise self._refuse(node, f"two {key} conditions in one check "
                                     f"({self.mod.snippet(node)})")
        conds[key] = value

    def _call(self, node: Node, r: str, conds: dict[str, Any]) -> None:
        callee, args = node["callee"], node["arguments"]
        method = callee["property"].get("name")
        if method == "includes" and self._is(callee["object"], r, "body") and len(args) == 1:
            self._set(node, conds, "body_contains", to_string(self._const(args[0])))
            return
        if method == "includes" and len(args) == 1 and self._is(args[0], r, "status"):
            values = self._const(callee["object"])
            if isinstance(values, list) and all(isinstance(v, int) for v in values):
                self._status(node, {int(v) for v in values}, conds)
                return
        raise self._refuse(node)

    def _binary(self, node: Node, r: str, conds: dict[str, Any]) -> None:
        op, left, right = node["operator"], node["left"], node["right"]
        flip = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}
        if not self._subject(left, r) and self._subject(right, r):
            left, right, op = right, left, flip.get(op, op)
        value = self._const(right)
        if self._is(left, r, "status") and isinstance(value, int | float):
            v = float(value)
            match = {"===": lambda s: s == v, "==": lambda s: s == v, "<": lambda s: s < v,
                     "<=": lambda s: s <= v, ">": lambda s: s > v, ">=": lambda s: s >= v}
            if op in match:
                self._status(node, {s for s in _ALL_STATUSES if match[op](s)}, conds)
                return
        if self._is(left, r, "timings", "duration") and op in ("<", "<=") and isinstance(
                value, int | float):
            self._set(node, conds, "max_duration", f"{float(value):g}ms")
            return
        if (left.get("type") == "CallExpression" and left["callee"].get("type")
                == "MemberExpression" and left["callee"]["property"].get("name") == "indexOf"
                and self._is(left["callee"]["object"], r, "body")
                and len(left["arguments"]) == 1
                and (op, value) in (("!==", -1), ("!=", -1), (">", -1), (">=", 0))):
            needle = to_string(self._const(left["arguments"][0]))
            self._set(node, conds, "body_contains", needle)
            return
        if op == "!=" and (value is None or isinstance(value, Undefined)):
            path = self._json_path(left, r)
            if path is not None:
                self._set(node, conds, "json_field", path)
                return
        if op in ("===", "==") and isinstance(value, str):
            header = self._header(left, r)
            if header is not None:
                if header != canonical_header(header):
                    raise self._refuse(left, f"a header check on {header!r}, which k6 never "
                                             f"finds (it names headers "
                                             f"{canonical_header(header)!r})")
                headers = dict(conds.get("headers") or {})
                if headers.get(header, value) != value:
                    raise self._refuse(node, f"two values for header {header}")
                headers[header] = value
                conds["headers"] = headers
                return
        raise self._refuse(node)

    def _subject(self, node: Node, r: str) -> bool:
        root = node
        while root.get("type") in ("MemberExpression", "CallExpression"):
            root = root["object"] if root["type"] == "MemberExpression" else root["callee"]
        return root.get("type") == "Identifier" and root["name"] == r

    def _header(self, node: Node, r: str) -> str | None:
        if node.get("type") != "MemberExpression" or not self._is(node["object"], r, "headers"):
            return None
        prop = node["property"]
        key = self._const(prop) if node.get("computed") else prop.get("name")
        return key if isinstance(key, str) else None

    def _json_path(self, node: Node, r: str) -> str | None:
        """``r.json('a.b')`` or ``r.json().a.b[0]`` → ``a.b`` / ``a.b.0``; None otherwise."""
        parts: list[str] = []
        while node.get("type") == "MemberExpression":
            prop = node["property"]
            key = self._const(prop) if node.get("computed") else prop.get("name")
            parts.append(to_string(key))
            node = node["object"]
        if node.get("type") != "CallExpression" or not self._is(node["callee"], r, "json"):
            return None
        args = node["arguments"]
        if args:
            if parts or len(args) != 1:
                return None
            path = to_string(self._const(args[0]))
        else:
            path = ".".join(reversed(parts))
        if not _GJSON_PLAIN.match(path):
            raise self._refuse(node, f"a JSON path the engine does not read ({path!r})")
        return path
