"""End to end: pymodbus devices -> `pantau run` -> mosquitto -> a subscriber, checked against the MQTT contract.

Topics (prefix `pantau`, site `test-site`, gateway `gw-test`):
  .../status                         retained {"state": "online"|"offline", ...}
  .../devices/<dev>/availability     retained {"state", "reason", "ts" (ms), "seq"}
  .../devices/<dev>/telemetry        SenML array, content type application/senml+json; the first record has
                                     "seq", "bn", "bt" (s), maybe "hist": true; records "n", "u",
                                     one of "v" | "vs" | "vb", and "q"
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from pantau_harness import mixed_types, senml
from pantau_harness.config import BASE_TOPIC, device, gateway_yaml, profiles_fixture_dir, rtu_bus, tcp_bus, topic

pytestmark = pytest.mark.gateway

SENML_CONTENT_TYPE = "application/senml+json"
FIRST_TELEMETRY_TIMEOUT = 30.0


def start_gateway(gateway, broker, workdir: str, buses, devices, **kwargs):
    config = gateway_yaml(
        broker_port=broker.port, workdir=workdir, buses=buses, devices=devices,
        status_socket=os.path.join(workdir, "status.sock"), **kwargs,
    )
    return gateway(config)


def with_state(collector, topic_name: str, state: str, since: float | None = None):
    return [
        m for m in collector.messages(topic_name, since)
        if isinstance(m.json(), dict) and m.json().get("state") == state
    ]


def bt(message) -> float:
    return message.json()[0]["bt"]


def check_mixed_types_batch(message, dev: str, schemas, not_before: float) -> None:
    """One telemetry message carries exactly the profile's points, with the values the harness encoded."""
    batch = message.json()
    schemas.validate("telemetry", batch)
    first = batch[0]
    assert isinstance(first.get("seq"), int) and not isinstance(first.get("seq"), bool), first
    assert first.get("bn") == senml.base_name(dev), first
    assert isinstance(first.get("bt"), (int, float)), first
    # Sanity only, not a timing assertion: the acquisition time is this run's wall clock in seconds (not ms).
    assert not_before - 60 <= first["bt"] <= time.time() + 60, first["bt"]
    assert "hist" not in first, first  # live data: only backlog older than the live window carries "hist"
    assert message.properties.get("ContentType") == SENML_CONTENT_TYPE, message.properties

    records = senml.resolve(batch)
    expected = mixed_types.expected()
    assert set(records) == set(expected), f"points differ: got {sorted(records)}, expected {sorted(expected)}"
    problems = []
    for name, point in expected.items():
        rec = records[name]
        if rec.key != point.senml_key:
            problems.append(f"{name}: value in {rec.key!r}, expected {point.senml_key!r} ({rec.raw})")
            continue
        if point.senml_key == "v":
            ok = senml.close(rec.value, point.value)
        else:
            ok = rec.value == point.value and type(rec.value) is type(point.value)
        if not ok:
            problems.append(f"{name}: {rec.value!r}, expected {point.value!r}")
        unit_ok = rec.unit in (None, "") if point.unit == "" else rec.unit == point.unit
        if not unit_ok:
            problems.append(f"{name}: unit {rec.unit!r}, expected {point.unit!r}")
        if rec.quality != point.quality:
            problems.append(f"{name}: quality {rec.quality!r}, expected {point.quality!r}")
    assert not problems, "telemetry mismatches:\n  " + "\n  ".join(problems) + f"\nbatch: {batch}"


@pytest.mark.parametrize("transport", ["tcp", "rtu"])
def test_telemetry_has_the_exact_values_units_and_qualities(
    transport, mosquitto_broker, mqtt_collector, pymodbus_tcp_device, pymodbus_rtu_device, gateway, short_tmp,
    schemas,
):
    started = time.time()
    collector = mqtt_collector(mosquitto_broker, f"{BASE_TOPIC}/#")
    if transport == "tcp":
        sim = pymodbus_tcp_device(mixed_types.register_spec())
        bus = tcp_bus("tcp-1", sim.port)
    else:
        sim = pymodbus_rtu_device(mixed_types.register_spec())
        bus = rtu_bus("rtu-1", sim.gateway_path)
    gw = start_gateway(gateway, mosquitto_broker, short_tmp, [bus], [device("dev-a", bus["name"], 1)])
    telemetry = topic("telemetry", "dev-a")

    first = collector.wait_for_messages(telemetry, 1, FIRST_TELEMETRY_TIMEOUT, watch=gw)[0]
    check_mixed_types_batch(first, "dev-a", schemas, started)

    status = collector.wait_for(lambda c: with_state(c, topic("status"), "online"), 10, "status online", gw)
    schemas.validate("status", status[-1].json())
    availability = collector.wait_for(
        lambda c: with_state(c, topic("availability", "dev-a"), "online"), 10, "dev-a online", gw)
    schemas.validate("availability", availability[-1].json())

    # The next poll decodes the same registers to the same values, under a later sequence number.
    second = collector.wait_for_messages(telemetry, 2, 15, watch=gw)[1]
    check_mixed_types_batch(second, "dev-a", schemas, started)
    assert second.seq > first.seq


