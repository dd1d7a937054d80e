"""Issue #5: every shipped profile (firmware-profiles/*.yaml) polled end to end.

One `pantau simulate` serves every shipped profile as its own Modbus TCP unit; one `pantau run` polls each of them
as one device (one bus per profile, so a profile that stalls its bus cannot hide the others) and publishes to a
real mosquitto. For each profile the test checks that telemetry arrives carrying exactly the profile's published
points (`publish: false` points stay out), each with quality `good` or `out_of_range`, a finite number (or a
boolean for bits), the profile's unit, and that the message matches telemetry.schema.json.

The expected point list is read from the YAML files by this test (a small reader for the profiles' flow-mapping
point lines), not from the gateway, so a point the gateway's parser drops is caught.
"""

from __future__ import annotations

import glob
import math
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass

import pytest

from pantau_harness import senml
from pantau_harness.broker import MosquittoBroker
from pantau_harness.collector import MqttCollector
from pantau_harness.config import BASE_TOPIC, device, gateway_yaml, tcp_bus, topic
from pantau_harness.gateway import GatewayProcess, binary_missing_reason, binary_path
from pantau_harness.procs import kill, repo_root, wait_until
from pantau_harness.simulate import Simulator

pytestmark = pytest.mark.gateway

PROFILE_DIR = os.path.join(repo_root(), "firmware-profiles")
ALLOWED_QUALITIES = {"good", "out_of_range"}
TELEMETRY_TIMEOUT = 60.0


@dataclass(frozen=True)
class Point:
    name: str
    unit: str
    type: str
    publish: bool


def _strip_comment(line: str) -> str:
    """The line without a `# comment` (a `#` inside quotes, as in colour codes, is kept)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i]
    return line


def _field(body: str, key: str) -> str | None:
    m = re.search(rf"(?:^|[{{,\s]){re.escape(key)}:\s*(\"[^\"]*\"|'[^']*'|[^,}}\s]+)", body)
    if not m:
        return None
    value = m.group(1)
    return value[1:-1] if value[:1] in "\"'" else value


def read_profile(path: str) -> tuple[str, list[Point]]:
    """The profile id and its points, from the `points:` section's `- {name: ..., ...}` flow mappings."""
    with open(path, encoding="utf-8") as f:
        lines = [_strip_comment(line.rstrip("\n")) for line in f]
    profile_id = next(_field(line, "id") for line in lines if line.startswith("id:"))
    points: list[Point] = []
    in_points = False
    pending = ""
    for line in lines:
        if re.match(r"^\S", line):
            in_points = line.startswith("points:")
            continue
        if not in_points or not line.strip():
            continue
        if line.strip().startswith("- {"):
            assert not pending, f"{path}: unterminated point {pending!r}"
            pending = line.strip()[2:]
        elif pending:
            pending += " " + line.strip()
        else:
            raise AssertionError(f"{path}: unexpected line in points: {line!r} (block-style points not supported)")
        if pending.count("{") == pending.count("}") and pending.count("[") == pending.count("]"):
            name = _field(pending, "name")
            assert name, f"{path}: point without a name: {pending!r}"
            points.append(Point(
                name=name, unit=_field(pending, "unit") or "", type=_field(pending, "type") or "",
                publish=(_field(pending, "publish") or "true") != "false",
            ))
            pending = ""
    assert points, f"{path}: no points found"
    return profile_id, points


def _not_modbus(path: str) -> bool:
    """Framed UART and SDI-12 profiles (a top-level `frame:` or `sdi12:`) need their own links: they are polled end
    to end in test_uart_sensors.py and test_sdi12.py."""
    with open(path, encoding="utf-8") as f:
        return any(line.startswith(("frame:", "sdi12:")) for line in f)


def _load_profiles() -> tuple[dict[str, list[Point]], list[str]]:
    """Every shipped profile; a file this reader cannot read fails one test instead of the whole collection."""
    profiles, errors = {}, []
    for path in sorted(glob.glob(os.path.join(PROFILE_DIR, "*.yaml"))):
        if _not_modbus(path):
            continue
        try:
            profile_id, points = read_profile(path)
        except (AssertionError, StopIteration, OSError) as error:
            errors.append(f"{path}: {error!r}")
            continue
        profiles[profile_id] = points
    return profiles, errors


PROFILES, PROFILE_ERRORS = _load_profiles()


def device_name(profile_id: str) -> str:
    return f"d-{profile_id}"


@dataclass
class Run:
    collector: MqttCollector
    gateway: GatewayProcess
    simulator: Simulator
    units: dict[str, int]

    def diagnostics(self) -> str:
        return (f"--- gateway log ---\n{self.gateway.logs()[-6000:]}\n"
                f"--- simulator log ---\n{self.simulator.logs()[-3000:]}")


def complete(collector: MqttCollector, profile_id: str) -> bool:
    """A telemetry message of this profile's device in which no point is a device_error."""
    for m in collector.messages(topic("telemetry", device_name(profile_id))):
        try:
            records = senml.resolve(m.json())
        except (AssertionError, ValueError):
            return True  # malformed: let the per-profile test report it
        if all(r.quality != "device_error" for r in records.values()):
            return True
    return False


