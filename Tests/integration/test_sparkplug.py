"""Sparkplug B edge node (`mqtt.format: sparkplug`): a real mosquitto, a pymodbus device, the gateway binary, and an
independent host application: pysparkplug's payload codec decodes every NBIRTH/DBIRTH/DDATA/NDEATH the broker
delivers, and the checks below are the edge-node rules of docs/sparkplug.md (births, aliases, bdSeq, seq, Will,
rebirth on command, historical backlog after an outage).
"""

from __future__ import annotations

import json
import math
import os
import time

import pysparkplug as spb
import pytest

from pantau_harness import mixed_types
from pantau_harness.chaos import try_status
from pantau_harness.config import device, gateway_yaml, tcp_bus

pytestmark = pytest.mark.gateway

GROUP, NODE = "grp", "edge-1"
NS = f"spBv1.0/{GROUP}"
NBIRTH, NDEATH, NCMD = f"{NS}/NBIRTH/{NODE}", f"{NS}/NDEATH/{NODE}", f"{NS}/NCMD/{NODE}"
DBIRTH, DDATA = f"{NS}/DBIRTH/{NODE}/dev-a", f"{NS}/DDATA/{NODE}/dev-a"


def config(broker, workdir: str, sim_port: int, primary_host: str | None = None, mqtt_extra: str = "",
           **device_options) -> str:
    host = f", primary_host_id: {primary_host}" if primary_host else ""
    return gateway_yaml(
        broker_port=broker.port, workdir=workdir, buses=[tcp_bus("tcp-1", sim_port)],
        devices=[device("dev-a", "tcp-1", 1, **device_options)], status_socket=os.path.join(workdir, "status.sock"),
        mqtt_extra="  format: sparkplug" + mqtt_extra,
        extra=f"sparkplug: {{group_id: {GROUP}, edge_node_id: {NODE}{host}}}\n",
    )


def metrics_by_name(payload) -> dict:
    return {m.name: m for m in payload.metrics}


def bd_seq(payload) -> int:
    return metrics_by_name(payload)["bdSeq"].value


class Host:
    """The host application's view: every Sparkplug message in arrival order, decoded, with the DBIRTH in force."""

    def __init__(self, collector):
        self.collector = collector

    def decoded(self, since: float | None = None):
        out, birth = [], None
        for m in self.collector.messages("spBv1.0/#"):
            kind = m.topic.split("/")[2]
            if kind == "NBIRTH":
                p = spb.NBirth.decode(m.payload)
            elif kind == "DBIRTH":
                p = birth = spb.DBirth.decode(m.payload)
            elif kind == "DDATA":
                p = spb.DData.decode(m.payload, birth=birth) if birth is not None else None
            elif kind == "NDEATH":
                p = spb.NDeath.decode(m.payload)
            elif kind == "DDEATH":
                p = spb.DDeath.decode(m.payload)
            else:
                continue
            if since is None or m.received_at >= since:
                out.append((kind, p, m))
        return out

    def wait(self, predicate, timeout: float, what: str, gw):
        return self.collector.wait_for(lambda c: predicate(self.decoded()), timeout, what, gw)


def is_poll(data_payload) -> bool:
    """DDATA of a poll (the device's points), not of what the gateway computes (aggregates, indices, alerts)."""
    return any(m.name in mixed_types.expected() for m in data_payload.metrics)


def check_values(data_payload) -> None:
    """The values the pymodbus device holds, by name after alias resolution; not-good readings carry Quality."""
    by_name = metrics_by_name(data_payload)
    problems = []
    for name, point in mixed_types.expected().items():
        metric = by_name.get(name)
        if metric is None:
            problems.append(f"{name}: missing")
            continue
        if isinstance(point.value, bool) or isinstance(point.value, str):
            ok = metric.value == point.value
        else:
            ok = math.isclose(float(metric.value), float(point.value), rel_tol=1e-9, abs_tol=1e-9)
        if not ok:
            problems.append(f"{name}: {metric.value!r}, expected {point.value!r}")
    assert not problems, "DDATA mismatches:\n  " + "\n  ".join(problems)