def test_silent_unit_goes_offline_while_its_neighbour_keeps_its_schedule(
    mosquitto_broker, mqtt_collector, pymodbus_tcp_device, gateway, short_tmp, schemas,
):
    collector = mqtt_collector(mosquitto_broker, f"{BASE_TOPIC}/#")
    sim = pymodbus_tcp_device({1: mixed_types.register_spec()})  # unit 2 is never answered
    gw = start_gateway(
        gateway, mosquitto_broker, short_tmp, [tcp_bus("tcp-1", sim.port)],
        [device("dev-a", "tcp-1", 1), device("dev-b", "tcp-1", 2, timeout_ms=300, retries=0)],
    )

    offline = collector.wait_for(
        lambda c: with_state(c, topic("availability", "dev-b"), "offline"), 30, "dev-b offline", gw)[-1].json()
    schemas.validate("availability", offline)
    assert offline.get("reason"), offline
    assert isinstance(offline.get("ts"), int) and offline["ts"] > 1_000_000_000_000, offline  # milliseconds
    assert isinstance(offline.get("seq"), int), offline

    # A subscriber arriving now is told at once, by the retained message.
    newcomer = mqtt_collector(mosquitto_broker, topic("availability", "dev-b"))
    retained = newcomer.wait_for_messages(topic("availability", "dev-b"), 1, 10)[0]
    assert retained.retain and retained.json()["state"] == "offline", retained

    # dev-a keeps about one acquisition per second while dev-b times out beside it on the same bus.
    # Counted by acquisition time in a window, with generous bounds: this is not a timing test.
    window = 6.0
    window_start = time.time()
    collector.wait_for(lambda c: time.time() - window_start > window + 3, window + 10, "the counting window", gw)
    acquired = {
        bt(m) for m in collector.messages(topic("telemetry", "dev-a")) if window_start <= bt(m) < window_start + window
    }
    assert 3 <= len(acquired) <= 9, f"{len(acquired)} dev-a polls in {window:.0f}s at a 1s interval"
    for m in collector.messages(topic("telemetry", "dev-b")):
        records = senml.resolve(m.json()).values()
        assert all(r.quality == "device_error" and r.key not in ("v", "vs", "vb") for r in records), (
            f"a silent device can only report device_error without values: {m.json()}")
    last_a = collector.last(topic("availability", "dev-a"))
    assert last_a is not None and last_a.json()["state"] == "online", last_a
    check_mixed_types_batch(collector.last(topic("telemetry", "dev-a")), "dev-a", schemas, window_start)


def test_fixture_profile_vectors_pass_the_gateway_decoder(pantau_bin):
    """The gateway decodes the fixture profile's vector (registers from Python struct) to the harness's values."""
    result = subprocess.run(
        [pantau_bin, "profiles", "test", "--dir", profiles_fixture_dir(), mixed_types.PROFILE_ID],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_broker_outage_is_a_backlog_not_a_gap(make_broker, mqtt_collector, pymodbus_tcp_device, gateway, short_tmp):
    # A persistent broker and session: whichever of collector and gateway reconnects first, nothing is missed.
    broker = make_broker(persistent=True)
    collector = mqtt_collector(broker, f"{BASE_TOPIC}/#", persistent=True)
    sim = pymodbus_tcp_device(mixed_types.register_spec())
    gw = start_gateway(gateway, broker, short_tmp, [tcp_bus("tcp-1", sim.port)], [device("dev-a", "tcp-1", 1)])
    telemetry = topic("telemetry", "dev-a")
    collector.wait_for_messages(telemetry, 2, FIRST_TELEMETRY_TIMEOUT, watch=gw)
    collector.wait_for(lambda c: with_state(c, topic("status"), "online"), 10, "status online", gw)

    broker.stop()
    outage_start = time.time()
    outage = 6.0
    collector.wait_for(lambda c: time.time() - outage_start >= outage, outage + 5, "the end of the outage", gw)
    broker.start()
    restarted = time.time()

    # Not retained: a fresh publication after the restart, not the broker's stored copy of the old one.
    online_again = collector.wait_for(
        lambda c: [m for m in with_state(c, topic("status"), "online", since=restarted) if not m.retain], 30,
        "status online again after the broker restart", gw)[0].json()
    assert isinstance(online_again.get("ts"), int), online_again
    assert online_again["ts"] >= int(outage_start * 1000), online_again

    def seqs(c) -> set[int]:
        return {m.seq for m in c.all() if m.seq is not None}

    def caught_up(c) -> bool:
        s = seqs(c)
        live = [m for m in c.messages(telemetry, since=restarted) if bt(m) > restarted]
        return bool(live) and s == set(range(min(s), max(s) + 1))

    try:
        collector.wait_for(caught_up, 30, "live telemetry again and no hole in the sequence numbers", gw)
    except AssertionError:
        pass  # the assertions below say which part is missing
    assert collector.messages(telemetry, since=restarted), "no telemetry after the broker restart"
    s = seqs(collector)
    assert s == set(range(min(s), max(s) + 1)), f"missing seq: {sorted(set(range(min(s), max(s) + 1)) - s)}"

    during = [m for m in collector.messages(telemetry) if outage_start + 0.5 < bt(m) < restarted - 0.5]
    assert len({bt(m) for m in during}) >= 2, "readings acquired during the outage were not delivered"
    assert all(m.received_at >= restarted for m in during)
    # A 6 s outage is well inside the 60 s live window: what it held back is replayed as live data, without "hist".
    assert [m.json()[0] for m in during if "hist" in m.json()[0]] == []
    assert gw.alive, gw.logs()[-4000:]
