"""Command line: parse, call, print. No logic lives here."""

from __future__ import annotations

import argparse
import json
import shutil
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
    g = p.add_argument_group(
        "your own app (workload 'image')",
        "The native runtime gives your image host root: a chroot with /dev bound and no "
        "namespaces (no network, PID or user isolation). Run only images you trust with it.")
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


def _add_resource_flags(p: argparse.ArgumentParser, *, defaults: bool) -> None:
    """Pinning and memory, with Docker's names and units (``--cpuset-cpus``, ``--memory 1g``)."""
    g = p.add_argument_group("resources (the same for every runtime)")
    g.add_argument("--cpuset-cpus", type=_ints, metavar="LIST", default=[0] if defaults else None,
                   help="host CPUs the workload is pinned to, as Docker's --cpuset-cpus "
                        "(default 0)")
    g.add_argument("--cpus", type=_ints, metavar="LIST", dest="cpus_deprecated",
                   help="deprecated spelling of --cpuset-cpus (Docker's --cpus is a quota)")
    if not defaults:
        g.add_argument("--loadgen-cpus", type=_ints, metavar="LIST",
                       help="host CPUs for the load generator and isobench (default 1)")
    g.add_argument("--memory", metavar="SIZE", default="1g" if defaults else None,
                   help="memory limit, as Docker's --memory: 512m, 1g (default 1g)")


def _resource_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The resources the flags ask for (``cpus``, ``memory_mb``...), deprecations noted."""
    from isobench.config.memsize import parse_memory_mib

    out: dict[str, Any] = {}
    cpus = args.cpuset_cpus
    if args.cpus_deprecated:
        err_console.print("[yellow]note:[/] --cpus is deprecated here: write --cpuset-cpus "
                          f"{','.join(map(str, args.cpus_deprecated))} (Docker's --cpus is a "
                          "CPU quota)")
        cpus = cpus or args.cpus_deprecated
    if cpus:
        out["cpus"] = cpus
    if getattr(args, "loadgen_cpus", None):
        out["loadgen_cpus"] = args.loadgen_cpus
    if args.memory is not None:
        mib, deprecated = parse_memory_mib(args.memory)
        if deprecated:
            err_console.print(f"[yellow]note:[/] --memory {args.memory} is read as MiB; write "
                              f"--memory {mib}m (a bare number means bytes to Docker)")
        out["memory_mb"] = mib
    return out


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


def _add_k6_flags(p: argparse.ArgumentParser) -> None:
    """Bring your k6 script (``--k6``) and k6's own flags that change the load."""
    g = p.add_argument_group("your k6 script (instead of --scenario; --duration is k6's then)")
    g.add_argument("--k6", metavar="SCRIPT", help="run this k6 script on every runtime")
    g.add_argument("--k6-env", action="append", metavar="KEY=VALUE", default=[],
                   help="__ENV for the script, like k6's -e (repeatable)")
    g.add_argument("--vus", type=int, help="k6's --vus")
    g.add_argument("--iterations", type=int, help="k6's --iterations")
    g.add_argument("--stage", action="append", metavar="DURATION:TARGET", default=[],
                   help="k6's --stage, e.g. 30s:10 (repeatable)")


