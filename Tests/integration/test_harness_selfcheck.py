"""The harness checks itself against independent tools (mosquitto_pub, mbpoll), without the gateway."""

from __future__ import annotations

import os
import subprocess
import time

import pytest
from jsonschema import Draft202012Validator

from pantau_harness import mbpoll, mixed_types
from pantau_harness.config import profiles_fixture_dir

SPEC = {
    "holding": {0: 0x1234, 1: 0xFFFF, 2: 42, 9: 7},
    "input": {0: 99, 1: 100},
    "coil": {0: 1, 2: 1},
    "discrete": {1: 1},
}


def test_broker_delivers_a_retained_message(mosquitto_broker, mqtt_collector):
    subprocess.run(
        ["mosquitto_pub", "-p", str(mosquitto_broker.port), "-h", "127.0.0.1", "-V", "mqttv5", "-q", "1", "-r",
         "-t", "selfcheck/retained", "-m", '{"state":"online"}'],
        check=True, timeout=10,
    )
    collector = mqtt_collector(mosquitto_broker, "selfcheck/#")
    [message] = collector.wait_for_messages("selfcheck/retained", timeout=10)
    assert message.retain is True
    assert message.json() == {"state": "online"}


def test_broker_restarts_on_the_same_port_and_a_persistent_collector_misses_nothing(make_broker, mqtt_collector):
    broker = make_broker(persistent=True)
    port = broker.port
    collector = mqtt_collector(broker, "selfcheck/#", persistent=True)
    broker.stop()
    collector.wait_for(lambda c: not c.connected, 10, "the collector to see the broker go")
    broker.start()
    assert broker.port == port
    # Published before the collector is back: a persistent session on a persistent broker still gets it.
    subprocess.run(
        ["mosquitto_pub", "-p", str(port), "-h", "127.0.0.1", "-V", "mqttv5", "-q", "1", "-t", "selfcheck/after",
         "-m", "[1]"],
        check=True, timeout=10,
    )
    [message] = collector.wait_for_messages("selfcheck/after", timeout=15)
    assert message.json() == [1]
    assert collector.connects >= 2


def _check_reads(target: list[str]) -> None:
    holding = mbpoll.read(target, 1, "holding", 0, 10)
    assert holding.returncode == 0, holding.output
    assert holding.values[0] == 0x1234  # protocol address 0 is the first value we put, no 1-based offset
    assert holding.values[1] == 0xFFFF
    assert holding.values[2] == 42
    assert holding.values[9] == 7
    assert holding.values[5] == 0
    assert mbpoll.read(target, 1, "input", 0, 2).values == {0: 99, 1: 100}
    assert mbpoll.read(target, 1, "coil", 0, 4).values == {0: 1, 1: 0, 2: 1, 3: 0}
    assert mbpoll.read(target, 1, "discrete", 0, 3).values == {0: 0, 1: 1, 2: 0}


def test_tcp_device_serves_registers_at_protocol_addresses(pymodbus_tcp_device):
    device = pymodbus_tcp_device(SPEC)
    _check_reads(mbpoll.tcp_target(device.port))


def test_tcp_device_units_are_independent_and_unlisted_units_are_silent(pymodbus_tcp_device):
    device = pymodbus_tcp_device({1: {"holding": {0: 11}}, 3: {"holding": {0: 33}}})
    target = mbpoll.tcp_target(device.port)
    assert mbpoll.read(target, 1, "holding", 0, 1).values == {0: 11}
    assert mbpoll.read(target, 3, "holding", 0, 1).values == {0: 33}
    silent = mbpoll.read(target, 2, "holding", 0, 1, timeout_s=0.5)
    assert silent.returncode != 0
    assert "timed out" in silent.output.lower(), silent.output  # no exception reply: a real timeout
    # The device is still healthy after ignoring a request.
    assert mbpoll.read(target, 1, "holding", 0, 1).values == {0: 11}


def test_rtu_device_over_pty_pair(pymodbus_rtu_device):
    device = pymodbus_rtu_device(SPEC)
    target = mbpoll.rtu_target(device.gateway_path)
    _check_reads(target)
    silent = mbpoll.read(target, 2, "holding", 0, 1, timeout_s=0.5)
    assert silent.returncode != 0
    assert "timed out" in silent.output.lower(), silent.output
    assert mbpoll.read(target, 1, "holding", 9, 1).values == {9: 7}


def test_mixed_types_registers_agree_with_libmodbus_decoding(pymodbus_tcp_device):
    """mbpoll combines 32-bit words itself: a second opinion on the struct encoding of the fixture profile."""
    points = mixed_types.expected()
    device = pymodbus_tcp_device(mixed_types.register_spec())
    target = mbpoll.tcp_target(device.port)

    def one(name: str, kind: str, big_endian_words: bool):
        p = points[name]
        result = mbpoll.read(target, 1, p.table, p.address, 1, kind=kind, big_endian_words=big_endian_words)
        assert result.returncode == 0, result.output
        return result.values[p.address]

    assert one("u32_abcd", "int", True) == points["u32_abcd"].value
    assert one("i32_cdab", "int", False) == points["i32_cdab"].value
    assert one("f32_abcd", "float", True) == pytest.approx(points["f32_abcd"].value)
    assert one("f32_cdab", "float", False) == pytest.approx(points["f32_cdab"].value)
    raw = mbpoll.read(target, 1, "holding", 0, 25).values
    assert raw[1] - 0x10000 == points["i16_negative"].value
    assert raw[16] * 0.1 == pytest.approx(points["u16_scaled"].value)
    assert raw[17] * 0.01 - 40 == pytest.approx(points["u16_offset"].value)
    assert raw[18] == 0x8000 | 5
    assert bytes(b for word in (raw[20], raw[21], raw[22], raw[23]) for b in word.to_bytes(2, "big")) == b"PANTAU-1"
    assert raw[24] > points["range_limited"].range[1]


def test_mixed_types_profile_fixture_is_generated_from_the_harness():
    with open(os.path.join(profiles_fixture_dir(), f"{mixed_types.PROFILE_ID}.yaml"), encoding="utf-8") as f:
        assert f.read() == mixed_types.profile_yaml(), "regenerate: python -m pantau_harness.mixed_types > ..."


def test_schemas_are_valid_and_a_missing_one_is_skipped(schemas):
    with pytest.warns(UserWarning, match="check skipped"):
        assert schemas.validate("no-such-payload-kind", {}) is False
    for name, doc in schemas.documents.items():
        Draft202012Validator.check_schema(doc)
        assert schemas.has(name)


def test_collector_wait_for_is_bounded(mosquitto_broker, mqtt_collector):
    collector = mqtt_collector(mosquitto_broker, "nothing/#")
    start = time.monotonic()
    with pytest.raises(AssertionError, match="timed out"):
        collector.wait_for(lambda c: c.messages("nothing/here"), 0.5, "a message that never comes")
    assert time.monotonic() - start < 10
