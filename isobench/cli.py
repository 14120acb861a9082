"""Command line: parse, call, print. No logic lives here."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from isobench import __version__, plugins
from isobench.errors import IsobenchError

console = Console(highlight=False, log_path=False, width=None if sys.stdout.isatty() else 150)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _ints(value: str) -> list[int]:
    return [int(v) for v in _csv(value)]


def _add_image_flags(p: argparse.ArgumentParser) -> None:
    """Bring-your-own-app flags (workload ``image``)."""
    g = p.add_argument_group("your own app (workload 'image')")
    g.add_argument("--dockerfile", help="build this Dockerfile (base images must be local)")
    g.add_argument("--context", help="build context (default: the Dockerfile's directory)")
    g.add_argument("--image", help="a local image to benchmark")
    g.add_argument("--port", type=int, help="port the app listens on (default: its EXPOSE)")
    g.add_argument("--ready-path", help="path that answers 200 when ready (default /)")
    g.add_argument("--load-path", help="path the default scenario requests (default /)")
    g.add_argument("--env", action="append", metavar="KEY=VALUE", help="extra env (repeatable)")
    g.add_argument("--cmd", help="command to run instead of the image's (shell-split)")
    g.add_argument("--writable", action="append", metavar="PATH", help="tmpfs path (repeatable)")
    g.add_argument(
        "--requirements",
        action="append",
        metavar="FILE",
        help="requirements file in the context whose wheels the build gets offline",
    )


def _image_options(args: argparse.Namespace) -> dict[str, Any] | None:
    if not (getattr(args, "dockerfile", None) or getattr(args, "image", None)):
        return None
    keys = (
        "dockerfile",
        "context",
        "image",
        "port",
        "ready_path",
        "load_path",
        "env",
        "cmd",
        "writable",
        "requirements",
    )
    return {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="isobench",
        description="What does it cost a workload to run natively, in a container, or in a VM?",
    )
    parser.add_argument("--version", action="version", version=f"isobench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    doc = sub.add_parser("doctor", help="what this host can run, and the fix for what it cannot")
    doc.add_argument("--runtimes", type=_csv, default=None, help="runtimes to check (default all)")
    doc.add_argument("--no-probe", action="store_true", help="skip the KVM probe boot")

    run = sub.add_parser("run", help="benchmark a workload across runtimes")
    run.add_argument("-f", "--benchfile", type=Path, help="YAML benchfile")
    run.add_argument("--preset", help="an article's set-up: seed-003, seed-000")
    run.add_argument("--workload", help=f"one of: {', '.join(plugins.names('workload'))}")
    run.add_argument("--runtimes", type=_csv, help="comma-separated runtimes")
    run.add_argument("--baseline", help="runtime the others are compared to (default native)")
    run.add_argument("--scenario", help="default, idle, steady, seed-003, ...")
    run.add_argument("--trials", type=int, help="trials per runtime (interleaved)")
    run.add_argument("--duration", help="measured load per trial, e.g. 20s")
    run.add_argument("--warmup", help="discarded load before measuring, e.g. 3s")
    run.add_argument("--quick", action="store_true", help="short trials (for a first look)")
    run.add_argument("--aa", action="store_true", help="A/A self-check: the baseline as two arms")
    run.add_argument("--replicas", type=int, help="instances of the workload per trial (default 1)")
    run.add_argument("--time-budget", help="stop between rounds when the next would exceed it")
    run.add_argument("--seed", type=int, help="plan seed")
    run.add_argument("--cpus", type=_ints, help="host CPUs for the workload (default 0)")
    run.add_argument("--loadgen-cpus", type=_ints, help="host CPUs for the load generator")
    run.add_argument("--memory", type=int, help="memory limit in MiB (default 1024)")
    run.add_argument("--storage", help="records-api storage: sqlite, postgres, mongodb")
    run.add_argument("--database-url", help="PostgreSQL URL for --storage postgres")
    run.add_argument("--mongodb-uri", help="MongoDB URI for --storage mongodb")
    run.add_argument("--out", type=Path, help="run directory (default isobench-runs/<time>)")
    run.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue an interrupted run")
    run.add_argument("--no-report", action="store_true", help="do not write report.html")
    _add_image_flags(run)

    up = sub.add_parser("up", help="start one runtime with the workload until Ctrl-C")
    up.add_argument("runtime", help=f"one of: {', '.join(plugins.names('runtime'))}")
    up.add_argument("--workload", default="records-api")
    up.add_argument("--cpus", type=_ints, default=[0])
    up.add_argument("--memory", type=int, default=1024)
    _add_image_flags(up)

    sub.add_parser("base-image", help="build isobench/base, the local image to build FROM")

    rep = sub.add_parser("report", help="write report.html (and CSV) for a run directory")
    rep.add_argument("run_dir", type=Path)
    rep.add_argument("--no-print", action="store_true")

    cmp_ = sub.add_parser("compare", help="compare two runs (before/after a change)")
    cmp_.add_argument("run_a", type=Path)
    cmp_.add_argument("run_b", type=Path)

    build = sub.add_parser("build", help="build the rootfs, Docker image and VM disk of a workload")
    build.add_argument("--workload", default="records-api")
    build.add_argument("--runtimes", type=_csv, default=None)
    _add_image_flags(build)

    clean = sub.add_parser("clean", help="remove leftover containers, VMs, mounts isobench created")
    clean.add_argument("--cache", action="store_true",
                       help="also remove the build cache and isobench's Docker images")
    sub.add_parser("list", help="runtimes, workloads, presets")

    cal = sub.add_parser("calibrate", help="measure effects of exactly known size (A/A, 20 %, 5 %)")
    cal.add_argument("--runtime", default="native", help="runtime to calibrate (default native)")
    cal.add_argument("--trials", type=int, default=12, help="trials per arm (default 12)")
    cal.add_argument("--duration", default="2s", help="measured load per trial (default 2s)")
    cal.add_argument("--warmup", default="0.5s", help="discarded load per trial (default 0.5s)")
    cal.add_argument("--work-units", type=int, default=None,
                     help="work units per baseline request (default 76)")
    cal.add_argument("--factors", type=lambda v: [float(x) for x in _csv(v)], default=None,
                     help="work factors of the compared arms (default 1,1.25,1.0526)")
    cal.add_argument("--seed", type=int, default=1)
    cal.add_argument("--cpus", type=_ints, help="host CPUs for the workload (default 0)")
    cal.add_argument("--loadgen-cpus", type=_ints, help="host CPUs for the load generator")
    cal.add_argument("--out", type=Path, help="directory (default isobench-runs/calibrate-<time>)")
    return parser


def _run_overrides(args: argparse.Namespace) -> dict[str, Any]:
    from isobench.presets import get_preset

    data: dict[str, Any] = {}
    if args.preset:
        data.update(get_preset(args.preset).benchfile)
        data["preset"] = args.preset
    if args.quick:
        data.update({"duration": "5s", "warmup": "1s", "trials": 3})
        if args.preset:
            data.update(get_preset(args.preset).quick)
    opts: dict[str, Any] = _image_options(args) or {}
    if opts:
        data["workload"] = "image"
    for key in ("storage", "database_url", "mongodb_uri"):
        if getattr(args, key):
            opts[key] = getattr(args, key)
    resources: dict[str, Any] = {}
    if args.cpus:
        resources["cpus"] = args.cpus
    if args.loadgen_cpus:
        resources["loadgen_cpus"] = args.loadgen_cpus
    if args.memory:
        resources["memory_mb"] = args.memory
    flags = {
        "workload": args.workload,
        "runtimes": args.runtimes,
        "baseline": args.baseline,
        "scenario": args.scenario,
        "trials": args.trials,
        "duration": args.duration,
        "warmup": args.warmup,
        "seed": args.seed,
        "aa": args.aa or None,
        "replicas": args.replicas,
        "time_budget": args.time_budget,
        "workload_options": opts or None,
        "resources": resources or None,
    }
    # flags given on the command line win over --quick and --preset; absent ones change nothing
    data.update({key: value for key, value in flags.items() if value is not None})
    return data


def cmd_run(args: argparse.Namespace) -> int:
    from isobench.benchfile import load_benchfile
    from isobench.results import RunStore
    from isobench.runner import Runner, default_run_dir
    from isobench.ui import RichEvents

    if args.resume:
        store = RunStore(args.resume)
        bench = load_benchfile(None, store.read_manifest()["benchfile"])
    else:
        bench = load_benchfile(args.benchfile, _run_overrides(args))
        for name in bench.runtimes:
            plugins.load("runtime", name)  # unknown names fail here, before anything is made
        plugins.load("workload", bench.workload)
        store = RunStore(args.out or default_run_dir())
    console.print(
        f"[bold]isobench[/] {bench.workload} on {', '.join(bench.runtimes)} → {store.root}"
    )
    with RichEvents(console) as events:
        runner = Runner(bench, store, events)
        try:
            runner.run(resume=bool(args.resume))
        except KeyboardInterrupt:
            err_console.print(
                f"interrupted: results so far are in {store.root}; "
                f"continue with `isobench run --resume {store.root}`"
            )
            return 130
    from isobench.run_summary import print_run

    failed = print_run(console, store.root)
    if not args.no_report:
        from isobench.report.export import write_csv
        from isobench.report.html import write_html

        write_csv(store.root)
        console.print(f"report: {write_html(store.root)}")
    return 1 if failed else 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from isobench.host import doctor

    names = args.runtimes or plugins.names("runtime")
    report = doctor(names, probe_kvm=not args.no_probe)
    for check in report.checks:
        mark = "[green]ok[/]  " if check.ok else "[yellow]no[/]  "
        fix = f"  [dim]fix: {check.fix}[/]" if check.fix and not check.ok else ""
        console.print(f"{mark}{check.name}: {check.detail}{fix}")
    for name, reason in report.runtimes.items():
        if reason is None:
            console.print(f"[green]ok[/]  runtime {name}")
        else:
            console.print(f"[red]no[/]  runtime {name}: {reason}")
    bad = report.runnable(names)
    return 1 if (args.runtimes and bad) else 0


def cmd_report(args: argparse.Namespace) -> int:
    from isobench.report.export import write_csv, write_json
    from isobench.report.html import write_html
    from isobench.run_summary import print_run

    if not args.no_print:
        print_run(console, args.run_dir)
    for path in [write_html(args.run_dir), *write_csv(args.run_dir), write_json(args.run_dir)]:
        console.print(f"wrote {path}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from isobench.report.compare import compare_runs, print_run_comparison

    print_run_comparison(console, compare_runs(args.run_a, args.run_b))
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from isobench.images.build import build_artifacts

    image_opts = _image_options(args)
    name = "image" if image_opts else args.workload
    workload = plugins.load("workload", name)(image_opts or {})
    need = {"rootfs"}
    for name in args.runtimes or plugins.names("runtime"):
        need.add(plugins.load("runtime", name).artifact)
    arts = build_artifacts(workload.rootfs_spec(), need, progress=lambda s: console.log(s))
    console.print_json(json.dumps({"key": arts.key, "sizes": dict(arts.sizes)}))
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from isobench.runtimes.base import Resources
    from isobench.up import up

    image_opts = _image_options(args)
    name = "image" if image_opts else args.workload
    workload = plugins.load("workload", name)(image_opts or {})
    plugins.load("runtime", args.runtime)
    resources = Resources(cpus=tuple(args.cpus), memory_mb=args.memory)
    return up(args.runtime, workload, resources, say=console.print)


def cmd_base_image(args: argparse.Namespace) -> int:
    from isobench import paths
    from isobench.images.docker_image import ensure_base_image
    from isobench.proc import SubprocessRunner

    ref = ensure_base_image(
        cache=paths.cache_dir(), runner=SubprocessRunner(), progress=lambda s: console.log(s)
    )
    console.print(f"{ref} (also tagged isobench/base:latest): build FROM isobench/base")
    return 0


def cmd_clean(args: argparse.Namespace) -> int:
    from isobench.proc import SubprocessRunner
    from isobench.runtimes.cleanup import clean_leftovers

    runner = SubprocessRunner()
    removed = clean_leftovers(runner)
    if args.cache:
        from isobench.images.cache import remove_build_cache

        removed += remove_build_cache(runner)
    for item in removed:
        console.print(f"removed {item}")
    console.print(f"{len(removed)} leftovers removed")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from isobench.presets import PRESETS

    console.print("runtimes:  " + ", ".join(plugins.names("runtime")))
    console.print("workloads: " + ", ".join(plugins.names("workload")))
    console.print("presets:   " + ", ".join(f"{p.name} ({p.title})" for p in PRESETS.values()))
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    import time

    from isobench import calibrate
    from isobench.ui import RichEvents

    plugins.load("runtime", args.runtime)
    out = args.out or Path("isobench-runs") / time.strftime("calibrate-%Y%m%d-%H%M%S")
    resources: dict[str, Any] = {}
    if args.cpus:
        resources["cpus"] = args.cpus
    if args.loadgen_cpus:
        resources["loadgen_cpus"] = args.loadgen_cpus
    units = args.work_units or calibrate.DEFAULT_UNITS
    console.print(f"[bold]isobench calibrate[/] burn on {args.runtime} → {out}")
    try:
        result = calibrate.run_calibration(
            out, runtime=args.runtime, units=units,
            factors=args.factors or calibrate.DEFAULT_FACTORS, trials=args.trials,
            duration=args.duration, warmup=args.warmup, seed=args.seed,
            resources=resources or None, events=lambda: RichEvents(console),
        )
    except ValueError as exc:
        err_console.print(f"[red]error:[/] {exc}")
        return 2
    except KeyboardInterrupt:
        err_console.print(f"interrupted: partial results are in {out}")
        return 130
    for line in result.report():
        console.print(line, markup=False)
    console.print(f"details: {out / 'calibration.json'}")
    return 0 if all(r.ok for r in result.rows) else 1


COMMANDS = {
    "calibrate": cmd_calibrate,
    "run": cmd_run,
    "doctor": cmd_doctor,
    "report": cmd_report,
    "compare": cmd_compare,
    "build": cmd_build,
    "clean": cmd_clean,
    "list": cmd_list,
    "up": cmd_up,
    "base-image": cmd_base_image,
}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command](args)
    except IsobenchError as exc:
        err_console.print(f"[red]error:[/] {exc}", highlight=False)
        return 2
    except KeyboardInterrupt:  # a further Ctrl-C after the cleanup already ran
        return 130


if __name__ == "__main__":
    sys.exit(main())
