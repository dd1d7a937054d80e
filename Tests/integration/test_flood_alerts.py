"""Issue #4: flood alerts end to end, from a rising simulated river to retained alert messages at the broker.

`pantau simulate` serves the shipped qdy30a level gauge with its `level` point (cm) ramping up fast; the gateway
has a flood alert on that point (Siaga 3/2/1 at 150/200/250 cm, a short dwell, faster polling per level). Checked:

- the broker receives the alert levels in order, Siaga 3 (waspada) then 2 (siaga) then 1 (awas), each once, each
  schema-valid with the configured thresholds, the unit, the value that triggered it and the level's poll interval;
- the alert topic is retained: a subscriber that arrives later gets the current level (awas) at once;
- the device's poll interval, as the status socket reports it, shortens from the configured 2 s to the Siaga 1
  interval;
- a falling river (ramp with a negative rate) goes up at once to Siaga 1, then steps down 1 -> 2 -> 3 -> 4 only
  below each threshold minus the hysteresis, and the poll interval returns to the configured one.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from pantau_harness import senml
from pantau_harness.config import BASE_TOPIC, gateway_yaml, tcp_bus, topic
from pantau_harness.gateway import binary_path
from pantau_harness.procs import repo_root, wait_until
from pantau_harness.simulate import Simulator

pytestmark = pytest.mark.gateway

PROFILE_DIR = os.path.join(repo_root(), "firmware-profiles")
THRESHOLDS = {"siaga3": 150, "siaga2": 200, "siaga1": 250, "hysteresis": 5}
POLL_MS = {4: 2000, 3: 1000, 2: 500, 1: 250}
LEVEL_NAMES = {4: "normal", 3: "waspada", 2: "siaga", 1: "awas"}
RAMP_START_CM = 110
RAMP_CM_PER_MINUTE = 360  # 6 cm/s: Siaga 3 after ~7 s, Siaga 2 after ~15 s, Siaga 1 after ~23 s
DEV = "river"


@pytest.fixture
def simulator(pantau_bin, tmp_path, request):
    sims: list[Simulator] = []

    def start(*args: str) -> Simulator:
        workdir = tmp_path / f"sim{len(sims)}"
        workdir.mkdir()
        sim = Simulator(str(workdir), [], ["--dir", PROFILE_DIR, *args]).start()
        sims.append(sim)
        return sim

    yield start
    for sim in sims:
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            print(f"--- simulator log ---\n{sim.logs()[-3000:]}")
        sim.stop()


def device_status(binary: str, socket_path: str) -> dict:
    result = subprocess.run(
        [binary, "status", "--socket", socket_path, "--json"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    snapshot = json.loads(result.stdout)
    return next(d for bus in snapshot["buses"] for d in bus["devices"] if d["name"] == DEV)


def flood_config(broker_port: int, workdir: str, device_port: int, socket_path: str) -> str:
    flood = (
        f"{{point: level, siaga3: {THRESHOLDS['siaga3']}, siaga2: {THRESHOLDS['siaga2']}, "
        f"siaga1: {THRESHOLDS['siaga1']}, hysteresis: {THRESHOLDS['hysteresis']}, min_dwell: 1s, "
        f"poll_intervals: {{siaga4: 2s, siaga3: 1s, siaga2: 500ms, siaga1: 250ms}}}}"
    )
    config = gateway_yaml(
        broker_port=broker_port, workdir=workdir, buses=[tcp_bus("sim", device_port)], devices=[],
        status_socket=socket_path, profiles=[PROFILE_DIR],
    )
    # The device has a nested flood list, which the harness's one-line device helper cannot write.
    return config.replace(
        "devices:\n",
        "devices:\n"
        f"  - name: {DEV}\n    bus: sim\n    unit: 1\n    profile: qdy30a\n    poll_interval: 2s\n"
        f"    flood:\n      - {flood}\n", 1)


def test_a_rising_river_raises_siaga_3_2_1_in_order_and_polls_faster(
    pantau_bin, simulator, mosquitto_broker, mqtt_collector, gateway, short_tmp, schemas,
):
    collector = mqtt_collector(mosquitto_broker, f"{BASE_TOPIC}/#")
    sim = simulator("--profile", "qdy30a:1", "--ramp", f"1:level:{RAMP_START_CM}:{RAMP_CM_PER_MINUTE}")
    socket_path = os.path.join(short_tmp, "st.sock")
    config = flood_config(mosquitto_broker.port, short_tmp, sim.port, socket_path)
    gw = gateway(config)
    alerts_topic = topic("alerts/level", DEV)
    telemetry = topic("telemetry", DEV)

    first = collector.wait_for_messages(telemetry, 1, 30, watch=gw)[0]
    first_level = senml.resolve(first.json())["level"]
    assert first_level.quality == "good" and first_level.unit == "cm", first_level
    before = device_status(pantau_bin, socket_path)
    if first_level.value < THRESHOLDS["siaga3"]:
        # Still normal: the configured interval (the Siaga 4 one) is in force.
        assert before["interval_ms"] == POLL_MS[4], before

    def levels(c) -> list[int]:
        return [m.json().get("level") for m in c.messages(alerts_topic)]

    collector.wait_for(lambda c: 1 in levels(c), 90, "the Siaga 1 (awas) alert", gw)
    alerts = collector.messages(alerts_topic)
    for m in alerts:
        schemas.validate("alert", m.json())
        assert m.properties.get("ContentType") == "application/json", m.properties

    # Siaga 4 may be announced first; after that, exactly one message per level change, most dangerous last.
    changes = [lvl for i, lvl in enumerate(levels(collector)) if i == 0 or lvl != levels(collector)[i - 1]]
    alerting = [lvl for lvl in changes if lvl != 4]
    assert alerting == [3, 2, 1], f"alert levels in arrival order: {levels(collector)}"
    assert changes in ([3, 2, 1], [4, 3, 2, 1]), changes
    seqs = [m.seq for m in alerts]
    assert all(isinstance(s, int) for s in seqs) and seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs

    declared: dict[int, dict] = {}
    for m in alerts:
        body = m.json()
        declared.setdefault(body["level"], body)
    for level in (3, 2, 1):
        body = declared[level]
        threshold = THRESHOLDS[f"siaga{level}"]
        assert body["device"] == DEV and body["point"] == "level" and body["unit"] == "cm", body
        assert body["level_name"] == LEVEL_NAMES[level], body
        assert body["thresholds"] == THRESHOLDS, body
        assert body["stale"] is False, body
        assert body["poll_interval_ms"] == POLL_MS[level], body
        # Declared on the reading that completed the dwell: at or above this level's threshold.
        assert body["value"] >= threshold, body
        assert isinstance(body.get("since"), int) and body["since"] <= body["at"], body
        assert isinstance(body.get("value_at"), int), body
    assert declared[3]["since"] < declared[2]["since"] < declared[1]["since"], declared
    # The level values the telemetry carried up to each declaration rise with the ramp (the alert used them).
    telemetry_values = [senml.resolve(m.json())["level"].value for m in collector.messages(telemetry)]
    assert any(v >= THRESHOLDS["siaga1"] for v in telemetry_values), telemetry_values

    # Retained: a subscriber arriving now is told the current level at once by the broker.
    newcomer = mqtt_collector(mosquitto_broker, alerts_topic)
    retained = newcomer.wait_for_messages(alerts_topic, 1, 10)[0]
    assert retained.retain is True, retained
    assert retained.json()["level"] == 1 and retained.json()["level_name"] == "awas", retained.json()
    schemas.validate("alert", retained.json())

    # The bus thread now polls the river at the Siaga 1 interval.
    after = collector.wait_for(
        lambda c: (d := device_status(pantau_bin, socket_path))["interval_ms"] == POLL_MS[1] and d, 10,
        "the Siaga 1 poll interval in the status socket", gw)
    assert after["state"] == "online", after


def test_a_falling_river_steps_down_one_level_at_a_time_and_polls_slower_again(
    pantau_bin, simulator, mosquitto_broker, mqtt_collector, gateway, short_tmp, schemas,
):
    collector = mqtt_collector(mosquitto_broker, f"{BASE_TOPIC}/#")
    # Starts above Siaga 1 and falls 6 cm/s: below 245, 195 and 145 cm (threshold - hysteresis) after ~4, 13, 21 s.
    sim = simulator("--profile", "qdy30a:1", "--ramp", "1:level:270:-360")
    socket_path = os.path.join(short_tmp, "st.sock")
    gw = gateway(flood_config(mosquitto_broker.port, short_tmp, sim.port, socket_path))
    alerts_topic = topic("alerts/level", DEV)

    def levels(c) -> list[int]:
        return [m.json().get("level") for m in c.messages(alerts_topic)]

    collector.wait_for(lambda c: 1 in levels(c), 30, "the first Siaga 1 (awas) alert", gw)
    collector.wait_for(lambda c: levels(c)[-1:] == [4], 90, "the way back to Siaga 4 (normal)", gw)
    seen = levels(collector)
    changes = [lvl for i, lvl in enumerate(seen) if i == 0 or lvl != seen[i - 1]]
    # Up at once to awas (the water is already there), then down one level at a time.
    assert changes in ([1, 2, 3, 4], [4, 1, 2, 3, 4]), f"alert levels in arrival order: {seen}"

    declared: dict[int, dict] = {}
    for m in collector.messages(alerts_topic):
        body = m.json()
        schemas.validate("alert", body)
        declared[body["level"]] = body  # the last message of each level
    for level in (2, 3, 4):
        body = declared[level]
        # Stepped down only once the water was below the upper level's threshold minus the hysteresis.
        upper = THRESHOLDS[f"siaga{level - 1}"]
        assert body["value"] < upper - THRESHOLDS["hysteresis"], body
        assert body["level_name"] == LEVEL_NAMES[level] and body["poll_interval_ms"] == POLL_MS[level], body
        assert body["stale"] is False, body

    retained = mqtt_collector(mosquitto_broker, alerts_topic).wait_for_messages(alerts_topic, 1, 10)[0]
    assert retained.retain is True and retained.json()["level"] == 4, retained.json()
    back = collector.wait_for(
        lambda c: (d := device_status(pantau_bin, socket_path))["interval_ms"] == POLL_MS[4] and d, 10,
        "the Siaga 4 poll interval in the status socket", gw)
    assert back["state"] == "online", back
