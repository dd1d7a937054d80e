"""Sparkplug NCMD/DCMD through the command core (issue 16): a real mosquitto, a pymodbus device, `pantau run` in
`mqtt.format: sparkplug`, and an independent Sparkplug host (pysparkplug's codec) that sends DCMD/NCMD.

A write is a DCMD with the point's metric and the signature as three more metrics (`Pantau/Timestamp`, `Pantau/Nonce`,
`Pantau/Signature`), signed with Python's own hmac over the MQTT command's text. The device is checked with
pymodbus' own client; every command, accepted or refused, must appear on `<base>/audit`.
"""

from __future__ import annotations

import os
import secrets
import time

import pysparkplug as spb
import pytest
from pymodbus.client import ModbusTcpClient

from pysparkplug._protobuf import sparkplug_b_pb2 as pb

from pantau_harness.commander import sign
from pantau_harness.config import BASE_TOPIC, device, gateway_yaml, tcp_bus

pytestmark = pytest.mark.gateway

GROUP, NODE = "grp", "edge-1"
NS = f"spBv1.0/{GROUP}"
PROFILE = """\
id: test-pump
manufacturer: Test
model: Pump
source: "integration test"
points:
  - {name: level, quantity: water_level, table: input, address: 0, type: u16, scale: 0.01, unit: m}
  - {name: setpoint, quantity: water_level, table: holding, address: 10, type: u16, scale: 0.01, unit: m,
     range: [0, 5], writable: true}
  - {name: limit, quantity: water_level, table: holding, address: 12, type: u16, unit: m, range: [0, 100]}
"""
KEY = b"k" * 40
REGISTERS = {"input": {0: 123}, "holding": {10: 100, 12: 7}}


def now_ms() -> int:
    return int(time.time() * 1000)


def dcmd(point: str | None, datatype=None, value=None, key: bytes | None = KEY, signed_value: str | None = None,
         nonce: str | None = None, extra=()) -> tuple[bytes, str]:
    """A DCMD for pump-1 as a Sparkplug host sends it; signed with `key` unless None (then only the nonce is sent).
    Returns the payload and its nonce."""
    nonce = nonce or secrets.token_hex(8)
    ts = now_ms()
    metrics = list(extra)
    if point is not None:
        metrics.append(spb.Metric(timestamp=ts, name=point, datatype=datatype, value=value))
    metrics.append(spb.Metric(timestamp=ts, name="Pantau/Nonce", datatype=spb.DataType.STRING, value=nonce))
    if key is not None:
        body = sign("write", {"device": "pump-1", "point": point, "value": signed_value or repr(value), "ts": ts,
                              "nonce": nonce}, key)
        metrics += [
            spb.Metric(timestamp=ts, name="Pantau/Timestamp", datatype=spb.DataType.UINT64, value=ts),
            spb.Metric(timestamp=ts, name="Pantau/Signature", datatype=spb.DataType.STRING, value=body["sig"]),
        ]
    return spb.DCmd(timestamp=ts, metrics=tuple(metrics)).encode(), nonce


