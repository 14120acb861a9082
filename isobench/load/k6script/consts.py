"""Evaluating the constant expressions of a k6 script.

Supported: literals, template strings, object and array literals, ``+`` (string concatenation
and numbers), ``- * / %`` on numbers, unary ``- + !``, ``|| && ??``-free logic (``a || b``,
``a && b``), ``c ? a : b`` with a constant test, ``__ENV.X`` / ``__ENV['X']`` (values from
``--k6-env``; an unset one is ``undefined``, so ``__ENV.X || 'default'`` works), member access
on constant objects, arrays and strings (``.length``), ``JSON.stringify(v[, null, indent])``,
``encodeURIComponent(s)``, ``String(v)``, ``Number(v)``, ``parseInt(s)``, and identifiers bound
to such values (top-level ``const``/``let``/``var``, evaluated on first use, or locals).

Anything else raises :class:`K6ScriptError` naming the construct and where it is: a value read
from an earlier response, ``__VU``/``__ITER``, a binding from a module the engine does not have
(``SharedArray``, custom metrics, jslib), or any other run-time computation.

An unset ``__ENV.X`` used *inside a string* becomes a marker (:data:`ENV_MARK`): at the start of
a URL it stands for the server (replaced by the runtime's endpoint anyway); anywhere else the
translator refuses it with a fix naming ``--k6-env X=...``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from isobench.load.k6script.errors import RUN_K6, Node, refuse
from isobench.load.k6script.parse import Module

ENV_MARK = "\x00env:"  # ENV_MARK + name + "\x00" marks an unset __ENV value inside a string


class Undefined:
    """JavaScript's ``undefined`` (``name`` set when it is an unset ``__ENV.NAME``)."""

    def __init__(self, env: str | None = None) -> None:
        self.env = env

    def __repr__(self) -> str:
        return "undefined"


UNDEFINED = Undefined()


@dataclass
class Response:
    """A variable holding the response(s) of request(s) at these indices (or names)."""

    refs: Any  # int, list[int] or dict[str, int]
    node: Node


def truthy(v: Any) -> bool:
    if isinstance(v, Undefined) or v is None or v is False:
        return False
    if isinstance(v, int | float) and not isinstance(v, bool):
        return v != 0 and not math.isnan(v)
    if isinstance(v, str):
        return v != ""
    return True


def num(v: float) -> int | float:
    """A JS number as Python: an integral value as int (so 1.0 prints as ``1``)."""
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
        return int(v)
    return v


def to_string(v: Any) -> str:
    """JavaScript's ``String(v)`` for constant values."""
    if isinstance(v, Undefined):
        return f"{ENV_MARK}{v.env}\x00" if v.env else "undefined"
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        return str(num(v)) if v.is_integer() else repr(v)
    if isinstance(v, list):
        return ",".join("" if x is None or isinstance(x, Undefined) else to_string(x) for x in v)
    if isinstance(v, dict):
        return "[object Object]"
    return str(v)


def _to_number(v: Any) -> float:
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    if isinstance(v, int | float):
        return float(v)
    if v is None:
        return 0.0
    if isinstance(v, str):
        try:
            return float(v.strip() or "0")
        except ValueError:
            return math.nan
    return math.nan


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items() if not isinstance(x, Undefined)}
    if isinstance(v, list):
        return [None if isinstance(x, Undefined) else _jsonable(x) for x in v]
    if isinstance(v, float):
        return num(v) if math.isfinite(v) else None
    return v


def json_stringify(v: Any, indent: Any = None) -> str:
    """``JSON.stringify`` of a constant (no spaces, or ``indent`` spaces per level)."""
    ind = int(indent) if isinstance(indent, int | float) and indent > 0 else None
    if isinstance(indent, str) and indent:
        ind = None
    sep = (",", ":") if ind is None else (",", ": ")
    return json.dumps(_jsonable(v), separators=sep, indent=ind, ensure_ascii=False)


