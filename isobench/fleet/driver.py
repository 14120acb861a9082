"""``isobench fleet run``: one benchfile on every host of an Ansible inventory.

The driver does what only the controller can do and leaves the hosts to Ansible:

1. ``hosts()``: the inventory's hosts after ``--limit`` and the user's Ansible flags, as
   ``ansible-playbook --list-hosts`` names them (Ansible's own inventory syntax, patterns and
   plug-ins, nothing re-parsed here).
2. Hosts whose run directory is already complete in the fleet directory are skipped, so a re-run
   with the same ``--out`` fetches only what is missing (:mod:`isobench.fleet.layout`).
3. ``build_wheel()``: a wheel of the checkout this isobench runs from (a copy of its tracked and
   untracked-but-not-ignored files, so the worktree gets no ``build/``); ``pip wheel --no-deps``.
4. ``ansible-playbook`` runs the packaged ``playbook.yaml`` on the remaining hosts (``--limit``
   set to exactly them; ``--serial`` is ``--forks 1``: one host at a time, so no two hosts'
   benchmarks overlap, which matters when two "hosts" share a machine). The user's extra
   arguments (``-u``, ``-b``, ``--private-key``, ``--ssh-common-args``, ``--vault-password-file``,
   ``-e``...) go straight to it. Ansible's ``tree`` callback keeps each host's last result, which
   is where an unreachable host's reason comes from.
5. ``collect()``: each fetched archive is unpacked into ``<fleet dir>/<host>/`` (via a temporary
   directory, then renamed: a host directory is either whole or absent) and every host's outcome
   is written to ``<fleet dir>/fleet/status/<host>.json``.

Guarantees: one host's failure (unreachable, setup failed, ``isobench run`` failed) is recorded
with its reason and never stops the others; isobench writes nothing on the controller outside
the fleet directory but a temporary build copy (Ansible keeps its own ``~/.ansible``); bad input
(exit 2) is refused before anything is made; the exit code is 0 when every host is complete,
1 otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from isobench.errors import IsobenchError
from isobench.fleet import layout
from isobench.fleet.layout import HostStatus

PLAYBOOK = Path(__file__).with_name("playbook.yaml")
SETUP_SCRIPTS = ("setup-host.sh", "start-dockerd.sh", "register-runsc.sh", "runsc-release.sh")


class FleetError(IsobenchError):
    """Bad input to ``isobench fleet`` (exit 2, nothing run)."""


@dataclass
class FleetOptions:
    """What ``isobench fleet run`` was asked (see the CLI's help)."""

    inventory: str
    benchfile: Path
    out: Path
    quick: bool = False
    serial: bool = False
    limit: str | None = None
    forks: int | None = None
    run_args: list[str] = field(default_factory=list)
    ansible_args: list[str] = field(default_factory=list)
    ansible_playbook: str = "ansible-playbook"


def find_ansible_playbook(explicit: str = "ansible-playbook") -> str:
    """``ansible-playbook`` beside this Python (a venv with the ``fleet`` extra) or on PATH."""
    beside = Path(sys.executable).with_name("ansible-playbook")
    if explicit == "ansible-playbook" and beside.exists():
        return str(beside)
    found = shutil.which(explicit)
    if found is None:
        raise FleetError("ansible-playbook not found",
                         fix="pip install 'isobench[fleet]' (ansible-core) into isobench's venv")
    return found


def checkout_root() -> Path:
    """The source checkout this isobench runs from (where the wheel and setup scripts come from).

    Raises:
        FleetError: isobench is installed from a wheel, not run from a checkout.
    """
    root = Path(__file__).resolve().parents[2]
    setup = root / "scripts" / SETUP_SCRIPTS[0]
    if not (root / "pyproject.toml").is_file() or not setup.is_file():
        raise FleetError(f"{root} is not an isobench checkout (no pyproject.toml, scripts/)",
                         fix="run isobench fleet from a git clone of isobench (make setup)")
    return root


def _source_files(root: Path) -> list[Path]:
    """Tracked and untracked-but-not-ignored files (git), else everything but caches and runs."""
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z", "-co", "--exclude-standard"],
            check=True, capture_output=True).stdout
        return [Path(p) for p in out.decode().split("\0") if p and (root / p).is_file()]
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".venv", "build", "dist", "isobench-runs", "fleet-runs", "__pycache__"}
        return [p.relative_to(root) for p in root.rglob("*")
                if p.is_file() and not skip & set(p.relative_to(root).parts)]


def build_wheel(root: Path, dest: Path) -> Path:
    """Build ``isobench-*.whl`` from a copy of ``root`` into ``dest`` (``root`` is not touched).
    pip's build isolation takes setuptools and wheel from the configured package index.

    Raises:
        FleetError: the build failed (its last lines in the message).
    """
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob("isobench-*.whl"):
        old.unlink()
    with tempfile.TemporaryDirectory(prefix="isobench-wheel-") as tmp:
        src = Path(tmp) / "src"
        for rel in _source_files(root):
            target = src / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / rel, target)
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
             "--wheel-dir", str(dest), str(src)],
            capture_output=True, text=True, check=False)
    wheels = sorted(dest.glob("isobench-*.whl"))
    if proc.returncode != 0 or not wheels:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise FleetError(f"building the isobench wheel failed: {tail}",
                         fix=f"check that `pip wheel --no-deps {root}` works")
    return wheels[-1]


