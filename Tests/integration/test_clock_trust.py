"""Trustworthy time without a real-time clock (issue 14): the real gateway binary, a real mosquitto, a pymodbus
device, and a test-only clock source (`PANTAU_TEST_CLOCK=<file>`: `<wall offset ms> <synced 0|1>`, read on every
look at the clock; libfaketime does not work with the Swift binary). The board boots at 1970, unsynchronised; then
the clock synchronises. The subscriber must never see a 1970 date on telemetry, and every time must be marked.
"""
from __future__ import annotations

import os
import time

import pytest

from pantau_harness import mixed_types
from pantau_harness.collector import MqttCollector
from pantau_harness.config import BASE_TOPIC, device, gateway_yaml, tcp_bus, topic

pytestmark = pytest.mark.gateway

# Anything before this is a wrong date (2020-01-01 in seconds).
SANE = 1_577_836_800


def write_clock(path: str, offset_ms: int, synced: bool) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{offset_ms} {1 if synced else 0}\n")
    os.replace(tmp, path)


def first_record(message) -> dict:
    body = message.json()
    return body[0] if isinstance(body, list) else body


def test_a_board_booting_at_1970_publishes_only_true_times(
    mosquitto_broker, mqtt_collector, pymodbus_tcp_device, gateway, short_tmp
):
    clock = os.path.join(short_tmp, "clock")
    # The wall clock says 10 s after the epoch, and nothing disciplines it.
    write_clock(clock, -(int(time.time() * 1000) - 10_000), synced=False)
    collector: MqttCollector = mqtt_collector(mosquitto_broker, f"{BASE_TOPIC}/#")
    sim = pymodbus_tcp_device(mixed_types.register_spec())
    started = time.time()
    gw = gateway(gateway_yaml(
        broker_port=mosquitto_broker.port, workdir=short_tmp, buses=[tcp_bus("tcp-1", sim.port)],
        devices=[device("dev-a", "tcp-1", 1)], status_socket=os.path.join(short_tmp, "st.sock"),
        extra="time: {unsynced: hold}\n",
    ), env={"PANTAU_TEST_CLOCK": clock})

    # Unsynchronised: the device comes online (marked), telemetry is held back.
    online = collector.wait_for(lambda c: c.messages(topic("availability", "dev-a")), 30, "dev-a availability", gw)
    assert first_record(online[0]).get("tq") == "unsynced", online[0].json()
    assert first_record(online[0])["ts"] < SANE * 1000, online[0].json()
    time.sleep(4)
    assert collector.messages(topic("telemetry", "dev-a")) == [], "telemetry published with an unsynchronised clock"
    synced_at = time.time()
    write_clock(clock, 0, synced=True)

    held = collector.wait_for(
        lambda c: [m for m in c.messages(topic("telemetry", "dev-a")) if first_record(m).get("tq") == "corrected"],
        30, "corrected telemetry", gw)
    live = collector.wait_for(
        lambda c: [m for m in c.messages(topic("telemetry", "dev-a")) if "tq" not in first_record(m)],
        30, "live telemetry", gw)
    gw.stop()

    telemetry = collector.messages(topic("telemetry", "dev-a"))
    corrected = [first_record(m)["bt"] for m in telemetry if first_record(m).get("tq") == "corrected"]
    assert len(corrected) >= 3, corrected
    # Every corrected time lies between the gateway's start and the synchronisation, in acquisition order.
    for bt in corrected:
        assert started - 1 <= bt <= synced_at + 1, (bt, started, synced_at)
    assert corrected == sorted(corrected)
    # Live telemetry carries the true time of its acquisition (within the collector's reception).
    for m in live:
        assert synced_at - 1 <= first_record(m)["bt"] <= m.received_at + 1, (first_record(m), m.received_at)
    # No telemetry ever carried a wrong date, and nothing was marked as anything but these two.
    for m in telemetry:
        rec = first_record(m)
        assert rec["bt"] > SANE, rec
        assert rec.get("tq") in (None, "corrected"), rec
    assert held