def _k6_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """``k6``/``k6_env`` benchfile entries from --k6 and k6's flags ({} without --k6)."""
    from isobench.errors import ConfigError

    env: dict[str, str] = {}
    for item in args.k6_env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--k6-env {item!r} is not KEY=VALUE", fix="e.g. --k6-env X=1")
        env[key] = value
    if not args.k6:
        if args.vus is not None or args.iterations is not None or args.stage or env:
            raise ConfigError("--vus, --iterations, --stage and --k6-env need --k6 SCRIPT",
                              fix="add --k6 script.js, or use --scenario")
        return {}
    spec: dict[str, Any] = {"script": str(Path(args.k6).resolve())}
    for key in ("vus", "duration", "iterations"):
        if getattr(args, key) is not None:
            spec[key] = getattr(args, key)
    if args.stage:
        spec["stages"] = list(args.stage)
    return {"k6": spec, "k6_env": env}


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
    run.add_argument("-f", "--benchfile", type=Path,
                     help="YAML benchfile (see README); flags given here override it")
    run.add_argument("--preset", help="an article's set-up: seed-003, seed-000 (default none)")
    run.add_argument("--workload", help=f"one of: {', '.join(plugins.names('workload'))} "
                                        "(default records-api)")
    run.add_argument("--runtimes", type=_csv,
                     help=f"comma-separated, of: {', '.join(plugins.names('runtime'))} "
                          "(default native,docker-bridge,docker-host,vm)")
    run.add_argument("--baseline", help="runtime the others are compared to (default native)")
    run.add_argument("--scenario",
                     help="default, idle, steady, seed-003, ... (default: the workload's default)")
    run.add_argument("--trials", type=int, help="trials per runtime, interleaved (default 3)")
    run.add_argument("--duration",
                     help="measured load per trial, e.g. 20s (default: the scenario's)")
    run.add_argument("--warmup", help="discarded load before measuring (default 3s)")
    run.add_argument("--max-error-rate", type=float,
                     help="largest fraction of failed requests for a trial to count (default 0.01)")
    run.add_argument("--quick", action="store_true",
                     help="3 trials of 5 s after 1 s of warm-up (for a first look)")
    run.add_argument("--aa", action="store_true", help="A/A self-check: the baseline as two arms")
    run.add_argument("--replicas", type=int, help="instances of the workload per trial (default 1)")
    run.add_argument("--client", choices=("local", "remote"),
                     help="where the load generator runs: local (to 127.0.0.1) or remote (in a "
                          "network namespace of isobench's, over a veth: Docker's DNAT path, "
                          "not docker-proxy) (default local)")
    run.add_argument("--time-budget",
                     help="stop between rounds when the next would exceed it, e.g. 10m "
                          "(default none)")
    run.add_argument("--seed", type=int, help="seed of the interleaved order (default 1)")
    run.add_argument("--primary", metavar="METRIC",
                     help="headline metric (default: the workload's, e.g. rps; see README)")
    run.add_argument("--margin", help="equivalence margin, e.g. 5%% (default 5%%)")
    run.add_argument("--precision", metavar="PCT",
                     help="add rounds until every primary verdict is decided or its CI is this "
                          "narrow, e.g. 3%% (default: a fixed number of trials)")
    run.add_argument("--max-trials", type=int, metavar="N",
                     help="with --precision: most rounds per runtime (default 12; time budget "
                          "10m unless --time-budget)")
    _add_resource_flags(run, defaults=False)
    run.add_argument("--storage", help="records-api storage: sqlite, postgres, mongodb")
    run.add_argument("--database-url", help="PostgreSQL URL for --storage postgres")
    run.add_argument("--mongodb-uri", help="MongoDB URI for --storage mongodb")
    run.add_argument("--out", type=Path, help="run directory (default isobench-runs/<time>)")
    run.add_argument("--dry-run", action="store_true",
                     help="print the plan (arms, rounds, order, estimated time) and exit")
    run.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue an interrupted run")
    run.add_argument("--no-report", action="store_true", help="do not write report.html")
    run.add_argument("--allow-exposed", action="store_true",
                     help="a workload listening beyond loopback (0.0.0.0, ::, a LAN address) is "
                          "recorded as a warning instead of failing its trial")
    run.add_argument("--show-env", action="store_true",
                     help="write environment values (--env, k6_env) into the manifest and "
                          "reports (default: keys only, values redacted)")
    _add_image_flags(run)
    _add_output_flags(run)
    _add_k6_flags(run)

    up = sub.add_parser("up", help="start one runtime with the workload until Ctrl-C")
    up.add_argument("runtime", help=f"one of: {', '.join(plugins.names('runtime'))}")
    up.add_argument("--workload", default="records-api",
                    help=f"one of: {', '.join(plugins.names('workload'))} (default records-api)")
    _add_resource_flags(up, defaults=True)
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

    suite = sub.add_parser("suite", help="a suite of benchmarks on every runtime, one table",
                           epilog=exitcodes.EPILOG)
    suite.add_argument("suite", choices=["micro"],
                       help="micro: redis, postgres, mariadb, sysbench, fio, xz, iperf3, "
                            "sockperf (real clients)")
    suite.add_argument("--runtimes", type=_csv, help="comma-separated runtimes (default all)")
    suite.add_argument("--only", type=_csv, help="some of the suite's benchmarks, e.g. redis,fio")
    suite.add_argument("--quick", action="store_true", help="3 trials of 3 s (a first look)")
    suite.add_argument("--trials", type=int, help="trials per runtime and benchmark")
    suite.add_argument("--option", action="append", default=[], metavar="BENCH.OPTION=VALUE",
                       help="a benchmark's workload option, e.g. fio.fio_buffer=huge "
                            "(repeatable; refused before anything runs if the benchmark has "
                            "no such option)")
    suite.add_argument("--telemetry", action="store_true",
                       help="also sample CPU, memory, network and disk during the trials (the "
                            "CPU split per run); off by default: the sampling shares the clients' "
                            "CPU and costs server figures a few per cent")
    suite.add_argument("--out", type=Path, help="suite directory (default isobench-runs/<time>)")

    clean = sub.add_parser("clean", help="remove what dead isobench runs left (containers, VMs...)")
    clean.add_argument("--cache", action="store_true",
                       help="also remove the build cache and the Docker image tags isobench made")
    clean.add_argument("--force", action="store_true",
                       help="also remove objects of runs that are still alive")
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
    _add_explain_parser(sub)
    from isobench.fleet import cli as fleet_cli  # isobench fleet (Ansible): its own package
    fleet_cli.add_parser(sub)
    return parser


