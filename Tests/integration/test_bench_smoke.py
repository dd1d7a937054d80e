"""Smoke run of the benchmarks (bench/run.py --smoke) so the scripts do not rot.

Seconds per bench, no ThingsBoard gateway, no thresholds on any measured figure (the machine is shared): the run
must finish, produce results of the right shape and a well-formed chart. Self-contained: needs only the pinned
test venv (pymodbus, paho-mqtt), mosquitto, socat and, for the Pantau parts, $PANTAU_BIN.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"


def load(name: str):
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


def pantau_bin() -> str | None:
    for candidate in (os.environ.get("PANTAU_BIN"), ROOT / ".build" / "debug" / "pantau",
                      ROOT / ".build" / "release" / "pantau"):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    return None


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    if shutil.which("mosquitto") is None:
        pytest.skip("mosquitto is not installed")
    out = tmp_path_factory.mktemp("bench")
    results = out / "results.json"
    cmd = [sys.executable, str(BENCH / "run.py"), "--smoke", "--results", str(results), "--workdir", str(out / "work")]
    binary = pantau_bin()
    if binary:
        cmd += ["--pantau", binary]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=115, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {"results": json.loads(results.read_text()), "chart": results.with_suffix(".svg"),
            "stdout": proc.stdout, "pantau": binary}


def test_smoke_run_reports_every_bench(smoke):
    r = smoke["results"]
    assert r["meta"]["smoke"] is True
    assert r["meta"]["thingsboard_gateway"] in ("skipped", "not installed (bench/setup.sh)")  # never run in smoke mode
    for name in ("standard", "sweep", "throughput", "backlog", "bus", "size"):
        assert name in r, f"bench {name} missing from results"
    assert "ThingsBoard gateway skipped" in smoke["stdout"]


def test_smoke_chart_is_well_formed_svg(smoke):
    root = ET.parse(smoke["chart"]).getroot()
    assert root.tag.endswith("svg")
    assert len(root.findall(".//{http://www.w3.org/2000/svg}rect")) >= 2


def test_smoke_bus_table_covers_every_shipped_profile(smoke):
    rows = {p["profile"]: p for p in smoke["results"]["bus"].get("profiles", [])}
    shipped = {p.stem for p in (ROOT / "firmware-profiles").glob("*.yaml")}
    if smoke["pantau"] is None:
        pytest.skip("no pantau binary: the plan column needs `pantau profiles plan`")
    assert set(rows) == shipped
    for row in rows.values():
        assert "error" not in row, row
        # A plan can never beat the minimum within the profile's own limits, nor need more reads than points.
        assert row["min_protocol"] <= row["min_within_profile_limits"] <= row["plan_requests"]
        assert row["plan_requests"] <= max(row["one_read_per_point"], row["min_within_profile_limits"])


def test_smoke_ceiling_publisher_gets_every_puback(smoke):
    c = smoke["results"]["backlog"].get("ceiling_c_libmosquitto")
    if c is None:
        pytest.skip("the C publisher could not be built (cc or libmosquitto-dev missing)")
    assert c["acked"] == c["messages"] > 0
    assert c["refused"] == 0


def test_smoke_backlog_drain_empties_the_file(smoke):
    """The drain round: timed from the gateway's CONNACK, every backlog row acknowledged and gone from the file
    (pending plus acknowledged rows whose deletes were deferred)."""
    if not smoke["results"]["meta"]["pantau_has_run"]:
        pytest.skip("this pantau has no `run` subcommand")
    b = smoke["results"]["backlog"]
    p = b["pantau"]
    assert "error" not in p, p
    depth = b["journal_rows_before_drain"]
    assert depth > 0
    assert p["start"] == "CONNACK (log)"
    assert p["messages_acked"] >= depth
    assert p["records_drained"] >= depth - max(10, depth // 1000)
    assert p["seconds_to_broker"] > 0 and p["records_per_s_to_broker"] > 0


def test_smoke_pantau_standard_load_delivers_readings(smoke):
    if not smoke["results"]["meta"]["pantau_has_run"]:
        pytest.skip("this pantau has no `run` subcommand")
    p = smoke["results"]["standard"]["pantau"]
    assert "error" not in p, p
    assert p["readings"] > 0
    assert p["cpu_s_per_1000_readings"] is not None


@pytest.mark.parametrize("points, limit, gap, single, expected", [
    # contiguous u16 registers: one read
    ([("holding", a, 1) for a in range(20)], 125, 8, False, 1),
    # a hole of 9 with max_gap 8: two reads; with no gap limit: one
    ([("holding", 0, 1), ("holding", 10, 1)], 125, 8, False, 2),
    ([("holding", 0, 1), ("holding", 10, 1)], 125, None, False, 1),
    # 130 registers exceed one read of 125
    ([("input", a, 1) for a in range(130)], 125, 0, False, 2),
    # a device that reads 2 registers at a time
    ([("input", 1, 1), ("input", 2, 1), ("input", 3, 1)], 2, 0, False, 2),
    # two tables never share a read; one request per point when the profile says so
    ([("holding", 0, 2), ("input", 0, 2)], 125, 8, False, 2),
    ([("holding", 0, 2), ("holding", 2, 2)], 125, 8, True, 2),
    # a 32-bit value does not fit in the last register of a read
    ([("holding", 0, 1), ("holding", 124, 2)], 125, None, False, 2),
])
def test_minimum_read_count(points, limit, gap, single, expected):
    bus = load("bus")
    pts = [{"table": t, "address": a, "span": s} for t, a, s in points]
    assert len(bus.greedy_reads(pts, limit, gap, single)) == expected


@pytest.mark.parametrize("count, expected_ms", [(1, 25.2), (10, 45.8), (125, 309.0)])
def test_rtu_theory_matches_the_serial_line_table(count, expected_ms):
    # Modbus over Serial Line V1.02 timing at 9600 baud, 11-bit characters (the table in protocols.md).
    bus = load("bus")
    assert bus.rtu_ms([(3, count)]) == pytest.approx(expected_ms, abs=0.6)


def test_doc_tables_are_replaced_between_markers(tmp_path):
    report = load("report")
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Title\n\nprose stays\n")
    results = {"meta": {"date_utc": "X"}, "size": {"binary_bytes": 12_000_000, "binary_is_release": True,
                                                   "deb": "none"}}
    report.update_doc(results, doc)
    first = doc.read_text()
    assert "prose stays" in first and "12.0 MB" in first
    results["size"]["binary_bytes"] = 13_000_000
    report.update_doc(results, doc)
    second = doc.read_text()
    assert "13.0 MB" in second and "12.0 MB" not in second
    assert second.count("BENCH:size:BEGIN") == 1
