"""What isobench's own telemetry costs a benchmark's figure, sampler by sampler.

Each round runs one native trial of every ``--only`` micro benchmark once per configuration
of the telemetry: every sampler (what ``isobench run`` does by default), none (what
``isobench suite micro`` does by default: isobench's process only waits for the client), and
each ``--samplers`` one alone. The
configurations' order rotates from round to round, so the host's drift falls on all alike.
Printed per figure: each configuration ÷ none, the geometric mean of the paired ratios with its
95 % Student-t interval (below 1: that telemetry lowers the figure). The trials are the suite's
quick settings (``benchmarks/micro_byhand.py``'s ``suite_trial``), so a sampler's cost per poll
weighs as in ``isobench suite micro --quick``.

    flock /tmp/isobench-heavy.lock .venv/bin/python benchmarks/observer_effect.py \\
        --only postgres,mariadb --rounds 12

With ``--runtimes native,docker-bridge`` every configuration runs on each runtime (through
``isobench run``, so both configurations take the same command) and it also prints what the
telemetry does to the *comparison*: per round the ratio runtime ÷ native with every sampler,
divided by the same ratio with none. 1 within its interval: sampling costs both runtimes alike
and ``isobench run``'s ratios are unbiased by it; otherwise that is the bias it adds.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from micro_byhand import agreement, suite_trial

ALL = "all samplers"
NONE = "none"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="postgres,mariadb", help="micro benchmarks")
    parser.add_argument("--samplers", default="cpu,memory,network",
                        help="samplers also tried one at a time (default cpu,memory,network)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--pause", type=float, default=2.0, help="idle seconds before a trial")
    parser.add_argument("--runtimes", default="native",
                        help="runtimes, native first (default native; more: also the bias the "
                             "telemetry adds to each runtime ÷ native)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/isobench-observer"))
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    runtimes = [r for r in args.runtimes.split(",") if r]
    if runtimes[0] != "native":
        parser.error("--runtimes must start with native")
    configs: dict[str, list[str] | None] = {ALL: None, NONE: []}
    if len(runtimes) == 1:
        configs.update({name: [name] for name in args.samplers.split(",") if name})
    names = list(configs)
    sides = [(runtime, config) for runtime in runtimes for config in names]
    figures: dict[str, dict[str, list[float]]] = {}  # figure → side → per round
    for r in range(args.rounds):
        order = sides[r % len(sides):] + sides[:r % len(sides)]
        for bench in [b for b in args.only.split(",") if b]:
            mine: set[str] = set()
            for runtime, config in order:
                time.sleep(args.pause)
                side = label(runtime, config, runtimes)
                out = args.out / f"round-{r + 1}" / bench / side.replace(" ", "-")
                values = suite_trial(bench, out, samplers=configs[config], runtime=runtime,
                                     through_run=len(runtimes) > 1)["values"]
                for name, value in values.items():
                    figures.setdefault(name, {}).setdefault(side, []).append(float(value))
                mine |= set(values)
            print(f"round {r + 1} {bench}: " + "; ".join(
                f"{name} " + ", ".join(f"{side} {value[-1]:,.4g}" for side, value in by.items())
                for name, by in figures.items() if name in mine), flush=True)
        (args.out / "observer.json").write_text(json.dumps(figures, indent=1))
    for runtime in runtimes:
        print(f"\n{runtime}\n{'figure':28} "
              + " ".join(f"{c + ' ÷ none':>28}" for c in names if c != NONE))
        for name, by in figures.items():
            none = by[label(runtime, NONE, runtimes)]
            print(f"{name:28} " + " ".join(
                cell(agreement(none, by[label(runtime, c, runtimes)]))  # c ÷ none, by round
                for c in names if c != NONE))
    for runtime in runtimes[1:]:
        print(f"\n{runtime} ÷ native with every sampler, ÷ the same with none (the bias)")
        for name, by in figures.items():
            with_all = to_native(by, runtime, ALL, runtimes)
            with_none = to_native(by, runtime, NONE, runtimes)
            print(f"{name:28} ratio with none {statistics.geometric_mean(with_none):.3f}, "
                  f"with all {statistics.geometric_mean(with_all):.3f}, "
                  f"bias {cell(agreement(with_none, with_all)).strip()}")
    print(f"({args.rounds} rounds; trials in {args.out})")
    return 0


def label(runtime: str, config: str, runtimes: list[str]) -> str:
    """A side's name: the configuration alone with one runtime (as before), else both."""
    return config if len(runtimes) == 1 else f"{runtime} {config}"


def to_native(by: dict[str, list[float]], runtime: str, config: str,
              runtimes: list[str]) -> list[float]:
    """Per round: ``runtime`` ÷ native, both with telemetry ``config``."""
    return [a / b for a, b in zip(by[label(runtime, config, runtimes)],
                                  by[label("native", config, runtimes)], strict=True)]


def cell(paired: dict[str, Any]) -> str:
    lo, hi = paired["ci95"]
    return f"{paired['ratio']:.3f} [{lo:.3f}, {hi:.3f}]".rjust(28)


if __name__ == "__main__":
    sys.exit(main())