@pytest.fixture
def site(request, tmp_path, make_broker, pymodbus_tcp_device, gateway, mqtt_collector, schemas):
    param = getattr(request, "param", True)
    enabled = "false" if param is False else "true"
    env = None
    if param == "unsynced":
        # The board's clock is right but not known to be (no time service yet): offset 0, unsynchronised.
        clock = tmp_path / "clock"
        clock.write_text("0 0\n")
        env = {"PANTAU_TEST_CLOCK": str(clock)}
    broker = make_broker()
    dev = pymodbus_tcp_device({1: REGISTERS, 2: REGISTERS})
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "test-pump.yaml").write_text(PROFILE)
    key_file = tmp_path / "command.key"
    key_file.write_bytes(KEY + b"\n")
    os.chmod(key_file, 0o600)
    workdir = str(tmp_path)
    config = gateway_yaml(
        broker_port=broker.port, workdir=workdir, buses=[tcp_bus("net", dev.port)],
        devices=[device("pump-1", "net", 1, profile="test-pump", poll_interval="1h", writes="allow")],
        status_socket=os.path.join(workdir, "status.sock"), profiles=[str(profiles)],
        mqtt_extra="  format: sparkplug",
        extra=(f"sparkplug: {{group_id: {GROUP}, edge_node_id: {NODE}}}\n"
               f"commands: {{enabled: {enabled}, key_file: {key_file}, window_seconds: 30}}\n"),
    )
    audit = mqtt_collector(broker, f"{BASE_TOPIC}/audit")
    host = mqtt_collector(broker, "spBv1.0/#")
    gw = gateway(config, env=env)
    # The DCMD subscription precedes the births on the same connection: once the first DDATA is out it is in place.
    host.wait_for_messages(f"{NS}/DDATA/{NODE}/pump-1", timeout=30, watch=gw)
    modbus = ModbusTcpClient("127.0.0.1", port=dev.port)
    modbus.connect()
    yield {"gw": gw, "host": host, "audit": audit, "modbus": modbus}
    for event in audit.json():
        schemas.validate("audit", event)
    modbus.close()


def holding(site, address: int) -> int:
    result = site["modbus"].read_holding_registers(address, count=1, device_id=1)
    assert not result.isError(), result
    return result.registers[0]


def send(site, payload: bytes, kind: str = "DCMD") -> None:
    topic = f"{NS}/DCMD/{NODE}/pump-1" if kind == "DCMD" else f"{NS}/NCMD/{NODE}"
    site["host"].client.publish(topic, payload, qos=1).wait_for_publish(5)


def audited(site, status: str, nonce: str | None = None, verb: str | None = None) -> dict:
    def match(e):
        return e["status"] == status and (nonce is None or e.get("nonce") == nonce) and (verb is None or
                                                                                        e["verb"] == verb)
    return site["audit"].wait_for(lambda c: next((e for e in c.json() if match(e)), None), 10,
                                  f"audit event {status} for {nonce or verb}", site["gw"])


def ddata(site, since: float) -> list:
    """The host's view: DDATA of pump-1 since `since`, aliases resolved through the last DBIRTH."""
    birth, out = None, []
    for m in site["host"].messages(f"{NS}/#"):
        if m.topic == f"{NS}/DBIRTH/{NODE}/pump-1":
            birth = spb.DBirth.decode(m.payload)
        elif m.topic == f"{NS}/DDATA/{NODE}/pump-1" and m.received_at >= since and birth is not None:
            out.append({x.name: x.value for x in spb.DData.decode(m.payload, birth=birth).metrics})
    return out


def test_a_signed_dcmd_write_changes_the_register_and_ddata_shows_the_read_back(site):
    since = time.time()
    payload, nonce = dcmd("setpoint", spb.DataType.DOUBLE, 2.5)
    send(site, payload)
    event = audited(site, "ok", nonce)
    assert event["verb"] == "write" and event["signed"] is True and event["device"] == "pump-1"
    assert event["point"] == "setpoint" and event["value"] == "2.5" and event["code"] == 200
    assert holding(site, 10) == 250
    read_back = site["host"].wait_for(
        lambda c: [d for d in ddata(site, since) if "setpoint" in d], 10, "DDATA with the read-back", site["gw"])
    assert read_back[0] == {"setpoint": 2.5}
    # The same DCMD again is a replay: refused by the nonce memory the MQTT commands share.
    send(site, payload)
    audited(site, "replayed", nonce)


