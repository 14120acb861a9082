import subprocess
import time

import psutil
import pytest

from isobench.util.proc import CommandFailed, SubprocessRunner


def test_output_and_failure() -> None:
    runner = SubprocessRunner()
    assert runner.run(["sh", "-c", "echo out; echo err >&2"]).stdout == "out\n"
    assert runner.run(["cat"], input="fed").stdout == "fed"
    with pytest.raises(CommandFailed, match="exited 3"):
        runner.run(["sh", "-c", "echo boom >&2; exit 3"])
    assert not runner.run(["false"], check=False).ok


def test_timeout_kills_the_command_and_its_children() -> None:
    marker = f"isobench-proc-test-{time.time_ns()}"
    # the background child sleeps a duration no other process on the host uses, so only this
    # test's own orphan can match (other tests may leave a plain "sleep 30" around)
    child = f"30.{time.time_ns() % 10**9:09d}"
    with pytest.raises(subprocess.TimeoutExpired):
        SubprocessRunner().run(["sh", "-c", f"sleep {child} & exec -a {marker} sleep 30"],
                               timeout=0.5)
    time.sleep(0.2)
    left = [
        p for p in psutil.process_iter(["cmdline"]) if marker in " ".join(p.info["cmdline"] or [])
    ]
    assert left == []
    orphans = [p for p in psutil.process_iter(["cmdline"])
               if (p.info["cmdline"] or [])[:2] == ["sleep", child]]
    assert orphans == []
