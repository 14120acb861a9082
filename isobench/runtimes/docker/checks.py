"""What ``doctor`` says about Docker Engine (shared by every Docker runtime)."""

from __future__ import annotations

from isobench.runtimes.base import HostCheck
from isobench.util.proc import SubprocessRunner

INFO_FORMAT = ("{{.ServerVersion}}|{{.Driver}}|{{.CgroupVersion}}|{{.CgroupDriver}}|"
               "{{range $k, $v := .Runtimes}}{{$k}},{{end}}")


def engine_check() -> HostCheck:
    """Docker Engine answers (version, storage driver, cgroups, registered OCI runtimes)."""
    try:
        out = SubprocessRunner().run(["docker", "info", "--format", INFO_FORMAT], check=False,
                                     timeout=15)
    except OSError:
        out = None
    if out is None or not out.ok:
        return HostCheck("docker engine", False, "not answering on /var/run/docker.sock",
                         "run scripts/start-dockerd.sh (`make setup` installs docker.io)")
    version, driver, cgroup, cg_driver, runtimes = (out.stdout.strip().split("|") + [""] * 5)[:5]
    return HostCheck("docker engine", True,
                     f"{version}, storage {driver}, cgroup v{cgroup} ({cg_driver}), "
                     f"runtimes {runtimes.strip(',')}")
