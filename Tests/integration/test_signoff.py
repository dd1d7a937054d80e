"""Issue 19, field sign-off: what an operator and a hydrologist found, each against the running gateway with a real
mosquitto and a pymodbus device (the shipped qdy30a level profile served by `pantau_harness.file_device`, whose
registers the test changes while it runs, or the harness's mixed-types device).

- 19.1  the status socket belongs to the status group (`pantau-status`, here a stand-in group): mode 0660, and a
        member may read it while a non-member may not;
- 19.2  a device removed by SIGHUP gets a retained availability `offline` with reason `removed`, which stays after
        the gateway stops;
- 19.4  a device whose valid timing keeps the bus thread in one bounded read longer than the stall limit is not a
        stall (the watchdog keeps pinging); a real stall that ends clears STATUS=stalled, with the log lines
        docs/install.md quotes;
- 19.9  a SIGTERM and restart during a rate-of-rise alert keeps the alert, and it clears exactly when the low
        before the restart leaves the period;
- 19.10 a river that is normal at start has its retained alert state without waiting for a change.
"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time

import pytest

from pantau_harness import mixed_types, senml
from pantau_harness.config import BASE_TOPIC, device, gateway_yaml, tcp_bus, topic
from pantau_harness.procs import free_port, harness_root, kill, repo_root, wait_until

pytestmark = pytest.mark.gateway

PROFILE_DIR = os.path.join(repo_root(), "firmware-profiles")
WATCHDOG_USEC = 2_000_000
RIVER = "river"
# WatchdogReporter's lines (Sources/PantauGateway/Watchdog.swift), which docs/install.md tells operators to look for.
STALLED_LINE = "workers stalled, withholding watchdog ping"
RESUMED_LINE = "all workers progress again, watchdog pings resumed"


class FileDevice:
    """`pantau_harness.file_device`: unit 1 on a TCP port, holding registers from a control file."""

    def __init__(self, workdir: str):
        self.port = free_port()
        self.control = os.path.join(workdir, "control.json")
        self.log_path = os.path.join(workdir, "file_device.log")
        self.proc: subprocess.Popen | None = None

    def set(self, holding: dict[int, int], delay_s: float = 0) -> None:
        tmp = self.control + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"holding": {str(a): v for a, v in holding.items()}, "delay_s": delay_s}, f)
        os.replace(tmp, self.control)

    def start(self) -> "FileDevice":
        env = dict(os.environ, PYTHONPATH=harness_root())
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pantau_harness.file_device", "--port", str(self.port), "--control", self.control],
            stdout=subprocess.PIPE, stderr=log, env=env, text=True)
        log.close()
        line = self.proc.stdout.readline()
        assert line.strip() == "READY", f"file device did not start: {line!r}"
        return self

    def stop(self) -> None:
        kill(self.proc)


@pytest.fixture
def file_device(tmp_path):
    made: list[FileDevice] = []

    def make(level_cm: int, delay_s: float = 0) -> FileDevice:
        workdir = tmp_path / f"filedev{len(made)}"
        workdir.mkdir()
        dev = FileDevice(str(workdir))
        dev.set(qdy30a(level_cm), delay_s)
        made.append(dev.start())
        return dev

    yield make
    for dev in made:
        dev.stop()


def qdy30a(level_cm: int) -> dict[int, int]:
    """The shipped qdy30a map: address 1, baud code 3, unit code 1 (cm), 0 decimals, the level, zero, full scale."""
    return {0: 1, 1: 3, 2: 1, 3: 0, 4: level_cm, 5: 0, 6: 1000}


def river_config(broker_port: int, workdir: str, device_port: int, flood: str, extra_device: str = "") -> str:
    config = gateway_yaml(
        broker_port=broker_port, workdir=workdir, buses=[tcp_bus("river-bus", device_port)], devices=[],
        status_socket=os.path.join(workdir, "st.sock"), profiles=[PROFILE_DIR])
    return config.replace(
        "devices:\n",
        "devices:\n"
        f"  - name: {RIVER}\n    bus: river-bus\n    unit: 1\n    profile: qdy30a\n    poll_interval: 1s\n"
        f"{extra_device}"
        f"    flood:\n      - {flood}\n", 1)


class NotifySocket:
    """The service manager's end of sd_notify (as in test_runtime.py): every datagram with its arrival time."""

    def __init__(self, path: str):
        import socket
        import threading

        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.lock = threading.Lock()
        self.datagrams: list[tuple[float, dict[str, str]]] = []
        self.running = True
        self.thread = threading.Thread(target=self._receive, daemon=True)
        self.thread.start()

    def _receive(self) -> None:
        while self.running:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            fields = dict(line.partition("=")[::2] for line in data.decode("utf-8", "replace").split("\n") if "=" in line)
            with self.lock:
                self.datagrams.append((time.monotonic(), fields))

    def with_key(self, key: str, since: float = 0) -> list[tuple[float, dict[str, str]]]:
        with self.lock:
            return [(t, f) for t, f in self.datagrams if key in f and t >= since]

    def close(self) -> None:
        self.running = False
        self.sock.close()
        self.thread.join(timeout=2)