REFUSALS = [
    ("unsigned", lambda: dcmd("setpoint", spb.DataType.DOUBLE, 3.0, key=None)),
    ("bad_signature", lambda: dcmd("setpoint", spb.DataType.DOUBLE, 3.0, key=b"x" * 40)),
    ("not_writable", lambda: dcmd("limit", spb.DataType.UINT16, 9, signed_value="9")),
    ("out_of_range", lambda: dcmd("setpoint", spb.DataType.DOUBLE, 5.5)),
    ("out_of_range", lambda: dcmd("setpoint", spb.DataType.DOUBLE, 1.234)),
    # Ill-typed: the DBIRTH declares setpoint a Double.
    ("bad_request", lambda: dcmd("setpoint", spb.DataType.FLOAT, 3.0)),
    # Signed right, but the signature of another value: what is written is what was signed, or nothing.
    ("bad_signature", lambda: dcmd("setpoint", spb.DataType.DOUBLE, 3.0, signed_value="4.0")),
]


def test_refused_dcmd_writes_change_nothing_and_are_audited(site):
    since = time.time()
    for status, make in REFUSALS:
        payload, nonce = make()
        send(site, payload)
        event = audited(site, status, nonce)
        assert event["device"] == "pump-1", event
        assert holding(site, 10) == 100 and holding(site, 12) == 7, status
    # Nothing was written, so no read-back went out.
    assert not [d for d in ddata(site, since) if "setpoint" in d or "limit" in d]


def test_dcmd_read_and_unsupported_node_controls(site):
    since = time.time()
    payload = spb.DCmd(timestamp=now_ms(), metrics=(
        spb.Metric(timestamp=now_ms(), name="Device Control/Read", datatype=spb.DataType.BOOLEAN, value=True),)).encode()
    send(site, payload)
    event = audited(site, "ok", verb="read")
    assert event["device"] == "pump-1" and event["signed"] is False
    polled = site["host"].wait_for(
        lambda c: [d for d in ddata(site, since) if "level" in d], 10, "DDATA of the read", site["gw"])
    assert polled[0]["level"] == 1.23
    reboot = spb.NCmd(timestamp=now_ms(), metrics=(
        spb.Metric(timestamp=now_ms(), name="Node Control/Reboot", datatype=spb.DataType.BOOLEAN, value=True),)).encode()
    send(site, reboot, kind="NCMD")
    event = audited(site, "unknown_verb", verb="Node Control/Reboot")
    assert event["code"] == 501 and "not supported" in event["message"]
    assert site["gw"].alive


@pytest.mark.parametrize("site", [False], indirect=True, ids=["commands-disabled"])
def test_commands_disabled_refuse_a_signed_dcmd_write(site):
    payload, nonce = dcmd("setpoint", spb.DataType.DOUBLE, 2.5)
    send(site, payload)
    event = audited(site, "disabled", nonce)
    assert event["code"] == 503
    assert holding(site, 10) == 100


@pytest.mark.parametrize("site", ["unsynced"], indirect=True, ids=["clock-unsynced"])
def test_read_back_on_an_unsynchronised_clock_is_marked_unsynced(site):
    """A write's read-back DDATA is a reading like any other: on a clock not known to be right it carries the metric
    property tq=unsynced (issue 14), never a bare timestamp."""
    since = time.time()
    payload, nonce = dcmd("setpoint", spb.DataType.DOUBLE, 2.5)
    send(site, payload)
    audited(site, "ok", nonce)
    assert holding(site, 10) == 250

    def read_back_marks(collector):
        birth, marks = None, []
        for m in collector.messages(f"{NS}/#"):
            if m.topic == f"{NS}/DBIRTH/{NODE}/pump-1":
                birth = spb.DBirth.decode(m.payload)
            elif m.topic == f"{NS}/DDATA/{NODE}/pump-1" and m.received_at >= since and birth is not None:
                names = {x.alias: x.name for x in birth.metrics}
                raw = pb.Payload()
                raw.ParseFromString(m.payload)
                for x in raw.metrics:
                    if names.get(x.alias, x.name) == "setpoint":
                        props = dict(zip(x.properties.keys, x.properties.values))
                        marks.append(props["tq"].string_value if "tq" in props else None)
        return marks

    marks = site["host"].wait_for(read_back_marks, 10, "DDATA with the read-back", site["gw"])
    assert marks == ["unsynced"], marks
