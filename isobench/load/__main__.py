"""``python -m isobench.load``: run the load engine.

Two ways in:

* ``--config FILE|-`` with a JSON object ``{"base_url", "scenario", "cpus"?}`` and ``--jsonl``:
  JSON lines on stdout (``{"type": "progress", ...}`` about once a second, then one
  ``{"type": "result", ...}``). This is how :func:`isobench.load.api.run_load` drives it.
* ``--url URL --scenario FILE.yaml [--cpus 1,2] [--json OUT] [--csv OUT]``: by hand; prints
  progress on stderr and k6's end-of-test summary on stdout.

Exit status as k6: 0 passed, 99 thresholds failed (also when aborted by ``abortOnFail``),
104 invalid configuration, 1 any other error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from isobench.errors import ConfigError

EXIT_THRESHOLDS = 99
EXIT_CONFIG = 104


def _args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m isobench.load", description=__doc__.split("\n")[0])
    ap.add_argument("--config", help="JSON config file, or - for stdin")
    ap.add_argument("--jsonl", action="store_true", help="JSON lines protocol on stdout")
    ap.add_argument("--url", help="base URL, e.g. http://127.0.0.1:8080")
    ap.add_argument("--scenario", help="scenario YAML/JSON file")
    ap.add_argument("--cpus", help="comma-separated CPUs to pin to (several = worker processes)")
    ap.add_argument("--json", dest="json_out", help="write the result JSON here")
    ap.add_argument("--csv", dest="csv_out", help="write the 1 s time series CSV here")
    return ap.parse_args(argv)


def _config(ns: argparse.Namespace) -> dict[str, Any]:
    if ns.config:
        text = sys.stdin.read() if ns.config == "-" else Path(ns.config).read_text()
        try:
            cfg = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"load config is not JSON: {exc}") from None
        if not isinstance(cfg, dict) or "base_url" not in cfg or "scenario" not in cfg:
            raise ConfigError("load config needs 'base_url' and 'scenario'")
        return cfg
    if not (ns.url and ns.scenario):
        raise ConfigError(
            "give --config, or both --url and --scenario",
            fix="python -m isobench.load --url http://127.0.0.1:8080 --scenario s.yaml",
        )
    try:
        scenario = yaml.safe_load(Path(ns.scenario).read_text())
    except (OSError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError(f"cannot read scenario {ns.scenario}: {first}") from None
    if isinstance(scenario, dict) and "scenario" in scenario and "requests" not in scenario:
        scenario = scenario["scenario"]  # a whole benchfile
    cpus = [int(c) for c in ns.cpus.split(",")] if ns.cpus else None
    return {"base_url": ns.url, "scenario": scenario, "cpus": cpus}


def main(argv: list[str] | None = None) -> int:
    ns = _args(argv)
    from isobench.load import engine
    from isobench.load.api import LoadResult

    def emit(obj: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    def human(p: dict[str, Any]) -> None:
        sys.stderr.write(f"  {p['elapsed']:7.1f}s  reqs={p['reqs']:<10} "
                         f"rate={p['rate']:>9.1f}/s  vus={p['vus']}\n")

    try:
        cfg = _config(ns)
        out = engine.run(cfg, emit if ns.jsonl else human)
    except ConfigError as exc:
        if ns.jsonl:
            emit({"type": "error", "kind": "config", "message": str(exc)})
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130
    result = LoadResult.from_dict(out)
    if ns.jsonl:
        emit({"type": "result", **out})
    else:
        sys.stdout.write(result.render_summary())
    if ns.json_out:
        result.write_json(Path(ns.json_out))
    if ns.csv_out:
        result.write_timeseries_csv(Path(ns.csv_out))
    return EXIT_THRESHOLDS if result.thresholds_failed else 0


if __name__ == "__main__":
    sys.exit(main())
