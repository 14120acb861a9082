"""One k6 iteration function → the engine's request list (the fast path).

Supported inside the function (and inside ``group(name, fn)`` and top-level helper functions
it calls with constant arguments):

* ``http.get/head/post/put/patch/del/options/request(...)`` and ``http.batch([...])`` (array,
  ``[method, url, body, params]`` or ``{method, url, body, params}`` items, or an object of
  named requests), with constant URLs, bodies (strings, ``JSON.stringify(...)``, objects sent
  form-encoded as k6 does) and params (``headers``, ``tags`` (``name``), ``timeout``,
  ``responseType``, ``redirects``);
* ``sleep(n)`` and ``sleep(a + Math.random() * b)`` (after a request: that request's pause,
  fixed or uniform in [a, a + b]), ``check(res, {...})`` (see
  :mod:`.checks`), ``group(name, fn)`` (requests tagged ``group: ::name``), ``console.*``;
* ``const``/``let`` bindings of constants or responses, constant ``if`` tests, ``for`` loops
  with constant bounds and ``for (const x of CONSTANT_ARRAY)`` (unrolled, up to 1000 requests).

``http.batch`` runs its requests one after another on the VU's connection (k6 sends them in
parallel): the same requests and checks, a longer iteration. The engine does not follow
redirects (k6 follows up to 10). Anything else raises :class:`K6ScriptError` with line:column.
"""

from __future__ import annotations

import re
from typing import Any

from isobench.load.k6script.checks import CheckTranslator
from isobench.load.k6script.consts import (
    Evaluator,
    Response,
    Undefined,
    to_string,
    truthy,
)
from isobench.load.k6script.errors import RUN_K6, Node
from isobench.load.k6script.parse import FUNCTION_TYPES
from isobench.load.k6script.requests import MAX_REQUESTS, RequestBuilder, Translated

_METHODS = {"get": "GET", "head": "HEAD", "post": "POST", "put": "PUT", "patch": "PATCH",
            "del": "DELETE", "options": "OPTIONS"}
_NO_BODY = ("get", "head")