def test_births_aliases_sequence_and_exact_values(
    mosquitto_broker, mqtt_collector, pymodbus_tcp_device, gateway, short_tmp,
):
    collector = mqtt_collector(mosquitto_broker, "spBv1.0/#")
    host = Host(collector)
    sim = pymodbus_tcp_device(mixed_types.register_spec())
    gw = gateway(config(mosquitto_broker, short_tmp, sim.port))
    host.wait(lambda d: sum(k == "DDATA" for k, _, _ in d) >= 3, 30, "NBIRTH, DBIRTH and three DDATA", gw)
    decoded = host.decoded()
    kinds = [k for k, _, _ in decoded]
    assert kinds[:2] == ["NBIRTH", "DBIRTH"], kinds

    nbirth, dbirth = decoded[0][1], decoded[1][1]
    assert nbirth.seq == 0 and dbirth.seq == 1
    assert metrics_by_name(nbirth)["Node Control/Rebirth"].value is False
    assert metrics_by_name(nbirth)["bdSeq"].datatype == spb.DataType.INT64
    # DBIRTH: every point of the profile, with its name, a unique alias, a datatype and its engineering unit.
    birth_metrics = metrics_by_name(dbirth)
    assert set(mixed_types.expected()) <= set(birth_metrics)
    # Then the aggregates of each numeric point per window (the default 1m, 15m, 1h), nothing else.
    assert {n.split("/")[0] for n in set(birth_metrics) - set(mixed_types.expected())} == {"aggregates"}
    # Unscaled integers keep an integer datatype (fewer bytes than a double); scaled numbers are doubles.
    assert birth_metrics["u16_value"].datatype == spb.DataType.UINT16
    assert birth_metrics["u32_abcd"].datatype == spb.DataType.UINT32
    assert birth_metrics["i16_negative"].datatype == spb.DataType.INT32
    assert birth_metrics["i32_cdab"].datatype == spb.DataType.INT32
    assert birth_metrics["u16_scaled"].datatype == spb.DataType.DOUBLE
    aliases = [m.alias for m in dbirth.metrics] + [m.alias for m in nbirth.metrics]
    assert None not in aliases and len(set(aliases)) == len(aliases), aliases

    # Sequence: 0 at NBIRTH, then +1 per message, modulo 256.
    seqs = [p.seq for _, p, _ in decoded]
    assert seqs == [i % 256 for i in range(len(seqs))], seqs

    for kind, payload, message in decoded[2:]:
        # The device's own DBIRTH when its first poll brings it online may come again; nothing else.
        assert kind in ("DDATA", "DBIRTH"), kind
        if kind == "DBIRTH":
            continue
        # By exception with aliases: names are not on the wire (pysparkplug filled them from the DBIRTH).
        names_on_wire = [n for n in mixed_types.expected() if n.encode() in message.payload]
        assert not names_on_wire, names_on_wire
        assert all(m.alias is not None for m in payload.metrics)
        assert not any(m.is_historical for m in payload.metrics)
        if is_poll(payload):
            check_values(payload)
        assert payload.timestamp is not None


def test_rebirth_on_command_will_and_bdseq_across_restart(
    mosquitto_broker, mqtt_collector, pymodbus_tcp_device, gateway, short_tmp,
):
    collector = mqtt_collector(mosquitto_broker, "spBv1.0/#")
    host = Host(collector)
    sim = pymodbus_tcp_device(mixed_types.register_spec())
    gw = gateway(config(mosquitto_broker, short_tmp, sim.port))
    host.wait(lambda d: any(k == "DDATA" for k, _, _ in d), 30, "first DDATA", gw)
    first_bd = bd_seq(host.decoded()[0][1])

    # NCMD Node Control/Rebirth = true: a new NBIRTH (seq 0, same bdSeq) and DBIRTH follow.
    sent = time.time()
    cmd = spb.NCmd(timestamp=spb.get_current_timestamp(), metrics=(
        spb.Metric(timestamp=spb.get_current_timestamp(), name="Node Control/Rebirth", datatype=spb.DataType.BOOLEAN,
                   value=True),))
    collector.client.publish(NCMD, cmd.encode(), qos=1)
    host.wait(lambda d: [k for k, _, m in d if m.received_at >= sent][:2] == ["NBIRTH", "DBIRTH"]
              or any(k == "NBIRTH" and m.received_at >= sent for k, _, m in d), 15, "rebirth", gw)
    after = host.decoded(since=sent)
    births = [(k, p) for k, p, _ in after if k in ("NBIRTH", "DBIRTH")]
    assert births[0][0] == "NBIRTH" and births[0][1].seq == 0 and bd_seq(births[0][1]) == first_bd
    host.wait(lambda d: sum(k == "DBIRTH" for k, _, _ in d) >= 2, 10, "the DBIRTH of the rebirth", gw)

    # The Will: a killed gateway's NDEATH carries the bdSeq of its NBIRTH.
    gw.kill()
    host.wait(lambda d: any(k == "NDEATH" for k, _, _ in d), 40, "NDEATH (the Will) after a kill", None)
    death = [p for k, p, _ in host.decoded() if k == "NDEATH"][0]
    assert death.bd_seq_metric.name == "bdSeq" and death.bd_seq_metric.value == first_bd

    # bdSeq is kept in the journal: the restarted gateway's NBIRTH is the next one, not a repeat.
    restarted = time.time()
    gw.restart()
    host.wait(lambda d: any(k == "NBIRTH" and m.received_at >= restarted for k, _, m in d), 30, "NBIRTH again", gw)
    nbirth = [p for k, p, m in host.decoded() if k == "NBIRTH" and m.received_at >= restarted][0]
    assert bd_seq(nbirth) == (first_bd + 1) % 256


