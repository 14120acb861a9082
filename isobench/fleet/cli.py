"""The ``isobench fleet`` subcommands: ``run`` (Ansible) and ``report`` (across hosts).

``isobench/cli.py`` calls :func:`add_parser` and dispatches ``fleet`` to :func:`main`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console

from isobench import exitcodes

RUN_EPILOG = """\
Ansible arguments go after `--`, straight to ansible-playbook, e.g.
  isobench fleet run -i hosts.ini -f bench.yaml -- -u root --private-key ~/.ssh/id_bench -e x=y
  (-b/--become, --ssh-common-args, --vault-password-file, --ask-vault-pass work the same way).
isobench runs as root on each host: connect as root, or pass -b.
Re-running with the same --out skips hosts whose run directory is complete.
Host variables: isobench_remote_dir (default /var/lib/isobench-fleet), isobench_setup (false:
skip scripts/setup-host.sh --host-only), isobench_python, isobench_timeout_s."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``fleet run`` and ``fleet report`` under ``sub``."""
    fleet = sub.add_parser("fleet", help="one benchfile on many hosts (Ansible), one report")
    fsub = fleet.add_subparsers(dest="fleet_command")
    run = fsub.add_parser("run", help="run a benchfile on every host of an Ansible inventory",
                          epilog=RUN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("-i", "--inventory", required=True, help="Ansible inventory (any syntax)")
    run.add_argument("-f", "--file", required=True, type=Path, help="the benchfile")
    run.add_argument("--out", type=Path,
                     help="fleet directory (default fleet-runs/<time>); an existing one is "
                          "completed: only hosts without a whole run directory run again")
    run.add_argument("--quick", action="store_true", help="isobench run --quick on every host")
    run.add_argument("--serial", action="store_true",
                     help="one host at a time (ansible --forks 1); default: hosts in parallel")
    run.add_argument("--limit", help="Ansible host pattern (ansible-playbook --limit)")
    run.add_argument("--forks", type=int, help="hosts in parallel (ansible-playbook --forks)")
    run.add_argument("--run-args", default="",
                     help="more `isobench run` flags for every host, one string "
                          "(e.g. \"--duration 2s --warmup 1s\")")
    run.add_argument("ansible_args", nargs=argparse.REMAINDER,
                     help="after `--`: arguments for ansible-playbook")
    rep = fsub.add_parser("report", help="one table and report.html across a fleet's hosts")
    rep.add_argument("fleet_dir", type=Path, help="fleet-runs/<run>")
    rep.add_argument("--no-html", action="store_true", help="terminal table only")


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    import shlex

    from isobench.fleet import driver, report

    extra = list(args.ansible_args)
    if extra and extra[0] == "--":
        extra = extra[1:]
    out = args.out or Path("fleet-runs") / time.strftime("%Y%m%d-%H%M%S")
    opts = driver.FleetOptions(
        inventory=args.inventory, benchfile=args.file, out=out, quick=args.quick,
        serial=args.serial, limit=args.limit, forks=args.forks,
        run_args=shlex.split(args.run_args), ansible_args=extra)
    result = driver.run_fleet(
        opts, say=lambda line: console.print(line, markup=False, soft_wrap=True))
    console.print()
    report.print_statuses(console, result.hosts)
    if any(h.complete for h in result.hosts):
        console.print(f"report: isobench fleet report {result.fleet_dir}")
    return exitcodes.OK if result.ok else exitcodes.TRIALS_FAILED


def cmd_report(args: argparse.Namespace, console: Console) -> int:
    from isobench.fleet import html, report

    fleet = report.load_fleet(args.fleet_dir)
    report.print_fleet(console, fleet)
    if not args.no_html:
        path = html.write_html(fleet, args.fleet_dir / "report.html")
        console.print(f"wrote {path}")
    return exitcodes.OK if all(h.status.complete for h in fleet.hosts) else exitcodes.TRIALS_FAILED


def main(args: argparse.Namespace, console: Console) -> int:
    """Dispatch ``isobench fleet run|report``."""
    if args.fleet_command == "run":
        return cmd_run(args, console)
    if args.fleet_command == "report":
        return cmd_report(args, console)
    console.print("usage: isobench fleet {run,report} ... (isobench fleet run -h)")
    return exitcodes.USAGE
