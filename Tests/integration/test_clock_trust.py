"""Trustworthy time without a real-time clock (issue 14): the real gateway binary, a real mosquitto, a pymodbus
device, and a test-only clock source (`PANTAU_TEST_CLOCK=<file>`: `<wall offset ms> <synced 0|1>`, read on every
look at the clock; libfaketime does not work with the Swift binary). The board boots at 1970, unsynchronised; then
the clock synchronises. The subscriber must never see a 1970 date on telemetry, and every time must be marked.
"""
from __future__ import annotations

import os
import re
import subprocess
import time

import pytest

from pantau_harness import mixed_types
from pantau_harness.collector import MqttCollector
from pantau_harness.config import BASE_TOPIC, device, gateway_yaml, tcp_bus, topic
from pantau_harness.gateway import binary_path
from pantau_harness.procs import wait_until

pytestmark = pytest.mark.gateway

# Anything before this is a wrong date (2020-01-01 in seconds).
SANE = 1_577_836_800


def write_clock(path: str, offset_ms: int, synced: bool, boot: str | None = None) -> None:
    """The test clock file, replaced atomically: `<offset ms> <synced 0|1>` and the boot id standing in for this
    boot's, when given."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{offset_ms} {1 if synced else 0}" + (f" {boot}" if boot else "") + "\n")
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


def clock_line(socket_path: str) -> str:
    result = subprocess.run(
        [binary_path(), "status", "--socket", socket_path], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    return next((line for line in result.stdout.splitlines() if line.startswith("clock ")), "")


@pytest.mark.parametrize("reboot", [False, True], ids=["same-boot", "reboot"])
def test_journaled_times_are_corrected_across_a_kill_and_marked_across_a_reboot(
    make_broker, mqtt_collector, pymodbus_tcp_device, gateway, short_tmp, reboot
):
    """No broker and no time source (a flood site whose 4G link is down): the gateway journals readings stamped on
    its unsynchronised clock (`time.unsynced: mark`), is killed and started again, within the same boot or after a
    reboot (another boot id), then the clock synchronises and the broker comes back. Every journaled record of the
    boot that synchronised reaches the subscriber with its true time (`tq: corrected`); a record of an earlier
    boot cannot be related to the synchronised clock: it keeps its date and is marked `unverified`."""
    clock = os.path.join(short_tmp, "clock")
    socket_path = os.path.join(short_tmp, "st.sock")
    broker = make_broker(persistent=True)
    collector: MqttCollector = mqtt_collector(broker, f"{BASE_TOPIC}/#", persistent=True)
    broker.stop()
    sim = pymodbus_tcp_device(mixed_types.register_spec())

    def unsynced_offset() -> int:
        # The wall clock says 10 s after the epoch now, and runs free from there.
        return -(int(time.time() * 1000) - 10_000)

    write_clock(clock, unsynced_offset(), False, "boot-a")
    first_started = time.time()
    gw = gateway(gateway_yaml(
        broker_port=broker.port, workdir=short_tmp, buses=[tcp_bus("tcp-1", sim.port)],
        devices=[device("dev-a", "tcp-1", 1, poll_interval="500ms")],
        status_socket=socket_path,
    ), env={"PANTAU_TEST_CLOCK": clock})
    time.sleep(4)
    gw.kill()
    killed_at = time.time()
    if reboot:
        # The board rebooted: another boot, the wall clock back near the epoch.
        write_clock(clock, unsynced_offset(), False, "boot-b")
    second_started = time.time()
    gw.start()
    time.sleep(4)
    # `pantau status` shows the clock's state.
    assert clock_line(socket_path).startswith("clock    NOT SYNCED"), clock_line(socket_path)
    assert "policy mark" in clock_line(socket_path)
    synced_at = time.time()
    write_clock(clock, 0, True, "boot-b" if reboot else "boot-a")
    assert wait_until(lambda: clock_line(socket_path).startswith("clock    synced"), 10), clock_line(socket_path)
    time.sleep(2)
    broker.start()

    collector.wait_for(
        lambda c: [m for m in c.messages(topic("telemetry", "dev-a"))
                   if "tq" not in first_record(m) and first_record(m)["bt"] > synced_at + 2],
        60, "live telemetry after the backlog", gw)
    gw.stop()

    telemetry = collector.messages(topic("telemetry", "dev-a"))
    by_quality: dict[str | None, list[float]] = {}
    for m in telemetry:
        rec = first_record(m)
        by_quality.setdefault(rec.get("tq"), []).append(rec["bt"])
    assert set(by_quality) <= {None, "corrected", "unverified"}, {k: len(v) for k, v in by_quality.items()}
    corrected = sorted(by_quality.get("corrected", []))
    unverified = by_quality.get("unverified", [])
    # The synchronised boot's records: true times, from its first start on (same boot) or from the reboot on.
    first_of_boot = second_started if reboot else first_started
    assert corrected, by_quality
    for bt in corrected:
        assert first_of_boot - 1 <= bt <= synced_at + 1.5, (bt, first_of_boot, synced_at)
    if reboot:
        # The earlier boot's records: marked, never shifted (still the unsynchronised clock's 1970 date).
        assert len(unverified) >= 3, by_quality
        assert all(bt < SANE for bt in unverified), unverified
        assert all(bt >= second_started - 1 for bt in corrected), corrected
    else:
        assert unverified == []
        # Records journaled before the kill were corrected too, not only those of the process that saw the sync.
        before_kill = [bt for bt in corrected if bt < killed_at]
        assert len(before_kill) >= 3, (corrected, killed_at)
    for bt in by_quality.get(None, []):
        assert bt >= synced_at - 1, (bt, synced_at)
    # Availability went through the journal as well: never a 1970 date unless marked from an earlier boot.
    for m in collector.messages(topic("availability", "dev-a")):
        rec = first_record(m)
        assert rec.get("tq") in (None, "corrected", "unverified"), rec
        if rec.get("tq") != "unverified":
            assert rec["ts"] > SANE * 1000, rec


def test_held_telemetry_survives_a_sigkill_and_goes_out_corrected_after_sync(
    mosquitto_broker, mqtt_collector, pymodbus_tcp_device, gateway, short_tmp
):
    """`time.unsynced: hold` with the broker up: the held telemetry is journaled, not kept in memory only. The
    gateway is SIGKILLed while the clock is unsynchronised and started again in the same boot; then the clock
    synchronises. The subscriber gets no telemetry before the synchronisation, then every held reading, those of
    the killed process included, with its true time (`tq: corrected`), each once."""
    clock = os.path.join(short_tmp, "clock")
    socket_path = os.path.join(short_tmp, "st.sock")
    collector: MqttCollector = mqtt_collector(mosquitto_broker, f"{BASE_TOPIC}/#")
    sim = pymodbus_tcp_device(mixed_types.register_spec())
    write_clock(clock, -(int(time.time() * 1000) - 10_000), False, "boot-a")
    first_started = time.time()
    gw = gateway(gateway_yaml(
        broker_port=mosquitto_broker.port, workdir=short_tmp, buses=[tcp_bus("tcp-1", sim.port)],
        devices=[device("dev-a", "tcp-1", 1, poll_interval="500ms")], status_socket=socket_path,
        extra="time: {unsynced: hold}\n",
    ), env={"PANTAU_TEST_CLOCK": clock})
    # Connected and publishing (availability is never held), telemetry held.
    collector.wait_for(lambda c: c.messages(topic("availability", "dev-a")), 30, "dev-a availability", gw)
    time.sleep(4)
    line = clock_line(socket_path)
    assert re.search(r"held [1-9]", line) and "policy hold" in line, line
    gw.kill()
    killed_at = time.time()
    gw.start()
    collector.wait_for(
        lambda c: c.messages(topic("availability", "dev-a"), since=killed_at), 30, "availability after restart", gw)
    time.sleep(3)
    assert collector.messages(topic("telemetry", "dev-a")) == [], "telemetry published with an unsynchronised clock"
    synced_at = time.time()
    write_clock(clock, 0, True, "boot-a")

    collector.wait_for(
        lambda c: [m for m in c.messages(topic("telemetry", "dev-a"))
                   if "tq" not in first_record(m) and first_record(m)["bt"] > synced_at + 2],
        60, "live telemetry after the held", gw)
    gw.stop()

    telemetry = collector.messages(topic("telemetry", "dev-a"))
    # Nothing went out before the synchronisation.
    assert all(m.received_at >= synced_at for m in telemetry), [m.received_at for m in telemetry][:3]
    qualities = {first_record(m).get("tq") for m in telemetry}
    assert qualities == {None, "corrected"}, qualities
    corrected = [first_record(m)["bt"] for m in telemetry if first_record(m).get("tq") == "corrected"]
    assert len(corrected) == len(set(corrected)), "a held reading went out twice"
    for bt in corrected:
        assert first_started - 1 <= bt <= synced_at + 1.5, (bt, first_started, synced_at)
    # The killed process's held readings were journaled: they reach the subscriber with their true times.
    before_kill = [bt for bt in corrected if bt < killed_at]
    assert len(before_kill) >= 3, (sorted(corrected), killed_at)
    after_restart = [bt for bt in corrected if bt > killed_at]
    assert len(after_restart) >= 3, (sorted(corrected), killed_at)
    for m in telemetry:
        if "tq" not in first_record(m):
            assert first_record(m)["bt"] >= synced_at - 1, first_record(m)
