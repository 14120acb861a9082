"""The plug-in shape holds: no stage module branches on a runtime's or workload's name or on a
runtime kind, and the package has no import cycle.

A runtime is one package under ``isobench/runtimes/``, a workload one module or package under
``isobench/workloads/``; only ``plugins.py`` (the registry) and ``config/`` (presets, suites,
user-facing defaults) name them. Checked with ``ast`` on comparisons and prefix tests, the
places where a name would decide behaviour.
"""

from __future__ import annotations

import ast
from pathlib import Path

from isobench import plugins

ROOT = Path(__file__).resolve().parent.parent / "isobench"
STAGES = ("analysis", "report", "run", "telemetry", "images", "load", "util", "fleet")
KINDS = {"process", "container", "vm"}


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if {"app", "agent_app", "burn_app"} & set(parts):
            continue  # code that runs inside the rootfs, not part of the tool
        out[".".join(parts)] = path
    return out


def _branch_constants(tree: ast.AST) -> set[tuple[str, str]]:
    """String constants a module branches on, as ``(how, value)``: compared (``==``, ``in`` a
    literal collection) or tested as a prefix/suffix (``name.startswith("docker")``)."""
    found: set[tuple[str, str]] = set()

    def consts(node: ast.AST) -> set[str]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return {node.value}
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            return {c for e in node.elts for c in consts(e)}
        return set()

    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for part in (node.left, *node.comparators):
                found |= {("==", c) for c in consts(part)}
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in ("startswith", "endswith")):
            for arg in node.args:
                found |= {(node.func.attr, c) for c in consts(arg)}
    return found


def _matches(how: str, constant: str, names: set[str]) -> bool:
    if how == "startswith":
        return bool(constant) and any(n.startswith(constant) for n in names)
    if how == "endswith":
        return bool(constant) and any(n.endswith(constant) for n in names)
    return constant in names


def test_no_stage_module_branches_on_a_plugin_name_or_kind() -> None:
    names = set(plugins.names("runtime")) | set(plugins.names("workload")) | KINDS
    found = []
    for module, path in _modules().items():
        if len(module.split(".")) < 2 or module.split(".")[1] not in STAGES:
            continue
        tree = ast.parse(path.read_text())
        hits = {c for how, c in _branch_constants(tree) if _matches(how, c, names)}
        found += [f"{module}: {sorted(hits)}"] if hits else []
    assert found == []


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """Modules imported at import time (top level, not inside functions)."""
    out = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module in known:
                out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names
                    if f"{node.module}.{a.name}" in known}
    out.discard(module)
    return out


def test_no_import_cycles() -> None:
    mods = _modules()
    graph = {m: _imports(m, p, set(mods)) for m, p in mods.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append([*stack[stack.index(dep):], dep] if dep in stack else [node, dep])
            elif dep not in state:
                visit(dep, [*stack, dep])
        state[node] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    # a package's __init__ re-exporting its own submodule is not a cycle of the design
    cycles = [c for c in cycles if not (len(c) == 3 and c[0] == c[2] and c[1].startswith(c[0]))]
    assert cycles == []
