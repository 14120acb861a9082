import pytest

from isobench.errors import ConfigError
from isobench.runtimes.base import Runtime
from isobench.trial import check_replicas, combine_telemetry, scenario_seconds
from isobench.workloads.base import LaunchSpec


class _HostNet(Runtime):
    name = "fake-host"
    kind = "process"
    artifact = "rootfs"

    def check(self) -> None:
        return None

    def start(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    def stop(self, instance) -> None:  # type: ignore[no-untyped-def]
        pass


class _OwnNet(_HostNet):
    shares_host_network = False


def test_replica_costs_add_up_host_figures_do_not() -> None:
    a = {"cpu_seconds": 1.0, "rss_bytes_peak": 100.0, "host_cpu_user_percent_mean": 40.0,
         "cpu_wall_seconds": 10.0, "net_source_iface": 1.0}
    b = {"cpu_seconds": 3.0, "rss_bytes_peak": 50.0, "host_cpu_user_percent_mean": 60.0,
         "cpu_wall_seconds": 10.2, "net_source_iface": 1.0}
    merged = combine_telemetry([a, b])
    assert merged["cpu_seconds"] == 4.0
    assert merged["rss_bytes_peak"] == 150.0
    assert merged["host_cpu_user_percent_mean"] == 50.0
    assert merged["cpu_wall_seconds"] == pytest.approx(10.1)
    assert merged["net_source_iface"] == 1.0
    assert combine_telemetry([a]) == a


def test_fixed_port_replicas_on_the_host_network_are_refused() -> None:
    fixed = LaunchSpec(argv=("/app",), port=8000)
    with pytest.raises(ConfigError, match="cannot share the host network"):
        check_replicas(_HostNet(), fixed, 2)
    check_replicas(_OwnNet(), fixed, 2)
    check_replicas(_HostNet(), fixed, 1)
    check_replicas(_HostNet(), LaunchSpec(argv=("/app", "{port}")), 3)


def test_scenario_seconds_takes_the_longest_sub_scenario() -> None:
    assert scenario_seconds({"duration": "20s"}) == 20.0
    assert scenario_seconds({"scenarios": {"a": {"duration": "5s"}, "b": {"duration": "1m"}}}) == 60
    assert scenario_seconds({"executor": "per-vu-iterations"}) == 0.0