def _run_overrides(args: argparse.Namespace) -> dict[str, Any]:
    from isobench.config.presets import get_preset

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
    resources = _resource_flags(args)
    k6 = _k6_overrides(args)  # with --k6, --duration is k6's (it goes into the k6 entry)
    data.update(k6)
    flags = {
        "workload": args.workload,
        "runtimes": args.runtimes,
        "baseline": args.baseline,
        "scenario": args.scenario,
        "trials": args.trials,
        "duration": None if k6 else args.duration,
        "warmup": args.warmup,
        "max_error_rate": args.max_error_rate,
        "seed": args.seed,
        "aa": args.aa or None,
        "replicas": args.replicas,
        "client": getattr(args, "client", None),
        "time_budget": args.time_budget,
        "primary": args.primary,
        "margin": args.margin,
        "precision": args.precision,
        "max_trials": args.max_trials,
        "workload_options": opts or None,
        "resources": resources or None,
        "allow_exposed": args.allow_exposed or None,
        "show_env": args.show_env or None,
    }
    # flags given on the command line win over --quick and --preset; absent ones change nothing
    data.update({key: value for key, value in flags.items() if value is not None})
    return data


def cmd_run(args: argparse.Namespace) -> int:
    from isobench.analysis.gates import parse_gates
    from isobench.config.benchfile import load_benchfile
    from isobench.results import RunStore
    from isobench.run.orchestrator import RunOrchestrator, default_run_dir
    from isobench.ui import RichEvents

    parse_gates(args.fail_if)  # a malformed gate fails now, not after the run
    if args.dry_run:
        from isobench.run.orchestrator import dry_run

        bench = load_benchfile(args.benchfile, _run_overrides(args))
        for line in dry_run(bench):
            console.print(line)
        return exitcodes.OK
    if args.resume:
        store = RunStore.existing(args.resume)
        bench = load_benchfile(None, store.read_benchfile())
    else:
        bench = load_benchfile(args.benchfile, _run_overrides(args))
        for name in bench.runtimes:
            plugins.load("runtime", name)  # unknown names fail here, before anything is made
        plugins.load("workload", bench.workload)
        out = args.out or default_run_dir()
        made = not out.exists()
        store = RunStore(out)
    console.print(
        f"[bold]isobench[/] {bench.workload} on {', '.join(bench.runtimes)} → {store.root}"
    )
    with RichEvents(console) as events:
        orchestrator = RunOrchestrator(bench, store, events)
        try:
            orchestrator.run(resume=bool(args.resume))
        except IsobenchError:
            if not args.resume and made and not store.manifest_path.exists():
                shutil.rmtree(store.root, ignore_errors=True)  # refused before the run began
            raise
        except KeyboardInterrupt:
            err_console.print(
                f"interrupted: results so far are in {store.root}; "
                f"continue with `isobench run --resume {store.root}`"
            )
            return 130
    from isobench.report.outputs import write_outputs
    from isobench.report.run_terminal import print_run
    from isobench.report.rundata import load_run

    data = load_run(store.root)  # analysed once, handed to the terminal and every file written
    failed = print_run(console, store.root, verbose=args.verbose, data=data)
    request = _output_request(args, html=not args.no_report)
    gate_code = write_outputs(console, store.root, request, data=data)
    if gate_code != exitcodes.OK:
        return gate_code
    return exitcodes.TRIALS_FAILED if failed else exitcodes.OK


