"""``isobench fleet report``: every host's comparisons side by side, and whether a runtime's gap
differs between hosts.

Each host's run directory is read exactly as ``isobench report`` reads one
(:func:`isobench.report.rundata.load_run`: the analysis recomputed from its trials, seeded), so a
host's column is that host's own primary comparison: ratio to the baseline, 95 % CI, verdict.

**Interaction (does the gap differ between hosts?)** For a runtime R and two hosts i, j with
ratios ``r_i``, ``r_j`` (R / baseline, primary metric) the estimate is the ratio of ratios
``r_i / r_j``. Method: on the log scale, from each host's own CI (hosts are independent runs):
``se_h = (ln hi_h − ln lo_h) / (2 · t(1 − α/2, df_h))`` with ``df_h`` = rounds − 1 (paired) or
``n_a + n_b − 2`` (unpaired), ``d = ln r_i − ln r_j``, ``se = √(se_i² + se_j²)``, Welch–
Satterthwaite degrees of freedom, CI ``d ± t · se``. A host CI that the bootstrap widened beyond
its t interval gives a larger ``se_h``, so the interaction CI errs on the wide side. The p-values
(difference, and two one-sided tests for "same within ±margin") are Holm-adjusted over every
(runtime, host pair) of the report; the CIs shown are unadjusted. A runtime that is emulated on
either host gets no interaction verdict.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text
from scipy import stats as sps

from isobench.analysis.verdicts import holm, short_verdict
from isobench.errors import IsobenchError
from isobench.fleet import layout
from isobench.fleet.layout import HostStatus
from isobench.report import fmt
from isobench.report.rundata import RunData, load_run

METHOD = ("ratio of the two hosts' ratios (runtime/baseline, primary metric); 95 % CI on the log "
          "scale from each host's own 95 % CI (se = half-width / t quantile of its rounds), "
          "combined as √(se₁² + se₂²) with Welch–Satterthwaite df; p-values Holm-adjusted over "
          "every runtime × host pair, CIs unadjusted")
STATE_STYLE = {"ok": "green", "failed": "red", "unreachable": "red", "missing": "yellow"}


@dataclass
class FleetHost:
    """One host: its outcome, its run (None unless complete and readable), its facts."""

    name: str
    status: HostStatus
    run: RunData | None = None
    facts: dict[str, str] = field(default_factory=dict)
    error: str | None = None


@dataclass
class Fleet:
    root: Path
    hosts: list[FleetHost]
    baseline: str | None
    runtimes: list[str]
    primary_label: str | None
    interactions: list[dict[str, Any]]
    margin: float


def host_facts(manifest: Mapping[str, Any], status: HostStatus) -> dict[str, str]:
    """CPU, cores, kernel, Docker/QEMU versions, KVM: the manifest's ``host`` and ``runtimes``
    facts first, the versions the playbook recorded on the host otherwise."""
    host = manifest.get("host") or {}
    rt_facts = [f for f in (manifest.get("runtimes") or {}).values() if isinstance(f, dict)]

    def from_runtimes(key: str) -> str | None:
        values = sorted({str(f[key]) for f in rt_facts if f.get(key)})
        return ", ".join(values) if values else None

    def recorded(tool: str) -> str:
        line = (status.versions or {}).get(tool, "").strip().splitlines()
        return line[0] if line else "not installed"

    accel = from_runtimes("accel")
    kvm = "/dev/kvm present" if host.get("kvm_device") else "no /dev/kvm"
    emulated = sorted(name for name, f in (manifest.get("runtimes") or {}).items()
                      if isinstance(f, dict) and f.get("emulated") is True)
    return {
        "hostname": str(host.get("hostname", "?")),
        "cpu": str(host.get("cpu_model", "?")),
        "cores": str(host.get("cpus", "?")),
        "kernel": str(host.get("kernel", "?")),
        "docker": from_runtimes("docker_server_version") or recorded("docker"),
        "qemu": from_runtimes("qemu_version") or recorded("qemu-system-x86_64"),
        "kvm": kvm + (f"; VM accel {accel}" if accel else "")
               + (f"; emulated: {', '.join(emulated)}" if emulated else ""),
    }


def _df(comp: Mapping[str, Any]) -> float:
    if comp.get("estimator") == "paired" and comp.get("n_pairs"):
        return max(float(comp["n_pairs"]) - 1, 1.0)
    n = comp.get("n") or [2, 2]
    return max(float(sum(n)) - 2, 1.0)


def _log_se(comp: Mapping[str, Any]) -> tuple[float, float] | None:
    """(se, df) on the log scale recovered from a comparison's 95 % CI, None if unusable."""
    ci, ratio = comp.get("ci"), comp.get("ratio")
    if not ci or not ratio or ratio <= 0 or ci[0] <= 0 or ci[1] <= 0:
        return None
    alpha = float(comp.get("alpha", 0.05))
    df = _df(comp)
    se = (math.log(ci[1]) - math.log(ci[0])) / (2 * float(sps.t.ppf(1 - alpha / 2, df)))
    return se, df


