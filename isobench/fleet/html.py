"""The fleet's ``report.html``: self-contained (the run report's stylesheet inlined), the same
content as the terminal: hosts' outcomes, facts, the runtimes × hosts table, the interactions,
and a link to each host's own report."""

from __future__ import annotations

import html
import time
from pathlib import Path

from isobench.fleet.report import (
    METHOD,
    Fleet,
    comparison_cell,
    interaction_cells,
)
from isobench.report import fmt
from isobench.report.html import CSS

STATE_CLASS = {"ok": "better", "failed": "worse", "unreachable": "worse", "missing": "ns"}


def e(x: object) -> str:
    return html.escape(str(x))


def _table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def render(fleet: Fleet) -> str:
    """The page (escaped everywhere; no script, no external resource)."""
    parts = [f"<h1>isobench fleet: {e(fleet.root.name)}</h1>",
             f"<p>{len(fleet.hosts)} host(s); written {e(time.strftime('%Y-%m-%d %H:%M:%S'))}"
             "</p>"]
    status_rows = []
    for h in fleet.hosts:
        s = h.status
        link = (f"<a href=\"{e(h.name)}/report.html\">{e(h.name)}</a>"
                if (fleet.root / h.name / "report.html").is_file() else e(h.name))
        status_rows.append([link, f"<span class=\"{STATE_CLASS.get(s.state, '')}\">"
                            f"{e(s.state)}</span>", e(h.error or s.reason)])
    parts.append("<h2>Hosts</h2>" + _table(["host", "state", "reason"], status_rows))
    runs = [h for h in fleet.hosts if h.run is not None]
    if runs:
        keys = ("hostname", "cpu", "cores", "kernel", "docker", "qemu", "kvm")
        parts.append("<h2>Host facts</h2>" + _table(
            ["fact", *[e(h.name) for h in runs]],
            [[e(k), *[e(h.facts.get(k, "?")) for h in runs]] for k in keys]))
        title = f"{fleet.primary_label or 'primary metric'}: ratio to {fleet.baseline} [95 % CI]"
        rows = []
        for rt in fleet.runtimes:
            cells = [comparison_cell(h, rt) for h in runs]
            rows.append([e(rt), *[f"{e(c)}<br><small>{e(v)}</small>" for c, v in cells]])
        parts.append(f"<h2>{e(title)}</h2>" + _table(["runtime", *[e(h.name) for h in runs]],
                                                       rows))
    if fleet.interactions:
        rows = []
        for r in fleet.interactions:
            cell, verdict = interaction_cells(r)
            p = "\u2013" if r.get("p_adjusted") is None else f"{r['p_adjusted']:.3g}"
            rows.append([e(r["runtime"]), e(" / ".join(r["hosts"])),
                         e(" / ".join(f"\u00d7{fmt.ratio(x)}" for x in r["ratios"])),
                         e(cell), e(p), e(verdict)])
        parts.append("<h2>Does the gap differ between hosts?</h2>" + _table(
            ["runtime", "hosts", "ratios", "ratio of ratios [95 % CI]", "p (Holm)", "verdict"],
            rows) + f"<p><small>method: {e(METHOD)}</small></p>")
    return ("<!doctype html><html><head><meta charset=\"utf-8\">"
            f"<title>isobench fleet {e(fleet.root.name)}</title><style>{CSS}</style></head>"
            f"<body><main>{''.join(parts)}</main></body></html>")


def write_html(fleet: Fleet, path: Path) -> Path:
    """Write :func:`render` to ``path`` atomically; return it."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(render(fleet))
    tmp.replace(path)
    return path
