"""Command line: parse, call, print. No logic lives here."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from isobench import __version__, exitcodes, plugins
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


def _add_output_flags(p: argparse.ArgumentParser) -> None:
    """Exports and CI gates (``run`` and ``report``)."""
    p.add_argument("-v", "--verbose", action="store_true",
                   help="also print k6's end-of-test summary of each runtime's median trial")
    g = p.add_argument_group("exports and CI gates")
    g.add_argument("--export-json", type=Path, metavar="PATH",
                   help="also write the analysis (set-up, every comparison with CI and verdict)")
    g.add_argument("--export-csv", type=Path, metavar="PATH",
                   help="also write the comparisons table as CSV")
    g.add_argument("--export-markdown", type=Path, metavar="PATH",
                   help="also write a Markdown table for a pull-request comment")
    g.add_argument("--fail-if", action="append", metavar="RUNTIME:METRIC<LIMIT%", default=[],
                   help='exit 3 when the 95 %% CI lies wholly beyond the limit, e.g. '
                        '"docker-bridge:rps<-5%%" or "*:primary<-5%%" (repeatable)')


def _output_request(args: argparse.Namespace, html: bool = True) -> Any:
    from isobench.report.outputs import OutputRequest

    return OutputRequest(html=html, export_json=args.export_json, export_csv=args.export_csv,
                         export_markdown=args.export_markdown, fail_if=tuple(args.fail_if))


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
        epilog=exitcodes.EPILOG,
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
    run.add_argument("--primary", metavar="METRIC",
                     help="headline metric (default: the workload's, e.g. rps; see README)")
    run.add_argument("--margin", help="equivalence margin, e.g. 5%% (default 5%%)")
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
    _add_output_flags(run)

    up = sub.add_parser("up", help="start one runtime with the workload until Ctrl-C")
    up.add_argument("runtime", help=f"one of: {', '.join(plugins.names('runtime'))}")
    up.add_argument("--workload", default="records-api")
    up.add_argument("--cpus", type=_ints, default=[0])
    up.add_argument("--memory", type=int, default=1024)
    _add_image_flags(up)

    sub.add_parser("base-image", help="build isobench/base, the local image to build FROM")

    rep = sub.add_parser("report", help="write report.html, CSV, JSON, Markdown for a run",
                         epilog=exitcodes.EPILOG)
    rep.add_argument("run_dir", type=Path, help="a run directory (isobench-runs/<time>)")
    rep.add_argument("--no-print", action="store_true",
                     help="write the files without printing the tables")
    _add_output_flags(rep)

    cmp_ = sub.add_parser("compare", help="compare two runs (before/after a change)",
                          epilog=exitcodes.EPILOG)
    cmp_.add_argument("run_a", type=Path, help="the run before the change (isobench-runs/<time>)")
    cmp_.add_argument("run_b", type=Path, help="the run after the change")
    cmp_.add_argument("--json", type=Path, metavar="PATH",
                      help="also write the comparison as JSON")
    cmp_.add_argument("--fail-if", action="append", metavar="RUNTIME:METRIC<LIMIT%", default=[],
                      help='exit 3 when B/A\'s 95 %% CI lies wholly beyond the limit, e.g. '
                           '"docker-bridge:rps<-5%%" (repeatable)')

    build = sub.add_parser("build", help="build the rootfs, Docker image and VM disk of a workload")
    build.add_argument("--workload", default="records-api")
    build.add_argument("--runtimes", type=_csv, default=None)
    _add_image_flags(build)

    clean = sub.add_parser("clean", help="remove leftover containers, VMs, mounts isobench created")
    clean.add_argument("--cache", action="store_true",
                       help="also remove the build cache and isobench's Docker images")
    sub.add_parser("list", help="runtimes, workloads, presets")
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
        "primary": args.primary,
        "margin": args.margin,
        "workload_options": opts or None,
        "resources": resources or None,
    }
    # flags given on the command line win over --quick and --preset; absent ones change nothing
    data.update({key: value for key, value in flags.items() if value is not None})
    return data


def cmd_run(args: argparse.Namespace) -> int:
    from isobench.benchfile import load_benchfile
    from isobench.gates import parse_gates
    from isobench.results import RunStore
    from isobench.runner import Runner, default_run_dir
    from isobench.ui import RichEvents

    parse_gates(args.fail_if)  # a malformed gate fails now, not after the run
    if args.resume:
        store = RunStore.existing(args.resume)
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

    failed = print_run(console, store.root, verbose=args.verbose)
    from isobench.report.outputs import write_outputs

    gate_code = write_outputs(console, store.root, _output_request(args, html=not args.no_report))
    if gate_code != exitcodes.OK:
        return gate_code
    return exitcodes.TRIALS_FAILED if failed else exitcodes.OK


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
    from isobench.report.outputs import write_outputs
    from isobench.run_summary import print_run

    if not args.no_print:
        print_run(console, args.run_dir, verbose=args.verbose)
    return write_outputs(console, args.run_dir, _output_request(args))


def cmd_compare(args: argparse.Namespace) -> int:
    from isobench.gates import parse_gates
    from isobench.report.compare import compare_runs, print_run_comparison
    from isobench.report.outputs import judge_gates
    from isobench.results import atomic_write_json

    checked = parse_gates(args.fail_if)
    result = compare_runs(args.run_a, args.run_b)
    print_run_comparison(console, result)
    if args.json:
        atomic_write_json(args.json, {"version": 1, **result})
        console.print(f"wrote {args.json}")
    return judge_gates(console, checked, {**result, "emulated": []}, None)


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


COMMANDS = {
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
        return exitcodes.USAGE
    except KeyboardInterrupt:  # a further Ctrl-C after the cleanup already ran
        return 130


if __name__ == "__main__":
    sys.exit(main())