@pytest.fixture(scope="module")
def shipped_run(tmp_path_factory):
    reason = binary_missing_reason()
    if reason:
        pytest.skip(reason)
    base = tmp_path_factory.mktemp("profiles")
    (base / "broker").mkdir()
    (base / "sim").mkdir()
    (base / "gw").mkdir()
    broker = MosquittoBroker(str(base / "broker"))
    broker.start()
    collector = simulator = gw = None
    short = tempfile.mkdtemp(prefix="pantau-", dir="/tmp")  # unix socket paths must stay under 108 bytes
    try:
        collector = MqttCollector(broker.port, f"{BASE_TOPIC}/#").start()
        units = {pid: i + 1 for i, pid in enumerate(PROFILES)}
        args = ["--dir", PROFILE_DIR]
        for pid, unit in units.items():
            args += ["--profile", f"{pid}:{unit}"]
        simulator = Simulator(str(base / "sim"), [], args).start()
        buses = [tcp_bus(f"b{unit}", simulator.port) for unit in units.values()]
        devices = [device(device_name(pid), f"b{unit}", unit, profile=pid, poll_interval="2s")
                   for pid, unit in units.items()]
        config = gateway_yaml(
            broker_port=broker.port, workdir=str(base / "gw"), buses=buses, devices=devices,
            status_socket=os.path.join(short, "st.sock"),
            profiles=[PROFILE_DIR],
        )
        gw = GatewayProcess(str(base / "gw"), config).start()
        # Wait until every profile has a complete poll, or the time is up (the tests then say which is missing).
        wait_until(lambda: not gw.alive or all(complete(collector, pid) for pid in PROFILES), TELEMETRY_TIMEOUT, 0.2)
        # One more poll interval, so a second message exists for every device that works at all.
        time.sleep(2.5)
        yield Run(collector, gw, simulator, units)
    finally:
        if gw is not None:
            gw.stop(grace=5)
        if simulator is not None:
            simulator.stop()
        if collector is not None:
            collector.stop()
        broker.kill()
        shutil.rmtree(short, ignore_errors=True)


def test_every_shipped_profile_is_listed():
    assert not PROFILE_ERRORS, PROFILE_ERRORS
    files = sorted(glob.glob(os.path.join(PROFILE_DIR, "*.yaml")))
    modbus = [f for f in files if not _not_modbus(f)]
    assert len(files) >= 10 and len(PROFILES) == len(modbus), sorted(PROFILES)
    for pid, points in PROFILES.items():
        assert any(p.publish for p in points), f"{pid} publishes no point"


@pytest.mark.parametrize("profile_id", sorted(PROFILES))
def test_shipped_profile_is_polled_end_to_end(profile_id, shipped_run, schemas):
    run = shipped_run
    assert run.gateway.alive, "the gateway died\n" + run.diagnostics()
    dev = device_name(profile_id)
    messages = run.collector.messages(topic("telemetry", dev))
    assert messages, f"no telemetry from {dev} ({profile_id}) in {TELEMETRY_TIMEOUT:.0f}s\n" + run.diagnostics()

    expected = {p.name: p for p in PROFILES[profile_id] if p.publish}
    hidden = {p.name for p in PROFILES[profile_id] if not p.publish}
    good_message = None
    problems_by_message = []
    for message in messages:
        batch = message.json()
        schemas.validate("telemetry", batch)
        assert batch[0].get("bn") == senml.base_name(dev), batch[0]
        records = senml.resolve(batch)
        problems = []
        if set(records) != set(expected):
            missing, extra = sorted(set(expected) - set(records)), sorted(set(records) - set(expected))
            problems.append(f"points {sorted(records)}, expected {sorted(expected)} (missing {missing}, extra {extra})")
        leaked = hidden & set(records)
        if leaked:
            problems.append(f"publish: false points published: {sorted(leaked)}")
        for name, point in expected.items():
            rec = records.get(name)
            if rec is None:
                continue
            if rec.quality not in ALLOWED_QUALITIES:
                problems.append(f"{name}: quality {rec.quality!r} ({rec.raw})")
                continue
            if point.type == "bit":
                ok = (rec.key == "vb" and isinstance(rec.value, bool)) or (
                    rec.key == "v" and rec.value in (0, 1) and not isinstance(rec.value, bool))
            elif point.type == "string":
                ok = rec.key == "vs" and isinstance(rec.value, str)
            else:
                ok = (rec.key == "v" and isinstance(rec.value, (int, float)) and not isinstance(rec.value, bool)
                      and math.isfinite(rec.value))
            if not ok:
                problems.append(f"{name} ({point.type}): {rec.key}={rec.value!r}")
            unit_ok = rec.unit in (None, "") if point.unit == "" else rec.unit == point.unit
            if not unit_ok:
                problems.append(f"{name}: unit {rec.unit!r}, expected {point.unit!r}")
        if problems:
            problems_by_message.append((message.seq, problems))
        elif good_message is None:
            good_message = message
    assert good_message is not None, (
        f"no telemetry message of {profile_id} is complete and valid; first problems: {problems_by_message[:2]}\n"
        + run.diagnostics())
    # Once a device works, every later poll works too: the simulator serves the whole map on every request.
    later = [seq for seq, _ in problems_by_message if seq is not None and good_message.seq is not None
             and seq > good_message.seq]
    assert not later, f"{profile_id}: later polls went bad: {problems_by_message}"

    availability = run.collector.last(topic("availability", dev))
    assert availability is not None and availability.json().get("state") == "online", availability