def test_silent_unit_gets_ddeath_and_dbirth_when_back(
    mosquitto_broker, mqtt_collector, pymodbus_tcp_device, gateway, short_tmp,
):
    collector = mqtt_collector(mosquitto_broker, "spBv1.0/#")
    host = Host(collector)
    sim = pymodbus_tcp_device(mixed_types.register_spec())
    gw = gateway(config(mosquitto_broker, short_tmp, sim.port, timeout_ms=300, retries=0))
    host.wait(lambda d: any(k == "DDATA" for k, _, _ in d), 30, "first DDATA", gw)

    sim.kill()
    host.wait(lambda d: any(k == "DDEATH" for k, _, _ in d), 30, "DDEATH of the silent unit", gw)
    sim.start()
    back = time.time()
    host.wait(lambda d: any(k == "DDATA" and m.received_at >= back for k, _, m in d), 30, "DDATA again", gw)

    kinds = [k for k, _, _ in host.decoded()]
    death = kinds.index("DDEATH")
    # After the DDEATH the device is born again before it reports data again.
    after = [k for k in kinds[death + 1:] if k in ("DBIRTH", "DDATA")]
    assert after[0] == "DBIRTH", (kinds, [(k, p.seq, m.received_at) for k, p, m in host.decoded()])
    # seq keeps counting through deaths and births: no gap and no repeat since the NBIRTH.
    seqs = [p.seq for k, p, _ in host.decoded()]
    assert seqs == [i % 256 for i in range(len(seqs))], seqs
    check_values([p for k, p, _ in host.decoded() if k == "DDATA" and is_poll(p)][-1])


def test_broker_outage_backlog_is_historical_after_fresh_births(
    make_broker, mqtt_collector, pymodbus_tcp_device, gateway, short_tmp,
):
    broker = make_broker(persistent=True)
    collector = mqtt_collector(broker, "spBv1.0/#", persistent=True)
    host = Host(collector)
    sim = pymodbus_tcp_device(mixed_types.register_spec())
    gw = gateway(config(broker, short_tmp, sim.port))
    host.wait(lambda d: any(k == "DDATA" for k, _, _ in d), 30, "first DDATA", gw)

    broker.stop()
    down = time.time()
    collector.wait_for(lambda c: time.time() - down >= 70, 80, "an outage longer than the live window", gw)
    broker.start()
    restarted = time.time()

    def after_restart(d):
        """What arrived after the restart, less what the old session left behind: the persistent collector may be
        handed DDATA published before the broker stopped (queued for it in the broker's saved database), then the
        old session's Will (NDEATH, the old bdSeq). Fresh births start the new session."""
        out = [(k, p) for k, p, m in d if m.received_at >= restarted]
        while out and out[0][0] == "DDATA" and out[0][1].timestamp < restarted * 1000 \
                and not out[0][1].metrics[0].is_historical:
            out = out[1:]
        return out

    def live_after_births(d):
        after = after_restart(d)
        kinds = [k for k, _ in after]
        return "NBIRTH" in kinds and any(k == "DDATA" and not p.metrics[0].is_historical
                                         for k, p in after[kinds.index("NBIRTH"):])

    host.wait(live_after_births, 40, "live DDATA after fresh births", gw)
    first_bd = bd_seq(host.decoded()[0][1])
    after = after_restart(host.decoded())
    if after and after[0][0] == "NDEATH":
        assert after[0][1].bd_seq_metric.value == first_bd
        after = after[1:]
    kinds = [k for k, _ in after]
    assert kinds[:2] == ["NBIRTH", "DBIRTH"], kinds
    assert bd_seq(after[0][1]) != first_bd
    historical = [p for k, p in after if k == "DDATA" and p.metrics[0].is_historical]
    assert historical, "no historical DDATA after a 70 s outage"
    for p in historical:
        assert all(m.is_historical for m in p.metrics)
        # Original acquisition times: from the outage, not from the replay.
        assert all(m.timestamp < restarted * 1000 for m in p.metrics)
    assert any(is_poll(p) for p in historical)
    for p in filter(is_poll, historical):
        check_values(p)


