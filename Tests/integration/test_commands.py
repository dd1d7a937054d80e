"""Remote commands (issue 16): MQTT 5 request/response against a real mosquitto, a pymodbus device and `pantau run`.

An independent client (paho-mqtt, Python's hmac) sends each command with a Response Topic and Correlation Data;
the gateway answers there with a status code, and every command, accepted or refused, appears on `<base>/audit`.
Writes are checked on the device itself with pymodbus' own client.
"""

from __future__ import annotations

import os
import time

import pytest
from pymodbus.client import ModbusTcpClient

from pantau_harness.commander import Commander, sign
from pantau_harness.config import BASE_TOPIC, device, gateway_yaml, tcp_bus, topic

pytestmark = pytest.mark.gateway

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


@pytest.fixture
def site(tmp_path, make_broker, pymodbus_tcp_device, gateway, mqtt_collector, schemas):
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
        devices=[
            device("pump-1", "net", 1, profile="test-pump", poll_interval="1h", writes="allow"),
            device("pump-2", "net", 2, profile="test-pump", poll_interval="1h"),
        ],
        status_socket=os.path.join(workdir, "status.sock"), profiles=[str(profiles)],
        extra=f"commands: {{enabled: true, key_file: {key_file}, window_seconds: 30}}\n",
    )
    audit = mqtt_collector(broker, f"{BASE_TOPIC}/audit")
    telemetry = mqtt_collector(broker, topic("telemetry", "pump-1"))
    gw = gateway(config)
    # The first poll at start: the gateway is up and subscribed once its telemetry is out.
    telemetry.wait_for_messages(topic("telemetry", "pump-1"), timeout=30, watch=gw)
    commander = Commander(broker.port)
    # The command subscription follows the CONNACK; a health request answered proves it is in place.
    for _ in range(50):
        try:
            commander.request("health", {}, timeout=1)
            break
        except Exception:
            continue
    modbus = ModbusTcpClient("127.0.0.1", port=dev.port)
    modbus.connect()
    yield {"gw": gw, "cmd": commander, "audit": audit, "telemetry": telemetry, "modbus": modbus, "schemas": schemas}
    for event in audit.json():
        schemas.validate("audit", event)
    modbus.close()
    commander.stop()


def holding(site, address: int) -> int:
    result = site["modbus"].read_holding_registers(address, count=1, device_id=1)
    assert not result.isError(), result
    return result.registers[0]


def audited(site, nonce: str, status: str) -> dict:
    for reply in site["cmd"].all_replies:
        site["schemas"].validate("command-reply", reply)
    return site["audit"].wait_for(
        lambda c: next((e for e in c.json() if e.get("nonce") == nonce and e.get("status") == status), None),
        10, f"audit event {status} for nonce {nonce}",
    )


def test_read_now_returns_the_devices_values_and_publishes_telemetry(site):
    since = time.time()
    reply = site["cmd"].request("read", {"device": "pump-1"})
    assert reply["status"] == "ok" and reply["code"] == 200, reply
    values = {r["point"]: r["value"] for r in reply["result"]["readings"]}
    assert values == {"level": 1.23, "setpoint": 1.0, "limit": 7}, reply
    # Published through the normal pipeline too (the configured interval is 1 h: this poll is the command's).
    batch = site["telemetry"].wait_for_messages(topic("telemetry", "pump-1"), since=since, timeout=10)[0].json()
    assert any(r.get("n") == "level" and r.get("v") == 1.23 for r in batch), batch
    events = site["audit"].wait_for(
        lambda c: [e for e in c.json() if e["verb"] == "read" and e["status"] == "ok"], 10, "read audit")
    assert events[0]["device"] == "pump-1" and events[0]["signed"] is False


def test_a_signed_write_changes_the_register_and_is_read_back(site):
    body = sign("write", {"device": "pump-1", "point": "setpoint", "value": "2.5"}, KEY)
    reply = site["cmd"].request("write", body)
    assert reply["status"] == "ok", reply
    assert reply["result"]["written"] == [250] and reply["result"]["read_back"] == [250], reply
    assert holding(site, 10) == 250
    event = audited(site, body["nonce"], "ok")
    assert event["verb"] == "write" and event["signed"] is True and event["value"] == "2.5"


REFUSALS = [
    ("not_writable", 405, lambda: sign("write", {"device": "pump-1", "point": "limit", "value": "9"}, KEY)),
    ("out_of_range", 422, lambda: sign("write", {"device": "pump-1", "point": "setpoint", "value": "5.5"}, KEY)),
    ("out_of_range", 422, lambda: sign("write", {"device": "pump-1", "point": "setpoint", "value": "1.234"}, KEY)),
    ("unsigned", 401, lambda: {"device": "pump-1", "point": "setpoint", "value": "3", "nonce": "unsigned-1"}),
    ("bad_signature", 403, lambda: sign("write", {"device": "pump-1", "point": "setpoint", "value": "3"}, b"x" * 40)),
    ("expired", 408, lambda: sign(
        "write", {"device": "pump-1", "point": "setpoint", "value": "3", "ts": int(time.time() * 1000) - 120_000},
        KEY)),
    ("writes_not_allowed", 423, lambda: sign("write", {"device": "pump-2", "point": "setpoint", "value": "3"}, KEY)),
    ("device_unknown", 404, lambda: sign("write", {"device": "pump-9", "point": "setpoint", "value": "3"}, KEY)),
]


@pytest.mark.parametrize("status,code,make", REFUSALS, ids=[r[0] + str(i) for i, r in enumerate(REFUSALS)])
def test_refused_writes_change_nothing(site, status, code, make):
    body = make()
    reply = site["cmd"].request("write", body)
    assert (reply["status"], reply["code"]) == (status, code), reply
    assert "result" not in reply, reply
    assert holding(site, 10) == 100 and holding(site, 12) == 7
    audited(site, body["nonce"], status)