@pytest.fixture
def notify_socket(short_tmp):
    ns = NotifySocket(os.path.join(short_tmp, "notify.sock"))
    yield ns
    ns.close()


def notify_env(ns: NotifySocket, **extra: str) -> dict[str, str]:
    return {"NOTIFY_SOCKET": ns.path, "WATCHDOG_USEC": str(WATCHDOG_USEC), **extra}


# --- 19.1 the status socket's group ---------------------------------------------------------------------------


def test_status_socket_is_mode_0660_and_belongs_to_the_status_group(
    pantau_bin, mosquitto_broker, pymodbus_tcp_device, gateway, short_tmp,
):
    if os.geteuid() != 0:
        pytest.skip("handing the socket to another group and switching users needs root (CI runs as root)")
    status_gid = 65534  # nogroup: the stand-in for pantau-status, which this host does not have
    os.chmod(short_tmp, 0o711)  # like RuntimeDirectoryMode=0711: passable, not listable
    sim = pymodbus_tcp_device(mixed_types.register_spec())
    config = gateway_yaml(
        broker_port=mosquitto_broker.port, workdir=short_tmp, buses=[tcp_bus("tcp-1", sim.port)],
        devices=[device("dev-a", "tcp-1", 1)], status_socket=os.path.join(short_tmp, "st.sock"))
    gw = gateway(config, env={"PANTAU_STATUS_GROUP": "nogroup"})
    sock = os.path.join(short_tmp, "st.sock")
    assert wait_until(lambda: os.path.exists(sock), 30), gw.logs()[-3000:]
    assert wait_until(lambda: os.stat(sock).st_gid == status_gid, 10), gw.logs()[-3000:]
    st = os.stat(sock)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660, oct(st.st_mode)

    def status_as(gid: int) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["setpriv", "--reuid=65534", f"--regid={gid}", "--clear-groups", pantau_bin, "status", "--socket", sock,
             "--json"], capture_output=True, text=True, timeout=30)

    member = status_as(status_gid)
    assert member.returncode == 0, member.stdout + member.stderr
    assert json.loads(member.stdout)["buses"][0]["name"] == "tcp-1"
    outsider = status_as(65533)
    assert outsider.returncode != 0
    assert "ermission denied" in outsider.stdout + outsider.stderr, outsider.stdout + outsider.stderr


def test_without_the_status_group_the_socket_stays_with_the_gateway_and_it_says_so(
    mosquitto_broker, pymodbus_tcp_device, gateway, short_tmp,
):
    sim = pymodbus_tcp_device(mixed_types.register_spec())
    config = gateway_yaml(
        broker_port=mosquitto_broker.port, workdir=short_tmp, buses=[tcp_bus("tcp-1", sim.port)],
        devices=[device("dev-a", "tcp-1", 1)], status_socket=os.path.join(short_tmp, "st.sock"))
    gw = gateway(config, env={"PANTAU_STATUS_GROUP": "pantau-no-such-group"})
    sock = os.path.join(short_tmp, "st.sock")
    assert wait_until(lambda: "no group pantau-no-such-group" in gw.logs(), 30), gw.logs()[-3000:]
    st = os.stat(sock)
    assert (stat.S_IMODE(st.st_mode), st.st_gid) == (0o660, os.getegid())
    assert gw.alive


# --- 19.2 a device removed by SIGHUP ----------------------------------------------------------------------------