def list_hosts(opts: FleetOptions, playbook: str = "ansible-playbook") -> list[str]:
    """The hosts the play would run on (``ansible-playbook --list-hosts``), in inventory order.

    Raises:
        FleetError: Ansible could not read the inventory or the options (its message).
    """
    cmd = [playbook, "--list-hosts", "-i", opts.inventory, *_limit(opts.limit),
           *opts.ansible_args, str(PLAYBOOK)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise FleetError(f"ansible-playbook --list-hosts failed: {tail}",
                         fix="check the inventory (-i) and the Ansible arguments")
    return parse_list_hosts(proc.stdout)


def parse_list_hosts(text: str) -> list[str]:
    """Host names from ``ansible-playbook --list-hosts`` output (the lines under ``hosts (N):``)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        head = line.strip()
        if head.startswith("hosts (") and head.endswith("):"):
            n = int(head[len("hosts ("):-2])
            return [h.strip() for h in lines[i + 1:i + 1 + n]]
    return []


def _limit(limit: str | None) -> list[str]:
    return ["--limit", limit] if limit else []


def playbook_command(opts: FleetOptions, hosts: Sequence[str], vars_file: Path,
                     playbook: str = "ansible-playbook") -> list[str]:
    """The ``ansible-playbook`` command for ``hosts`` (pure)."""
    forks = 1 if opts.serial else opts.forks
    cmd = [playbook, "-i", opts.inventory, "--limit", ",".join(hosts)]
    if forks:
        cmd += ["--forks", str(forks)]
    return [*cmd, "-e", f"@{vars_file}", *opts.ansible_args, str(PLAYBOOK)]


def ansible_env(fleet_dir: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment: Ansible's ``tree`` callback added to the user's callbacks, into
    ``<fleet dir>/fleet/tree``."""
    env = dict(os.environ if base is None else base)
    enabled = [c for c in env.get("ANSIBLE_CALLBACKS_ENABLED", "").split(",") if c.strip()]
    env["ANSIBLE_CALLBACKS_ENABLED"] = ",".join([*enabled, "ansible.builtin.tree"])
    env["ANSIBLE_CALLBACK_TREE_DIR"] = str(layout.tree_dir(fleet_dir))
    env.setdefault("ANSIBLE_RETRY_FILES_ENABLED", "false")
    return env


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class FleetResult:
    """Every host's outcome, in inventory order, and Ansible's exit code (None: not run)."""

    fleet_dir: Path
    hosts: list[HostStatus]
    ansible_rc: int | None

    @property
    def ok(self) -> bool:
        return all(h.complete for h in self.hosts)


def run_fleet(opts: FleetOptions, say: Callable[[str], None] = print) -> FleetResult:
    """Run the benchfile on every host not yet complete in ``opts.out`` (module docstring).

    Raises:
        FleetError: bad input (missing benchfile, a fleet directory made with another benchfile,
            no hosts, a host named like the fleet's own directory, no ansible-playbook).
    """
    if not opts.benchfile.is_file():
        raise FleetError(f"benchfile {opts.benchfile} not found", fix="pass -f BENCHFILE")
    playbook = find_ansible_playbook(opts.ansible_playbook)
    fleet_dir = opts.out
    run_args = (["--quick"] if opts.quick else []) + list(opts.run_args)
    hosts = list_hosts(opts, playbook)
    if not hosts:
        raise FleetError("no hosts matched", fix="check the inventory (-i) and --limit")
    layout.check_names(hosts)
    layout.claim(fleet_dir, benchfile_sha256=file_sha256(opts.benchfile), run_args=run_args,
                 inventory=opts.inventory)
    done = [h for h in hosts if layout.is_complete(fleet_dir, h)]
    todo = [h for h in hosts if h not in done]
    for h in done:
        say(f"{h}: complete in {fleet_dir / h}, skipped")
    if not todo:
        return FleetResult(fleet_dir, [layout.read_status(fleet_dir, h) for h in hosts], None)
    meta = layout.meta_dir(fleet_dir)
    wheel = build_wheel(checkout_root(), meta / "dist")
    scripts = meta / "scripts"
    scripts.mkdir(parents=True, exist_ok=True)
    for name in SETUP_SCRIPTS:
        shutil.copy2(checkout_root() / "scripts" / name, scripts / name)
    for h in todo:  # this attempt's outcome replaces the last one's
        layout.forget_attempt(fleet_dir, h)
    vars_file = meta / "vars.json"
    vars_file.write_text(json.dumps({
        "isobench_fleet_dir": str(fleet_dir.resolve()),
        "isobench_fleet_run": fleet_dir.resolve().name,
        "isobench_wheel": str(wheel.resolve()),
        "isobench_scripts": str(scripts.resolve()),
        "isobench_benchfile": str(opts.benchfile.resolve()),
        "isobench_run_args": run_args,
    }, indent=2) + "\n")
    cmd = playbook_command(opts, todo, vars_file, playbook)
    say("$ " + " ".join(cmd))
    started = time.time()
    rc = subprocess.run(cmd, env=ansible_env(fleet_dir), check=False).returncode
    say(f"ansible-playbook exited {rc} after {time.time() - started:.0f} s")
    statuses = [layout.collect(fleet_dir, h) if h in todo else layout.read_status(fleet_dir, h)
                for h in hosts]
    return FleetResult(fleet_dir, statuses, rc)
