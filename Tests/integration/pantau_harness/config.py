"""Gateway configuration files (YAML) for the end-to-end tests, written as text: no YAML library is needed."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from .procs import harness_root

SITE = "test-site"
GATEWAY_ID = "gw-test"
TOPIC_PREFIX = "pantau"
BASE_TOPIC = f"{TOPIC_PREFIX}/{SITE}/{GATEWAY_ID}"
PLAIN = re.compile(r"^[A-Za-z0-9_/.][A-Za-z0-9_./-]*$")
RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def profiles_fixture_dir() -> str:
    return os.path.join(harness_root(), "fixtures", "profiles")


def scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    text = str(value)
    if re.fullmatch(r"\d+(\.\d+)?(ms|s|m|h|d)", text):
        return text  # durations stay plain scalars, as an installer would write them
    if PLAIN.match(text) and text.lower() not in RESERVED and not _numeric(text):
        return text
    return json.dumps(text)


def _numeric(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def flow(mapping: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{k}: {scalar(v)}" for k, v in mapping.items()) + "}"


def tcp_bus(name: str, port: int, host: str = "127.0.0.1") -> dict[str, Any]:
    return {"name": name, "type": "tcp", "host": host, "port": port}


def rtu_bus(name: str, device: str, baud: int = 9600) -> dict[str, Any]:
    return {
        "name": name, "type": "rtu", "device": device, "baud": baud, "parity": "none", "data_bits": 8,
        "stop_bits": 1, "rs485": False,
    }


def device(name: str, bus: str, unit: int, profile: str = "test-mixed-types", poll_interval: str = "1s",
           **extra: Any) -> dict[str, Any]:
    return {"name": name, "bus": bus, "unit": unit, "profile": profile, "poll_interval": poll_interval, **extra}


def gateway_yaml(
    *, broker_port: int, workdir: str, buses: Sequence[Mapping[str, Any]], devices: Sequence[Mapping[str, Any]],
    status_socket: str, client_id: str = "pantau-test", keepalive: int = 10, profiles: Sequence[str] | None = None,
    extra: str = "", mqtt_extra: str = "",
) -> str:
    """The contract's config: identity test-site/gw-test, prefix `pantau`, journal and status socket in tmp."""
    profile_dirs = list(profiles) if profiles is not None else [profiles_fixture_dir()]
    lines = [
        f"gateway: {flow({'site': SITE, 'id': GATEWAY_ID})}",
        "profiles: [" + ", ".join(scalar(p) for p in profile_dirs) + "]",
        "buses:",
        *[f"  - {flow(b)}" for b in buses],
        "devices:",
        *[f"  - {flow(d)}" for d in devices],
        "mqtt:",
        f"  brokers: [{flow({'host': '127.0.0.1', 'port': broker_port})}]",
        f"  client_id: {scalar(client_id)}",
        f"  topic_prefix: {TOPIC_PREFIX}",
        f"  keepalive: {keepalive}",
        *([mqtt_extra] if mqtt_extra else []),
        "journal: " + flow({
            "path": os.path.join(workdir, "journal.sqlite"), "durability": "normal", "commit_interval": "100ms",
        }),
        f"status: {flow({'socket': status_socket})}",
    ]
    return "\n".join(lines) + "\n" + extra


def topic(kind: str, dev: str | None = None) -> str:
    """`status`, or a device topic such as `telemetry` / `availability` for `dev`."""
    return f"{BASE_TOPIC}/{kind}" if dev is None else f"{BASE_TOPIC}/devices/{dev}/{kind}"