def test_a_device_removed_by_sighup_is_retained_offline_removed_also_after_the_stop(
    mosquitto_broker, mqtt_collector, pymodbus_tcp_device, gateway, short_tmp, schemas,
):
    collector = mqtt_collector(mosquitto_broker, f"{BASE_TOPIC}/#")
    spec = mixed_types.register_spec()
    sim = pymodbus_tcp_device({1: spec, 2: spec})

    def config(devices) -> str:
        return gateway_yaml(
            broker_port=mosquitto_broker.port, workdir=short_tmp, buses=[tcp_bus("tcp-1", sim.port)],
            devices=devices, status_socket=os.path.join(short_tmp, "st.sock"))

    gw = gateway(config([device("dev-a", "tcp-1", 1), device("dev-b", "tcp-1", 2)]))
    for dev in ("dev-a", "dev-b"):
        collector.wait_for(
            lambda c, d=dev: any(m.json().get("state") == "online" for m in c.messages(topic("availability", d))),
            30, f"{dev} online", gw)

    with open(gw.config_path, "w", encoding="utf-8") as f:
        f.write(config([device("dev-a", "tcp-1", 1)]))
    hup = time.time()
    gw.proc.send_signal(signal.SIGHUP)
    removed = collector.wait_for(
        lambda c: [m for m in c.messages(topic("availability", "dev-b"), since=hup) if m.json().get("state") == "offline"],
        30, "dev-b's offline availability after the reload", gw)[0]
    body = removed.json()
    assert body["reason"] == "removed", body
    schemas.validate("availability", body)
    # dev-a goes on, and nothing says dev-b is online again.
    collector.wait_for_messages(topic("telemetry", "dev-a"), 2, 30, since=hup, watch=gw)
    assert [m.json()["state"] for m in collector.messages(topic("availability", "dev-b"), since=hup)] == ["offline"]

    assert gw.stop() == 0
    # After the stop a newcomer is told by the broker: offline, removed (not `online` for ever).
    newcomer = mqtt_collector(mosquitto_broker, topic("availability", "dev-b"))
    retained = newcomer.wait_for_messages(topic("availability", "dev-b"), 1, 10)[0]
    assert retained.retain and retained.json()["state"] == "offline" and retained.json()["reason"] == "removed"


# --- 19.10 the alert state at start ----------------------------------------------------------------------------


def test_a_river_normal_at_start_has_its_retained_alert_state(
    mosquitto_broker, mqtt_collector, file_device, gateway, short_tmp, schemas,
):
    river = file_device(level_cm=42)
    flood = "{point: level, siaga3: 150, siaga2: 200, siaga1: 250, hysteresis: 5}"
    gw = gateway(river_config(mosquitto_broker.port, short_tmp, river.port, flood))
    collector = mqtt_collector(mosquitto_broker, f"{BASE_TOPIC}/#")
    alerts = topic("alerts/level", RIVER)
    collector.wait_for_messages(topic("telemetry", RIVER), 2, 30, watch=gw)
    # No level change ever happens, yet the state is there, retained, for a subscriber arriving now.
    retained = mqtt_collector(mosquitto_broker, alerts).wait_for_messages(alerts, 1, 15)[0]
    body = retained.json()
    schemas.validate("alert", body)
    assert retained.retain is True
    assert (body["level"], body["level_name"], body["value"], body["stale"]) == (4, "normal", 42, False), body
    # Once, not at every reading.
    collector.wait_for_messages(topic("telemetry", RIVER), 5, 30, watch=gw)
    assert len(collector.messages(alerts)) == 1, [m.json() for m in collector.messages(alerts)]


# --- 19.9 a restart during a rate-of-rise alert ------------------------------------------------------------------


def test_a_restart_keeps_an_active_rate_of_rise_alert_until_its_low_leaves_the_period(
    mosquitto_broker, mqtt_collector, file_device, gateway, short_tmp, schemas,
):
    river = file_device(level_cm=100)
    # Thresholds far above: only the rate of rise (20 cm within 1 minute) is in play.
    flood = "{point: level, siaga3: 900, siaga2: 950, siaga1: 990, hysteresis: 5, rate_of_rise: 20, rate_period: 1m}"
    gw = gateway(river_config(mosquitto_broker.port, short_tmp, river.port, flood))
    collector = mqtt_collector(mosquitto_broker, f"{BASE_TOPIC}/#")
    alerts = topic("alerts/level", RIVER)
    telemetry = topic("telemetry", RIVER)
    collector.wait_for_messages(telemetry, 3, 30, watch=gw)

    river.set(qdy30a(130))  # +30 cm: the rate-of-rise alert
    active = collector.wait_for(
        lambda c: [m.json() for m in c.messages(alerts) if m.json()["rate_of_rise"]["active"]], 30,
        "the rate-of-rise alert", gw)[0]
    assert active["rate_of_rise"]["rise"] == 30, active

    def level_times(value: int) -> list[int]:
        records = (senml.resolve(m.json())["level"] for m in collector.messages(telemetry))
        return [int(round(r.time * 1000)) for r in records if r.value == value]

    last_low_ms = max(level_times(100))
    # SIGTERM (graceful: the state is saved) and a restart, well inside the 1 minute period.
    assert gw.stop() == 0
    restart = time.time()
    gw.start()
    announced = collector.wait_for(
        lambda c: [m.json() for m in c.messages(alerts, since=restart)], 30, "the alert state after the restart", gw)[0]
    schemas.validate("alert", announced)
    assert announced["rate_of_rise"]["active"] is True, announced

    # It clears only when the last 100 cm reading leaves the period, not at the first reading after the restart.
    cleared = collector.wait_for(
        lambda c: [m.json() for m in c.messages(alerts, since=restart) if not m.json()["rate_of_rise"]["active"]],
        120, "the alert to clear", gw)[0]
    assert cleared["value_at"] >= last_low_ms + 60_000, (cleared, last_low_ms)
    assert cleared["rate_of_rise"]["rise"] == 0, cleared
    for body in (m.json() for m in collector.messages(alerts, since=restart)):
        if body["value_at"] is not None and body["value_at"] < last_low_ms + 60_000:
            assert body["rate_of_rise"]["active"] is True, body


