"""Framed UART sensors (`type: uart` buses, profiles with a `frame:` section) end to end over socat pty pairs,
against the Python emulators in `pantau_harness.uart_sensor` (written from the datasheets, independent of the
Swift code): Plantower PMS5003 (passive), PMS7003 (active streaming) and Nova SDS011 (query mode).

A frame with a bad checksum and a truncated frame are counted by the bus (`crc_errors`, `timeouts` in
`pantau status`) and never published as good: their polls publish `device_error` without values, and the
emulator's bad frames carry the sentinel 999, which must never appear.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from pantau_harness import link_profiles, senml
from pantau_harness.config import BASE_TOPIC, gateway_yaml, topic
from pantau_harness.modbus_sim import STARTUP_TIMEOUT, PtyPair, _readline_with_timeout
from pantau_harness.procs import harness_root, kill, repo_root, wait_until

pytestmark = pytest.mark.gateway

PROFILE_DIR = os.path.join(repo_root(), "firmware-profiles")
SENTINEL = 999.0


class Emulator:
    def __init__(self, workdir: str, model: str, values: dict, mode: str = "passive", faults: str = ""):
        self.pair = PtyPair(workdir)
        self.log_path = os.path.join(workdir, "sensor.log")
        self.args = ["--model", model, "--mode", mode, "--faults", faults,
                     "--values", ",".join(f"{k}={v}" for k, v in values.items())]
        self.proc = None

    def start(self) -> "Emulator":
        self.pair.start()
        env = dict(os.environ, PYTHONPATH=harness_root() + os.pathsep + os.environ.get("PYTHONPATH", ""))
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pantau_harness.uart_sensor", "--tty", self.pair.device_path, *self.args],
            stdout=subprocess.PIPE, stderr=log, env=env)
        log.close()
        if _readline_with_timeout(self.proc, STARTUP_TIMEOUT).strip() != b"READY":
            raise RuntimeError(f"emulator did not start: {self.logs()}")
        return self

    @property
    def gateway_path(self) -> str:
        return self.pair.gateway_path

    def logs(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        kill(self.proc)
        self.pair.stop()


@pytest.fixture
def uart_sensor(tmp_path, request):
    started: list[Emulator] = []

    def make(model: str, values: dict, mode: str = "passive", faults: str = "") -> Emulator:
        workdir = tmp_path / f"sensor{len(started)}"
        workdir.mkdir()
        emulator = Emulator(str(workdir), model, values, mode, faults)
        started.append(emulator)
        return emulator.start()

    yield make
    for emulator in started:
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            print(f"--- emulator log ---\n{emulator.logs()[-3000:]}")
        emulator.stop()


def start(gateway, broker, workdir: str, sensor_path: str, profile: str, **device_extra):
    socket_path = os.path.join(workdir, "status.sock")
    config = gateway_yaml(
        broker_port=broker.port, workdir=workdir, status_socket=socket_path, profiles=[PROFILE_DIR],
        buses=[{"name": "pm-port", "type": "uart", "device": sensor_path}],
        devices=[{"name": "pm", "bus": "pm-port", "unit": 1, "profile": profile, "poll_interval": "1s",
                  **device_extra}],
    )
    return gateway(config), socket_path


def bus_status(binary: str, socket_path: str) -> dict:
    done = subprocess.run([binary, "status", "--socket", socket_path, "--json"], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)["buses"][0]


def records(message) -> dict:
    return senml.resolve(message.json())


PMS_VALUES = {"pm1": 5, "pm2_5": 13, "pm10": 22, "pm1_cf1": 6, "pm2_5_cf1": 14, "pm10_cf1": 23,
              "count_0_3um": 765, "count_0_5um": 252, "count_1_0um": 29, "count_2_5um": 15, "count_5_0um": 6,
              "count_10um": 6}
PMS_PUBLISHED = {k: v for k, v in PMS_VALUES.items() if not k.endswith("_cf1")}


def check_faults_counted_not_published(collector, gw, binary, socket_path, emulator, expected: dict):
    telemetry = topic("telemetry", "pm")
    # Frames 2 (bad checksum) and 4 (truncated) fail their polls; frames 5 and 6 are good again afterwards.
    collector.wait_for(lambda c: "sent 6 ok" in emulator.logs() and len(c.messages(telemetry)) >= 6, 40,
                       "six polls", gw)
    assert "sent 2 checksum" in emulator.logs() and "sent 4 truncate" in emulator.logs(), emulator.logs()
    good, failed = [], []
    for m in collector.messages(telemetry):
        recs = records(m)
        if all(r.quality == "good" for r in recs.values()):
            good.append(m)
            got = {n: r.value for n, r in recs.items()}
            assert got.keys() == expected.keys(), got
            for name, value in expected.items():
                assert senml.close(got[name], value), (name, got[name], value)
        else:
            failed.append(m)
            assert all(r.quality == "device_error" and r.key not in ("v", "vs", "vb") for r in recs.values()), (
                m.json())
        assert all(r.value != SENTINEL for r in recs.values()), m.json()
    assert len(failed) == 2, [m.json() for m in failed]
    assert len(good) >= 4
    bus = bus_status(binary, socket_path)
    assert bus["crc_errors"] == 1 and bus["timeouts"] == 1, bus


def test_pms5003_passive_exact_values_and_bad_frames_counted_not_published(
    uart_sensor, mosquitto_broker, mqtt_collector, gateway, short_tmp, pantau_bin, schemas,
):
    emulator = uart_sensor("pms5003", PMS_VALUES, faults="2:checksum,4:truncate")
    collector = mqtt_collector(mosquitto_broker, f"{BASE_TOPIC}/#")
    gw, socket_path = start(gateway, mosquitto_broker, short_tmp, emulator.gateway_path, "plantower-pms5003",
                            retries=0)
    first = collector.wait_for_messages(topic("telemetry", "pm"), 1, 30, watch=gw)[0]
    schemas.validate("telemetry", first.json())
    assert {n: r.unit for n, r in records(first).items()}["pm2_5"] == "ug/m3"
    check_faults_counted_not_published(collector, gw, pantau_bin, socket_path, emulator, PMS_PUBLISHED)


def test_sds011_query_mode_exact_values_and_bad_frames_counted_not_published(
    uart_sensor, mosquitto_broker, mqtt_collector, gateway, short_tmp, pantau_bin,
):
    emulator = uart_sensor("sds011", {"pm2_5": 123.6, "pm10": 261.8}, faults="2:checksum,4:truncate")
    collector = mqtt_collector(mosquitto_broker, f"{BASE_TOPIC}/#")
    gw, socket_path = start(gateway, mosquitto_broker, short_tmp, emulator.gateway_path, "nova-sds011", retries=0)
    check_faults_counted_not_published(
        collector, gw, pantau_bin, socket_path, emulator, {"pm2_5": 123.6, "pm10": 261.8})


def test_pms7003_active_mode_publishes_the_streamed_values(
    uart_sensor, mosquitto_broker, mqtt_collector, gateway, short_tmp,
):
    values = {"pm1": 42, "pm2_5": 62, "pm10": 80, "count_0_3um": 8739, "count_0_5um": 2468, "count_1_0um": 330,
              "count_2_5um": 40, "count_5_0um": 6, "count_10um": 5}
    emulator = uart_sensor("pms7003", values, mode="active")
    collector = mqtt_collector(mosquitto_broker, f"{BASE_TOPIC}/#")
    gw, _ = start(gateway, mosquitto_broker, short_tmp, emulator.gateway_path, "plantower-pms7003")
    for m in collector.wait_for_messages(topic("telemetry", "pm"), 3, 30, watch=gw):
        got = {n: (r.value, r.quality) for n, r in records(m).items()}
        assert got == {n: (v, "good") for n, v in values.items()}, got


def test_read_command_polls_a_uart_device_from_the_configuration(uart_sensor, pantau_bin, short_tmp):
    emulator = uart_sensor("sds011", {"pm2_5": 35.0, "pm10": 61.2})
    config = os.path.join(short_tmp, "gw.yaml")
    with open(config, "w", encoding="utf-8") as f:
        f.write(gateway_yaml(
            broker_port=1883, workdir=short_tmp, status_socket=os.path.join(short_tmp, "s.sock"),
            profiles=[PROFILE_DIR], buses=[{"name": "pm-port", "type": "uart", "device": emulator.gateway_path}],
            devices=[{"name": "pm", "bus": "pm-port", "unit": 1, "profile": "nova-sds011"}]))
    done = subprocess.run([pantau_bin, "read", "--config", config, "--name", "pm", "--json"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["link"].endswith(" uart")
    assert {p["name"]: (p["value"], p["quality"]) for p in report["points"]} == {
        "pm2_5": (35.0, "good"), "pm10": (61.2, "good")}


@pytest.mark.parametrize("profile,query,values", [
    ("nova-sds011", "AAB404000000000000000000000000FFFF02AB", {"pm2_5": 35.0, "pm10": 61.2}),
    ("plantower-pms5003", "424DE200000171", {"pm2_5": 17, "pm10": 31}),
])
def test_simulate_serves_a_framed_sensor_on_a_pty(pantau_bin, tmp_path, profile, query, values):
    """`pantau simulate --uart` answered a query; the frame is checked here with the datasheet's own rules."""
    import struct
    import termios
    import tty

    pair = PtyPair(str(tmp_path))
    pair.start()
    args = [pantau_bin, "simulate", "--dir", PROFILE_DIR, "--profile", profile, "--uart", pair.device_path]
    for name, value in values.items():
        args += ["--constant", f"1:{name}:{value}"]
    out_path = tmp_path / "simulate.out"
    with open(out_path, "wb") as out, open(tmp_path / "simulate.log", "wb") as log:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=log)
    fd = None
    try:
        assert wait_until(lambda: b"serving framed UART sensor" in out_path.read_bytes() or proc.poll() is not None,
                          15), (tmp_path / "simulate.log").read_text()
        assert proc.poll() is None, (tmp_path / "simulate.log").read_text()
        fd = os.open(pair.gateway_path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(fd)
        termios.tcflush(fd, termios.TCIFLUSH)
        os.write(fd, bytes.fromhex(query))
        frame = b""
        deadline = time.monotonic() + 5
        want = 10 if profile == "nova-sds011" else 32
        while len(frame) < want and time.monotonic() < deadline:
            import select
            if select.select([fd], [], [], 0.2)[0]:
                frame += os.read(fd, 64)
        assert len(frame) == want, frame.hex()
        if profile == "nova-sds011":
            assert frame[:2] == b"\xaa\xc0" and frame[9] == 0xAB and sum(frame[2:8]) & 0xFF == frame[8], frame.hex()
            pm25, pm10 = struct.unpack("<HH", frame[2:6])
            assert (pm25 / 10, pm10 / 10) == (values["pm2_5"], values["pm10"])
        else:
            assert frame[:4] == b"\x42\x4d\x00\x1c", frame.hex()
            assert sum(frame[:30]) == struct.unpack(">H", frame[30:])[0], frame.hex()
            words = struct.unpack(">13H", frame[4:30])
            assert (words[4], words[5]) == (values["pm2_5"], values["pm10"])
    finally:
        if fd is not None:
            os.close(fd)
        kill(proc)
        pair.stop()


@pytest.mark.parametrize("profile", link_profiles.shipped("frame"))
def test_every_shipped_framed_profile_polled_end_to_end_through_simulate(
    profile, tmp_path, short_tmp, mosquitto_broker, mqtt_collector, gateway, pantau_bin,
):
    collector = mqtt_collector(mosquitto_broker, f"{BASE_TOPIC}/#")
    link_profiles.poll_shipped(profile, "frame", str(tmp_path), short_tmp, mosquitto_broker, collector, gateway)


def test_profiles_test_and_plan_show_the_framed_sensors(pantau_bin):
    ids = link_profiles.shipped("frame")
    assert set(ids) == {"plantower-pms5003", "plantower-pms7003", "nova-sds011"}
    done = subprocess.run([pantau_bin, "profiles", "test", "--dir", PROFILE_DIR, *ids], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("PASS") == 3, done.stdout
    plan = subprocess.run([pantau_bin, "profiles", "plan", "--dir", PROFILE_DIR, "nova-sds011"], capture_output=True,
                          text=True, timeout=60).stdout
    assert "framed UART sensor, bus type uart: one 10-byte frame per poll" in plan, plan
    assert "checksum sum8 of bytes 2..<8 at byte 8" in plan, plan
    assert "passive: each poll sends AA B4 04 00 00 00 00 00 00 00 00 00 00 00 00 FF FF 02 AB" in plan, plan
    active = subprocess.run([pantau_bin, "profiles", "plan", "--dir", PROFILE_DIR, "plantower-pms7003"],
                            capture_output=True, text=True, timeout=60).stdout
    assert "active: each poll takes the next frame the sensor streams" in active, active