def interaction(ci: Mapping[str, Any], cj: Mapping[str, Any], *, margin: float,
                alpha: float = 0.05) -> dict[str, Any]:
    """Ratio of ratios ``ci.ratio / cj.ratio`` with its CIs and p-values (module docstring)."""
    out: dict[str, Any] = {"ratio": None, "ci": None, "ci90": None, "p": None, "p_tost": None,
                           "emulated": bool(ci.get("emulated") or cj.get("emulated"))}
    a, b = _log_se(ci), _log_se(cj)
    if a is None or b is None:
        return out
    (se_i, df_i), (se_j, df_j) = a, b
    d = math.log(ci["ratio"]) - math.log(cj["ratio"])
    se = math.hypot(se_i, se_j)
    if se <= 0:
        df = df_i + df_j
    else:
        df = se**4 / (se_i**4 / df_i + se_j**4 / df_j) if se_i + se_j > 0 else df_i + df_j
    q95, q90 = float(sps.t.ppf(1 - alpha / 2, df)), float(sps.t.ppf(1 - alpha, df))
    if se > 0:
        p = float(2 * sps.t.sf(abs(d) / se, df))
        p_lo = float(sps.t.sf((d - math.log1p(-margin)) / se, df))
        p_hi = float(sps.t.cdf((d - math.log1p(margin)) / se, df))
    else:
        p = 0.0 if d != 0 else 1.0
        p_lo = p_hi = 0.0 if math.log1p(-margin) < d < math.log1p(margin) else 1.0
    out.update(ratio=math.exp(d), ci=[math.exp(d - q95 * se), math.exp(d + q95 * se)],
               ci90=[math.exp(d - q90 * se), math.exp(d + q90 * se)], p=p,
               p_tost=max(p_lo, p_hi), se=se, df=df)
    return out


def decide_interactions(rows: Sequence[dict[str, Any]], *, alpha: float, margin: float) -> None:
    """Holm over the family of estimable, non-emulated rows; sets ``p_adjusted``,
    ``p_tost_adjusted`` and ``verdict`` (``differs``, ``same within ±m``, ``inconclusive``,
    ``emulated — not comparable``, ``too few data``) in place."""
    family = [r for r in rows if not r["emulated"] and r["p"] is not None]
    for r, p_adj, t_adj in zip(family, holm([r["p"] for r in family]),
                               holm([r["p_tost"] for r in family]), strict=True):
        r["p_adjusted"], r["p_tost_adjusted"] = p_adj, t_adj
    for r in rows:
        if r["emulated"]:
            r["verdict"] = "emulated \u2014 not comparable"
        elif r["p"] is None:
            r["verdict"] = "too few data"
        elif r["p_adjusted"] < alpha:
            r["verdict"] = "differs"
        elif r["p_tost_adjusted"] < alpha:
            r["verdict"] = f"same within \u00b1{margin * 100:g} %"
        else:
            r["verdict"] = "inconclusive"


