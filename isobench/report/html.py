"""One self-contained report.html: inline CSS and inline SVG plots, no network needed."""

from __future__ import annotations

import html
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from isobench.analysis.stats import (
    change_text,
    interval,
    pct,
    runtime_sentence,
)
from isobench.analysis.verdicts import level
from isobench.report import fmt, plots
from isobench.report.cpu_split import html_cpu_split
from isobench.report.ladder import ladder_section
from isobench.report.rundata import RunData, image_size, load_run, network_paths_text
from isobench.results_model import Analysis

CSS = (Path(__file__).with_name("report.css")).read_text()
TABLE_METRICS = ("rps", "p50_ms", "p95_ms", "p99_ms", "block_lag_p95_ms", "startup_s",
                 "cpu_ms_per_req", "cpu_percent", "mem_peak_mib", "net_bytes_per_req")
KIND_CLASS = {"slower": "worse", "faster": "better", "equivalent": "ns", "inconclusive": "ns",
              "emulated": "emulated", "too_few": "ns"}
"""Verdict kind → the CSS class of a card."""


def e(x: Any) -> str:
    return html.escape(str(x))


def write_html(run_dir: Path, data: RunData | None = None) -> Path:
    """Write ``run_dir/report.html`` (from ``data`` when already loaded) and return its path."""
    data = data or load_run(run_dir)
    out = run_dir / "report.html"
    out.write_text(render(data))
    return out


def render(data: RunData) -> str:
    a, m = data.analysis, data.manifest
    config = m.get("config") or {}
    title = f"isobench \u2014 {config.get('workload', 'run')}"
    sizes = {rt: image_size(m, rt) for rt in a.runtimes}
    body = [
        _header(data, title),
        _banners(a),
        _section("Verdict", _headline(a) + _summary_cards(a) + _verdict_table(a, sizes)
                 + _warnings(a)),
        ladder_section(data),  # isobench explain: the waterfall, "" for other runs
        _section("Throughput, latency, startup", _grid([
            plots.metric_bars(a, "rps", "Throughput (median, 95 % CI)", "requests / s"),
            plots.latency_curves(data.trials, a),
            plots.startup_strip(data.trials, a),
            plots.size_bars(sizes, a.emulated),
        ])),
        _section("Resources per request", _grid([
            plots.metric_bars(a, "cpu_ms_per_req", "Host CPU per request (median, 95 % CI)",
                              "ms CPU / request"),
            plots.metric_bars(a, "mem_peak_mib", "Peak memory (median, 95 % CI)", "MiB"),
            plots.metric_bars(a, "net_bytes_per_req", "Network bytes per request", "bytes"),
            plots.change_chart(a),
        ])),
        _guest_section(data),
        _section("Where the CPU goes", html_cpu_split(data.trials, a.runtimes)),
        _section("Over time (from samples.jsonl)",
                 _grid([svg for _, svg in plots.time_series(data.samples, a)])),
        _idle(a),
        _claims(data),
        _section("Host, pinning and plan", _host(m) + _plan(m, a)),
        _section("Method", _method(a)),
    ]
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{e(title)}</title><style>{CSS}</style></head><body><main>"
        + "".join(body) + "</main></body></html>\n"
    )


def _section(title: str, inner: str) -> str:
    if not inner:
        return ""
    return f"<section><h2>{e(title)}</h2>{inner}</section>"


def _grid(svgs: Sequence[str | None]) -> str:
    figs = [f"<figure class=\"plot\">{svg}</figure>" for svg in svgs if svg]
    return f"<div class=\"grid\">{''.join(figs)}</div>" if figs else ""


def _header(data: RunData, title: str) -> str:
    m, a = data.manifest, data.analysis
    config = m.get("config") or {}
    host = m.get("host") or {}
    facts = [
        ("run", m.get("run_id", data.root.name)),
        ("created", _when(m.get("created_at"))),
        ("scenario", _scenario_text(config)),
        ("trials / runtime", max((v.get("n_trials", 0) for v in a.per_runtime.values()),
                                 default=0)),
        ("baseline", a.baseline),
        ("host", host.get("hostname", "")),
        ("network path", network_paths_text(m)),
    ]
    chips = "".join(f"<span class=\"fact\"><b>{e(k)}</b> {e(v)}</span>" for k, v in facts if v)
    return f"<header><h1>{e(title)}</h1><div class=\"facts\">{chips}</div></header>"