HOST_ID = "scada-1"
STATE = f"spBv1.0/STATE/{HOST_ID}"


def journal_seq(message) -> int | None:
    """The journal's sequence number, sent as the MQTT 5 user property `seq` on every journaled message."""
    for key, value in message.properties.get("UserProperty", []):
        if key == "seq":
            return int(value)
    return None


def holding(sock: str, connects: int):
    """The gateway is connected (for the `connects`-th time) and keeps at least three polls in its journal (beside
    the DBIRTH record of the device coming online, which rides the telemetry lane too), the oldest for 3 s."""
    def check(_collector):
        s = try_status(sock)
        return s is not None and s["broker"]["connected"] and s["broker"]["connects"] >= connects \
            and s["journal"]["pending_by_kind"].get("telemetry", 0) >= 4 \
            and s["journal"]["oldest_pending_ts"] <= time.time() * 1000 - 3000
    return check


def test_primary_host_offline_and_online(
    mosquitto_broker, mqtt_collector, pymodbus_tcp_device, gateway, short_tmp,
):
    """sparkplug.primary_host_id: no birth and no data until the host's STATE says online; the data of the wait is
    published after the births, historical; an offline STATE ends the session (NDEATH, a new connection with a new
    bdSeq that waits again); a stale or malformed STATE changes nothing; no journaled message is lost."""
    collector = mqtt_collector(mosquitto_broker, "#")
    host = Host(collector)
    sim = pymodbus_tcp_device(mixed_types.register_spec())
    sock = os.path.join(short_tmp, "status.sock")
    gw = gateway(config(mosquitto_broker, short_tmp, sim.port, primary_host=HOST_ID, mqtt_extra="\n  live_window: 1s"))

    def publish_state(payload: bytes, retain: bool = True) -> None:
        collector.client.publish(STATE, payload, qos=1, retain=retain).wait_for_publish(10)

    def state(online: bool, timestamp: int) -> bytes:
        return json.dumps({"online": online, "timestamp": timestamp}).encode()

    def check_waited(waited: list, online_at: int, what: str) -> None:
        """The polls acquired before the host came online at `online_at` (ms), published after the births."""
        assert len(waited) >= 3, f"the polls of {what} were not published after the births"
        # live_window is 1 s: what waited longer than that is backlog.
        old = [p for p in waited if p.timestamp < online_at - 1500]
        assert old, "no poll waited longer than the live window"
        for p in old:
            assert all(m.is_historical for m in p.metrics)
        for p in waited:
            check_values(p)

    # Connected and polling, the data journaled: no birth, no data while no host is online, nor on a STATE that
    # is not one (the gateway logs each it ignores).
    collector.wait_for(holding(sock, 1), 30, "a connected gateway holding three polls", gw)
    publish_state(b'{"online": "yes", "timestamp": 1}', retain=False)
    publish_state(b"ONLINE", retain=False)
    collector.wait_for(lambda c: gw.logs().count("primary host STATE ignored") >= 2, 15, "two STATE ignored", gw)
    assert host.decoded() == [], [k for k, _, _ in host.decoded()]

    online_1 = int(time.time() * 1000)
    publish_state(state(True, online_1))
    host.wait(lambda d: any(k == "DDATA" and p.timestamp >= online_1 for k, p, _ in d), 30,
              "DDATA acquired after the host came online", gw)
    decoded = host.decoded()
    kinds = [k for k, _, _ in decoded]
    assert kinds[:2] == ["NBIRTH", "DBIRTH"], kinds
    first_bd = bd_seq(decoded[0][1])
    check_waited([p for k, p, _ in decoded if k == "DDATA" and is_poll(p) and p.timestamp < online_1], online_1,
                 "the wait")

    # An offline STATE older than the one accepted is ignored: the rebirth asked after it comes without NDEATH.
    publish_state(state(False, online_1 - 1), retain=False)
    asked = time.time()
    cmd = spb.NCmd(timestamp=spb.get_current_timestamp(), metrics=(
        spb.Metric(timestamp=spb.get_current_timestamp(), name="Node Control/Rebirth", datatype=spb.DataType.BOOLEAN,
                   value=True),))
    collector.client.publish(NCMD, cmd.encode(), qos=1)
    host.wait(lambda d: any(k == "NBIRTH" and m.received_at >= asked for k, _, m in d), 15, "the rebirth", gw)
    assert "NDEATH" not in [k for k, _, _ in host.decoded()]
    assert "is older than the last one" in gw.logs()

    # The host goes offline (its Will: same timestamp as its online STATE): NDEATH with the bdSeq of the NBIRTH,
    # then a new connection that holds its data.
    publish_state(state(False, online_1))
    host.wait(lambda d: any(k == "NDEATH" for k, _, _ in d), 15, "NDEATH after the host went offline", gw)
    offline_at = time.time()
    death = [p for k, p, _ in host.decoded() if k == "NDEATH"][0]
    assert death.bd_seq_metric.value == first_bd
    collector.wait_for(holding(sock, 2), 30, "the new connection holding three polls", gw)
    assert not [k for k, _, m in host.decoded() if k in ("NBIRTH", "DBIRTH", "DDATA") and m.received_at > offline_at]

    online_2 = int(time.time() * 1000)
    publish_state(state(True, online_2))
    host.wait(lambda d: any(k == "DDATA" and p.timestamp >= online_2 for k, p, _ in d), 30,
              "DDATA acquired after the host came back", gw)
    decoded = host.decoded()
    kinds = [k for k, _, _ in decoded]
    after = decoded[kinds.index("NDEATH") + 1:]
    assert [k for k, _, _ in after[:2]] == ["NBIRTH", "DBIRTH"], [k for k, _, _ in after]
    assert bd_seq(after[0][1]) == (first_bd + 1) % 256
    assert [p.seq for _, p, _ in after] == [i % 256 for i in range(len(after))]
    check_waited([p for k, p, _ in after if k == "DDATA" and is_poll(p) and p.timestamp < online_2], online_2,
                 "the host's absence")

    # Nothing lost: every journaled message (DDATA, DBIRTH/DDEATH records, pantau/... topics) arrived, the journal's
    # numbers without a gap, and every poll of the absence reached the host application.
    seqs = sorted({n for m in collector.all() if (n := journal_seq(m)) is not None})
    assert seqs and seqs == list(range(seqs[0], seqs[-1] + 1)), seqs


