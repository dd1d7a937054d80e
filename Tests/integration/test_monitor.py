"""`pantau monitor` in a pseudo-terminal against two gateways (issue 16): one is killed and its row turns offline
(its Will), and a flood alert shows its level. `--json` streams the same rows as JSON Lines."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import time

import pytest

from pantau_harness.config import device, gateway_yaml, tcp_bus

pytestmark = pytest.mark.gateway

PROFILE = """\
id: test-river
manufacturer: Test
model: River
source: "integration test"
points:
  - {name: level, quantity: water_level, table: input, address: 0, type: u16, scale: 0.01, unit: m}
"""
FLOOD = "{point: level, siaga3: 0.5, siaga2: 1.0, siaga1: 2.0, min_dwell: 0s}"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def river_gateway(gateway, broker, pymodbus_tcp_device, tmp_path, name: str, raw_level: int):
    dev = pymodbus_tcp_device({1: {"input": {0: raw_level}}})
    workdir = tmp_path / f"w-{name}"
    workdir.mkdir()
    profiles = tmp_path / "profiles"
    profiles.mkdir(exist_ok=True)
    (profiles / "test-river.yaml").write_text(PROFILE)
    config = gateway_yaml(
        broker_port=broker.port, workdir=str(workdir), buses=[tcp_bus("net", dev.port)],
        devices=[device("river", "net", 1, profile="test-river", poll_interval="1s")],
        status_socket=str(workdir / "status.sock"), profiles=[str(profiles)], client_id=f"pantau-{name}",
    )
    config = config.replace("id: gw-test", f"id: {name}", 1)
    config = config.replace(
        "profile: test-river, poll_interval: 1s}", f"profile: test-river, poll_interval: 1s, flood: [{FLOOD}]}}", 1)
    return gateway(config)


class PtyMonitor:
    """`pantau monitor` on a pty, as an operator's terminal; `screen()` is the text after the last redraw."""

    def __init__(self, binary: str, port: int, *args: str):
        self.master, slave = pty.openpty()
        env = dict(os.environ, TERM="xterm-256color")
        env.pop("NO_COLOR", None)
        self.proc = subprocess.Popen(
            [binary, "monitor", "--port", str(port), "--refresh-ms", "300", *args],
            stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
        os.close(slave)
        self.buffer = ""

    def read(self) -> None:
        while select.select([self.master], [], [], 0.1)[0]:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.buffer += chunk.decode(errors="replace")

    def raw_screen(self) -> str:
        self.read()
        return self.buffer.rsplit("\x1b[H\x1b[2J", 1)[-1]

    def screen(self) -> str:
        return ANSI.sub("", self.raw_screen())

    def wait(self, predicate, timeout: float, what: str) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.screen()
            if predicate(text):
                return text
            time.sleep(0.2)
        raise AssertionError(f"monitor never showed {what}; screen:\n{self.screen()}")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self.master)


def row(screen: str, name: str) -> str:
    return next((line for line in screen.splitlines() if line.startswith(f"test-site/{name}")), "")


def device_row(screen: str, gateway_name: str) -> str:
    lines = screen.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(f"test-site/{gateway_name}") and i + 1 < len(lines):
            return lines[i + 1]
    return ""


def test_monitor_shows_both_gateways_marks_the_killed_one_offline_and_shows_the_flood_level(
    pantau_bin, make_broker, pymodbus_tcp_device, gateway, tmp_path,
):
    broker = make_broker()
    gw_a = river_gateway(gateway, broker, pymodbus_tcp_device, tmp_path, "gw-a", 80)    # 0.80 m: waspada (3)
    gw_b = river_gateway(gateway, broker, pymodbus_tcp_device, tmp_path, "gw-b", 150)   # 1.50 m: siaga (2)
    monitor = PtyMonitor(pantau_bin, broker.port)
    try:
        screen = monitor.wait(
            lambda s: "online" in row(s, "gw-a") and "online" in row(s, "gw-b")
            and "flood 2 siaga" in device_row(s, "gw-b") and "flood 3 waspada" in device_row(s, "gw-a"),
            40, "both gateways online with their flood levels")
        assert "river" in device_row(screen, "gw-a") and "online" in device_row(screen, "gw-a"), screen
        # Colour on a terminal: the offline/online status is painted.
        assert "\x1b[32m" in monitor.raw_screen()
        gw_b.kill()
        screen = monitor.wait(lambda s: "offline" in row(s, "gw-b"), 40, "gw-b offline after its kill")
        assert "online" in row(screen, "gw-a"), screen
        assert "STALE" in device_row(screen, "gw-b"), screen
        assert "flood 2 siaga" in device_row(screen, "gw-b"), screen
    finally:
        monitor.stop()
        gw_a.stop()


def test_monitor_json_lines(pantau_bin, make_broker, pymodbus_tcp_device, gateway, tmp_path):
    broker = make_broker()
    river_gateway(gateway, broker, pymodbus_tcp_device, tmp_path, "gw-a", 150)
    proc = subprocess.Popen(
        [pantau_bin, "monitor", "--port", str(broker.port), "--refresh-ms", "300", "--json", "--site", "test-site"],
        stdout=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 40
        pending = b""
        # Read with a deadline (select, not readline): a silent monitor fails the test instead of hanging it.
        while time.monotonic() < deadline:
            if not select.select([proc.stdout], [], [], 0.5)[0]:
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                row_json = json.loads(line)
                river = row_json.get("devices", {}).get("river", {})
                if row_json.get("status") == "online" and river.get("flood_level") == 2:
                    assert row_json["site"] == "test-site" and row_json["gateway"] == "gw-a"
                    assert river["flood_level_name"] == "siaga" and river["availability"] == "online"
                    return
        raise AssertionError("no JSON line with gw-a online at flood level 2")
    finally:
        proc.kill()
        proc.wait()