def _when(value: Any) -> str:
    """A unix time as local ISO text; other values as they are."""
    if isinstance(value, int | float):
        return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(value))
    return str(value or "")


def _scenario_text(config: Mapping[str, Any]) -> str:
    """``name: executor, N VUs, duration, METHOD path`` for the header."""
    sc = config.get("scenario")
    name = config.get("scenario_name", "")
    if not isinstance(sc, Mapping):
        return str(sc or name)
    parts = [str(sc.get("executor", ""))]
    if "vus" in sc:
        parts.append(f"{sc['vus']} VUs")
    if "rate" in sc:
        parts.append(f"{sc['rate']}/{sc.get('timeUnit', sc.get('time_unit', '1s'))}")
    if sc.get("duration"):
        parts.append(str(sc["duration"]))
    if sc.get("think_time"):
        parts.append(f"think {sc['think_time']}")
    reqs = sc.get("requests") or []
    if reqs:
        parts.append(f"{reqs[0].get('method', 'GET')} {reqs[0].get('path', '/')}")
    text = ", ".join(p for p in parts if p)
    return f"{name}: {text}" if name else text


def _banners(a: Analysis) -> str:
    if not a.emulated:
        return ""
    names = ", ".join(a.emulated)
    return (
        "<div class=\"banner emulated\"><b>Emulated runtime: " + e(names) + "</b> \u2014 ran "
        "without hardware acceleration (e.g. QEMU TCG). Its figures are shown for completeness "
        "but are <b>not comparable</b>: no verdict is claimed for it.</div>"
    )


def _summary_cards(a: Analysis) -> str:
    """One card per runtime: its primary comparison's change with the real (asymmetric) 95 % CI
    and the sentence that says the verdict."""
    cards = []
    primary = a.primary
    label = a.metric_label(primary)
    for rt in a.runtimes:
        if rt == a.baseline or primary is None:
            continue
        comp = a.primary_comparison(rt)
        kind = comp["verdict_kind"] if comp else "too_few"
        if kind == "emulated":
            big, ci = "no verdict", ""
        elif comp is None or comp.get("change_pct") is None:
            big, ci = "\u2013", ""
        else:
            big, ci = f"{pct(comp['change_pct'])} %", interval(*comp["ci_pct"])
        line = runtime_sentence(a.raw, rt) or ""
        cards.append(
            f"<div class=\"card {KIND_CLASS[kind]}\"><div class=\"rt\">{e(rt)}</div>"
            f"<div class=\"big\">{e(big)}</div><div class=\"sub\">"
            + (f"{e(ci)} {e(level(comp))} CI \u00b7 " if ci and comp else "")
            + f"{e(label)} vs {e(a.baseline)}</div><div class=\"line\">{e(line)}</div></div>"
        )
    return f"<div class=\"cards\">{''.join(cards)}</div>" if cards else ""


def _headline(a: Analysis) -> str:
    """What the cards below decide on: the primary metric and the equivalence margin."""
    label = next((str(m["label"]) for m in a.metrics if m.get("primary")), "")
    if not label:
        return ""
    margin = a.margin * 100
    return (f"<p class=\"note\">Each runtime's verdict on <b>{e(label)}</b>, the primary metric "
            f"(equivalence margin \u00b1{margin:g} %); the other metrics are secondary.</p>")


