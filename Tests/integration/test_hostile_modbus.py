"""Issue #11 (Modbus TCP at run time) and #19 item 8: a hostile or dead Modbus TCP peer, end to end.

The device is a small Python socket peer (pymodbus would never send these frames) that answers FC3 reads of
holding 0+1 with the value 1234, in one of these modes, switchable while the gateway runs:

- good:    a correct reply;
- mbap:    the correct PDU under an MBAP length field of 65535;
- unit:    the correct PDU from unit 7;
- silent:  accepts, reads, never answers (a half-dead DTU);
- garbage: a burst of random bytes, then the correct reply.

Asserted: nothing from an invalid frame is ever published as a reading; the bus counts the errors; the TCP link is
reopened (the peer sees new connections) after an invalid reply or 2 timeouts in a row; once the peer is good again
the value is published and the device comes online; while offline, the probe interval stays within
max(poll interval, 5 s); and a level device at Siaga 2 (1 s polling) behind a switchable proxy in front of a pymodbus
device keeps being probed at 1 s while offline (issue #19 item 8).
"""

from __future__ import annotations

import json
import os
import random
import socket
import struct
import subprocess
import threading

import pytest

from pantau_harness import senml
from pantau_harness.config import BASE_TOPIC, device, gateway_yaml, tcp_bus, topic
from pantau_harness.procs import repo_root, wait_until

pytestmark = pytest.mark.gateway

VALUE = 1234
PROFILE_DIR = os.path.join(repo_root(), "firmware-profiles")

PROFILE = """id: hostile-u16
version: 1
manufacturer: Pantau test harness
model: hostile-u16
source: "Tests/integration/test_hostile_modbus.py"
unit_id: 1
timing:
  response_timeout_ms: 300
  retries: 0
points:
  - name: level
    quantity: counter
    table: holding
    address: 0
    type: u16
    unit: "count"
"""


class HostilePeer:
    """A Modbus TCP 'device' on loopback whose replies are chosen by `mode`; counts connections and requests."""

    def __init__(self, upstream_port: int | None = None) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self.mode = "good"
        self.lock = threading.Lock()
        self.connections = 0
        self.requests = 0
        self.answered_good = 0
        self.running = True
        threading.Thread(target=self._accept, daemon=True).start()

    def counts(self) -> tuple[int, int, int]:
        with self.lock:
            return self.connections, self.requests, self.answered_good

    def _accept(self) -> None:
        while self.running:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _forward(self, request: bytes, upstream: socket.socket) -> bytes:
        """Asks the real device (pymodbus) and returns its reply."""
        upstream.sendall(request)
        reply = b""
        while len(reply) < 6 or len(reply) < 6 + struct.unpack(">H", reply[4:6])[0]:
            chunk = upstream.recv(1024)
            if not chunk:
                raise OSError("upstream closed")
            reply += chunk
        with self.lock:
            self.answered_good += 1
        return reply

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        upstream = None
        if self.upstream_port is not None:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
        with conn:
            while self.running:
                try:
                    data = conn.recv(1024)
                except OSError:
                    return
                if not data:
                    return
                buffer += data
                while len(buffer) >= 12:
                    request, buffer = buffer[:12], buffer[12:]
                    with self.lock:
                        self.requests += 1
                    if upstream is not None and self.mode == "good":
                        try:
                            reply = self._forward(request, upstream)
                        except OSError:
                            return
                    else:
                        reply = self._reply(request)
                    if reply is None:
                        continue
                    try:
                        conn.sendall(reply)
                    except OSError:
                        return

    def _reply(self, request: bytes) -> bytes | None:
        tid, _proto, _length, unit, function, _address, count = struct.unpack(">HHHBBHH", request)
        pdu = bytes([function, 2 * count]) + struct.pack(">H", VALUE) * count
        mode = self.mode
        if mode == "silent":
            return None
        if mode == "mbap":
            return struct.pack(">HHHB", tid, 0, 65535, unit) + pdu
        if mode == "unit":
            return struct.pack(">HHHB", tid, 0, len(pdu) + 1, 7) + pdu
        good = struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu
        if mode == "garbage":
            return bytes(random.getrandbits(8) for _ in range(37)) + good
        with self.lock:
            self.answered_good += 1
        return good

    def close(self) -> None:
        self.running = False
        self.listener.close()


