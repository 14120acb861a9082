"""Reading a k6 script with a real JavaScript parser (esprima, ECMAScript 2017, module mode).

:func:`read_module` parses the source into plain-dict ESTree nodes (with ``loc`` and ``range``)
and inventories the module: imports (local name → module and imported name), top-level
bindings (``const``/``let``/``var`` → initialiser node, evaluated lazily and only if used),
top-level functions, exports (``default``, named scenario functions, ``options``, ``setup``,
``teardown``). Top-level statements that would run code in k6's init context (other than
``console.*``) are refused, since the engine runs no JavaScript.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import esprima

from isobench.load.k6script.errors import K6ScriptError, Node, refuse

FUNCTION_TYPES = ("FunctionDeclaration", "FunctionExpression", "ArrowFunctionExpression")


@dataclass
class Module:
    """A parsed k6 script."""

    filename: str
    source: str
    imports: dict[str, tuple[str, str, Node]] = field(default_factory=dict)
    bindings: dict[str, tuple[str, Node | None, Node]] = field(default_factory=dict)
    functions: dict[str, Node] = field(default_factory=dict)
    exports: dict[str, Node] = field(default_factory=dict)  # name -> node (function/value)

    def snippet(self, node: Node, limit: int = 60) -> str:
        """The source text of ``node`` on one line (cut at ``limit`` characters)."""
        rng = node.get("range")
        if not rng:
            return node.get("type", "?")
        text = " ".join(self.source[rng[0]:rng[1]].split())
        return text if len(text) <= limit else text[: limit - 1] + "…"

    def function(self, name: str) -> Node | None:
        """An exported function by name (``default`` for the default export)."""
        node = self.exports.get(name)
        if node is not None and node.get("type") == "Identifier":
            node = self.functions.get(node["name"]) or _init_function(self, node["name"])
        if node is not None and node.get("type") in FUNCTION_TYPES:
            return node
        return None


def _init_function(mod: Module, name: str) -> Node | None:
    b = mod.bindings.get(name)
    if b is not None and b[1] is not None and b[1].get("type") in FUNCTION_TYPES:
        return b[1]
    return None


def parse(source: str, filename: str) -> Node:
    """The ESTree ``Program`` of ``source``; a one-line K6ScriptError on a syntax error."""
    try:
        tree = esprima.parseModule(source, {"loc": True, "range": True})
    except esprima.Error as exc:
        line = int(getattr(exc, "lineNumber", 0) or 0)
        col = int(getattr(exc, "column", 0) or 0)
        desc = getattr(exc, "description", None) or str(exc)
        raise K6ScriptError(
            filename, line, col, f"cannot be parsed ({desc})",
            "isobench reads ECMAScript 2017 modules: write `a || b` for `a ?? b`, `a && a.b` for "
            "`a?.b`, Object.assign for `{...x}`; or run k6 itself", verb="") from None
    result: dict[str, Any] = tree.toDict()
    return result


def _declare(mod: Module, decl: Node, *, export: bool) -> None:
    for d in decl["declarations"]:
        target = d["id"]
        if target.get("type") != "Identifier":
            raise refuse(mod.filename, target, f"a top-level destructuring ({mod.snippet(d)})")
        name = target["name"]
        mod.bindings[name] = (decl["kind"], d.get("init"), d)
        init = d.get("init")
        if init is not None and init.get("type") in ("FunctionExpression",
                                                     "ArrowFunctionExpression"):
            mod.functions[name] = init
        if export:
            mod.exports[name] = init if init is not None else target


_HARMLESS_CALLS = ("console.log", "console.info", "console.warn", "console.error",
                   "console.debug")


def read_module(source: str, filename: str) -> Module:
    """Parse ``source`` and inventory its top level (see the module docstring)."""
    mod = Module(filename, source)
    for stmt in parse(source, filename)["body"]:
        kind = stmt["type"]
        if kind == "ImportDeclaration":
            module = stmt["source"]["value"]
            for spec in stmt["specifiers"]:
                imported = {"ImportDefaultSpecifier": "default",
                            "ImportNamespaceSpecifier": "*"}.get(spec["type"])
                if imported is None:
                    imported = spec["imported"]["name"]
                mod.imports[spec["local"]["name"]] = (module, imported, stmt)
        elif kind == "VariableDeclaration":
            _declare(mod, stmt, export=False)
        elif kind == "FunctionDeclaration":
            mod.functions[stmt["id"]["name"]] = stmt
        elif kind == "ExportNamedDeclaration":
            decl = stmt.get("declaration")
            if decl is None:
                for spec in stmt.get("specifiers") or []:
                    mod.exports[spec["exported"]["name"]] = spec["local"]
            elif decl["type"] == "FunctionDeclaration":
                mod.functions[decl["id"]["name"]] = decl
                mod.exports[decl["id"]["name"]] = decl
            elif decl["type"] == "VariableDeclaration":
                _declare(mod, decl, export=True)
            else:
                raise refuse(filename, decl, f"an exported {decl['type']}")
        elif kind == "ExportDefaultDeclaration":
            mod.exports["default"] = stmt["declaration"]
        elif kind == "EmptyStatement" or (kind == "ExpressionStatement" and (
                stmt.get("directive") or _is_harmless(mod, stmt["expression"]))):
            continue
        else:
            raise refuse(filename, stmt, f"init-context code ({mod.snippet(stmt)})",
                         "keep only imports, constants, functions and options at the top "
                         "level, or run k6 itself")
    return mod


def _is_harmless(mod: Module, expr: Node) -> bool:
    if expr.get("type") != "CallExpression":
        return False
    callee = mod.snippet(expr["callee"], limit=200)
    return callee in _HARMLESS_CALLS