def _verdict_table(a: Analysis, sizes: Mapping[str, int | None]) -> str:
    metrics = {x["name"]: x for x in a.metrics}
    cols = [metrics[n] for n in TABLE_METRICS if n in metrics]
    head = "".join(f"<th>{e(c['label'])}<small>{e(c['unit'])}</small></th>" for c in cols)
    rows = []
    base_size = sizes.get(a.baseline)
    for rt in a.runtimes:
        info = a.per_runtime.get(rt, {})
        emu = info.get("emulated")
        name = e(rt) + (" <span class=\"tag emulated\">emulated</span>" if emu else "")
        n = f"<small>n={info.get('n_trials', 0)}"
        n += f", <span class=\"worse\">{info['n_failed']} failed</span>" if info.get("n_failed") \
            else ""
        cells = [f"<th class=\"rt\">{name}{n}</small></th>"]
        for c in cols:
            entry = info.get("metrics", {}).get(c["name"])
            if entry is None:
                cells.append("<td class=\"none\">\u2013</td>")
                continue
            comp = a.comparison(rt, c["name"])
            val = fmt.value(entry["median"])
            if rt == a.baseline:
                sub = "<small>baseline</small>"
                cls = "base"
            else:
                cls = fmt.status_of(comp)
                sub = f"<small>{e(fmt.ratio_cell(comp))}</small>"
            title = e(f"{comp['verdict']} ({change_text(comp)})") if comp and comp.get(
                "change_pct") is not None else e(comp["verdict"]) if comp else ""
            cells.append(f"<td class=\"{cls}\" title=\"{title}\">{val}{sub}</td>")
        size = sizes.get(rt)
        ratio = (f"<small>\u00d7{size / base_size:.2f}</small>"
                 if size and base_size and rt != a.baseline else "<small>&nbsp;</small>")
        cells.append(f"<td>{e(fmt.human_bytes(size))}{ratio}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    legend = (
        "<p class=\"legend\">Median of the trials; below it the ratio to "
        f"<b>{e(a.baseline)}</b> with its {(1 - a.alpha) * 100:g} % CI. "
        "<span class=\"better\">green</span> "
        "better, <span class=\"worse\">red</span> worse (primary: CI excludes 1; secondaries: "
        "also after Holm), <span class=\"ns\">grey</span> equivalent or inconclusive, "
        "<span class=\"emulated\">yellow</span> emulated \u2014 no verdict. Hover a cell for "
        "its verdict.</p>"
    )
    verdicts = "".join(
        f"<li class=\"{fmt.status_of(c)}\">{e(c['verdict'])}</li>" for c in a.comparisons
        if not c["emulated"]
    )
    listing = (f"<details><summary>All verdicts ({len(a.comparisons)})</summary>"
               f"<ul class=\"verdicts\">{verdicts}</ul></details>") if verdicts else ""
    return (f"<div class=\"scroll\"><table class=\"verdict\"><thead><tr><th>runtime</th>{head}"
            f"<th>image<small>size</small></th></tr></thead><tbody>{''.join(rows)}</tbody>"
            "</table></div>" + legend + listing)


def _warnings(a: Analysis) -> str:
    noise = a.noise
    parts = []
    for rt in a.runtimes:
        cv = noise.get(rt, {}).get("primary_cv")
        if cv is not None:
            parts.append(f"{e(rt)} <b>{cv * 100:.1f} %</b>")
    first: dict[str, Any] = next(iter(noise.values()), {})
    metric = first.get("primary_metric", "")
    out = ""
    if parts:
        out += (f"<p class=\"noise\">Host noise (coefficient of variation of {e(metric)}): "
                + ", ".join(parts) + "</p>")
    for w in a.warnings:
        out += f"<div class=\"banner warn\">{e(w)}</div>"
    return out


def _guest_section(data: RunData) -> str:
    svgs = plots.guest_vs_host(data.samples)
    if not svgs:
        return ""
    text = ("<p class=\"note\">A VM has two views of its CPU and memory: what the guest's own "
            "/proc shows (mpstat inside the VM) and what its QEMU process costs the host. isobench "
            "records both; comparisons use the host view, the same for every runtime.</p>")
    return _section("Inside the VM vs what the host pays", text + _grid([s for _, s in svgs]))