def load_fleet(fleet_dir: Path) -> Fleet:
    """Read every host of ``fleet_dir`` (failed hosts keep their reason; a complete host whose
    run directory cannot be read says why) and compute the interactions.

    Raises:
        IsobenchError: ``fleet_dir`` is not a fleet directory.
    """
    if not (fleet_dir / "fleet.json").is_file():
        raise IsobenchError(f"{fleet_dir} is not a fleet directory (no fleet.json)",
                            fix="pass fleet-runs/<run>, as written by `isobench fleet run`")
    hosts: list[FleetHost] = []
    for name in layout.hosts_in(fleet_dir):
        status = layout.read_status(fleet_dir, name)
        host = FleetHost(name, status)
        if status.complete:
            try:
                host.run = load_run(fleet_dir / name)
                host.facts = host_facts(host.run.manifest, status)
            except (IsobenchError, OSError, ValueError) as exc:
                host.error = f"run directory unreadable: {exc}"
        hosts.append(host)
    runs = [h for h in hosts if h.run is not None]
    baseline = runs[0].run.analysis.baseline if runs and runs[0].run else None
    runtimes: list[str] = []
    for h in runs:
        assert h.run is not None
        runtimes += [rt for rt in h.run.analysis.runtimes if rt not in runtimes]
    label = None
    margin, alpha = 0.05, 0.05
    for h in runs:
        assert h.run is not None
        a = h.run.analysis
        margin, alpha = a.margin, a.alpha
        label = label or next((m["label"] for m in a.metrics if m.get("primary")), None)
    rows: list[dict[str, Any]] = []
    for rt in runtimes:
        if rt == baseline:
            continue
        for hi, hj in itertools.combinations(runs, 2):
            assert hi.run is not None and hj.run is not None
            ci = hi.run.analysis.primary_comparison(rt)
            cj = hj.run.analysis.primary_comparison(rt)
            if ci is None or cj is None:
                continue
            row = interaction(ci, cj, margin=margin, alpha=alpha)
            row.update(runtime=rt, hosts=[hi.name, hj.name], ratios=[ci["ratio"], cj["ratio"]])
            rows.append(row)
    decide_interactions(rows, alpha=alpha, margin=margin)
    return Fleet(fleet_dir, hosts, baseline, runtimes, label, rows, margin)


def comparison_cell(host: FleetHost, runtime: str) -> tuple[str, str]:
    """(ratio with CI, verdict) of ``runtime`` on ``host``."""
    if host.run is None:
        return "\u2013", host.error or host.status.reason or host.status.state
    a = host.run.analysis
    if runtime == a.baseline:
        return "baseline", ""
    comp = a.primary_comparison(runtime)
    if comp is None or comp.get("ratio") is None:
        return "\u2013", "no data"
    lo, hi = comp["ci"]
    return (f"\u00d7{fmt.ratio(comp['ratio'])} [{fmt.ratio(lo)}, {fmt.ratio(hi)}]",
            short_verdict(comp))


def interaction_cells(row: Mapping[str, Any]) -> tuple[str, str]:
    if row["ratio"] is None:
        return "\u2013", row["verdict"]
    lo, hi = row["ci"]
    return f"\u00d7{fmt.ratio(row['ratio'])} [{fmt.ratio(lo)}, {fmt.ratio(hi)}]", row["verdict"]


def print_statuses(console: Console, statuses: Sequence[HostStatus]) -> None:
    """One line per host: state and reason."""
    for s in statuses:
        style = STATE_STYLE.get(s.state, "")
        line = Text(f"{s.host}: ", style="bold")
        line.append(s.state, style=style)
        if s.reason:
            line.append(f" \u2014 {s.reason}")
        console.print(line, soft_wrap=True)


def print_fleet(console: Console, fleet: Fleet) -> None:
    """The hosts' outcomes and facts, the runtimes × hosts table, the interactions."""
    print_statuses(console, [h.status for h in fleet.hosts])
    runs = [h for h in fleet.hosts if h.run is not None]
    if not runs:
        console.print("no host has a readable run directory: nothing to compare")
        return
    facts = Table(title="hosts", show_lines=False)
    facts.add_column("fact")
    for h in runs:
        facts.add_column(h.name)
    for key in ("hostname", "cpu", "cores", "kernel", "docker", "qemu", "kvm"):
        facts.add_row(key, *[h.facts.get(key, "?") for h in runs])
    console.print(facts)
    title = f"{fleet.primary_label or 'primary metric'}: ratio to {fleet.baseline} [95 % CI]"
    table = Table(title=title, show_lines=True)
    table.add_column("runtime")
    for h in runs:
        table.add_column(h.name)
    for rt in fleet.runtimes:
        cells = [comparison_cell(h, rt) for h in runs]
        table.add_row(rt, *[f"{c}\n{v}" if v else c for c, v in cells])
    console.print(table)
    if fleet.interactions:
        inter = Table(title="does the gap differ between hosts? (ratio of ratios)",
                      show_lines=True)
        for col in ("runtime", "hosts", "ratios", "ratio of ratios [95 % CI]", "p (Holm)",
                    "verdict"):
            inter.add_column(col)
        for r in fleet.interactions:
            cell, verdict = interaction_cells(r)
            p = "\u2013" if r.get("p_adjusted") is None else f"{r['p_adjusted']:.3g}"
            inter.add_row(r["runtime"], " / ".join(r["hosts"]),
                          " / ".join(f"\u00d7{fmt.ratio(x)}" for x in r["ratios"]), cell, p,
                          verdict)
        console.print(inter)
        console.print(f"method: {METHOD}", markup=False)
    elif len(runs) < 2:
        console.print("one host with data: no comparison between hosts")
