"""`pantau raw`, `scan` and `read` against pymodbus devices, with Debian's mbpoll (libmodbus) as the referee."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import time

import pytest

from pantau_harness import mbpoll, mixed_types
from pantau_harness.config import device as device_entry
from pantau_harness.config import gateway_yaml, profiles_fixture_dir, rtu_bus, tcp_bus

pytestmark = pytest.mark.gateway

SPEC = {
    "holding": {0: 0x1234, 1: 0xFFFF, 2: 42, 9: 7},
    "input": {0: 99, 1: 100, 3: 0x8000},
    "coil": {0: 1, 2: 1},
    "discrete": {1: 1, 3: 1},
}
RUN_TIMEOUT = 60
# Scans wait 300 ms per unit: on a loaded machine a slow reply must not look like an absent unit.
SCAN_TIMEOUT_MS = "300"


def pantau(binary: str, *args: str, timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess:
    """Runs pantau with stdin not a terminal (as in CI), capturing both streams."""
    return subprocess.run(
        [binary, *args], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
    )


def pantau_json(binary: str, *args: str) -> dict:
    done = pantau(binary, *args, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def tcp_link(device) -> list[str]:
    return ["--tcp", f"127.0.0.1:{device.port}"]


def rtu_link(device) -> list[str]:
    return ["--device", device.gateway_path, "--baud", "9600", "--parity", "none"]


def mbpoll_write(target: list[str], unit: int, table: str, address: int, values: list[int]) -> None:
    cmd = [mbpoll.MBPOLL, *target[:-1], "-a", str(unit), "-0", "-r", str(address), "-t", mbpoll.TYPES[table],
           "-o", "1", target[-1], *map(str, values)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=15)
    assert done.returncode == 0 and "Written" in done.stdout, done.stdout + done.stderr


@pytest.fixture(params=["tcp", "rtu"])
def transport(request, pymodbus_tcp_device, pymodbus_rtu_device):
    """(pantau link arguments, mbpoll target) for a fresh device serving SPEC on unit 1, over TCP or RTU."""
    if request.param == "tcp":
        device = pymodbus_tcp_device(SPEC)
        return tcp_link(device), mbpoll.tcp_target(device.port)
    device = pymodbus_rtu_device(SPEC)
    return rtu_link(device), mbpoll.rtu_target(device.gateway_path)


def raw_read(binary: str, link: list[str], table: str, address: int, count: int, *extra: str) -> dict[int, int]:
    report = pantau_json(binary, "raw", "read", *link, "--unit", "1", "--table", table,
                         "--address", str(address), "--count", str(count), *extra)
    return {item["address"]: item["value"] for item in report["values"]}


@pytest.mark.parametrize("table,address,count", [
    ("holding", 0, 10), ("input", 0, 4), ("coil", 0, 4), ("discrete", 0, 5), ("holding", 9, 1),
])
def test_raw_read_agrees_with_mbpoll(pantau_bin, transport, table, address, count):
    link, target = transport
    reference = mbpoll.read(target, 1, table, address, count)
    assert reference.returncode == 0, reference.output
    assert raw_read(pantau_bin, link, table, address, count) == reference.values
    assert len(reference.values) == count


def test_raw_writes_agree_with_mbpoll_both_ways(pantau_bin, transport):
    link, target = transport
    write = [pantau_bin, "raw", "write", *link, "--unit", "1", "--yes"]

    # pantau writes (multiple then single register, multiple then single coil), mbpoll reads back.
    assert pantau(*write, "--address", "20", "7", "0x10", "-2").returncode == 0
    assert pantau(*write, "--address", "23", "65535").returncode == 0
    assert pantau(*write, "--table", "coil", "--address", "10", "1", "0", "on").returncode == 0
    assert pantau(*write, "--table", "coil", "--address", "13", "true").returncode == 0
    assert mbpoll.read(target, 1, "holding", 20, 4).values == {20: 7, 21: 16, 22: 0xFFFE, 23: 0xFFFF}
    assert mbpoll.read(target, 1, "coil", 10, 4).values == {10: 1, 11: 0, 12: 1, 13: 1}

    # mbpoll writes, pantau reads back.
    mbpoll_write(target, 1, "holding", 30, [111, 222, 333])
    mbpoll_write(target, 1, "coil", 20, [0, 1, 1])
    assert raw_read(pantau_bin, link, "holding", 30, 3) == {30: 111, 31: 222, 32: 333}
    assert raw_read(pantau_bin, link, "coil", 20, 3) == {20: 0, 21: 1, 22: 1}


def test_raw_one_based_addresses_match_mbpoll_default(pantau_bin, pymodbus_tcp_device):
    device = pymodbus_tcp_device(SPEC)
    # mbpoll without -0 numbers references from 1: reference 10 is protocol address 9.
    cmd = [mbpoll.MBPOLL, "-m", "tcp", "-p", str(device.port), "-a", "1", "-r", "10", "-c", "1", "-t", "4",
           "-o", "1", "-1", "127.0.0.1"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=15).stdout
    assert "[10]: \t7" in out, out
    assert raw_read(pantau_bin, tcp_link(device), "holding", 10, 1, "--one-based") == {9: 7}
    text = pantau(pantau_bin, "raw", "read", *tcp_link(device), "--unit", "1", "--address", "9").stdout
    assert "0-based protocol address 9 = holding register 40010 in PLC notation (4xxxx = address + 40001)" in text
    assert "[9] 40010: 7" in text


def test_raw_write_refuses_without_yes_when_stdin_is_not_a_terminal(pantau_bin, pymodbus_tcp_device):
    device = pymodbus_tcp_device(SPEC)
    done = pantau(pantau_bin, "raw", "write", *tcp_link(device), "--unit", "1", "--address", "0", "5")
    assert done.returncode == 64, done.stderr
    assert "--yes" in done.stderr
    assert mbpoll.read(mbpoll.tcp_target(device.port), 1, "holding", 0, 1).values == {0: 0x1234}


@pytest.mark.parametrize("command", [
    ["raw", "read", "--unit", "1", "--address", "0"], ["read", "--profile", "x", "--unit", "1"],
    ["scan", "--units", "1"],
])
@pytest.mark.parametrize("option", ["--tcp", "--rtu-over-tcp"])
def test_a_link_that_is_not_host_port_stops_at_parse_time_with_64(pantau_bin, command, option):
    done = pantau(pantau_bin, *command, option, "plc:notaport")
    assert done.returncode == 64, done.stdout + done.stderr
    assert "'plc:notaport' is not host:port (e.g. " + option in done.stderr, done.stderr


def test_raw_interpret_shows_every_type_and_byte_order(pantau_bin, pymodbus_tcp_device):
    points = mixed_types.expected()
    device = pymodbus_tcp_device(mixed_types.register_spec())
    report = pantau_json(pantau_bin, "raw", "read", *tcp_link(device), "--unit", "1", "--address", "6",
                         "--count", "2", "--interpret")
    cells = {(i["type"], i["order"]): i["value"] for i in report["interpretations"]}
    assert set(cells) == {(t, o) for t in ("u32", "i32", "f32") for o in ("ABCD", "CDAB", "BADC", "DCBA")}
    assert cells[("f32", "ABCD")] == pytest.approx(points["f32_abcd"].value)
    # The CDAB pair at 8 read as a quad's first half is not the point; read it on its own.
    report = pantau_json(pantau_bin, "raw", "read", *tcp_link(device), "--unit", "1", "--address", "8",
                         "--count", "2", "--interpret")
    cells = {(i["type"], i["order"]): i["value"] for i in report["interpretations"]}
    assert cells[("f32", "CDAB")] == pytest.approx(points["f32_cdab"].value)
    assert report["convention"].startswith("0-based protocol address 8 = holding register 40009")


def test_raw_error_names_bus_unit_and_register(pantau_bin, pymodbus_tcp_device):
    device = pymodbus_tcp_device(SPEC)
    done = pantau(pantau_bin, "raw", "read", *tcp_link(device), "--unit", "2", "--address", "5",
                  "--timeout-ms", SCAN_TIMEOUT_MS)
    assert done.returncode == 69
    error, hint = done.stderr.strip().splitlines()[-2:]
    assert error.startswith("error: ") and "timeout" in error
    assert f"tcp 127.0.0.1:{device.port}" in hint and "unit 2" in hint and "holding 5 (PLC 40006)" in hint


RTU_UNITS = {3: SPEC, 7: {"holding": {0: 70}}, 12: {"input": {0: 1}}}


def test_scan_finds_exactly_the_units_that_answer_on_rtu(pantau_bin, pymodbus_rtu_device):
    device = pymodbus_rtu_device(RTU_UNITS)
    done = pantau(pantau_bin, "scan", "--device", device.gateway_path, "--baud", "9600", "--parity", "none",
                  "--units", "1-15", "--timeout-ms", SCAN_TIMEOUT_MS, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [hit["unit"] for hit in report["found"]] == [3, 7, 12]
    assert all(hit["baud"] == 9600 and hit["parity"] == "none" for hit in report["found"])
    assert all(hit["responseMs"] > 0 for hit in report["found"])
    assert report["probed"] == report["total"] == 15 and report["interrupted"] is False
    # Not a terminal: one plain line per find, no bar and no escape sequences.
    finds = [line for line in done.stderr.splitlines() if line.startswith("found unit")]
    assert [line.split()[2] for line in finds] == ["3", "7", "12"]
    assert "\x1b" not in done.stderr and "\r" not in done.stderr


def test_scan_reports_nothing_found_with_exit_69(pantau_bin, pymodbus_tcp_device):
    device = pymodbus_tcp_device({9: SPEC})
    done = pantau(pantau_bin, "scan", *tcp_link(device), "--units", "1-3", "--timeout-ms", "100")
    assert done.returncode == 69
    assert "error: no unit answered" in done.stderr and "hint:" in done.stderr


def test_scan_names_the_model_from_identification_registers(pantau_bin, pymodbus_tcp_device, short_tmp):
    with open(os.path.join(profiles_fixture_dir(), "test-mixed-types.yaml"), encoding="utf-8") as f:
        text = f.read()
    # Registers 20-21 hold "PA" "NT" of the model string: a rule only the mixed-types device matches.
    text = text.replace("id: test-mixed-types", "id: test-identified").replace(
        "\npoints:\n", "\nidentification:\n  - {table: holding, address: 20, expect: [0x5041, 0x4E54]}\npoints:\n")
    with open(os.path.join(short_tmp, "test-identified.yaml"), "w", encoding="utf-8") as f:
        f.write(text)
    device = pymodbus_tcp_device({1: mixed_types.register_spec(), 2: SPEC})
    done = pantau(pantau_bin, "scan", *tcp_link(device), "--units", "1-3", "--timeout-ms", SCAN_TIMEOUT_MS,
                  "--profile-dir", short_tmp, "--json")
    assert done.returncode == 0, done.stderr
    models = {hit["unit"]: hit["models"] for hit in json.loads(done.stdout)["found"]}
    assert models == {1: ["test-identified"], 2: []}


def _read_pty(master: int, proc: subprocess.Popen, deadline: float) -> bytes:
    """Everything written to the pty until the process exits (EIO on the master) or the deadline passes."""
    data = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
        elif proc.poll() is not None:
            break
    return data


def test_scan_draws_a_progress_bar_with_time_left_on_a_terminal(pantau_bin, pymodbus_rtu_device):
    device = pymodbus_rtu_device(RTU_UNITS)
    master, slave = os.openpty()
    try:
        proc = subprocess.Popen(
            [pantau_bin, "scan", "--device", device.gateway_path, "--units", "1-15", "--timeout-ms", SCAN_TIMEOUT_MS],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
        os.close(slave)
        slave = -1
        progress = _read_pty(master, proc, time.monotonic() + RUN_TIMEOUT).decode()
        stdout, _ = proc.communicate(timeout=RUN_TIMEOUT)
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    assert proc.returncode == 0, progress
    # Redrawn in place: carriage return and erase-line before each state of the bar.
    frames = [f for f in progress.split("\r\x1b[K") if f.startswith("[")]
    assert frames, progress
    assert any(" left" in f for f in frames)
    assert frames[-1].startswith("[" + "#" * 24 + "]") and "15/15 100%" in frames[-1] and "3 found" in frames[-1]
    assert frames[-1].split("found")[1].strip().startswith("0:00 left")
    # Finds are printed above the bar, on their own lines.
    assert [f.split()[2] for f in progress.split("\r\x1b[K") if f.startswith("found unit")] == ["3", "7", "12"]
    assert stdout.decode().splitlines()[-1] == "3 units found"


def test_scan_stops_cleanly_on_sigint_and_prints_what_was_found(pantau_bin, pymodbus_rtu_device):
    device = pymodbus_rtu_device({2: SPEC})
    proc = subprocess.Popen(
        [pantau_bin, "scan", "--device", device.gateway_path, "--units", "1-247", "--timeout-ms", SCAN_TIMEOUT_MS,
         "--json"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        seen = b""
        deadline = time.monotonic() + 30
        while b"found unit 2" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stderr], [], [], 0.2)
            if ready:
                seen += os.read(proc.stderr.fileno(), 4096)
        assert b"found unit 2" in seen, seen
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    assert proc.returncode == 130, stderr
    report = json.loads(stdout)
    assert report["interrupted"] is True
    assert [hit["unit"] for hit in report["found"]] == [2]
    assert 2 <= report["probed"] < report["total"] == 247
    assert b"interrupted after" in seen + stderr


def _expected_values(report: dict) -> None:
    points = {p["name"]: p for p in report["points"]}
    for name, point in mixed_types.expected().items():
        got = points[name]
        assert got["quality"] == point.quality, name
        assert got["unit"] == point.unit, name
        if isinstance(point.value, float):
            assert got["value"] == pytest.approx(point.value), name
        else:
            assert got["value"] == point.value, name
        words = [1 if point.value else 0] if point.table in ("coil", "discrete") else mixed_types.registers_of(point)
        assert got["raw"] == [f"0x{w:04X}" for w in words], name
    assert all(r.get("error") is None and r["responseMs"] > 0 for r in report["requests"])


def test_read_shows_the_decoded_values_of_a_tcp_device(pantau_bin, pymodbus_tcp_device):
    device = pymodbus_tcp_device({4: mixed_types.register_spec()})
    report = pantau_json(pantau_bin, "read", "--profile", mixed_types.PROFILE_ID, "--profile-dir",
                         profiles_fixture_dir(), *tcp_link(device), "--unit", "4")
    assert report["unit"] == 4 and report["profile"] == mixed_types.PROFILE_ID
    _expected_values(report)
    assert {p["name"]: p["raw"] for p in report["points"]}["u32_abcd"] == ["0x1234", "0x5678"]


def test_read_uses_bus_unit_and_profile_from_the_configuration(pantau_bin, pymodbus_rtu_device, short_tmp):
    device = pymodbus_rtu_device({6: mixed_types.register_spec()})
    config = os.path.join(short_tmp, "gateway.yaml")
    with open(config, "w", encoding="utf-8") as f:
        f.write(gateway_yaml(
            broker_port=1883, workdir=short_tmp, status_socket=os.path.join(short_tmp, "s.sock"),
            buses=[rtu_bus("rs485-1", device.gateway_path), tcp_bus("plant", 1502)],
            devices=[device_entry("weather", "rs485-1", 6)]))
    report = pantau_json(pantau_bin, "read", "--config", config, "--name", "weather")
    assert report["device"] == "weather" and report["unit"] == 6
    assert report["link"].startswith(device.gateway_path + " 9600 8N1")
    _expected_values(report)


def test_read_of_a_silent_unit_fails_with_a_hint(pantau_bin, pymodbus_tcp_device):
    device = pymodbus_tcp_device(SPEC)
    done = pantau(pantau_bin, "read", "--profile", mixed_types.PROFILE_ID, "--profile-dir", profiles_fixture_dir(),
                  *tcp_link(device), "--unit", "9", "--timeout-ms", "200")
    assert done.returncode == 69
    assert "unit 9" in done.stderr.splitlines()[-1] and "hint:" in done.stderr
    assert "device_error" in done.stdout


def test_read_watch_redraws_until_sigint(pantau_bin, pymodbus_tcp_device):
    device = pymodbus_tcp_device(mixed_types.register_spec())
    master, slave = os.openpty()
    try:
        proc = subprocess.Popen(
            [pantau_bin, "read", "--profile", mixed_types.PROFILE_ID, "--profile-dir", profiles_fixture_dir(),
             *tcp_link(device), "--unit", "1", "--watch", "--interval", "200ms"],
            stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.PIPE)
        os.close(slave)
        slave = -1
        seen = b""
        deadline = time.monotonic() + 30
        while seen.count(b"\x1b[H\x1b[2J") < 3 and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                seen += os.read(master, 65536)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
        if proc.poll() is None:
            proc.kill()
    assert seen.count(b"\x1b[H\x1b[2J") >= 3, seen[-2000:]
    assert b"f32_abcd" in seen and b"1013.25" in seen
    assert proc.returncode == 0


@pytest.mark.parametrize("answer,written", [(b"y\n", True), (b"n\n", False)])
def test_raw_write_asks_for_confirmation_on_a_terminal(pantau_bin, pymodbus_tcp_device, answer, written):
    device = pymodbus_tcp_device(SPEC)
    master, slave = os.openpty()
    try:
        proc = subprocess.Popen(
            [pantau_bin, "raw", "write", *tcp_link(device), "--unit", "1", "--address", "2", "4321"],
            stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        os.close(slave)
        slave = -1
        os.write(master, answer)
        stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT)
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    assert b"[y/N]" in stderr and b"holding register at address 2 (PLC 40003) on unit 1" in stderr
    assert proc.returncode == (0 if written else 1), stderr
    value = mbpoll.read(mbpoll.tcp_target(device.port), 1, "holding", 2, 1).values[2]
    assert value == (4321 if written else 42)


def test_raw_interpret_gives_64_bit_integers_with_every_digit(pantau_bin, pymodbus_tcp_device):
    # Issue #11: u64/i64 beyond 2^53 were printed as rounded doubles (18446744073709551616.0).
    device = pymodbus_tcp_device({"holding": {40: 0xFFFF, 41: 0xFFFF, 42: 0xFFFF, 43: 0xFFFE}})
    done = pantau(pantau_bin, "raw", "read", *tcp_link(device), "--unit", "1", "--address", "40", "--count", "4",
                  "--interpret", "--json")
    assert done.returncode == 0, done.stderr
    # The JSON text itself carries the digits (a float would have lost the last ones).
    assert '"value":18446744073709551614' in done.stdout.replace(" ", ""), done.stdout
    cells = {(i["type"], i["order"]): i.get("value") for i in json.loads(done.stdout)["interpretations"]}
    assert cells[("u64", "ABCDEFGH")] == 18446744073709551614
    assert isinstance(cells[("u64", "ABCDEFGH")], int)
    assert cells[("i64", "ABCDEFGH")] == -2
    text = pantau(pantau_bin, "raw", "read", *tcp_link(device), "--unit", "1", "--address", "40", "--count", "4",
                  "--interpret").stdout
    assert "18446744073709551614" in text, text


def test_raw_reports_are_one_flat_object_with_the_place_first(pantau_bin, pymodbus_tcp_device):
    # `raw read` and `raw write` share the place fields (link, unit, table, address, plc): one JSON object each,
    # keys sorted, exactly as before they were shared.
    device = pymodbus_tcp_device({"holding": {0: 215, 1: 0xFFFF}})
    link = f"tcp 127.0.0.1:{device.port}"
    read = pantau(pantau_bin, "raw", "read", *tcp_link(device), "--unit", "1", "--count", "2", "--address", "0",
                  "--json")
    assert read.returncode == 0, read.stderr
    assert list(json.loads(read.stdout)) == sorted(json.loads(read.stdout)), read.stdout
    report = json.loads(read.stdout)
    assert isinstance(report.pop("responseMs"), float)
    assert report == {
        "address": 0, "link": link, "plc": "40001", "table": "holding", "unit": 1,
        "convention": "0-based protocol address 0 = holding register 40001 in PLC notation (4xxxx = address + 40001)",
        "values": [{"address": 0, "hex": "0x00D7", "value": 215}, {"address": 1, "hex": "0xFFFF", "value": 65535}],
    }
    write = pantau(pantau_bin, "raw", "write", *tcp_link(device), "--unit", "1", "--address", "5", "--yes", "--json",
                   "7", "-3")
    assert write.returncode == 0, write.stderr
    report = json.loads(write.stdout)
    assert isinstance(report.pop("responseMs"), float)
    assert report == {"address": 5, "link": link, "plc": "40006", "table": "holding", "unit": 1, "values": [7, 65533]}


@pytest.mark.parametrize("profile,first_lines", [
    ("xy-md02", ["xy-md02: 1 request per poll for 2 points",
                 "  FC04 input    address 1     count 2    temperature, humidity"]),
    ("nova-sds011", ["nova-sds011: 1 request per poll for 2 points (framed UART sensor, bus type uart: one 10-byte "
                     "frame per poll)",
                     "  FC04 input    address 1     count 2    frame bytes 2-5"]),
    ("ott-pls", ["ott-pls: 1 request per poll for 2 points (SDI-12 sensor, bus type sdi12: one measurement of 2 "
                 "values per poll)",
                 "  FC04 input    address 0     count 8    values 1-2"]),
])
def test_profiles_plan_header_and_request_lines(pantau_bin, profile, first_lines):
    # One header and one request-line shape for Modbus, framed UART and SDI-12 plans (bench/bus.py reads them).
    shipped = os.path.join(os.path.dirname(__file__), "..", "..", "firmware-profiles")
    done = pantau(pantau_bin, "profiles", "plan", "--dir", shipped, profile)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:2] == first_lines, done.stdout
