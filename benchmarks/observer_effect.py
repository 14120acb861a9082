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
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

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
    parser.add_argument("--out", type=Path, default=Path("/tmp/isobench-observer"))
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    configs: dict[str, list[str] | None] = {ALL: None, NONE: []}
    configs.update({name: [name] for name in args.samplers.split(",") if name})
    names = list(configs)
    figures: dict[str, dict[str, list[float]]] = {}  # figure → config → per round
    for r in range(args.rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for bench in [b for b in args.only.split(",") if b]:
            mine: set[str] = set()
            for config in order:
                time.sleep(args.pause)
                out = args.out / f"round-{r + 1}" / bench / config.replace(" ", "-")
                values = suite_trial(bench, out, samplers=configs[config])["values"]
                for name, value in values.items():
                    figures.setdefault(name, {}).setdefault(config, []).append(float(value))
                mine |= set(values)
            print(f"round {r + 1} {bench}: " + "; ".join(
                f"{name} " + ", ".join(f"{c} {by[c][-1]:,.4g}" for c in names)
                for name, by in figures.items() if name in mine), flush=True)
        (args.out / "observer.json").write_text(json.dumps(figures, indent=1))
    print(f"\n{'figure':28} " + " ".join(f"{c + ' ÷ none':>28}" for c in names if c != NONE))
    for name, by in figures.items():
        cells = []
        for config in names:
            if config == NONE:
                continue
            paired = agreement(by[NONE], by[config])  # config ÷ none, paired by round
            lo, hi = paired["ci95"]
            cells.append(f"{paired['ratio']:.3f} [{lo:.3f}, {hi:.3f}]".rjust(28))
        print(f"{name:28} " + " ".join(cells))
    print(f"({args.rounds} rounds; trials in {args.out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
