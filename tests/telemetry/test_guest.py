"""The guest agent's text format, parsed from /proc content captured on a real host."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from isobench.runtimes.base import Instance
from isobench.telemetry.guest import GuestSampler, parse_stats, split_sections
from isobench.telemetry.network import parse_net_dev
from isobench.telemetry.procfs import CLK_TCK

DATA = Path(__file__).parent / "data"
TEXTS = [(DATA / f"guest_stats_{i}.txt").read_text() for i in (1, 2)]


def _section_line(text: str, section: str, prefix: str) -> list[str]:
    body = split_sections(text)[section]
    return next(line for line in body.splitlines() if line.startswith(prefix)).split()


def test_sections() -> None:
    s = split_sections(TEXTS[0])
    assert set(s) == {"/proc/stat", "/proc/meminfo", "/proc/loadavg", "/proc/net/dev", "tasks"}
    assert s["tasks"] == "113"


def test_parse_values_match_the_captured_text() -> None:
    g = parse_stats(TEXTS[0])
    cpu_line = _section_line(TEXTS[0], "/proc/stat", "cpu ")
    assert g.cpu is not None
    assert g.cpu.user == int(cpu_line[1]) / CLK_TCK
    assert g.cpu.steal == int(cpu_line[8]) / CLK_TCK
    total = int(_section_line(TEXTS[0], "/proc/meminfo", "MemTotal:")[1]) * 1024
    avail = int(_section_line(TEXTS[0], "/proc/meminfo", "MemAvailable:")[1]) * 1024
    assert g.mem_total == total and g.mem_used == total - avail
    assert g.tasks == 113
    assert g.load1 == float(split_sections(TEXTS[0])["/proc/loadavg"].split()[0])
    net = parse_net_dev(split_sections(TEXTS[0])["/proc/net/dev"])
    assert "lo" in net
    assert g.net_rx_bytes == sum(c[0] for n, c in net.items() if n != "lo")


def test_garbled_sections_become_none() -> None:
    g = parse_stats("==> tasks <==\nnope\n==> /proc/meminfo <==\nMemTotal: x kB\n")
    assert g.cpu is None and g.mem_used is None and g.tasks is None and g.load1 is None


@pytest.fixture
def agent() -> Iterator[tuple[int, list[int]]]:
    """A stand-in for the in-guest agent on 127.0.0.1, answering the captured texts in turn."""
    hits = [0]

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            if self.path != "/cgi-bin/stats":
                self.send_error(404)
                return
            body = TEXTS[min(hits[0], 1)].encode()
            hits[0] += 1
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1]), hits
    finally:
        server.shutdown()
        server.server_close()


def test_sampler_polls_agent(agent: tuple[int, list[int]]) -> None:
    port, hits = agent
    inst = Instance(runtime="vm", host_port=1, launched_at=0.0, agent_port=port)
    sampler = GuestSampler(inst, interval=0.2, labels={"runtime": "vm"})
    assert sampler.check() is None
    sampler.start()
    time.sleep(0.7)
    sampler.stop()
    s = sampler.summary()
    assert hits[0] >= 2
    assert s["guest_tasks_max"] == 114
    first, last = parse_stats(TEXTS[0]), parse_stats(TEXTS[1])
    assert first.cpu is not None and last.cpu is not None
    busy = (last.cpu.user - first.cpu.user) / (last.cpu.total - first.cpu.total) * 100
    assert s["guest_cpu_user_percent_mean"] == pytest.approx(
        100
        * ((last.cpu.user + last.cpu.nice) - (first.cpu.user + first.cpu.nice))
        / (last.cpu.total - first.cpu.total)
    )
    assert busy >= 0
    assert all(x.metadata["source"] == "guest" for x in sampler.samples)


def test_no_agent_gives_reason() -> None:
    inst = Instance(runtime="vm", host_port=1, launched_at=0.0)
    reason = GuestSampler(inst).check()
    assert reason is not None and "agent" in reason


def test_unreachable_agent_counts_failures() -> None:
    inst = Instance(runtime="vm", host_port=1, launched_at=0.0, agent_port=9)
    sampler = GuestSampler(inst, interval=0.2)
    sampler.start()
    time.sleep(0.7)
    sampler.stop()
    assert sampler.summary()["guest_poll_failures"] >= 2