def cmd_doctor(args: argparse.Namespace) -> int:
    from isobench.util.host import doctor

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
    from isobench.report.run_terminal import print_run
    from isobench.report.rundata import load_run

    data = load_run(args.run_dir)  # analysed once, handed to the terminal and every file written
    if not args.no_print:
        print_run(console, args.run_dir, verbose=args.verbose, data=data)
    return write_outputs(console, args.run_dir, _output_request(args), data=data)


def cmd_compare(args: argparse.Namespace) -> int:
    from isobench.analysis.gates import parse_gates
    from isobench.report.compare import compare_runs, print_run_comparison
    from isobench.report.outputs import judge_gates
    from isobench.results import atomic_write_json
    from isobench.results_model import Analysis

    checked = parse_gates(args.fail_if)
    result = compare_runs(args.run_a, args.run_b)
    print_run_comparison(console, result)
    if args.json:
        atomic_write_json(args.json, {"version": 1, **result})
        console.print(f"wrote {args.json}")
    return judge_gates(console, checked, Analysis.from_json({**result, "emulated": []}), None)


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
    from isobench.run.up import up
    from isobench.runtimes.base import Resources

    image_opts = _image_options(args)
    name = "image" if image_opts else args.workload
    workload = plugins.load("workload", name)(image_opts or {})
    plugins.load("runtime", args.runtime)
    wanted = _resource_flags(args)
    resources = Resources(cpus=tuple(wanted["cpus"]), memory_mb=int(wanted["memory_mb"]))
    return up(args.runtime, workload, resources, say=console.print)


def cmd_base_image(args: argparse.Namespace) -> int:
    from isobench.images.docker_image import ensure_base_image
    from isobench.util import paths
    from isobench.util.proc import SubprocessRunner

    ref = ensure_base_image(
        cache=paths.cache_dir(), runner=SubprocessRunner(), progress=lambda s: console.log(s)
    )
    console.print(f"{ref} (also tagged isobench/base:latest): build FROM isobench/base")
    return 0


def cmd_clean(args: argparse.Namespace) -> int:
    from isobench.runtimes.cleanup import clean_leftovers
    from isobench.util.proc import SubprocessRunner

    runner = SubprocessRunner()
    done = clean_leftovers(runner, force=args.force)
    if args.cache:
        from isobench.images.cache import remove_build_cache

        done.extend(remove_build_cache(runner))
    for line in done.removed:
        console.print(f"removed {line}", markup=False, soft_wrap=True)
    for line in done.kept:
        console.print(f"kept {line}", markup=False, style="dim", soft_wrap=True)
    for line in done.unchecked:
        console.print(f"not checked: {line}", markup=False, style="yellow", soft_wrap=True)
    console.print(f"{len(done.removed)} removed, {len(done.kept)} kept (live runs), "
                  f"{len(done.unchecked)} not checked")
    return 1 if done.unchecked else 0


def cmd_suite(args: argparse.Namespace) -> int:
    from isobench.run.orchestrator import default_run_dir
    from isobench.run.suite import plan_suite, print_table, run_suite
    from isobench.ui import RichEvents

    for name in args.runtimes or []:
        plugins.load("runtime", name)  # unknown names fail here, before anything is made
    plan = plan_suite(args.suite, args.runtimes, args.only, args.out or default_run_dir(),
                      quick=args.quick, trials=args.trials, options=args.option,
                      telemetry=args.telemetry)
    console.print(f"[bold]isobench suite {plan.suite}[/]: {', '.join(plan.benchmarks)} on "
                  f"{', '.join(plan.runtimes)} → {plan.out}")
    try:
        table = run_suite(plan, lambda bench: RichEvents(console),
                          say=lambda text: console.print(f"[bold]{text}[/]"))
    except KeyboardInterrupt:
        err_console.print(f"interrupted: the runs so far are in {plan.out}")
        return exitcodes.INTERRUPTED
    print_table(console, table)
    console.print(f"wrote {plan.out / 'suite.md'} and {plan.out / 'suite.json'}")
    return exitcodes.OK if table["complete"] else exitcodes.TRIALS_FAILED