def test_a_replayed_write_is_refused_and_changes_nothing(site):
    body = sign("write", {"device": "pump-1", "point": "setpoint", "value": "0.5"}, KEY)
    assert site["cmd"].request("write", body)["status"] == "ok"
    assert holding(site, 10) == 50
    site["modbus"].write_register(10, 77, device_id=1)
    reply = site["cmd"].request("write", body)
    assert (reply["status"], reply["code"]) == ("replayed", 409), reply
    assert holding(site, 10) == 77
    audited(site, body["nonce"], "ok")
    audited(site, body["nonce"], "replayed")


def test_hostile_requests_are_refused_with_their_own_codes(site):
    cmd = site["cmd"]
    assert cmd.request("reboot", {})["status"] == "unknown_verb"
    assert cmd.request("read", b"{not json")["status"] == "bad_request"
    assert cmd.request("read", b" " * 5000)["status"] == "bad_request"
    assert cmd.request("read", {"device": "pump-1", "extra": 1})["status"] == "bad_request"
    assert cmd.request("read", {"device": "pump-9"})["status"] == "device_unknown"
    expected = [("reboot", "unknown_verb"), ("read", "bad_request"), ("read", "bad_request"), ("read", "bad_request"),
                ("read", "device_unknown")]
    verbs = site["audit"].wait_for(
        lambda c: (v := [(e["verb"], e["status"]) for e in c.json() if e["verb"] != "health"]) and len(v) >= 5 and v,
        10, "audit events")
    assert verbs == expected


def test_health_and_journal_answer(site):
    health = site["cmd"].request("health", {})
    assert health["status"] == "ok" and health["result"]["gateway"] == "gw-test", health
    journal = site["cmd"].request("journal", {})
    assert journal["status"] == "ok" and "pending" in journal["result"], journal


def test_pantau_cmd_signs_with_the_key_file_and_prints_the_reply(site, tmp_path, pantau_bin):
    import json
    import subprocess

    key_file = tmp_path / "command.key"
    port = site["cmd"].client._port
    base = [pantau_bin, "cmd", "--port", str(port), "--site", "test-site", "--gateway", "gw-test"]
    write = subprocess.run(
        [*base, "write", "--device", "pump-1", "--point", "setpoint", "--value", "4.25", "--command-key", str(key_file)],
        capture_output=True, text=True, timeout=60)
    assert write.returncode == 0, write.stdout + write.stderr
    reply = json.loads(write.stdout)
    assert reply["status"] == "ok" and reply["result"]["read_back"] == [425], reply
    assert holding(site, 10) == 425
    # Without the key the same write is refused, exit 1, and nothing changes.
    unsigned = subprocess.run(
        [*base, "write", "--device", "pump-1", "--point", "setpoint", "--value", "1"],
        capture_output=True, text=True, timeout=60)
    assert unsigned.returncode == 1 and json.loads(unsigned.stdout)["status"] == "unsigned", unsigned.stdout
    assert holding(site, 10) == 425
    read = subprocess.run([*base, "read", "--device", "pump-1"], capture_output=True, text=True, timeout=60)
    assert read.returncode == 0, read.stdout + read.stderr
    values = {r["point"]: r["value"] for r in json.loads(read.stdout)["result"]["readings"]}
    assert values == {"level": 1.23, "setpoint": 4.25, "limit": 7}


def test_poll_interval_is_temporary(site):
    body = sign("poll-interval", {"device": "pump-1", "interval_ms": 200, "duration_s": 3}, KEY)
    since = time.time()
    reply = site["cmd"].request("poll-interval", body)
    assert reply["status"] == "ok" and reply["result"]["interval_ms"] == 200, reply
    until = reply["result"]["until"] / 1000
    # The configured interval is 1 h: several polls can only come from the temporary interval.
    site["telemetry"].wait_for_messages(topic("telemetry", "pump-1"), count=5, since=since, timeout=10)
    # After it ends polling returns to 1 h: no poll is acquired after `until` (by acquisition time, `bt`).
    site["telemetry"].wait_for(lambda c: time.time() > until + 3, 15, "the temporary interval to end")
    acquired = [m.json()[0]["bt"] for m in site["telemetry"].messages(topic("telemetry", "pump-1"), since=since)]
    assert acquired and max(acquired) <= until + 0.5, (acquired, until)
    audited(site, body["nonce"], "ok")


def test_a_retained_command_is_refused(site):
    import paho.mqtt.publish as publish

    port = site["cmd"].client._port
    topic_read = f"{BASE_TOPIC}/cmd/read"
    publish.single(topic_read, '{"device":"pump-1"}', qos=1, retain=True, hostname="127.0.0.1", port=port,
                   protocol=5)
    # Live, the gateway's subscription gets it without the retain flag: it runs once.
    site["audit"].wait_for(lambda c: [e for e in c.json() if e["verb"] == "read"], 10, "the live read")
    # After a restart the broker hands the retained copy to the new subscription: refused, not run again.
    site["gw"].restart()
    refused = site["audit"].wait_for(
        lambda c: [e for e in c.json() if e["verb"] == "read" and e["status"] == "bad_request"], 30,
        "the retained read refused", watch=site["gw"])
    assert refused[0]["message"] == "retained commands are ignored", refused
    assert [e["status"] for e in site["audit"].json() if e["verb"] == "read"] == ["ok", "bad_request"]
    publish.single(topic_read, b"", qos=1, retain=True, hostname="127.0.0.1", port=port, protocol=5)
