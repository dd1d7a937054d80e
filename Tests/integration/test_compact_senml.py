"""Compact SenML (`mqtt.format: senml-compact`): a real mosquitto, a pymodbus device, the gateway binary.

The compact form leaves out what the contract fixes (base name, unit, quality when good); a consumer still gets the
exact values the device holds and the quality of every reading that is not good.
"""

from __future__ import annotations

import os

import pytest

from pantau_harness import mixed_types, senml
from pantau_harness.config import BASE_TOPIC, device, gateway_yaml, tcp_bus, topic

pytestmark = pytest.mark.gateway


def test_compact_telemetry_has_the_exact_values_and_fits_its_schema(
    mosquitto_broker, mqtt_collector, pymodbus_tcp_device, gateway, short_tmp, schemas,
):
    collector = mqtt_collector(mosquitto_broker, f"{BASE_TOPIC}/#")
    sim = pymodbus_tcp_device(mixed_types.register_spec())
    bus = tcp_bus("tcp-1", sim.port)
    gw = gateway(gateway_yaml(
        broker_port=mosquitto_broker.port, workdir=short_tmp, buses=[bus], devices=[device("dev-a", "tcp-1", 1)],
        status_socket=os.path.join(short_tmp, "status.sock"), mqtt_extra="  format: senml-compact",
    ))
    messages = collector.wait_for_messages(topic("telemetry", "dev-a"), 2, 30, watch=gw)
    for message in messages:
        batch = message.json()
        assert schemas.validate("telemetry-compact", batch)
        # The full contract's schema requires bn, u and q: the compact form is not mistaken for it.
        with pytest.raises(AssertionError):
            schemas.validate("telemetry", batch)
        assert isinstance(batch[0]["seq"], int) and "bn" not in batch[0], batch[0]
        records = senml.resolve(batch)
        expected = mixed_types.expected()
        assert set(records) == set(expected)
        for name, point in expected.items():
            rec = records[name]
            assert rec.unit is None, rec.raw
            assert (rec.quality or "good") == point.quality, rec.raw
            assert ("q" in rec.raw) == (point.quality != "good"), rec.raw
            assert rec.key == point.senml_key, rec.raw
            if point.senml_key == "v":
                assert senml.close(rec.value, point.value), (rec.raw, point.value)
            else:
                assert rec.value == point.value and type(rec.value) is type(point.value), (rec.raw, point.value)
    assert messages[1].seq > messages[0].seq
