"""SDI-12 (`type: sdi12` buses, profiles with an `sdi12:` section) end to end over a socat pty pair, against the
Python emulator `pantau_harness.sdi12_sensor` (written from the SDI-12 v1.4 specification, independent of the Swift
code).

The break before each command cannot be observed on a pty (socat does not pass it on); the emulator therefore does
not require it, and the break itself is covered only by the transport's unit tests (it is sent: `breaks`).
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time

import pytest

from pantau_harness import link_profiles, senml
from pantau_harness.config import BASE_TOPIC, gateway_yaml, topic
from pantau_harness.modbus_sim import STARTUP_TIMEOUT, PtyPair, _readline_with_timeout
from pantau_harness.procs import harness_root, kill, repo_root, wait_until
from pantau_harness.sdi12_sensor import crc_chars

pytestmark = pytest.mark.gateway

PROFILE_DIR = os.path.join(repo_root(), "firmware-profiles")
SENTINEL = 999.0

# A second, concurrent sensor with three values over two data lines, as a test profile.
CONCURRENT_PROFILE = """\
id: test-sdi12-cc
manufacturer: Test
model: SDI-12 CC
source: "test fixture"
sdi12: {command: CC, values: 3}
points:
  - {name: rain, quantity: rain, table: input, address: 0, type: f64, unit: mm}
  - {name: intensity, quantity: rain_intensity, table: input, address: 4, type: f64, unit: mm/h}
  - {name: temperature, quantity: temperature, table: input, address: 8, type: f64, unit: Cel}
sdi12_vectors:
  - {response: "1+12.4+3.6+27.5FcZ", expect: {rain: 12.4, intensity: 3.6, temperature: 27.5}}
