"""Running host commands through one seam, so driver logic can be unit-tested with a fake."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class CommandResult:
    """What a finished command returned."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class CommandFailed(Exception):
    """A command exited non-zero where success was required."""

    def __init__(self, result: CommandResult) -> None:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        super().__init__(
            f"`{shlex.join(result.argv)}` exited {result.returncode}: {' | '.join(tail)}"
        )
        self.result = result


class CommandRunner(Protocol):
    """Runs a command to completion."""

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float | None = None,
        input: bytes | str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> CommandResult: ...


class SubprocessRunner:
    """The real runner: subprocess.run with captured text output."""

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float | None = None,
        input: bytes | str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> CommandResult:
        data = input.encode() if isinstance(input, str) else input
        # A session of its own: a Ctrl-C at the terminal reaches isobench only, which then stops
        # the whole child session itself (below), and never reaches a cleanup command (docker rm,
        # umount) half-way.
        child = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
        try:
            out, err = child.communicate(input=data, timeout=timeout)
        except BaseException:  # timeout, Ctrl-C: the command and everything it started go
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            raise
        proc = subprocess.CompletedProcess(child.args, child.returncode, out, err)
        result = CommandResult(
            tuple(argv),
            proc.returncode,
            proc.stdout.decode(errors="replace"),
            proc.stderr.decode(errors="replace"),
        )
        if check and not result.ok:
            raise CommandFailed(result)
        return result


@dataclass
class FakeRunner:
    """A scripted runner for unit tests of driver logic (never evidence that a runtime works).

    ``responses`` maps a command prefix (space-joined) to a result; the longest prefix wins.
    Every call is recorded in ``calls``.
    """

    responses: dict[str, CommandResult | tuple[int, str]] = field(default_factory=dict)
    calls: list[tuple[str, ...]] = field(default_factory=list)

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float | None = None,
        input: bytes | str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> CommandResult:
        argv_t = tuple(argv)
        self.calls.append(argv_t)
        joined = " ".join(argv_t)
        best: str | None = None
        for prefix in self.responses:
            if joined.startswith(prefix) and (best is None or len(prefix) > len(best)):
                best = prefix
        if best is None:
            result = CommandResult(argv_t, 0, "", "")
        else:
            resp = self.responses[best]
            result = (
                resp
                if isinstance(resp, CommandResult)
                else CommandResult(argv_t, resp[0], resp[1], "")
            )
        if check and not result.ok:
            raise CommandFailed(result)
        return result
