"""Sparkplug DDATA and trustworthy time (issue 14): the real gateway in `mqtt.format: sparkplug` with the test-only
clock source (`PANTAU_TEST_CLOCK`, see test_clock_trust.py), a real mosquitto and a pymodbus device. The board boots
at 1970 without a broker, is killed and started again (same boot, or after a reboot), then the clock synchronises
and the broker comes back. The host decodes every DDATA with the Sparkplug protobuf itself (pysparkplug's generated
module: metric properties included) and must see only true times or marked ones (metric property `tq`).
"""
from __future__ import annotations

import os
import time

import pytest
from pysparkplug._protobuf import sparkplug_b_pb2 as pb

from pantau_harness import mixed_types
from pantau_harness.procs import wait_until
from test_clock_trust import SANE, clock_line, write_clock
from test_sparkplug import GROUP, NODE
from test_sparkplug import config as sparkplug_config

pytestmark = pytest.mark.gateway

DBIRTH, DDATA = f"spBv1.0/{GROUP}/DBIRTH/{NODE}/dev-a", f"spBv1.0/{GROUP}/DDATA/{NODE}/dev-a"


def point_aliases(collector) -> set[int]:
    """The aliases of the device's points (not of what the gateway computes), from any DBIRTH."""
    for m in collector.messages(DBIRTH):
        p = pb.Payload()
        p.ParseFromString(m.payload)
        return {x.alias for x in p.metrics if x.name in mixed_types.expected()}
    return set()


def poll_metrics(collector) -> list[tuple[str | None, int, set[str]]]:
    """(tq, timestamp ms, property keys) of every point metric of every DDATA."""
    aliases = point_aliases(collector)
    out = []
    for m in collector.messages(DDATA):
        p = pb.Payload()
        p.ParseFromString(m.payload)
        assert not p.HasField("uuid"), "the journal-only boot id went out on the wire"
        for x in p.metrics:
            if x.alias not in aliases:
                continue
            props = dict(zip(x.properties.keys, x.properties.values))
            out.append((props["tq"].string_value if "tq" in props else None, x.timestamp, set(props)))
    return out


@pytest.mark.parametrize("reboot", [False, True], ids=["same-boot", "reboot"])
def test_sparkplug_times_are_marked_then_corrected_or_marked_unverified(
    make_broker, mqtt_collector, pymodbus_tcp_device, gateway, short_tmp, reboot
):
    clock = os.path.join(short_tmp, "clock")
    socket_path = os.path.join(short_tmp, "status.sock")
    broker = make_broker(persistent=True)
    collector = mqtt_collector(broker, "spBv1.0/#", persistent=True)
    broker.stop()
    sim = pymodbus_tcp_device(mixed_types.register_spec())

    def unsynced_offset() -> int:
        return -(int(time.time() * 1000) - 10_000)

    write_clock(clock, unsynced_offset(), False, "boot-a")
    first_started = time.time()
    gw = gateway(sparkplug_config(broker, short_tmp, sim.port, poll_interval="500ms"),
                 env={"PANTAU_TEST_CLOCK": clock})
    time.sleep(4)
    gw.kill()
    killed_at = time.time()
    if reboot:
        write_clock(clock, unsynced_offset(), False, "boot-b")
    second_started = time.time()
    gw.start()
    time.sleep(4)
    assert clock_line(socket_path).startswith("clock    NOT SYNCED"), clock_line(socket_path)
    synced_at = time.time()
    write_clock(clock, 0, True, "boot-b" if reboot else "boot-a")
    assert wait_until(lambda: clock_line(socket_path).startswith("clock    synced"), 10), clock_line(socket_path)
    time.sleep(2)
    broker.start()
    collector.wait_for(
        lambda c: [t for q, t, _ in poll_metrics(c) if q is None and t > (synced_at + 2) * 1000],
        60, "live DDATA after the backlog", gw)
    gw.stop()

    metrics = poll_metrics(collector)
    assert all(keys <= {"tq", "Quality"} for _, _, keys in metrics), "journal-only properties went out"
    by_quality: dict[str | None, list[float]] = {}
    for q, ts, _ in metrics:
        by_quality.setdefault(q, []).append(ts / 1000)
    assert set(by_quality) <= {None, "corrected", "unverified"}, {k: len(v) for k, v in by_quality.items()}
    corrected = by_quality.get("corrected", [])
    assert corrected, {k: len(v) for k, v in by_quality.items()}
    first_of_boot = second_started if reboot else first_started
    for t in corrected:
        assert first_of_boot - 1 <= t <= synced_at + 1.5, (t, first_of_boot, synced_at)
    if reboot:
        unverified = by_quality.get("unverified", [])
        assert len(unverified) >= 3, {k: len(v) for k, v in by_quality.items()}
        assert all(t < SANE for t in unverified), unverified
    else:
        assert "unverified" not in by_quality
        assert len([t for t in corrected if t < killed_at]) >= 3, (corrected, killed_at)
    for t in by_quality.get(None, []):
        assert t >= synced_at - 1, (t, synced_at)
    # Every metric, computed ones included: never a wrong date unmarked.
    for m in collector.messages(DDATA):
        p = pb.Payload()
        p.ParseFromString(m.payload)
        for x in p.metrics:
            tq = dict(zip(x.properties.keys, x.properties.values)).get("tq")
            if x.timestamp < SANE * 1000:
                assert tq is not None and tq.string_value in ("unsynced", "unverified"), (x.alias, x.timestamp)