@pytest.fixture
def hostile_peer():
    peer = HostilePeer()
    yield peer
    peer.close()


def start(gateway, broker, workdir: str, port: int, poll: str = "500ms"):
    profiles = os.path.join(workdir, "profiles")
    os.makedirs(profiles, exist_ok=True)
    with open(os.path.join(profiles, "hostile-u16.yaml"), "w") as f:
        f.write(PROFILE)
    config = gateway_yaml(
        broker_port=broker.port, workdir=workdir, buses=[tcp_bus("tcp-h", port)],
        devices=[device("awlr", "tcp-h", 1, profile="hostile-u16", poll_interval=poll)],
        status_socket=os.path.join(workdir, "st.sock"), profiles=[profiles])
    return gateway(config)


def status(pantau_bin: str, workdir: str) -> dict:
    result = subprocess.run(
        [pantau_bin, "status", "--socket", os.path.join(workdir, "st.sock"), "--json"], capture_output=True,
        text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def levels(collector) -> list:
    """Every published record of the point: (value key, value, quality)."""
    out = []
    for message in collector.messages(topic("telemetry", "awlr")):
        record = senml.resolve(message.json()).get("level")
        if record is not None:
            out.append((record.value, record.quality))
    return out


def states(collector) -> list[str]:
    return [m.json().get("state") for m in collector.messages(topic("availability", "awlr"))]


@pytest.mark.parametrize("mode", ["mbap", "unit", "garbage"])
def test_an_invalid_reply_is_never_a_reading_and_reopens_the_connection(
    mode, hostile_peer, mosquitto_broker, mqtt_collector, gateway, pantau_bin, short_tmp,
):
    collector = mqtt_collector(mosquitto_broker, f"{BASE_TOPIC}/#")
    hostile_peer.mode = mode
    gw = start(gateway, mosquitto_broker, short_tmp, hostile_peer.port)

    # Several requests, each answered invalidly, each on a new connection (or garbage then good on one).
    assert wait_until(lambda: hostile_peer.counts()[1] >= 6 or not gw.alive, 60), gw.logs()[-3000:]
    assert gw.alive, gw.logs()[-3000:]
    published = levels(collector)
    assert all(value is None and quality != "good" for value, quality in published), published
    connections, requests, _ = hostile_peer.counts()
    assert connections >= 3, f"{connections} connections for {requests} invalid replies: not reopened"
    if mode != "garbage":
        collector.wait_for(lambda c: "offline" in states(c), 30, "awlr offline", gw)
        assert "online" not in states(collector), states(collector)
    snapshot = status(pantau_bin, short_tmp)
    bus = snapshot["buses"][0]
    assert bus["other_errors"] + bus["timeouts"] >= 3, bus
    assert "invalid reply" in (bus["devices"][0]["last_error"] or "") or mode == "garbage", bus

    # A good peer again: the value arrives and the device is online.
    hostile_peer.mode = "good"
    collector.wait_for(lambda c: (VALUE, None) in levels(c) or (VALUE, "good") in levels(c), 30, "good level", gw)
    collector.wait_for(lambda c: states(c) and states(c)[-1] == "online", 30, "awlr online", gw)
    assert all(value in (None, VALUE) for value, _ in levels(collector)), levels(collector)


def test_a_peer_that_stops_answering_is_reconnected_and_read_again_soon(
    hostile_peer, mosquitto_broker, mqtt_collector, gateway, pantau_bin, short_tmp,
):
    collector = mqtt_collector(mosquitto_broker, f"{BASE_TOPIC}/#")
    gw = start(gateway, mosquitto_broker, short_tmp, hostile_peer.port)
    collector.wait_for(lambda c: (VALUE, None) in levels(c) or (VALUE, "good") in levels(c), 30, "first level", gw)

    hostile_peer.mode = "silent"
    connections_before, requests_before, _ = hostile_peer.counts()
    collector.wait_for(lambda c: "offline" in states(c), 30, "awlr offline", gw)
    # 2 timeouts in a row reopen the connection: more connections while the peer stays silent.
    assert wait_until(lambda: hostile_peer.counts()[0] >= connections_before + 3 or not gw.alive, 60), (
        hostile_peer.counts(), gw.logs()[-3000:])
    silent_requests = hostile_peer.counts()[1] - requests_before
    connections = hostile_peer.counts()[0] - connections_before
    assert connections >= (silent_requests - 1) // 2, (connections, silent_requests)
    device = status(pantau_bin, short_tmp)["buses"][0]["devices"][0]
    assert device["state"] == "offline", device
    # Probes of an offline 500 ms device are never more than max(500 ms, 5 s) apart.
    assert 500 <= device["interval_ms"] <= 5000, device

    hostile_peer.mode = "good"
    _, _, good_before = hostile_peer.counts()
    collector.wait_for(lambda c: states(c)[-1] == "online", 30, "awlr online again", gw)
    # The first answered probe brings it back: no extra good answers were needed.
    assert hostile_peer.counts()[2] - good_before <= 2, hostile_peer.counts()
    assert "reopening the bus connection" in gw.logs(), gw.logs()[-3000:]


QDY30A_REGISTERS = {"holding": {0: 1, 1: 3, 2: 1, 3: 0, 4: 220, 5: 0, 6: 1000}}


def test_a_device_in_flood_alert_is_probed_at_the_alert_interval_while_offline(
    mosquitto_broker, mqtt_collector, pymodbus_tcp_device, gateway, pantau_bin, short_tmp,
):
    """Issue #19 item 8: at Siaga 2 (1 s polling) a level device that stops answering keeps being probed every 1 s
    (before: backoff to 16 s), so it is read again at the first probe after it answers."""
    device = pymodbus_tcp_device(QDY30A_REGISTERS)
    peer = HostilePeer(upstream_port=device.port)
    try:
        collector = mqtt_collector(mosquitto_broker, f"{BASE_TOPIC}/#")
        flood = ("{point: level, siaga3: 150, siaga2: 200, siaga1: 250, min_dwell: 0s, "
                 "poll_intervals: {siaga4: 10s, siaga3: 2s, siaga2: 1s, siaga1: 500ms}}")
        config = gateway_yaml(
            broker_port=mosquitto_broker.port, workdir=short_tmp, buses=[tcp_bus("tcp-h", peer.port)], devices=[],
            status_socket=os.path.join(short_tmp, "st.sock"), profiles=[PROFILE_DIR])
        config = config.replace(
            "devices:\n",
            "devices:\n  - name: river\n    bus: tcp-h\n    unit: 1\n    profile: qdy30a\n    poll_interval: 10s\n"
            f"    flood:\n      - {flood}\n", 1)
        gw = gateway(config)

        def river() -> dict:
            result = subprocess.run(
                [pantau_bin, "status", "--socket", os.path.join(short_tmp, "st.sock"), "--json"],
                capture_output=True, text=True, timeout=30)
            if result.returncode != 0:  # the status socket is not up yet
                return {"state": None, "interval_ms": None}
            snapshot = json.loads(result.stdout)
            return next(d for bus in snapshot["buses"] for d in bus["devices"] if d["name"] == "river")

        # Level 220 cm is Siaga 2: the alert shortens the interval to 1 s.
        assert wait_until(lambda: river()["interval_ms"] == 1000 or not gw.alive, 60), (river(), gw.logs()[-3000:])
        peer.mode = "silent"
        assert wait_until(lambda: river()["state"] == "offline" or not gw.alive, 60), (river(), gw.logs()[-3000:])
        requests_at_offline = peer.counts()[1]
        # Probes keep coming; after several of them the interval is still the alert's, not a backoff.
        assert wait_until(lambda: peer.counts()[1] >= requests_at_offline + 4 or not gw.alive, 60), peer.counts()
        offline = river()
        assert offline["state"] == "offline" and offline["interval_ms"] == 1000, offline

        peer.mode = "good"
        _, _, good_before = peer.counts()
        assert wait_until(lambda: river()["state"] == "online" or not gw.alive, 30), (river(), gw.logs()[-3000:])
        # Read again at the first probe that was answered.
        assert peer.counts()[2] - good_before <= 2, peer.counts()
        assert river()["interval_ms"] == 1000
    finally:
        peer.close()
