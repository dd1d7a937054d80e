#!/usr/bin/env python3
"""Bytes per reading on the wire for each telemetry form, measured in one run.

For each `mqtt.format` (senml, senml-compact, sparkplug) it starts a mosquitto, a pymodbus device and the gateway,
collects the telemetry of N polls and prints MQTT payload+topic bytes per reading, on two loads: the integration
harness's mixed-types profile (18 points of every type), and the bench load of docs/benchmarks.md section 1 (18
u16 registers named r0..r17, the profile bench/run.py writes), on which ThingsBoard IoT Gateway (bench/tbg.py,
bench/out/venv-tb from bench/setup.sh) is measured too, in the same run, when it is installed. Sparkplug counts the
DDATA of polls only (births are once per connection; aggregates are other DDATA).
Usage: PANTAU_BIN=.build/release/pantau bench/wire_bytes.py [N]
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "Tests", "integration"))

import pysparkplug as spb  # noqa: E402

from pantau_harness import mixed_types  # noqa: E402
from pantau_harness.broker import MosquittoBroker  # noqa: E402
from pantau_harness.collector import MqttCollector  # noqa: E402
from pantau_harness.config import device, gateway_yaml, tcp_bus  # noqa: E402
from pantau_harness.gateway import GatewayProcess  # noqa: E402
from pantau_harness.modbus_sim import TcpDevice  # noqa: E402

import tbg  # noqa: E402
from run import write_profile  # noqa: E402
from subscriber import SESSION_LIMITS  # noqa: E402

BENCH_REGISTERS = 18


def bench_spec() -> dict[str, dict[int, int]]:
    """The bench load's registers: three-digit counts, as in section 1 (`{"r0": 839, ...}`)."""
    return {"holding": {a: 839 + 7 * a for a in range(BENCH_REGISTERS)}, "input": {}, "coil": {}, "discrete": {}}


def poll_metrics(payload: bytes, birth) -> int | None:
    """The number of readings in a DDATA of a poll, or None for a DDATA of aggregates (names with '/')."""
    metrics = spb.DData.decode(payload, birth=birth).metrics
    return None if any("/" in (m.name or "") for m in metrics) else len(metrics)


def measure(form: str, polls: int, bench_load: bool = False) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="pantau-wire-") as work:
        os.makedirs(os.path.join(work, "b"))
        broker = MosquittoBroker(os.path.join(work, "b"))
        broker.start()
        os.makedirs(os.path.join(work, "d"))
        sim = TcpDevice(os.path.join(work, "d"), {1: bench_spec() if bench_load else mixed_types.register_spec()})
        sim.start()
        topic_filter = "spBv1.0/#" if form == "sparkplug" else "pantau/+/+/devices/+/telemetry"
        collector = MqttCollector(broker.port, topic_filter).start()
        os.makedirs(os.path.join(work, "g"))
        profiles: list[str] | None = None
        dev = device("dev-a", "tcp-1", 1)
        if bench_load:
            profiles = [os.path.join(work, "p")]
            dev = device("dev-a", "tcp-1", 1, profile=write_profile(Path(profiles[0]), BENCH_REGISTERS))
        text = gateway_yaml(
            broker_port=broker.port, workdir=os.path.join(work, "g"), buses=[tcp_bus("tcp-1", sim.port)],
            devices=[dev], status_socket=os.path.join(work, "g", "s.sock"), profiles=profiles,
            mqtt_extra=f"  format: {form}")
        gw = GatewayProcess(os.path.join(work, "g"), text).start()
        try:
            def birth():
                births = [m for m in collector.all() if "/DBIRTH/" in m.topic]
                return spb.DBirth.decode(births[0].payload) if births else None

            def data():
                found = [m for m in collector.all() if "/telemetry" in m.topic or "/DDATA/" in m.topic]
                if form == "sparkplug":
                    found = [m for m in found if poll_metrics(m.payload, birth()) is not None]
                return found
            deadline = time.time() + 60
            while len(data()) < polls and time.time() < deadline:
                time.sleep(0.2)
            messages = data()[:polls]
            readings = 0
            for m in messages:
                if form == "sparkplug":
                    readings += poll_metrics(m.payload, birth())
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


def measure_tbg(polls: int) -> tuple[float, float]:
    """ThingsBoard IoT Gateway on the bench load: its `v1/gateway/telemetry` messages, one value per reading."""
    with tempfile.TemporaryDirectory(prefix="pantau-wire-tb-") as work:
        os.makedirs(os.path.join(work, "b"))
        broker = MosquittoBroker(os.path.join(work, "b"))
        broker.start()
        os.makedirs(os.path.join(work, "d"))
        sim = TcpDevice(os.path.join(work, "d"), {1: bench_spec()})
        sim.start()
        collector = MqttCollector(broker.port, "v1/#").start()
        tbg.write_config(Path(work) / "config", broker.port, [sim.port], BENCH_REGISTERS)
        proc = tbg.start(Path(work) / "run", Path(work) / "config")
        try:
            def readings_in(m) -> int:
                return sum(len(entry.get("values", {})) for entries in m.json().values() for entry in entries)

            def telemetry():
                return [m for m in collector.all() if m.topic == "v1/gateway/telemetry"]

            answered: set[str] = set()
            deadline = time.time() + 120
            while sum(map(readings_in, telemetry())) < polls * BENCH_REGISTERS and time.time() < deadline:
                # It publishes nothing before the platform answers its session-limits RPC (as bench/subscriber.py).
                for m in collector.messages("v1/devices/me/rpc/request/+"):
                    rid = m.topic.rsplit("/", 1)[1]
                    if rid not in answered and m.json().get("method") == "getSessionLimits":
                        answered.add(rid)
                        collector.client.publish(
                            f"v1/devices/me/rpc/response/{rid}", json.dumps(SESSION_LIMITS), qos=1)
                time.sleep(0.2)
            messages = telemetry()
            readings = sum(map(readings_in, messages))
            if readings == 0:
                raise RuntimeError(f"ThingsBoard gateway published no telemetry (logs in {work}/run)")
            wire = sum(len(m.payload) + len(m.topic.encode()) for m in messages)
            return wire / readings, sum(len(m.payload) for m in messages) / readings
        finally:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(proc.pid, signal.SIGKILL)
            collector.stop()
            sim.kill()
            broker.kill()


def main() -> None:
    polls = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    for title, bench_load in (("mixed-types profile (18 points)", False), ("bench load (18 u16, r0..r17)", True)):
        print(f"\n{title}\n{'form':<15} {'payload+topic B/reading':>24} {'payload B/reading':>18}")
        for form in ("senml", "senml-compact", "sparkplug"):
            wire, payload = measure(form, polls, bench_load)
            print(f"{form:<15} {wire:>24.1f} {payload:>18.1f}")
        if bench_load:
            if tbg.available():
                wire, payload = measure_tbg(polls)
                print(f"{'thingsboard':<15} {wire:>24.1f} {payload:>18.1f}")
            else:
                print("thingsboard     not installed (bench/setup.sh)")


if __name__ == "__main__":
    main()
