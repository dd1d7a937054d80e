#!/usr/bin/env python3
"""Bytes per reading on the wire for each telemetry form, measured in one run.

For each `mqtt.format` (senml, senml-compact, sparkplug) it starts a mosquitto, a pymodbus device with the
integration harness's mixed-types profile (19 points) and the gateway, collects the telemetry of N polls and
prints MQTT payload+topic bytes per reading (the figure docs/benchmarks.md uses for the standard load). Sparkplug
counts DDATA only (births are once per connection). Usage: PANTAU_BIN=.build/release/pantau bench/wire_bytes.py [N]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "Tests", "integration"))

import pysparkplug as spb  # noqa: E402

from pantau_harness import mixed_types  # noqa: E402
from pantau_harness.broker import MosquittoBroker  # noqa: E402
from pantau_harness.collector import MqttCollector  # noqa: E402
from pantau_harness.config import device, gateway_yaml, tcp_bus  # noqa: E402
from pantau_harness.gateway import GatewayProcess  # noqa: E402
from pantau_harness.modbus_sim import TcpDevice  # noqa: E402


def measure(form: str, polls: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="pantau-wire-") as work:
        os.makedirs(os.path.join(work, "b"))
        broker = MosquittoBroker(os.path.join(work, "b"))
        broker.start()
        os.makedirs(os.path.join(work, "d"))
        sim = TcpDevice(os.path.join(work, "d"), {1: mixed_types.register_spec()})
        sim.start()
        topic_filter = "spBv1.0/#" if form == "sparkplug" else "pantau/+/+/devices/+/telemetry"
        collector = MqttCollector(broker.port, topic_filter).start()
        os.makedirs(os.path.join(work, "g"))
        text = gateway_yaml(
            broker_port=broker.port, workdir=os.path.join(work, "g"), buses=[tcp_bus("tcp-1", sim.port)],
            devices=[device("dev-a", "tcp-1", 1)], status_socket=os.path.join(work, "g", "s.sock"),
            mqtt_extra=f"  format: {form}")
        gw = GatewayProcess(os.path.join(work, "g"), text).start()
        try:
            def data():
                return [m for m in collector.all() if "/telemetry" in m.topic or "/DDATA/" in m.topic]
            deadline = time.time() + 60
            while len(data()) < polls and time.time() < deadline:
                time.sleep(0.2)
            messages = data()[:polls]
            readings = 0
            births = [m for m in collector.all() if "/DBIRTH/" in m.topic]
            birth = spb.DBirth.decode(births[0].payload) if births else None
            for m in messages:
                if form == "sparkplug":
                    readings += len(spb.DData.decode(m.payload, birth=birth).metrics)
                else:
                    readings += len(m.json())
            wire = sum(len(m.payload) + len(m.topic.encode()) for m in messages)
            payload = sum(len(m.payload) for m in messages)
            return wire / readings, payload / readings
        finally:
            gw.stop()
            collector.stop()
            sim.kill()
            broker.kill()


def main() -> None:
    polls = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    print(f"{'form':<15} {'payload+topic B/reading':>24} {'payload B/reading':>18}")
    for form in ("senml", "senml-compact", "sparkplug"):
        wire, payload = measure(form, polls)
        print(f"{form:<15} {wire:>24.1f} {payload:>18.1f}")


if __name__ == "__main__":
    main()