"""


class Emulator:
    def __init__(self, workdir: str, args: list[str]):
        self.pair = PtyPair(workdir)
        self.log_path = os.path.join(workdir, "sdi12.log")
        self.args = args
        self.proc = None

    def start(self) -> "Emulator":
        self.pair.start()
        env = dict(os.environ, PYTHONPATH=harness_root() + os.pathsep + os.environ.get("PYTHONPATH", ""))
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pantau_harness.sdi12_sensor", "--tty", self.pair.device_path, *self.args],
            stdout=subprocess.PIPE, stderr=log, env=env)
        log.close()
        if _readline_with_timeout(self.proc, STARTUP_TIMEOUT).strip() != b"READY":
            raise RuntimeError(f"emulator did not start: {self.logs()}")
        return self

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
def sdi12_sensors(tmp_path, request):
    started: list[Emulator] = []

    def make(*args: str) -> Emulator:
        workdir = tmp_path / f"sdi12-{len(started)}"
        workdir.mkdir()
        emulator = Emulator(str(workdir), list(args))
        started.append(emulator)
        return emulator.start()

    yield make
    for emulator in started:
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            print(f"--- SDI-12 emulator log ---\n{emulator.logs()[-3000:]}")
        emulator.stop()


def values_of(message) -> dict:
    return {n: (r.value, r.quality) for n, r in senml.resolve(message.json()).items()}


def test_ott_pls_with_crc_exact_values_and_bad_responses_counted_not_published(
    sdi12_sensors, mosquitto_broker, mqtt_collector, gateway, short_tmp, pantau_bin, schemas,
):
    # Data ready after 1 s (the service request comes then); data response 2 has a bad CRC, 4 is truncated.
    emulator = sdi12_sensors("--sensor", "0:1.234,25.1", "--ttt", "1", "--faults", "2:crc,4:truncate")
    socket_path = os.path.join(short_tmp, "status.sock")
    collector = mqtt_collector(mosquitto_broker, f"{BASE_TOPIC}/#")
    gw = gateway(gateway_yaml(
        broker_port=mosquitto_broker.port, workdir=short_tmp, status_socket=socket_path, profiles=[PROFILE_DIR],
        buses=[{"name": "sdi", "type": "sdi12", "device": emulator.pair.gateway_path}],
        devices=[{"name": "river", "bus": "sdi", "unit": 48, "profile": "ott-pls", "poll_interval": "1s",
                  "retries": 0}]))
    telemetry = topic("telemetry", "river")
    collector.wait_for(lambda c: "data 6 ok" in emulator.logs() and len(c.messages(telemetry)) >= 6, 60,
                       "six measurements", gw)
    assert "data 2 crc" in emulator.logs() and "data 4 truncate" in emulator.logs(), emulator.logs()
    good = failed = 0
    for m in collector.messages(telemetry):
        schemas.validate("telemetry", m.json())
        got = values_of(m)
        assert all(v != SENTINEL for v, _ in got.values()), m.json()
        if all(q == "good" for _, q in got.values()):
            good += 1
            assert got == {"level": (1.234, "good"), "water_temperature": (25.1, "good")}, got
        else:
            failed += 1
            assert all(q == "device_error" and v is None for v, q in got.values()), m.json()
    assert failed == 2 and good >= 4, (good, failed)
    done = subprocess.run([pantau_bin, "status", "--socket", socket_path, "--json"], capture_output=True, text=True,
                          timeout=30)
    bus = json.loads(done.stdout)["buses"][0]
    assert bus["crc_errors"] == 1 and bus["timeouts"] == 1, bus


def test_two_sensors_on_one_bus_one_concurrent_over_two_data_lines(
    sdi12_sensors, mosquitto_broker, mqtt_collector, gateway, short_tmp, tmp_path,
):
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "test-sdi12-cc.yaml").write_text(CONCURRENT_PROFILE)
    emulator = sdi12_sensors("--sensor", "0:0.75,28.5", "--sensor", "1:12.4,3.6,27.5", "--per-line", "2")
    collector = mqtt_collector(mosquitto_broker, f"{BASE_TOPIC}/#")
    gw = gateway(gateway_yaml(
        broker_port=mosquitto_broker.port, workdir=short_tmp, status_socket=os.path.join(short_tmp, "s.sock"),
        profiles=[str(profiles), PROFILE_DIR],
        buses=[{"name": "sdi", "type": "sdi12", "device": emulator.pair.gateway_path}],
        devices=[{"name": "river", "bus": "sdi", "unit": 48, "profile": "ott-pls", "poll_interval": "1s"},
                 {"name": "rain", "bus": "sdi", "unit": 49, "profile": "test-sdi12-cc", "poll_interval": "1s"}]))
    river = collector.wait_for_messages(topic("telemetry", "river"), 2, 30, watch=gw)[1]
    assert values_of(river) == {"level": (0.75, "good"), "water_temperature": (28.5, "good")}
    rain = collector.wait_for_messages(topic("telemetry", "rain"), 2, 30, watch=gw)[1]
    assert values_of(rain) == {"rain": (12.4, "good"), "intensity": (3.6, "good"), "temperature": (27.5, "good")}


def test_simulate_serves_sdi12_on_a_pty(pantau_bin, tmp_path):
    """`pantau simulate --sdi12` answered by the specification's rules, checked here (CRC computed in Python)."""
    import tty

    pair = PtyPair(str(tmp_path))
    pair.start()
    out_path = tmp_path / "simulate.out"
    with open(out_path, "wb") as out, open(tmp_path / "simulate.log", "wb") as log:
        proc = subprocess.Popen(
            [pantau_bin, "simulate", "--dir", PROFILE_DIR, "--profile", "ott-pls:48", "--sdi12", pair.device_path,
             "--constant", "48:level:1.25", "--constant", "48:water_temperature:27.5"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=log)
    fd = None
    try:
        assert wait_until(lambda: b"serving SDI-12" in out_path.read_bytes() or proc.poll() is not None, 15), (
            (tmp_path / "simulate.log").read_text())
        fd = os.open(pair.gateway_path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(fd)

        def ask(command: bytes) -> bytes:
            os.write(fd, command)
            reply = b""
            deadline = time.monotonic() + 3
            while not reply.endswith(b"\r\n") and time.monotonic() < deadline:
                if select.select([fd], [], [], 0.1)[0]:
                    reply += os.read(fd, 64)
            return reply

        assert ask(b"?!") == b"0\r\n"
        assert ask(b"0MC!") == b"00002\r\n"
        data = ask(b"0D0!")
        assert data == b"0+1.25+27.5" + crc_chars(b"0+1.25+27.5") + b"\r\n", data
        assert ask(b"0C!") == b"000002\r\n"
        assert ask(b"0D0!") == b"0+1.25+27.5\r\n"
    finally:
        if fd is not None:
            os.close(fd)
        kill(proc)
        pair.stop()


@pytest.mark.parametrize("profile", link_profiles.shipped("sdi12"))
def test_every_shipped_sdi12_profile_polled_end_to_end_through_simulate(
    profile, tmp_path, short_tmp, mosquitto_broker, mqtt_collector, gateway, pantau_bin,
):
    collector = mqtt_collector(mosquitto_broker, f"{BASE_TOPIC}/#")
    link_profiles.poll_shipped(profile, "sdi12", str(tmp_path), short_tmp, mosquitto_broker, collector, gateway)


def test_scan_finds_exactly_the_sdi12_addresses_that_answer(sdi12_sensors, pantau_bin):
    emulator = sdi12_sensors("--sensor", "0:1,2", "--sensor", "b:3")
    done = subprocess.run(
        [pantau_bin, "scan", "--sdi12", emulator.pair.gateway_path, "--timeout-ms", "150", "--json"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert [(s["address"], s["unit"]) for s in report["found"]] == [("0", 48), ("b", 98)]
    assert all(s["identification"] == "14PANTAUEMSDI12E01000001" for s in report["found"]), report
    assert report["query"] == "0"


def test_read_command_measures_an_sdi12_device_from_the_configuration(sdi12_sensors, pantau_bin, short_tmp):
    emulator = sdi12_sensors("--sensor", "0:2.5,29.5", "--ttt", "1")
    config = os.path.join(short_tmp, "gw.yaml")
    with open(config, "w", encoding="utf-8") as f:
        f.write(gateway_yaml(
            broker_port=1883, workdir=short_tmp, status_socket=os.path.join(short_tmp, "s.sock"),
            profiles=[PROFILE_DIR], buses=[{"name": "sdi", "type": "sdi12", "device": emulator.pair.gateway_path}],
            devices=[{"name": "river", "bus": "sdi", "unit": 48, "profile": "ott-pls"}]))
    done = subprocess.run([pantau_bin, "read", "--config", config, "--name", "river", "--json"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["link"].endswith(" 1200 7E1 sdi12")
    assert {p["name"]: (p["value"], p["quality"]) for p in report["points"]} == {
        "level": (2.5, "good"), "water_temperature": (29.5, "good")}


def test_profiles_test_and_plan_show_the_sdi12_sensor(pantau_bin):
    done = subprocess.run([pantau_bin, "profiles", "test", "--dir", PROFILE_DIR, "ott-pls"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and "ott-pls: PASS" in done.stdout, done.stdout + done.stderr
    plan = subprocess.run([pantau_bin, "profiles", "plan", "--dir", PROFILE_DIR, "ott-pls"], capture_output=True,
                          text=True, timeout=60).stdout
    assert "SDI-12 sensor, bus type sdi12: one measurement of 2 values per poll" in plan, plan
    assert "aMC! -> atttn, wait for the service request" in plan, plan
    assert "value 1       level (m)" in plan and "value 2       water_temperature (Cel)" in plan, plan