class IterationTranslator(RequestBuilder):
    """Translates one exported function of a module (``ev`` carries the module and __ENV)."""

    def __init__(self, ev: Evaluator, user_agent: str | None = None) -> None:
        super().__init__(ev, user_agent)
        self._depth = 0

    # -- entry -------------------------------------------------------------------------------------
    def translate(self, fn: Node) -> Translated:
        """The requests of ``fn`` (a function node)."""
        local: dict[str, Any] = {}
        for p in fn.get("params") or []:  # setup()'s data: undefined (a working setup() is
            if p.get("type") == "Identifier":  # refused before this)
                local[p["name"]] = Undefined()
        self._function_body(fn, local, "")
        if not self.out.requests:
            raise self._refuse(fn, "an iteration that sends no HTTP request",
                               "isobench measures HTTP load: the function must call http.*")
        for req in self.out.requests:
            req.pop("_discard", None)
        return self.out

    def _function_body(self, fn: Node, local: dict[str, Any], group: str) -> None:
        body = fn["body"]
        if body.get("type") == "BlockStatement":
            self._block(body["body"], local, group)
        else:
            self._expression(body, local, group)

    # -- statements --------------------------------------------------------------------------------
    def _block(self, stmts: list[Node], local: dict[str, Any], group: str) -> bool:
        """Translate statements; True when a ``return`` ended the function."""
        return any(self._statement(stmt, local, group) for stmt in stmts)

    def _statement(self, stmt: Node, local: dict[str, Any], group: str) -> bool:
        t = stmt["type"]
        if t == "ExpressionStatement":
            self._expression(stmt["expression"], local, group)
        elif t == "VariableDeclaration":
            for d in stmt["declarations"]:
                self._bind(d["id"], d.get("init"), local, group, stmt)
        elif t == "BlockStatement":
            return self._block(stmt["body"], dict(local), group)
        elif t == "IfStatement":
            test = self.ev.eval(stmt["test"], local, "branch condition")
            branch = stmt["consequent"] if truthy(test) else stmt.get("alternate")
            return branch is not None and self._statement(branch, dict(local), group)
        elif t in ("ForStatement", "ForOfStatement"):
            for scope in (self._for(stmt, local) if t == "ForStatement"
                          else self._for_of(stmt, local)):
                if self._statement(stmt["body"], scope, group):
                    return True
        elif t == "ReturnStatement":
            if stmt.get("argument") is not None:
                self.ev.eval(stmt["argument"], local, "return value")
            return True
        elif t in ("EmptyStatement", "FunctionDeclaration"):
            pass
        else:
            raise self._refuse(stmt, f"a {_describe(t)} ({self.mod.snippet(stmt)})")
        return False

    def _bind(self, target: Node, init: Node | None, local: dict[str, Any], group: str,
              stmt: Node) -> None:
        if init is not None and self._kind(init, local) == ("http", "batch") and target.get(
                "type") == "ArrayPattern":
            resp = self._expression(init, local, group)
            refs = resp.refs if isinstance(resp.refs, list) else []
            for i, el in enumerate(target["elements"]):
                if el is not None and el.get("type") == "Identifier" and i < len(refs):
                    local[el["name"]] = Response(refs[i], el)
            return
        if target.get("type") != "Identifier":
            raise self._refuse(target, f"a destructuring ({self.mod.snippet(stmt)})")
        if init is None:
            local[target["name"]] = Undefined()
        elif init.get("type") == "CallExpression" and self._kind(init, local) is not None:
            local[target["name"]] = self._expression(init, local, group)
        else:
            local[target["name"]] = self.ev.eval(init, local, "value")

    def _for(self, stmt: Node, local: dict[str, Any]) -> list[dict[str, Any]]:
        bad = self._refuse(stmt, f"a loop whose bounds are known only at run time "
                                 f"({self.mod.snippet(stmt, 40)})",
                           f"write `for (let i = 0; i < N; i++)` with a constant N, or {RUN_K6}")
        init, test, update = stmt.get("init"), stmt.get("test"), stmt.get("update")
        if not (init and init.get("type") == "VariableDeclaration"
                and len(init["declarations"]) == 1 and test and update):
            raise bad
        var = init["declarations"][0]["id"].get("name")
        i = self.ev.eval(init["declarations"][0]["init"], local, "loop bound")
        step = None
        if update["type"] == "UpdateExpression" and update["argument"].get("name") == var:
            step = 1 if update["operator"] == "++" else -1
        elif update["type"] == "AssignmentExpression" and update["left"].get("name") == var \
                and update["operator"] in ("+=", "-="):
            step = self.ev.eval(update["right"], local, "loop bound")
            step = step if update["operator"] == "+=" else -step
        if not var or not isinstance(i, int | float) or not isinstance(step, int | float) \
                or step == 0:
            raise bad
        scopes = []
        while True:
            scope = {**local, var: i}
            if not truthy(self.ev.eval(test, scope, "loop bound")):
                break
            scopes.append(scope)
            if len(scopes) > MAX_REQUESTS:
                raise bad
            i += step
        return scopes

    def _for_of(self, stmt: Node, local: dict[str, Any]) -> list[dict[str, Any]]:
        left = stmt["left"]
        if left.get("type") == "VariableDeclaration":
            left = left["declarations"][0]["id"]
        items = self.ev.eval(stmt["right"], local, "loop bound")
        if left.get("type") != "Identifier" or not isinstance(items, list):
            raise self._refuse(stmt, f"a loop over values known only at run time "
                                     f"({self.mod.snippet(stmt, 40)})")
        return [{**local, left["name"]: item} for item in items]

    # -- expressions -------------------------------------------------------------------------------
    def _kind(self, call: Node, local: dict[str, Any]) -> tuple[str, str] | None:
        """What a call calls: ("http", fn), ("k6", fn), ("fn", name), ("console", fn)."""
        if call.get("type") != "CallExpression":
            return None
        callee = call["callee"]
        if callee["type"] == "MemberExpression" and not callee.get("computed") \
                and callee["object"].get("type") == "Identifier":
            obj, prop = callee["object"]["name"], callee["property"]["name"]
            if obj == "console" and obj not in local:
                return ("console", prop)
            imp = self.mod.imports.get(obj)
            if imp and obj not in local and imp[1] in ("default", "*") and imp[0] in (
                    "k6/http", "k6"):
                return ("http" if imp[0] == "k6/http" else "k6", prop)
        if callee["type"] == "Identifier" and callee["name"] not in local:
            name = callee["name"]
            imp = self.mod.imports.get(name)
            if imp and imp[0] in ("k6/http", "k6"):
                return ("http" if imp[0] == "k6/http" else "k6", imp[1])
            if name in self.mod.functions:
                return ("fn", name)
        return None

    def _expression(self, expr: Node, local: dict[str, Any], group: str) -> Any:
        t = expr["type"]
        if t == "AssignmentExpression" and expr["operator"] == "=" and expr["left"].get(
                "type") == "Identifier" and expr["left"]["name"] in local:
            self._bind(expr["left"], expr["right"], local, group, expr)
            return None
        kind = self._kind(expr, local)
        if kind is None:
            if t in ("CallExpression", "NewExpression"):
                self.ev.eval(expr, local, "value")  # refuses, naming an import's module
            if t == "CallExpression":
                raise self._refuse(expr, f"a call to {self.mod.snippet(expr['callee'])}()")
            raise self._refuse(expr, f"a {_describe(t)} ({self.mod.snippet(expr)})")
        lib, name = kind
        args = expr["arguments"]
        if lib == "console":
            return None
        if lib == "http":
            return self._http(expr, name, args, local, group)
        if lib == "fn":
            return self._inline(expr, name, args, local, group)
        if name == "sleep" and len(args) == 1:
            self._sleep(expr, args[0], local)
            return None
        if name == "check" and len(args) == 2:
            self._check(expr, args, local, group)
            return None
        if name == "group" and len(args) == 2 and args[1].get("type") in FUNCTION_TYPES:
            title = to_string(self.ev.eval(args[0], local, "group name"))
            self._function_body(args[1], dict(local), f"{group}::{title}")
            return None
        raise self._refuse(expr, f"{self.mod.snippet(expr['callee'])}() with "
                                 f"{len(args)} argument(s)")

    def _inline(self, expr: Node, name: str, args: list[Node], local: dict[str, Any],
                group: str) -> None:
        fn = self.mod.functions[name]
        params = fn.get("params") or []
        if len(args) > len(params) or any(p.get("type") != "Identifier" for p in params):
            raise self._refuse(expr, f"a call to {name}() with these arguments")
        scope = {p["name"]: Undefined() for p in params}
        for p, a in zip(params, args, strict=False):
            scope[p["name"]] = self.ev.eval(a, local, "function argument")
        self._depth += 1
        if self._depth > 20:
            raise self._refuse(expr, f"recursion through {name}()")
        try:
            self._function_body(fn, scope, group)
        finally:
            self._depth -= 1
        return None

    def _sleep(self, expr: Node, arg: Node, local: dict[str, Any]) -> None:
        lo, hi = self._sleep_range(arg, local)
        if not self.out.requests:
            raise self._refuse(expr, "a sleep() before the iteration's first request",
                               f"move it after the first request, or {RUN_K6}")
        last = self.out.requests[-1]
        prev = last.get("sleep", 0.0)
        plo, phi = (prev, prev) if isinstance(prev, float) else prev
        if phi > plo and hi > lo:
            raise self._refuse(expr, "two random sleeps in a row (their sum is not uniform)",
                               f"use one sleep(a + Math.random() * b), or {RUN_K6}")
        lo, hi = lo + plo, hi + phi
        last["sleep"] = lo if lo == hi else [lo, hi]

    def _sleep_range(self, arg: Node, local: dict[str, Any]) -> tuple[float, float]:
        """``n`` → (n, n); ``a + Math.random() * b`` (any order) → (a, a + b)."""
        terms = [arg]
        if arg.get("type") == "BinaryExpression" and arg["operator"] == "+":
            terms = [arg["left"], arg["right"]]
        lo = hi = 0.0
        for term in terms:
            scale = self._random_scale(term, local)
            if scale is not None:
                if hi > lo:
                    raise self._refuse(arg, f"a sleep of two random terms "
                                            f"({self.mod.snippet(arg)})")
                hi += scale
                continue
            seconds = self.ev.eval(term, local, "sleep duration")
            if not isinstance(seconds, int | float) or isinstance(seconds, bool):
                raise self._refuse(arg, f"sleep({self.mod.snippet(arg)}) of a non-number")
            lo, hi = lo + seconds, hi + seconds
        if lo < 0 or hi < lo:
            raise self._refuse(arg, f"a negative sleep ({self.mod.snippet(arg)})")
        return float(lo), float(hi)

    def _random_scale(self, node: Node, local: dict[str, Any]) -> float | None:
        """``Math.random()`` → 1, ``Math.random() * k`` / ``k * Math.random()`` → k."""
        def is_random(n: Node) -> bool:
            return n.get("type") == "CallExpression" and not n["arguments"] and \
                self.mod.snippet(n["callee"]) == "Math.random" and "Math" not in local
        if is_random(node):
            return 1.0
        if node.get("type") == "BinaryExpression" and node["operator"] == "*":
            for a, b in ((node["left"], node["right"]), (node["right"], node["left"])):
                if is_random(a):
                    k = self.ev.eval(b, local, "sleep duration")
                    if isinstance(k, int | float) and not isinstance(k, bool) and k >= 0:
                        return float(k)
        return None

    def _check(self, expr: Node, args: list[Node], local: dict[str, Any], group: str) -> None:
        target = args[0]
        if target.get("type") == "CallExpression" and self._kind(target, local) == (
                "http", target["callee"].get("property", {}).get("name")):
            resp = self._http(target, target["callee"]["property"]["name"],
                              target["arguments"], local, group)
        else:
            resp = self._response(target, local)
        if not isinstance(resp.refs, int):
            raise self._refuse(target, f"a check on several responses at once "
                                       f"({self.mod.snippet(target)})",
                               f"check each response (responses[0], ...), or {RUN_K6}")
        req = self.out.requests[resp.refs]
        named = CheckTranslator(self.ev, local).checks(args[1])
        if req.get("_discard") and any(set(c) & {"body_contains", "json_field"} for c in named):
            raise self._refuse(args[1], "a body check on a response fetched with "
                                        "responseType: 'none' (k6 has no body to check)",
                               "drop the check or the responseType")
        req.setdefault("checks", []).extend(named)

    def _response(self, node: Node, local: dict[str, Any]) -> Response:
        bad = self._refuse(node, f"a check on something other than a response "
                                 f"({self.mod.snippet(node)})")
        if node.get("type") == "Identifier":
            v = local.get(node["name"])
            if isinstance(v, Response) and v.refs is not None:
                return v
            raise bad
        if node.get("type") == "MemberExpression" and node["object"].get("type") == "Identifier":
            v = local.get(node["object"]["name"])
            if isinstance(v, Response) and isinstance(v.refs, list | dict):
                key = self.ev.eval(node["property"], local, "response index") if node.get(
                    "computed") else node["property"]["name"]
                try:
                    return Response(v.refs[key if isinstance(v.refs, dict) else int(key)], node)
                except (KeyError, IndexError, ValueError, TypeError):
                    raise bad from None
        raise bad

    # -- requests ----------------------------------------------------------------------------------
    def _http(self, expr: Node, fn: str, args: list[Node], local: dict[str, Any],
              group: str) -> Response:
        if fn == "batch" and len(args) == 1:
            return self._batch(args[0], local, group)
        if fn == "request" and 2 <= len(args) <= 4:
            method = to_string(self.ev.eval(args[0], local, "request method")).upper()
            return Response(self._request(expr, method, args[1:], local, group), expr)
        if fn in _METHODS and 1 <= len(args) <= (2 if fn in _NO_BODY else 3):
            rest = [args[0], None, *args[1:]] if fn in _NO_BODY else args
            return Response(self._request(expr, _METHODS[fn], rest, local, group), expr)
        raise self._refuse(expr, f"http.{fn}() ({self.mod.snippet(expr, 40)})",
                           f"use http.get/post/put/patch/del/request/batch, or {RUN_K6}")

    def _batch(self, arg: Node, local: dict[str, Any], group: str) -> Response:
        if arg.get("type") == "ArrayExpression":
            refs = [self._batch_item(el, local, group) for el in arg["elements"]]
            return Response(refs, arg)
        if arg.get("type") == "ObjectExpression":
            named = {}
            for p in arg["properties"]:
                k = p["key"]
                key = k["name"] if k["type"] == "Identifier" and not p.get("computed") else \
                    to_string(self.ev.eval(k, local, "batch key"))
                named[key] = self._batch_item(p["value"], local, group)
            return Response(named, arg)
        raise self._refuse(arg, f"http.batch() of a value known only at run time "
                                f"({self.mod.snippet(arg, 40)})")

    def _batch_item(self, el: Node, local: dict[str, Any], group: str) -> int:
        if el.get("type") == "ArrayExpression" and el["elements"]:
            items = el["elements"]
            method = to_string(self.ev.eval(items[0], local, "request method")).upper()
            return self._request(el, method, items[1:], local, group)
        if el.get("type") == "ObjectExpression":
            parts: dict[str, Node] = {}
            for p in el["properties"]:
                k = p["key"]
                parts[k["name"] if k["type"] == "Identifier" else to_string(k.get("value"))] = \
                    p["value"]
            if "url" not in parts or set(parts) - {"method", "url", "body", "params"}:
                raise self._refuse(el, f"a batch request without url, or with other keys "
                                       f"({self.mod.snippet(el, 40)})")
            method = "GET" if "method" not in parts else to_string(
                self.ev.eval(parts["method"], local, "request method")).upper()
            return self._request(el, method, [parts["url"], parts.get("body"),
                                              parts.get("params")], local, group)
        return self._request(el, "GET", [el], local, group)

def _describe(node_type: str) -> str:
    words = re.sub(r"(?<!^)([A-Z])", r" \1", node_type).lower()
    return words.replace(" statement", " statement").replace(" expression", " expression")