class Evaluator:
    """Evaluates expressions of ``mod`` with ``env`` as ``__ENV``.

    ``what`` (in :meth:`eval`) names the role of the value in error messages ("URL",
    "request body", ...). Locals are a dict passed per call (the translator's scope).
    """

    def __init__(self, mod: Module, env: Mapping[str, str]) -> None:
        self.mod = mod
        self.env = dict(env)
        self._globals: dict[str, Any] = {}
        self._busy: set[str] = set()

    # -- errors -----------------------------------------------------------------------------------
    def _refuse(self, node: Node, what: str, role: str) -> Exception:
        return refuse(self.mod.filename, node, what, f"use a fixed {role}, or {RUN_K6}")

    def _name(self, node: Node, name: str, local: Mapping[str, Any], role: str) -> Any:
        if name in local:
            v = local[name]
        elif name in self.mod.bindings:
            v = self._global(name)
        elif name == "undefined":
            return UNDEFINED
        elif name in ("NaN", "Infinity"):
            return math.nan if name == "NaN" else math.inf
        elif name in ("__VU", "__ITER"):
            raise self._refuse(node, f"{_a(role)} that depends on {name}", role)
        elif name in self.mod.imports:
            module, imported, _ = self.mod.imports[name]
            label = name if imported in ("default", "*") else imported
            if node.get("type") in ("NewExpression", "CallExpression"):
                label = self.mod.snippet(node["callee"]) + "()"
                label = f"new {label}" if node["type"] == "NewExpression" else label
            raise refuse(self.mod.filename, node, f"{label} from '{module}'", _import_fix(module))
        elif name in self.mod.functions:
            raise self._refuse(node, f"{_a(role)} computed by {name}() at run time", role)
        else:
            raise self._refuse(node, f"an unknown name {name!r} in {_a(role)}", role)
        if isinstance(v, Response):
            raise self._refuse(node, f"{_a(role)} built from an earlier response "
                               f"({self.mod.snippet(node)})", role)
        return v

    def _response_chain(self, node: Node, local: Mapping[str, Any], role: str) -> None:
        """Refuse ``res.json().id`` & co. as a whole (named by the full chain)."""
        root = node
        while root.get("type") in ("MemberExpression", "CallExpression"):
            root = root["object"] if root["type"] == "MemberExpression" else root["callee"]
        if root.get("type") == "Identifier" and isinstance(local.get(root["name"]), Response):
            raise self._refuse(node, f"{_a(role)} built from an earlier response "
                               f"({self.mod.snippet(node)})", role)

    def _global(self, name: str) -> Any:
        if name not in self._globals:
            if name in self._busy:
                raise refuse(self.mod.filename, self.mod.bindings[name][2],
                             f"a constant {name!r} defined in terms of itself")
            self._busy.add(name)
            try:
                _kind, init, _decl = self.mod.bindings[name]
                self._globals[name] = UNDEFINED if init is None else self.eval(init, {}, "value")
            finally:
                self._busy.discard(name)
        return self._globals[name]

    # -- evaluation -------------------------------------------------------------------------------
    def eval(self, node: Node, local: Mapping[str, Any], role: str) -> Any:
        """The constant value of ``node``; K6ScriptError if it is not a constant."""
        return self._eval(node, local, role)

    def _eval(self, node: Node, local: Mapping[str, Any], role: str) -> Any:
        t = node["type"]
        ev: Callable[[Node], Any] = lambda n: self._eval(n, local, role)  # noqa: E731
        if t == "Literal":
            if node.get("regex"):
                raise self._refuse(node, f"a regular expression in {_a(role)}", role)
            return node.get("value")
        if t == "TemplateLiteral":
            out = []
            for i, q in enumerate(node["quasis"]):
                out.append(q["value"]["cooked"])
                if i < len(node["expressions"]):
                    out.append(to_string(ev(node["expressions"][i])))
            return "".join(out)
        if t == "Identifier":
            return self._name(node, node["name"], local, role)
        if t == "ObjectExpression":
            obj: dict[str, Any] = {}
            for p in node["properties"]:
                if p.get("type") != "Property" or p.get("kind") != "init" or p.get("method"):
                    raise self._refuse(p, f"an object member in {_a(role)}", role)
                k = p["key"]
                key = to_string(ev(k)) if p.get("computed") else (
                    k["name"] if k["type"] == "Identifier" else to_string(k.get("value")))
                obj[key] = ev(p["value"])
            return obj
        if t == "ArrayExpression":
            return [UNDEFINED if e is None else ev(e) for e in node["elements"]]
        if t == "UnaryExpression":
            v = ev(node["argument"])
            op = node["operator"]
            if op == "-":
                return num(-_to_number(v))
            if op == "+":
                return num(_to_number(v))
            if op == "!":
                return not truthy(v)
            if op == "typeof" and isinstance(v, str | int | float | bool):
                return {str: "string", bool: "boolean"}.get(type(v), "number")
        if t == "BinaryExpression":
            return self._binary(node, ev(node["left"]), ev(node["right"]), role)
        if t == "LogicalExpression":
            left = ev(node["left"])
            if node["operator"] == "||":
                return left if truthy(left) else ev(node["right"])
            if node["operator"] == "&&":
                return ev(node["right"]) if truthy(left) else left
        if t == "ConditionalExpression":
            return ev(node["consequent"]) if truthy(ev(node["test"])) else ev(node["alternate"])
        if t in ("NewExpression", "CallExpression"):
            root = node["callee"]
            while root.get("type") in ("MemberExpression", "CallExpression"):
                root = root["object"] if root["type"] == "MemberExpression" else root["callee"]
            if root.get("type") == "Identifier" and root["name"] in self.mod.imports \
                    and root["name"] not in local:
                if self.mod.imports[root["name"]][0] == "k6/http" and _reads_result(node):
                    raise self._refuse(node, f"{_a(role)} read from a response "
                                             f"({self.mod.snippet(node)})", role)
                self._name(node, root["name"], local, role)  # refuses, naming the module
        if t == "MemberExpression":
            self._response_chain(node, local, role)
            return self._member(node, local, role)
        if t == "CallExpression":
            self._response_chain(node, local, role)
            return self._call(node, local, role)
        raise self._refuse(node, f"{_a(role)} computed at run time ({self.mod.snippet(node)})",
                           role)

    def _binary(self, node: Node, a: Any, b: Any, role: str) -> Any:
        op = node["operator"]
        if op == "+":
            if isinstance(a, str | list | dict) or isinstance(b, str | list | dict) or (
                    isinstance(a, Undefined) and a.env) or (isinstance(b, Undefined) and b.env):
                return to_string(a) + to_string(b)
            return num(_to_number(a) + _to_number(b))
        x, y = _to_number(a), _to_number(b)
        arith: dict[str, Callable[[], float]] = {
            "-": lambda: x - y, "*": lambda: x * y,
            "/": lambda: x / y if y else (math.nan if x == 0 else math.copysign(math.inf, x)),
            "%": lambda: math.fmod(x, y) if y else math.nan}
        if op in arith:
            return num(arith[op]())
        if op in ("===", "!=="):
            same = type(a) is type(b) and a == b if not isinstance(a, int | float) else (
                isinstance(b, int | float) and not isinstance(b, bool) and x == y)
            return same if op == "===" else not same
        if op in ("<", "<=", ">", ">=") and isinstance(a, int | float) and isinstance(
                b, int | float):
            return {"<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[op]
        raise self._refuse(node, f"the operator {op!r} in {_a(role)}", role)

    def _member(self, node: Node, local: Mapping[str, Any], role: str) -> Any:
        obj_node, prop = node["object"], node["property"]
        if node.get("computed"):
            key: Any = self._eval(prop, local, role)
        else:
            key = prop["name"]
        if obj_node.get("type") == "Identifier" and obj_node["name"] == "__ENV" \
                and "__ENV" not in local:
            name = to_string(key)
            return self.env[name] if name in self.env else Undefined(name)
        obj = self._eval(obj_node, local, role)
        if isinstance(obj, dict):
            return obj.get(to_string(key), UNDEFINED)
        if isinstance(obj, list | str):
            if key == "length":
                return len(obj)
            if isinstance(key, int | float) and float(key).is_integer() and 0 <= key < len(obj):
                return obj[int(key)]
            return UNDEFINED
        raise self._refuse(node, f"{_a(role)} computed at run time ({self.mod.snippet(node)})",
                           role)

    def _call(self, node: Node, local: Mapping[str, Any], role: str) -> Any:
        callee = self.mod.snippet(node["callee"], limit=200)
        args = node["arguments"]
        if callee == "JSON.stringify" and 1 <= len(args) <= 3:
            vals = [self._eval(a, local, role) for a in args]
            if len(vals) > 1 and vals[1] is not None and not isinstance(vals[1], Undefined):
                raise self._refuse(node, f"JSON.stringify with a replacer in {_a(role)}", role)
            return json_stringify(vals[0], vals[2] if len(vals) > 2 else None)
        if callee in ("encodeURIComponent", "String", "Number", "parseInt") and len(args) == 1:
            v = self._eval(args[0], local, role)
            if callee == "encodeURIComponent":
                return quote(to_string(v), safe="-_.!~*'()")
            if callee == "String":
                return to_string(v)
            n = _to_number(v)
            return num(float(int(n)) if callee == "parseInt" and math.isfinite(n) else n)
        root = node["callee"]
        while root.get("type") == "MemberExpression":
            root = root["object"]
        if root.get("type") == "Identifier" and root["name"] in self.mod.bindings:
            self._name(root, root["name"], local, role)  # e.g. a custom metric: name its module
        raise self._refuse(node, f"{_a(role)} computed at run time ({self.mod.snippet(node)})",
                           role)


def _reads_result(node: Node) -> bool:
    """``http.get(...).json()`` & co.: a call chain that goes on past an http call."""
    inner = node["callee"]
    while inner.get("type") == "MemberExpression":
        inner = inner["object"]
        if inner.get("type") == "CallExpression":
            return True
    return False


def _a(role: str) -> str:
    """``role`` with its article: "a URL", "an option"."""
    return ("an " if role[:1] in "aeio" else "a ") + role


def _import_fix(module: str) -> str:
    if module in ("k6", "k6/http"):
        return f"call it as a statement of the iteration function, or {RUN_K6}"
    if module == "k6/data":
        return f"use constant data in the script, or {RUN_K6}"
    if module == "k6/metrics":
        return f"use k6's built-in metrics (http_req_duration, checks, ...), or {RUN_K6}"
    if module.startswith("k6/"):
        return f"isobench's engine sends plain HTTP/1.1 requests only: {RUN_K6}"
    return f"inline a constant value instead, or {RUN_K6}"