def _claims(data: RunData) -> str:
    """The article's figures beside isobench's, for a run of an article preset."""
    from isobench.analysis.claims import check_claims
    from isobench.config.presets import PRESETS

    preset = PRESETS.get(str((data.manifest.get("config") or {}).get("preset")))
    if preset is None:
        return ""
    sizes = {rt: size for rt in preset.sides.values()
             if (size := image_size(data.manifest, rt)) is not None}
    emulated = {rt: True for rt in data.analysis.emulated}
    checks = check_claims(preset, data.trials, sizes, emulated)

    def val(v: float | None, unit: str) -> str:
        if v is None:
            return "\u2013"
        return f"{v / 1e9:.2f} GB" if unit == "bytes" else f"{v:,.3g} {unit}"

    rows = "".join(
        f"<tr><td>{e(c.label)}</td><td>{e(val(c.article.get('vm'), c.unit))}</td>"
        f"<td>{e(val(c.article.get('container'), c.unit))}</td>"
        f"<td>{e(val(c.measured.get('vm'), c.unit))}</td>"
        f"<td>{e(val(c.measured.get('container'), c.unit))}</td><td>{e(c.verdict)}</td></tr>"
        for c in checks
    )
    sides = ", ".join(f"{side} = {rt}" for side, rt in preset.sides.items())
    table = (
        "<div class=\"scroll\"><table class=\"verdicts\"><thead><tr><th>claim</th>"
        "<th>article VM</th><th>article container</th><th>isobench VM</th>"
        f"<th>isobench container</th><th>verdict</th></tr></thead><tbody>{rows}</tbody></table>"
        "</div>"
        f"<p class=\"note\">isobench sides: {e(sides)}. {e(preset.note)}</p>"
    )
    return _section(f"The article's claims ({preset.name}: {preset.title})", table)


def _idle(a: Analysis) -> str:
    idle = a.idle_overhead
    if idle is None:
        return ""
    return _section("Idle overhead (runtime up, no load)", _grid([
        plots.metric_bars(idle, "idle_cpu_percent", "Idle CPU (median, 95 % CI)", "% of a CPU"),
        plots.metric_bars(idle, "mem_peak_mib", "Idle memory (median, 95 % CI)", "MiB"),
    ]))


def _kv_table(items: Mapping[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{e(k)}</th><td>{e(v if not isinstance(v, dict | list) else json.dumps(v))}"
        "</td></tr>" for k, v in items.items()
    )
    return f"<table class=\"kv\">{rows}</table>"


def _host(m: Mapping[str, Any]) -> str:
    blocks = []
    for key, title in (("host", "Host"), ("resources", "Resources (same for every runtime)"),
                       ("pinning", "Pinning"), ("config", "Configuration")):
        if m.get(key):
            blocks.append(f"<div><h3>{title}</h3>{_kv_table(m[key])}</div>")
    runtimes = m.get("runtimes") or {}
    if runtimes:
        rows = "".join(
            f"<tr><th>{e(rt)}</th><td>{e(', '.join(f'{k}={v}' for k, v in f.items()))}</td></tr>"
            for rt, f in runtimes.items() if isinstance(f, dict)
        )
        blocks.append(f"<div><h3>Runtimes</h3><table class=\"kv\">{rows}</table></div>")
    return f"<div class=\"cols\">{''.join(blocks)}</div>"


def _plan(m: Mapping[str, Any], a: Analysis) -> str:
    plan = m.get("plan") or {}
    order = plan.get("order") or []
    if not order:
        return ""
    col = plots.colors(a.runtimes, a.emulated)
    chips = "".join(
        f"<span class=\"chip\" style=\"border-color:{col.get(str(o.get('runtime')), '#999')}\" "
        f"title=\"position {e(o.get('position', i))}, round {e(o.get('round', ''))}\">"
        f"{e(o.get('runtime'))}#{e(o.get('trial', ''))}</span>"
        for i, o in enumerate(order) if isinstance(o, dict)
    )
    return (f"<h3>Plan order (interleaved, seed {e(plan.get('seed', '?'))})</h3>"
            f"<div class=\"plan\">{chips}</div>")


def _method(a: Analysis) -> str:
    method = a.method
    keys = ("ci", "ratio", "verdicts", "multiple_comparisons", "noise")
    rows = {k: method[k] for k in keys if k in method}
    return _kv_table(rows)
