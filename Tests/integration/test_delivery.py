"""Delivery contract details (issue #11, issue #19 item 3): retained state at a clean stop and after a broker change.

Real mosquitto brokers, pymodbus devices, the real gateway binary; checks on what a subscriber receives.
"""
from __future__ import annotations

import os
import signal
import time

import pytest

from pantau_harness import mixed_types
from pantau_harness.collector import MqttCollector
from pantau_harness.config import BASE_TOPIC, device, gateway_yaml, tcp_bus, topic

pytestmark = pytest.mark.gateway


def config(broker_port: int, workdir: str, buses, devices) -> str:
    return gateway_yaml(
        broker_port=broker_port, workdir=workdir, buses=buses, devices=devices,
        status_socket=os.path.join(workdir, "st.sock"),
    )


def state_of(message) -> str | None:
    body = message.json()
    return body.get("state") if isinstance(body, dict) else None


def retained_now(broker, topic_filter: str, expect: int, timeout: float = 10.0) -> dict[str, dict]:
    """What a subscriber arriving now gets as retained messages: topic -> body."""
    late = MqttCollector(broker.port, topic_filter).start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len({m.topic for m in late.all() if m.retain}) < expect:
            time.sleep(0.1)
        return {m.topic: m.json() for m in late.all() if m.retain}
    finally:
        late.stop()


def test_clean_stop_publishes_every_device_offline_before_the_gateway(
    mosquitto_broker, mqtt_collector, pymodbus_tcp_device, gateway, short_tmp
):
    collector = mqtt_collector(mosquitto_broker, f"{BASE_TOPIC}/#")
    spec = mixed_types.register_spec()
    sim = pymodbus_tcp_device({1: spec, 2: spec})
    devices = [device("dev-a", "tcp-1", 1), device("dev-b", "tcp-1", 2)]
    gw = gateway(config(mosquitto_broker.port, short_tmp, [tcp_bus("tcp-1", sim.port)], devices))
    for dev in ("dev-a", "dev-b"):
        collector.wait_for(
            lambda c, d=dev: [m for m in c.messages(topic("availability", d)) if state_of(m) == "online"], 30,
            f"{dev} online", gw)
    assert gw.stop() == 0, gw.logs()[-3000:]

    gateway_offline = collector.wait_for(
        lambda c: [m for m in c.messages(topic("status")) if state_of(m) == "offline"], 10, "gateway offline", gw)[0]
    for dev in ("dev-a", "dev-b"):
        offline = [m for m in collector.messages(topic("availability", dev)) if state_of(m) == "offline"]
        assert offline, f"{dev}: no offline availability at stop"
        assert offline[-1].json().get("reason") == "stopped", offline[-1].json()
        assert isinstance(offline[-1].seq, int), offline[-1].json()
        assert offline[-1].received_at <= gateway_offline.received_at, "device offline after the gateway's"
    retained = retained_now(mosquitto_broker, f"{BASE_TOPIC}/#", expect=3)
    assert retained[topic("status")]["state"] == "offline", retained
    for dev in ("dev-a", "dev-b"):
        assert retained[topic("availability", dev)]["state"] == "offline", retained


def test_a_new_broker_after_sighup_gets_availability_at_once(
    make_broker, mqtt_collector, pymodbus_tcp_device, gateway, short_tmp
):
    first, second = make_broker(), make_broker()
    on_first = mqtt_collector(first, f"{BASE_TOPIC}/#")
    on_second = mqtt_collector(second, f"{BASE_TOPIC}/#")
    sim = pymodbus_tcp_device(mixed_types.register_spec())
    buses, devices = [tcp_bus("tcp-1", sim.port)], [device("dev-a", "tcp-1", 1)]
    gw = gateway(config(first.port, short_tmp, buses, devices))
    on_first.wait_for(
        lambda c: [m for m in c.messages(topic("availability", "dev-a")) if state_of(m) == "online"], 30,
        "dev-a online on the first broker", gw)

    with open(gw.config_path, "w", encoding="utf-8") as f:
        f.write(config(second.port, short_tmp, buses, devices))
    gw.proc.send_signal(signal.SIGHUP)
    on_second.wait_for(lambda c: c.messages(topic("telemetry", "dev-a")), 30, "telemetry on the second broker", gw)
    # The device never changed state, so only a republish can tell the new broker it is online.
    availability = on_second.wait_for(
        lambda c: [m for m in c.messages(topic("availability", "dev-a")) if state_of(m) == "online"], 10,
        "dev-a availability on the second broker", gw)
    retained = retained_now(second, f"{BASE_TOPIC}/#", expect=2)
    assert retained.get(topic("availability", "dev-a"), {}).get("state") == "online", retained
    assert retained.get(topic("status"), {}).get("state") == "online", retained
    assert gw.alive, gw.logs()[-3000:]
