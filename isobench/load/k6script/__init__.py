"""Bring your k6 script: run an unchanged k6 script on isobench's load engine.

:func:`translate` reads the script with a JavaScript parser (never regular expressions), takes
its ``options`` (vus, duration, iterations, stages, scenarios with their executors, thresholds,
tags, summaryTrendStats, userAgent) and its iteration functions (``default`` or a scenario's
``exec``), and returns the engine's scenario section (:class:`isobench.load.scenario.ScenarioSet`
mapping) with k6's metric names, checks and thresholds. URLs keep only their path: the scheme,
host and port (a literal, ``<your_ip>`` or ``__ENV.BASE_URL``) become the endpoint of the runtime
under test. What cannot run at the engine's speed without JavaScript (a request built from an
earlier response, ``__VU``/``__ITER``, ``SharedArray``, custom metrics, ``setup()``, websockets,
browser, ...) is refused with one line naming the construct and its ``line:column``.

Modules: :mod:`.parse` (esprima wrapper), :mod:`.consts` (constant evaluator),
:mod:`.iteration` (function → requests), :mod:`.checks` (check functions), :mod:`.options`
(options and k6's CLI precedence), :mod:`.errors`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from isobench.errors import ConfigError
from isobench.load.k6script.consts import Evaluator, to_string
from isobench.load.k6script.errors import RUN_K6, K6ScriptError, Node, refuse
from isobench.load.k6script.iteration import IterationTranslator
from isobench.load.k6script.options import OptionsReader, Overrides, parse_stage, seconds
from isobench.load.k6script.parse import Module, read_module
from isobench.load.scenario import ScenarioSet
from isobench.load.thresholds import parse_key

__all__ = ["K6ScriptError", "Overrides", "parse_stage", "translate", "translate_file"]

# tags k6 sets that the engine does not: a threshold filtered on one would observe nothing
_UNTAGGED = {"url", "expected_response", "status", "error", "error_code", "proto",
             "tls_version", "vu", "iter"}


def translate_file(path: str | Path, env: Mapping[str, str] | None = None,
                   overrides: Overrides | None = None) -> dict[str, Any]:
    """:func:`translate` of a script file; ConfigError if it cannot be read."""
    p = Path(path)
    try:
        source = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"k6 script {p} cannot be read ({exc.strerror or exc})",
                          fix="check the path given to --k6 / k6:") from None
    return translate(source, filename=p.name, env=env, overrides=overrides)


def translate(source: str, *, filename: str = "script.js",
              env: Mapping[str, str] | None = None,
              overrides: Overrides | None = None) -> dict[str, Any]:
    """The engine scenario section for a k6 script (validated); K6ScriptError if refused.

    Args:
        source: the script's text.
        filename: its name, for messages.
        env: ``__ENV`` (k6's ``-e KEY=VALUE``; isobench's ``--k6-env``).
        overrides: k6's CLI flags ``--vus/--duration/--iterations/--stage``.
    """
    mod = read_module(source, filename)
    base_env = dict(env or {})
    ev = Evaluator(mod, base_env)
    for hook in ("setup", "teardown"):
        _refuse_hook(mod, hook)
    opt_node = mod.exports.get("options")
    values = ev.eval(opt_node, {}, "option") if opt_node is not None else {}
    if not isinstance(values, dict):
        raise refuse(filename, opt_node, "options that are not an object")
    reader = OptionsReader(filename, values, opt_node)
    reader.check_keys()
    plan, shortcut = reader.scenarios(overrides or Overrides())
    scenarios: dict[str, dict[str, Any]] = {}
    origin: str | None = None
    for name, sc in plan.items():
        exec_name = str(sc.get("exec", "default"))
        fn = mod.function(exec_name)
        if fn is None:
            at = opt_node or {"loc": {"start": {"line": 1, "column": 0}}}
            decl = "export default function" if exec_name == "default" else \
                f"export function {exec_name}"
            raise refuse(filename, at, f"scenario {name!r} runs {exec_name}(), which the script "
                                       f"does not export", f"{decl} () {{...}}", verb="")
        scen_env = {**base_env, **{k: to_string(v) for k, v in (sc.get("env") or {}).items()}}
        sev = Evaluator(mod, scen_env) if sc.get("env") else ev
        tr = IterationTranslator(sev, user_agent=values.get("userAgent")).translate(fn)
        if origin is not None and tr.origin is not None and tr.origin != origin:
            raise refuse(filename, fn, f"scenario {name!r} targets a second server",
                         f"keep one server in the script, or {RUN_K6}")
        origin = origin or tr.origin
        out = reader.normalise(name, sc)
        if tr.timeouts and tr.timed < len(tr.requests):
            tr.timeouts.add(60.0)  # k6's default for the requests without one
        if len(tr.timeouts) > 1:
            raise refuse(filename, fn, f"requests with different timeouts in scenario {name!r}",
                         f"give them one timeout, or {RUN_K6}")
        if tr.timeouts:
            out["timeout"] = seconds(tr.timeouts.pop() * 1000.0)
        out["requests"] = tr.requests
        scenarios[name] = out
    result: dict[str, Any] = dict(scenarios["default"]) if shortcut else {"scenarios": scenarios}
    thresholds = values.get("thresholds")
    if thresholds:
        result["thresholds"] = _thresholds(mod, opt_node, thresholds, scenarios)
    if values.get("summaryTrendStats"):
        result["summaryTrendStats"] = list(values["summaryTrendStats"])
    try:
        ScenarioSet.parse(result)
    except ConfigError as exc:
        raise refuse(filename, opt_node, f"options the engine rejects: {exc.message}",
                     exc.fix or RUN_K6, verb="") from None
    return result


def _refuse_hook(mod: Module, hook: str) -> None:
    fn = mod.function(hook)
    if fn is None:
        return
    body = fn["body"]
    if body.get("type") == "BlockStatement" and not body["body"]:
        return
    raise refuse(mod.filename, fn, f"a {hook}() that does work",
                 f"the engine runs no JavaScript around the test: prepare the data in the "
                 f"workload (or drop {hook}()), or {RUN_K6}")


def _prop(node: Node | None, key: str) -> Node | None:
    if node is None or node.get("type") != "ObjectExpression":
        return None
    for p in node["properties"]:
        k = p.get("key") or {}
        if k.get("name") == key or k.get("value") == key:
            return p
    return None


def _thresholds(mod: Module, opt_node: Node | None, thresholds: Mapping[str, Any],
                scenarios: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Validated thresholds: known metrics, and tag filters that match something."""
    tnode = _prop(opt_node, "thresholds")
    tvalue = tnode["value"] if tnode is not None else None
    req_tags: list[dict[str, Any]] = []
    scen_tags: list[dict[str, Any]] = []
    check_names: set[str] = set()
    for sname, sc in scenarios.items():
        stags = {"scenario": sname, **sc.get("tags", {})}
        scen_tags.append(stags)
        for r in sc["requests"]:
            req_tags.append({**stags, "name": r.get("name") or f"{r['method']} {r['path']}",
                             "method": r["method"], **r.get("tags", {})})
            check_names.update(c["name"] for c in r.get("checks", []))
    out: dict[str, Any] = {}
    for key, items in thresholds.items():
        at = _prop(tvalue, key) or opt_node
        try:
            mk = parse_key(key)
        except ValueError as exc:
            raise refuse(mod.filename, at, f"the threshold {key!r} ({exc})",
                         f"use k6's built-in metrics, or {RUN_K6}") from None
        tags = dict(mk.tags)
        bad = sorted(set(tags) & _UNTAGGED)
        if bad:
            raise refuse(mod.filename, at, f"the threshold {key!r} filters on the tag "
                                           f"{bad[0]!r}, which the engine does not set",
                         f"drop the filter, or {RUN_K6}")
        want = {k: v for k, v in tags.items() if k != "check"}
        pool = scen_tags if mk.name in ("iterations", "iteration_duration",
                                        "dropped_iterations") else req_tags
        if want and not any(all(t.get(k) == v for k, v in want.items()) for t in pool):
            raise refuse(mod.filename, at, f"the threshold {key!r} matches no request",
                         "match a request's name tag (params.tags.name), method, group, "
                         "scenario or custom tag")
        if "check" in tags and tags["check"] not in check_names:
            raise refuse(mod.filename, at, f"the threshold {key!r} names no check of the "
                                           f"script", "use a check's name")
        lst = items if isinstance(items, list) else [items]
        out[key] = [_threshold_item(i) for i in lst]
    return out


def _threshold_item(item: Any) -> Any:
    if isinstance(item, dict) and "delayAbortEval" in item:
        return {**item, "delayAbortEval": seconds(item["delayAbortEval"])}
    return item
