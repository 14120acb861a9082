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


@dataclass(frozen=True)
class Invocation:
    """One :meth:`CommandRunner.run` call's arguments, as a runner executes them."""

    argv: tuple[str, ...]
    timeout: float | None = None
    input: bytes | str | None = None
    env: Mapping[str, str] | None = None
    cwd: Path | None = None


class _CheckedRunner:
    """What every runner shares: ``run`` as :class:`CommandRunner` states it, with ``check``
    raising :class:`CommandFailed`; a runner only says how it executes (``_execute``)."""

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
        result = self._execute(Invocation(tuple(argv), timeout, input, env, cwd))
        if check and not result.ok:
            raise CommandFailed(result)
        return result

    def _execute(self, call: Invocation) -> CommandResult:
        raise NotImplementedError


class SubprocessRunner(_CheckedRunner):
    """The real runner: subprocess.run with captured text output."""

    def _execute(self, call: Invocation) -> CommandResult:
        argv, data = call.argv, call.input
        data = data.encode() if isinstance(data, str) else data
        # A session of its own: a Ctrl-C at the terminal reaches isobench only, which then stops
        # the whole child session itself (below), and never reaches a cleanup command (docker rm,
        # umount) half-way.
        child = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(call.env) if call.env is not None else None,
            cwd=call.cwd,
            start_new_session=True,
        )
        try:
            out, err = child.communicate(input=data, timeout=call.timeout)
        except BaseException:  # timeout, Ctrl-C: the command and everything it started go
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            raise
        return CommandResult(
            argv, child.returncode, out.decode(errors="replace"), err.decode(errors="replace")
        )


@dataclass
class FakeRunner(_CheckedRunner):
    """A scripted runner for unit tests of driver logic (never evidence that a runtime works).

    ``responses`` maps a command prefix (space-joined) to a result; the longest prefix wins.
    Every call is recorded in ``calls``.
    """

    responses: dict[str, CommandResult | tuple[int, str]] = field(default_factory=dict)
    calls: list[tuple[str, ...]] = field(default_factory=list)

    def _execute(self, call: Invocation) -> CommandResult:
        argv_t = call.argv
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
        return result
