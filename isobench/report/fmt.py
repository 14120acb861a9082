"""Formatting figures for people: values with units, ratios with CIs, bytes."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from isobench.analysis.stats import MINUS, pct


def human_bytes(n: float | None) -> str:
    if n is None:
        return "\u2013"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def value(x: float | None, unit: str = "") -> str:
    """Three significant figures, thousands separated, with the unit."""
    if x is None or not math.isfinite(x):
        return "\u2013"
    ax = abs(x)
    if ax >= 1000:
        text = f"{x:,.0f}"
    elif ax >= 100:
        text = f"{x:.0f}"
    elif ax >= 10:
        text = f"{x:.1f}"
    elif ax >= 1:
        text = f"{x:.2f}"
    else:
        text = f"{x:.3f}"
    text = text.replace("-", MINUS)
    return f"{text} {unit}".strip()


def ratio(x: float) -> str:
    """A ratio with 3 significant figures: 0.912, 1.11, 10.6."""
    return f"{x:.3f}" if x < 1 else f"{x:.2f}" if x < 10 else f"{x:.1f}"


def ratio_cell(comp: Mapping[str, Any] | None) -> str:
    """``×0.91 [0.89, 0.94]`` for a comparison dict, ``–`` when there is none."""
    if comp is None or comp.get("ratio") is None:
        return "\u2013"
    lo, hi = comp["ci"]
    return f"\u00d7{ratio(comp['ratio'])} [{ratio(lo)}, {ratio(hi)}]"


def change_cell(comp: Mapping[str, Any] | None) -> str:
    """``−8.8 % [−11.2, −6.3]``."""
    if comp is None or comp.get("change_pct") is None:
        return "\u2013"
    lo, hi = comp["ci_pct"]
    return f"{pct(comp['change_pct'])} % [{pct(lo)}, {pct(hi)}]"


def status_of(comp: Mapping[str, Any] | None) -> str:
    """``better``/``worse``/``ns``/``emulated``/``none`` — drives colours."""
    if comp is None:
        return "none"
    if comp.get("emulated"):
        return "emulated"
    if comp.get("significant"):
        return str(comp.get("direction", "ns"))
    return "ns"