def cmd_list(args: argparse.Namespace) -> int:
    from isobench.config.presets import PRESETS

    console.print("runtimes:  " + ", ".join(plugins.names("runtime")))
    console.print("workloads: " + ", ".join(plugins.names("workload")))
    console.print("presets:   " + ", ".join(f"{p.name} ({p.title})" for p in PRESETS.values()))
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    import time

    from isobench.run import calibrate
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


def _add_explain_parser(sub: Any) -> None:
    """``isobench explain``: the gap between two runtimes, one layer at a time."""
    ex = sub.add_parser("explain", help="why is it slower? the gap between two runtimes, one "
                        "layer a step (e.g. --from native --to docker-bridge)",
                        epilog=exitcodes.EPILOG)
    ex.add_argument("--from", dest="source", required=True, help="the baseline runtime")
    ex.add_argument("--to", dest="target", required=True, help="the runtime to explain")
    ex.add_argument("--workload", help="default records-api")
    ex.add_argument("--scenario", help="the workload's named scenario (default: its default)")
    ex.add_argument("--trials", type=int, help="rounds, interleaved (default 3)")
    ex.add_argument("--duration", help="measured load per trial, e.g. 10s")
    ex.add_argument("--warmup", help="discarded load before measuring (default 3s)")
    ex.add_argument("--quick", action="store_true", help="3 trials of 5 s after 1 s of warm-up")
    ex.add_argument("--seed", type=int, help="seed of the interleaved order (default 1)")
    ex.add_argument("--primary", metavar="METRIC", help="the metric explained (default: the "
                    "workload's primary)")
    ex.add_argument("--margin", help="equivalence margin, e.g. 5%% (default 5%%)")
    _add_resource_flags(ex, defaults=False)
    ex.add_argument("--out", type=Path, help="run directory (default isobench-runs/<time>)")
    ex.add_argument("--dry-run", action="store_true", help="print the ladder and the plan")
    ex.add_argument("--no-report", action="store_true", help="do not write report.html")


def cmd_explain(args: argparse.Namespace) -> int:
    from isobench.report.ladder import ladder_lines, ladder_result, read_ladder
    from isobench.report.outputs import OutputRequest, write_outputs
    from isobench.report.rundata import load_run
    from isobench.run import explain
    from isobench.run.orchestrator import default_run_dir, dry_run
    from isobench.ui import RichEvents

    data: dict[str, Any] = ({"duration": "5s", "warmup": "1s", "trials": 3} if args.quick
                            else {})
    for key in ("workload", "scenario", "trials", "duration", "warmup", "seed", "primary",
                "margin"):
        if getattr(args, key) is not None:
            data[key] = getattr(args, key)
    data["resources"] = _resource_flags(args) or None
    data = {k: v for k, v in data.items() if v is not None}
    steps, notes = explain.ladder(args.source, args.target)
    if args.dry_run:
        for step in steps:
            console.print(f"{step.arm:<16} {step.label}", markup=False)
        for line in (*notes, *dry_run(explain.explain_benchfile(steps, data))):
            console.print(line, markup=False)
        return exitcodes.OK
    out = args.out or default_run_dir()
    console.print(f"[bold]isobench explain[/] {args.source} \u2192 {args.target}: "
                  f"{len(steps)} arms in one interleaved run \u2192 {out}")
    try:
        store = explain.run_explain(args.source, args.target, out, data,
                                    events=lambda: RichEvents(console))
    except KeyboardInterrupt:
        err_console.print(f"interrupted: results so far are in {out}")
        return exitcodes.INTERRUPTED
    run = load_run(store.root, with_samples=False)
    ladder = read_ladder(store.root) or {}
    result = ladder_result(run, ladder)
    if result is not None:
        for line in ladder_lines(result, ladder):
            console.print(line, markup=False, soft_wrap=True)
    write_outputs(console, store.root, OutputRequest(html=not args.no_report))
    failed = [t for t in run.trials if t.status != "ok"]
    for t in failed:
        console.print(f"failed {t.arm} #{t.trial + 1}: {t.error or ''}", markup=False)
    return exitcodes.TRIALS_FAILED if failed else exitcodes.OK
def cmd_fleet(args: argparse.Namespace) -> int:
    from isobench.fleet import cli as fleet_cli

    return fleet_cli.main(args, console)


COMMANDS = {
    "explain": cmd_explain,
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
    "suite": cmd_suite,
    "fleet": cmd_fleet,
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