def test_aggregates_ispu_and_flood_alert_are_metrics(
    mosquitto_broker, mqtt_collector, pymodbus_tcp_device, gateway, short_tmp,
):
    """What the gateway computes is in the DBIRTH (names of the SenML contract, aliases, datatypes) and in DDATA when
    it changes, with exactly the values the device's readings give: a 10 s window of `u16_value` (1234), the ISPU of
    `f32_badc` (PM2.5 12.375 ug/m3: 12.375 / 15.5 x 50 = 39.9, so 40, Baik), the flood alert on `f64_abcdefgh`
    (3.14159... m, between siaga3 3 and siaga2 4: level 3, waspada), a float switch and rain. None of them goes out
    as Pantau JSON."""
    collector = mqtt_collector(mosquitto_broker, "#")
    host = Host(collector)
    sim = pymodbus_tcp_device(mixed_types.register_spec())
    text = config(mosquitto_broker, short_tmp, sim.port).replace(
        "poll_interval: 1s}",
        "poll_interval: 1s, air_quality: {indices: [ispu], averaging: {pm2_5: 1m}}, "
        "flood: [{point: f64_abcdefgh, siaga3: 3, siaga2: 4, siaga1: 5, min_dwell: 1s}], "
        "float_switches: [{point: coil_flag, samples: 2}], rain: {point: u16_value, mm_per_count: 0.2}}", 1)
    assert "flood:" in text
    gw = gateway(text + "aggregation: {windows: [10s], min_coverage: 0.1}\n")

    def latest(d, name):
        """The last DDATA value of a metric, by name (pysparkplug resolved the alias through the DBIRTH)."""
        found = [m for k, p, _ in d if k == "DDATA" for m in p.metrics if m.name == name]
        return found[-1] if found else None

    def done(d):
        ispu, level = latest(d, "index/ispu"), latest(d, "alerts/f64_abcdefgh/level")
        return latest(d, "aggregates/10s/u16_value/mean") and ispu and ispu.value is not None \
            and level and level.value == 3 and latest(d, "alerts/coil_flag/state") and latest(d, "rain/mm_24h")

    host.wait(done, 60, "an aggregate, an ISPU and a flood level 3 as DDATA metrics", gw)
    decoded = host.decoded()
    dbirth = metrics_by_name([p for k, p, _ in decoded if k == "DBIRTH"][-1])
    assert dbirth["index/ispu"].datatype == spb.DataType.INT64
    assert dbirth["index/ispu/category"].datatype == spb.DataType.STRING
    assert dbirth["alerts/f64_abcdefgh/level"].datatype == spb.DataType.INT64
    assert dbirth["alerts/f64_abcdefgh/stale"].datatype == spb.DataType.BOOLEAN
    assert dbirth["aggregates/10s/u16_value/mean"].datatype == spb.DataType.DOUBLE
    assert dbirth["aggregates/10s/u16_value/count"].datatype == spb.DataType.INT64
    assert not any(n.startswith("aggregates/10s/model_name") for n in dbirth)  # text has no aggregate
    assert dbirth["aggregates/10s/status_bit3/mean"].datatype == spb.DataType.DOUBLE  # a bit does: 0 or 1

    assert latest(decoded, "aggregates/10s/u16_value/mean").value == 1234.0
    assert latest(decoded, "aggregates/10s/u16_value/min").value == 1234.0
    assert latest(decoded, "aggregates/10s/u16_value/max").value == 1234.0
    assert latest(decoded, "aggregates/10s/u16_value/stddev").value == 0.0
    assert 1 <= latest(decoded, "aggregates/10s/u16_value/count").value <= 11
    assert latest(decoded, "aggregates/10s/f32_abcd/mean").value == 1013.25
    assert latest(decoded, "aggregates/10s/status_bit3/mean").value == 1.0
    assert latest(decoded, "index/ispu").value == 40
    assert latest(decoded, "index/ispu/category").value == "Baik"
    assert latest(decoded, "index/ispu/critical").value == "pm2_5"
    assert latest(decoded, "index/ispu/status").value == "ok"
    assert latest(decoded, "alerts/f64_abcdefgh/level_name").value == "waspada"
    assert latest(decoded, "alerts/f64_abcdefgh/stale").value is False
    # The alert message's value, rounded to 4 decimals as in the JSON form.
    assert latest(decoded, "alerts/f64_abcdefgh/value").value == 3.1416
    # The float switch (coil_flag is set) after two equal samples; rain from a counter that does not move.
    assert latest(decoded, "alerts/coil_flag/state").value == "wet"
    assert latest(decoded, "rain/mm_24h").value == 0.0
    assert latest(decoded, "rain/category_hourly").value == "tidak_hujan"
    # The flood alert said normal (4) at the first good reading, then waspada (3) after the dwell.
    levels = [m.value for k, p, _ in decoded if k == "DDATA" for m in p.metrics
              if m.name == "alerts/f64_abcdefgh/level"]
    assert levels[0] == 4 and levels[-1] == 3, levels
    # seq still counts by one through every kind of DDATA.
    seqs = [p.seq for k, p, _ in decoded if k != "NDEATH"]
    assert seqs == [i % 256 for i in range(len(seqs))], seqs
    # Metrics, not Pantau JSON.
    json_topics = {m.topic for m in collector.all()
                   if "/devices/dev-a/" in m.topic and not m.topic.startswith("spBv1.0")}
    leftover = [m.payload for m in collector.all() if m.topic in json_topics and "/availability" not in m.topic]
    assert not leftover, leftover
