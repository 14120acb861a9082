"""Building the engine's requests from k6 ``http.*`` calls: URL → path (the server's scheme,
host and port dropped: the runtime under test's endpoint replaces them), bodies (strings as
they are, objects form-encoded with sorted keys as k6/Go does), params (``headers``, ``tags``
with ``name``, ``timeout``, ``responseType``, ``redirects``).

One script drives one server: a request to a second origin is refused. An unset ``__ENV.X``
is accepted only as (part of) the origin, which is replaced anyway.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from isobench.load.k6script.consts import ENV_MARK, Evaluator, Undefined, to_string
from isobench.load.k6script.errors import RUN_K6, Node, refuse
from isobench.load.scenario import parse_duration

MAX_REQUESTS = 1000
_ORIGIN = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*")
_PARAMS = {"headers", "tags", "timeout", "responseType", "redirects"}


@dataclass
class Translated:
    """The requests of one iteration, the server origin they named and per-request timeouts."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    origin: str | None = None
    timeouts: set[float] = field(default_factory=set)
    timed: int = 0  # requests that set a timeout


class RequestBuilder:
    """Appends requests to ``self.out`` (the base of the iteration translator)."""

    def __init__(self, ev: Evaluator, user_agent: str | None = None) -> None:
        self.ev = ev
        self.mod = ev.mod
        self.out = Translated()
        self.user_agent = user_agent

    def _refuse(self, node: Node, what: str, fix: str = RUN_K6) -> Exception:
        return refuse(self.mod.filename, node, what, fix)

    def _request(self, node: Node, method: str, args: Sequence[Node | None],
                 local: dict[str, Any], group: str) -> int:
        url_node = args[0]
        assert url_node is not None
        url = self.ev.eval(url_node, local, "URL")
        path = self._path(url_node, to_string(url))
        req: dict[str, Any] = {"method": method, "path": path}
        headers: dict[str, str] = {}
        if self.user_agent:
            headers["User-Agent"] = self.user_agent
        body_node = args[1] if len(args) > 1 else None
        params_node = args[2] if len(args) > 2 else None
        if params_node is not None:
            self._params(params_node, local, req, headers, group)
        if body_node is not None:
            body = self.ev.eval(body_node, local, "request body")
            if isinstance(body, dict):
                flat = {}
                for k, v in body.items():
                    if isinstance(v, dict | list):
                        raise self._refuse(body_node, "a form body with nested values")
                    flat[k] = to_string(v)
                self._no_env(body_node, " ".join(flat.values()), "request body")
                req["body"] = urlencode(sorted(flat.items()))
                if not any(h.lower() == "content-type" for h in headers):
                    headers["Content-Type"] = "application/x-www-form-urlencoded"
            elif isinstance(body, str):
                self._no_env(body_node, body, "request body")
                req["body"] = body
            elif body is not None and not isinstance(body, Undefined):
                raise self._refuse(body_node, f"a request body of this kind "
                                              f"({self.mod.snippet(body_node, 40)})")
        if headers:
            req["headers"] = headers
        if group:
            req.setdefault("tags", {})["group"] = group
        if len(self.out.requests) >= MAX_REQUESTS:
            raise self._refuse(node, f"more than {MAX_REQUESTS} requests in one iteration")
        self.out.requests.append(req)
        return len(self.out.requests) - 1

    def _params(self, node: Node, local: dict[str, Any], req: dict[str, Any],
                headers: dict[str, str], group: str) -> None:
        params = self.ev.eval(node, local, "request parameter")
        if isinstance(params, Undefined) or params is None:
            return
        if not isinstance(params, dict):
            raise self._refuse(node, "request params that are not an object")
        unknown = sorted(set(params) - _PARAMS)
        if unknown:
            raise self._refuse(node, f"the request parameter {unknown[0]!r}",
                               f"use only {', '.join(sorted(_PARAMS))}, or {RUN_K6}")
        for k, v in (params.get("headers") or {}).items():
            value = to_string(v)
            self._no_env(node, value, "header")
            headers[k] = value
        tags = {k: to_string(v) for k, v in (params.get("tags") or {}).items()}
        if "name" in tags:
            req["name"] = tags.pop("name")
        if tags:
            req["tags"] = tags
        if "timeout" in params:
            t = params["timeout"]
            self.out.timeouts.add(t / 1000.0 if isinstance(t, int | float) else parse_duration(t))
            self.out.timed += 1
        if params.get("responseType") == "none":
            req["_discard"] = True

    def _path(self, node: Node, url: str) -> str:
        m = _ORIGIN.match(url)
        if url.startswith(ENV_MARK):
            end = url.index("\x00", len(ENV_MARK)) + 1
            origin, rest = url[:end], url[end:]
        elif m:
            origin, rest = m.group(0), url[m.end():]
        elif url.startswith("/"):
            origin, rest = None, url
        else:
            raise self._refuse(node, f"a URL without scheme and host ({_show(url)})")
        self._no_env(node, rest, "URL")
        rest = rest.split("#", 1)[0]
        if not rest.startswith("/"):
            rest = "/" + rest
        if any(c in rest for c in " \r\n\t"):
            raise self._refuse(node, f"a URL with spaces ({_show(url)})",
                               "URL-encode it (encodeURIComponent)")
        if origin is not None:
            if self.out.origin is None:
                self.out.origin = origin
            elif origin != self.out.origin:
                raise self._refuse(node, f"a request to a second server ({_show(origin)}; "
                                         f"the first was {_show(self.out.origin)})",
                                   f"isobench drives the one runtime under test: keep one "
                                   f"server in the script, or {RUN_K6}")
        return rest

    def _no_env(self, node: Node, value: str, role: str) -> None:
        if ENV_MARK not in value:
            return
        name = value.split(ENV_MARK, 1)[1].split("\x00", 1)[0]
        at = _find_env(node, name) or node
        raise refuse(self.mod.filename, at, f"__ENV.{name} (in a {role}) is not set",
                     f"pass --k6-env {name}=VALUE (k6_env in a benchfile), or give it a "
                     f"default: __ENV.{name} || '...'", verb="")


def _show(text: str) -> str:
    return re.sub("\x00env:([^\x00]*)\x00", r"${__ENV.\1}", text)


def _find_env(node: Any, name: str) -> Node | None:
    """The ``__ENV.name`` node inside ``node`` (for the error's line:column)."""
    if isinstance(node, dict):
        if node.get("type") == "MemberExpression" and node["object"].get("name") == "__ENV":
            prop = node["property"]
            if prop.get("name") == name or prop.get("value") == name:
                return node
        for v in node.values():
            found = _find_env(v, name)
            if found is not None:
                return found
    elif isinstance(node, list):
        for v in node:
            found = _find_env(v, name)
            if found is not None:
                return found
    return None


