"""Modbus RTU over TCP (`type: rtu_over_tcp`) end to end, against two independent peers:

- `framer`: pymodbus's TCP server with the RTU framer (FramerType.RTU);
- `dtu`: the shape of a real DTU: `socat TCP-LISTEN` forwarding to a pty pair with pymodbus's RTU serial server on
  the far end (`pantau_harness.rtu_over_tcp.SocatDtu`).

Exact values through the gateway and MQTT, two units behind one connection, a silent unit going offline while its
neighbour keeps its schedule, a dropped TCP connection recovered, and `raw`, `read` and `scan` over the link.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from pantau_harness import mixed_types, senml
from pantau_harness.config import BASE_TOPIC, device, gateway_yaml, profiles_fixture_dir, topic
from pantau_harness.modbus_sim import PtyPair, RtuDevice
from pantau_harness.rtu_over_tcp import RtuFramerTcpDevice, SocatDtu
from test_cli_modbus import _expected_values
from test_gateway_e2e import bt, check_mixed_types_batch, with_state

pytestmark = pytest.mark.gateway

PEERS = ["framer", "dtu"]
# Unit 2 serves the same profile with another value in register 0, so a reply for the wrong unit would show.
OTHER_U16 = 4321


def other_spec() -> dict:
    spec = {table: dict(regs) for table, regs in mixed_types.register_spec().items()}
    spec["holding"][0] = OTHER_U16
    return spec


class Peer:
    """One RTU-over-TCP peer: `.port`, `.drop()` (the TCP side dies), `.restore()` (it listens again)."""

    def __init__(self, kind: str, workdir: str, units: dict):
        self.kind = kind
        self.pair = None
        self.device = None
        self.dtu = None
        if kind == "framer":
            self.device = RtuFramerTcpDevice(workdir, units)
            self.device.start()
            self.port = self.device.port
        else:
            self.pair = PtyPair(workdir)
            self.pair.start()
            self.device = RtuDevice(workdir, units, self.pair)
            self.device.start()
            self.dtu = SocatDtu(workdir, self.pair)
            self.dtu.start()
            self.port = self.dtu.port

    def drop(self) -> None:
        if self.dtu is not None:
            self.dtu.kill()  # the serial side (pty pair, pymodbus) stays up, as behind a real DTU
        else:
            self.device.kill()

    def restore(self) -> None:
        (self.dtu or self.device).start()

    def logs(self) -> str:
        return self.device.logs() + (self.dtu.logs() if self.dtu else "")

    def stop(self) -> None:
        if self.dtu is not None:
            self.dtu.kill()
        self.device.kill()
        if self.pair is not None:
            self.pair.stop()


@pytest.fixture
def rtu_over_tcp_peer(tmp_path, request):
    """Factory: `rtu_over_tcp_peer(kind, {unit: spec})` starts a `Peer`; all are stopped at teardown."""
    peers: list[Peer] = []

    def make(kind: str, units: dict) -> Peer:
        workdir = tmp_path / f"peer{len(peers)}"
        workdir.mkdir()
        peer = Peer(kind, str(workdir), units)
        peers.append(peer)
        return peer

    yield make
    for peer in peers:
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            print(f"--- {peer.kind} peer log ---\n{peer.logs()[-4000:]}")
        peer.stop()


def bus(port: int, **extra) -> dict:
    return {"name": "dtu-1", "type": "rtu_over_tcp", "host": "127.0.0.1", "port": port, **extra}


def start_gateway(gateway, broker, workdir: str, port: int, devices, **bus_extra):
    config = gateway_yaml(
        broker_port=broker.port, workdir=workdir, buses=[bus(port, **bus_extra)], devices=devices,
        status_socket=os.path.join(workdir, "status.sock"),
    )
    return gateway(config)


def good_values(message) -> dict:
    return {n: r.value for n, r in senml.resolve(message.json()).items() if r.quality == "good"}


@pytest.mark.parametrize("kind", PEERS)
def test_two_units_behind_one_dtu_publish_their_exact_values(
    kind, rtu_over_tcp_peer, mosquitto_broker, mqtt_collector, gateway, short_tmp, schemas,
):
    started = time.time()
    peer = rtu_over_tcp_peer(kind, {1: mixed_types.register_spec(), 2: other_spec()})
    collector = mqtt_collector(mosquitto_broker, f"{BASE_TOPIC}/#")
    gw = start_gateway(gateway, mosquitto_broker, short_tmp, peer.port,
                       [device("dev-a", "dtu-1", 1), device("dev-b", "dtu-1", 2)], baud=9600)

    first = collector.wait_for_messages(topic("telemetry", "dev-a"), 2, 30, watch=gw)[1]
    check_mixed_types_batch(first, "dev-a", schemas, started)
    other = collector.wait_for_messages(topic("telemetry", "dev-b"), 2, 30, watch=gw)[1]
    values = good_values(other)
    assert values["u16_value"] == OTHER_U16, other.json()
    expected = mixed_types.expected()
    for name, point in expected.items():
        if name != "u16_value" and point.senml_key == "v" and point.quality == "good":
            assert senml.close(values[name], point.value), (name, values.get(name), point.value)
    # One TCP connection carries both units (the DTU shape accepts one at a time per child; count them).
    if peer.dtu is not None:
        assert peer.dtu.logs().count("accepting connection") == 1, peer.dtu.logs()


@pytest.mark.parametrize("kind", PEERS)
def test_silent_unit_behind_the_dtu_goes_offline_while_its_neighbour_keeps_its_schedule(
    kind, rtu_over_tcp_peer, mosquitto_broker, mqtt_collector, gateway, short_tmp, schemas,
):
    peer = rtu_over_tcp_peer(kind, {1: mixed_types.register_spec()})  # unit 2 never answers
    collector = mqtt_collector(mosquitto_broker, f"{BASE_TOPIC}/#")
    gw = start_gateway(
        gateway, mosquitto_broker, short_tmp, peer.port,
        [device("dev-a", "dtu-1", 1), device("dev-b", "dtu-1", 2, timeout_ms=300, retries=0)],
    )
    offline = collector.wait_for(
        lambda c: with_state(c, topic("availability", "dev-b"), "offline"), 30, "dev-b offline", gw)[-1].json()
    schemas.validate("availability", offline)
    assert "unit 2" in offline["reason"], offline

    window = 6.0
    window_start = time.time()
    collector.wait_for(lambda c: time.time() - window_start > window + 3, window + 10, "the counting window", gw)
    acquired = {
        bt(m) for m in collector.messages(topic("telemetry", "dev-a")) if window_start <= bt(m) < window_start + window
    }
    assert 3 <= len(acquired) <= 9, f"{len(acquired)} dev-a polls in {window:.0f}s at a 1s interval"
    for m in collector.messages(topic("telemetry", "dev-b")):
        records = senml.resolve(m.json()).values()
        assert all(r.quality == "device_error" and r.key not in ("v", "vs", "vb") for r in records), m.json()
    assert collector.last(topic("availability", "dev-a")).json()["state"] == "online"
    check_mixed_types_batch(collector.last(topic("telemetry", "dev-a")), "dev-a", schemas, window_start)


@pytest.mark.parametrize("kind", PEERS)
def test_a_dropped_tcp_connection_is_recovered(
    kind, rtu_over_tcp_peer, mosquitto_broker, mqtt_collector, gateway, short_tmp, schemas,
):
    peer = rtu_over_tcp_peer(kind, {1: mixed_types.register_spec()})
    collector = mqtt_collector(mosquitto_broker, f"{BASE_TOPIC}/#")
    gw = start_gateway(gateway, mosquitto_broker, short_tmp, peer.port, [device("dev-a", "dtu-1", 1)])
    telemetry = topic("telemetry", "dev-a")
    collector.wait_for_messages(telemetry, 1, 30, watch=gw)

    peer.drop()
    dropped = time.time()
    # The gateway notices (EOF, then refused reconnects) and reports the device's polls as failed.
    collector.wait_for(
        lambda c: [m for m in c.messages(telemetry) if bt(m) > dropped + 1 and not good_values(m)],
        30, "a failed poll after the drop", gw)
    time.sleep(2)
    peer.restore()
    restored = time.time()
    back = collector.wait_for(
        lambda c: [m for m in c.messages(telemetry) if bt(m) > restored and good_values(m)],
        40, "good telemetry after the DTU came back", gw)
    check_mixed_types_batch(back[0], "dev-a", schemas, restored)
    # Nothing acquired while the peer was away was published as good.
    for m in collector.messages(telemetry):
        if dropped + 1 < bt(m) < restored:
            assert not good_values(m), m.json()
    assert "bus connection restored" in gw.logs()


def pantau(binary: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([binary, *args], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("kind", PEERS)
def test_raw_read_and_scan_work_over_the_link(kind, pantau_bin, rtu_over_tcp_peer):
    peer = rtu_over_tcp_peer(kind, {1: mixed_types.register_spec(), 5: {"holding": {0: 77, 1: 0xFFFF}}})
    link = ["--rtu-over-tcp", f"127.0.0.1:{peer.port}"]

    done = pantau(pantau_bin, "raw", "read", *link, "--unit", "5", "--table", "holding", "--address", "0",
                  "--count", "2", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert {v["address"]: v["value"] for v in json.loads(done.stdout)["values"]} == {0: 77, 1: 0xFFFF}

    done = pantau(pantau_bin, "read", "--profile", mixed_types.PROFILE_ID, "--profile-dir", profiles_fixture_dir(),
                  *link, "--unit", "1", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["link"] == f"rtu-over-tcp 127.0.0.1:{peer.port}"
    _expected_values(report)

    done = pantau(pantau_bin, "scan", *link, "--units", "1-6", "--timeout-ms", "300", "--json")
    assert done.returncode == 0, done.stderr
    assert [hit["unit"] for hit in json.loads(done.stdout)["found"]] == [1, 5]

    # A unit that does not answer fails with exit 69 and names the link and unit.
    done = pantau(pantau_bin, "raw", "read", *link, "--unit", "3", "--address", "0", "--timeout-ms", "200")
    assert done.returncode == 69, done.stdout + done.stderr
    assert f"rtu-over-tcp 127.0.0.1:{peer.port}" in done.stderr and "unit 3" in done.stderr


def test_simulate_serves_rtu_over_tcp_to_pymodbus_rtu_framer_client(pantau_bin, tmp_path):
    """`pantau simulate --rtu-over-tcp-port` read by an independent master: pymodbus's client with the RTU framer."""
    import re

    from pymodbus.client import ModbusTcpClient
    from pymodbus.exceptions import ModbusException
    from pymodbus.framer import FramerType

    from pantau_harness.procs import kill, wait_until

    out_path = tmp_path / "simulate.out"
    with open(out_path, "wb") as out, open(tmp_path / "simulate.log", "wb") as log:
        proc = subprocess.Popen(
            [pantau_bin, "simulate", "--profile", "xy-md02:1", "--profile", "xy-md02:2", "--rtu-over-tcp-port", "0",
             "--constant", "1:temperature:-20.5", "--constant", "1:humidity:54.6", "--constant", "2:humidity:88",
             "--silent", "2"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=log)
    try:
        port = []

        def serving() -> bool:
            m = re.search(r"serving Modbus RTU over TCP on [0-9.]+:(\d+)", out_path.read_text(errors="replace"))
            if m:
                port.append(int(m.group(1)))
            return bool(port) or proc.poll() is not None

        assert wait_until(serving, 15) and port, out_path.read_text() + (tmp_path / "simulate.log").read_text()
        client = ModbusTcpClient("127.0.0.1", port=port[0], framer=FramerType.RTU, timeout=1, retries=0)
        assert client.connect()
        try:
            reply = client.read_input_registers(1, count=2, device_id=1)
            assert not reply.isError(), reply
            assert reply.registers == [0xFF33, 546]  # -20.5 °C as i16 tenths, 54.6 %RH as u16 tenths
            try:
                silent = client.read_input_registers(1, count=2, device_id=2)
                assert silent.isError(), f"the silent unit 2 answered: {silent}"
            except ModbusException:
                pass  # pymodbus raises on a timeout: no answer, as wanted
        finally:
            client.close()
    finally:
        kill(proc)


def test_garbage_replies_are_counted_and_never_published(
    tmp_path, mosquitto_broker, mqtt_collector, gateway, short_tmp, pantau_bin,
):
    """A DTU that garbles replies: a bad CRC, another unit's reply and an over-long byte count are counted on the
    bus and their polls publish device_error; only the good replies' value (42) is ever published as good."""
    from pantau_harness.rtu_over_tcp import GarbageDtu

    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "test-one.yaml").write_text(
        "id: test-one\nmanufacturer: Test\nmodel: One\nsource: test\n"
        "points:\n  - {name: value, quantity: counter, table: holding, address: 0, type: u16, unit: count}\n"
        "test_vectors:\n  - {registers: {holding: {0: 42}}, expect: {value: 42}}\n")
    dtu = GarbageDtu(["good", "bad_crc", "good", "other_unit", "good", "long", "good"])
    try:
        socket_path = os.path.join(short_tmp, "status.sock")
        collector = mqtt_collector(mosquitto_broker, f"{BASE_TOPIC}/#")
        gw = gateway(gateway_yaml(
            broker_port=mosquitto_broker.port, workdir=short_tmp, status_socket=socket_path,
            profiles=[str(profiles)], buses=[bus(dtu.port)],
            devices=[device("dev", "dtu-1", 1, profile="test-one", retries=0, timeout_ms=300)]))
        telemetry = topic("telemetry", "dev")
        collector.wait_for(lambda c: len(c.messages(telemetry)) >= 8, 40, "eight polls", gw)
        assert all(dtu.answered.get(k, 0) >= 1 for k in ("bad_crc", "other_unit", "long")), dtu.answered
        good = bad = 0
        for m in collector.messages(telemetry):
            records = senml.resolve(m.json())
            assert all(r.value != GarbageDtu.SENTINEL for r in records.values()), m.json()
            if records["value"].quality == "good":
                good += 1
                assert records["value"].value == 42
            else:
                bad += 1
                assert records["value"].quality == "device_error" and records["value"].value is None, m.json()
        assert good >= 4 and bad >= 3, (good, bad)
        done = subprocess.run([pantau_bin, "status", "--socket", socket_path, "--json"], capture_output=True,
                              text=True, timeout=30)
        status = json.loads(done.stdout)["buses"][0]
        assert status["crc_errors"] >= 1 and status["other_errors"] >= 2, status
    finally:
        dtu.stop()