# --- 19.4 the watchdog and bounded I/O ------------------------------------------------------------------------


def test_a_slow_device_within_its_timeout_is_not_a_stall(
    mosquitto_broker, mqtt_collector, file_device, gateway, short_tmp, notify_socket,
):
    # Answers after 24 s: longer than the 20 s stall limit, within its valid timeout_ms of 30 s.
    river = file_device(level_cm=42, delay_s=24)
    flood = "{point: level, siaga3: 150, siaga2: 200, siaga1: 250, hysteresis: 5}"
    config = river_config(
        mosquitto_broker.port, short_tmp, river.port, flood, extra_device="    timeout_ms: 30000\n    retries: 0\n")
    collector = mqtt_collector(mosquitto_broker, f"{BASE_TOPIC}/#")
    gw = gateway(config, env=notify_env(notify_socket))
    assert wait_until(lambda: notify_socket.with_key("READY") or not gw.alive, 30), gw.logs()[-3000:]
    ready_at = notify_socket.with_key("READY")[0][0]
    first = collector.wait_for_messages(topic("telemetry", RIVER), 1, 60, watch=gw)[0]
    river.set(qdy30a(42), delay_s=0)
    answered_at = time.monotonic()
    stalls = [f for _, f in notify_socket.with_key("STATUS") if "stalled" in f["STATUS"]]
    assert not stalls, stalls
    assert STALLED_LINE not in gw.logs()
    # The pings went on while the bus thread waited in the read (past the 20 s stall limit).
    late = [t for t, _ in notify_socket.with_key("WATCHDOG", since=ready_at + 21) if t < answered_at]
    assert late, f"no WATCHDOG=1 between 21 s after READY and the answer; {first.json()}"


def test_a_stall_that_ends_clears_the_stalled_status_and_logs_what_install_md_says(
    mosquitto_broker, pymodbus_tcp_device, gateway, short_tmp, notify_socket,
):
    install = open(os.path.join(repo_root(), "docs", "install.md"), encoding="utf-8").read()
    assert STALLED_LINE in install and RESUMED_LINE in install
    sim = pymodbus_tcp_device(mixed_types.register_spec())
    config = gateway_yaml(
        broker_port=mosquitto_broker.port, workdir=short_tmp, buses=[tcp_bus("tcp-1", sim.port)],
        devices=[device("dev-a", "tcp-1", 1)], status_socket=os.path.join(short_tmp, "st.sock"))
    # Bus tcp-1's thread hangs 2 s after start for 26 s (longer than the 20 s stall limit), then goes on.
    gw = gateway(config, env=notify_env(notify_socket, PANTAU_FAILPOINT="wedge-bus:tcp-1:2:26"))

    def stalled():
        return [(t, f) for t, f in notify_socket.with_key("STATUS") if f["STATUS"].startswith("stalled")]

    assert wait_until(lambda: stalled() or not gw.alive, 60), gw.logs()[-3000:]
    stalled_at, fields = stalled()[0]
    assert fields["STATUS"] == "stalled: bus tcp-1", fields
    assert wait_until(
        lambda: [f for t, f in notify_socket.with_key("STATUS", since=stalled_at) if "stalled" not in f["STATUS"]]
        or not gw.alive, 60), gw.logs()[-3000:]
    cleared_at, cleared = [(t, f) for t, f in notify_socket.with_key("STATUS", since=stalled_at)
                           if "stalled" not in f["STATUS"]][0]
    assert re.match(r"polling 1 device on 1 bus", cleared["STATUS"]), cleared
    assert notify_socket.with_key("WATCHDOG", since=cleared_at) or wait_until(
        lambda: notify_socket.with_key("WATCHDOG", since=cleared_at), 10)
    pings_while_stalled = [t for t, _ in notify_socket.with_key("WATCHDOG", since=stalled_at) if t < cleared_at]
    assert not pings_while_stalled
    logs = gw.logs()
    assert STALLED_LINE in logs and "bus tcp-1" in logs[logs.index(STALLED_LINE):]
    assert RESUMED_LINE in logs[logs.index(STALLED_LINE):]
