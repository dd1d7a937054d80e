"""The `test-mixed-types` profile: points of every value type and byte order at known addresses.

The raw registers are computed here with `struct` from chosen engineering values, independently of the gateway's
Swift decoder. This module is the single source of the fixture profile:

    python -m pantau_harness.mixed_types > fixtures/profiles/test-mixed-types.yaml

(`test_harness_selfcheck.py` fails when the committed file drifts from this module.)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

PROFILE_ID = "test-mixed-types"


@dataclass(frozen=True)
class Point:
    name: str
    quantity: str
    table: str
    address: int
    type: str
    value: Any  # the engineering value the gateway must publish
    unit: str
    order: str | None = None
    encoding: str | None = None
    scale: float | None = None
    offset: float | None = None
    bit: int | None = None
    length: int | None = None
    range: tuple[float, float] | None = None
    raw_override: int | None = None  # for points whose engineering value is not simply encoded (bit in a register)
    quality: str = "good"

    @property
    def senml_key(self) -> str:
        if self.type == "bit":
            return "vb"
        if self.type == "string":
            return "vs"
        return "v"


POINTS: tuple[Point, ...] = (
    Point("u16_value", "counter", "holding", 0, "u16", 1234, "count"),
    Point("i16_negative", "temperature", "holding", 1, "i16", -123, "Cel"),
    Point("u32_abcd", "counter", "holding", 2, "u32", 305419896, "count", order="ABCD"),
    Point("i32_cdab", "counter", "holding", 4, "i32", -1234567, "count", order="CDAB"),
    Point("f32_abcd", "pressure", "holding", 6, "f32", 1013.25, "hPa", order="ABCD"),
    Point("f32_cdab", "relative_humidity", "holding", 8, "f32", 65.5, "%RH", order="CDAB"),
    Point("f32_badc", "pm2_5", "holding", 10, "f32", 12.375, "ug/m3", order="BADC"),
    Point("f64_abcdefgh", "water_level", "holding", 12, "f64", 3.14159265358979, "m", order="ABCDEFGH"),
    Point("u16_scaled", "wind_speed", "holding", 16, "u16", 12.3, "m/s", scale=0.1, range=(0, 60)),
    Point("u16_offset", "temperature", "holding", 17, "u16", 25.5, "Cel", scale=0.01, offset=-40),
    Point("i16_sign_magnitude", "temperature", "holding", 18, "i16", -5, "Cel", encoding="sign_magnitude"),
    # Register 19 = 0x0108: bit 3 set, bit 2 clear, and bit 8 set so a decoder that ignores the mask is caught.
    Point("status_bit3", "status", "holding", 19, "bit", True, "", bit=3, raw_override=0x0108),
    Point("status_bit2", "status", "holding", 19, "bit", False, "", bit=2, raw_override=0x0108),
    Point("model_name", "status", "holding", 20, "string", "PANTAU-1", "", length=4),
    Point("range_limited", "distance", "holding", 24, "u16", 900, "cm", range=(0, 500), quality="out_of_range"),
    Point("input_u16", "illuminance", "input", 0, "u16", 4321, "lx"),
    Point("coil_flag", "status", "coil", 0, "bit", True, ""),
    Point("discrete_flag", "status", "discrete", 2, "bit", False, ""),
)

# Neighbours set to 1 around the discrete point, so an off-by-one address reads true instead of false.
EXTRA_RAW = {"discrete": {1: 1, 3: 1}}


def value_bytes(point: Point) -> bytes:
    """The value's bytes, most significant first (the ABCD... letters in alphabetical order)."""
    raw = point.value
    if point.scale is not None or point.offset is not None:
        raw = round((point.value - (point.offset or 0)) / (point.scale or 1))
    if point.encoding == "sign_magnitude":
        bits = {"i16": 16, "i32": 32, "i64": 64}[point.type]
        magnitude = abs(int(raw))
        raw = magnitude | (1 << (bits - 1)) if raw < 0 else magnitude
        return raw.to_bytes(bits // 8, "big")
    fmt = {"u16": ">H", "i16": ">h", "u32": ">I", "i32": ">i", "u64": ">Q", "i64": ">q", "f32": ">f", "f64": ">d"}
    return struct.pack(fmt[point.type], raw)


def registers_of(point: Point) -> list[int]:
    """Raw 16-bit registers for a register-table point, in wire order."""
    if point.raw_override is not None:
        return [point.raw_override]
    if point.type == "string":
        text = point.value.encode("ascii").ljust(2 * point.length, b"\0")
        return [int.from_bytes(text[i : i + 2], "big") for i in range(0, len(text), 2)]
    be = value_bytes(point)
    order = point.order or "ABCDEFGH"[: len(be)]
    wire = bytes(be[ord(letter) - ord("A")] for letter in order)
    return [int.from_bytes(wire[i : i + 2], "big") for i in range(0, len(wire), 2)]


def register_spec() -> dict[str, dict[int, int]]:
    """{table: {address: raw}} for the simulated device."""
    spec: dict[str, dict[int, int]] = {"holding": {}, "input": {}, "coil": {}, "discrete": {}}
    for table, values in EXTRA_RAW.items():
        spec[table].update(values)
    for p in POINTS:
        if p.table in ("coil", "discrete"):
            spec[p.table][p.address] = int(bool(p.value))
            continue
        for i, word in enumerate(registers_of(p)):
            previous = spec[p.table].get(p.address + i)
            if previous is not None and previous != word:
                raise ValueError(f"{p.name} overlaps another point at {p.table} {p.address + i}")
            spec[p.table][p.address + i] = word
    return spec


def expected() -> dict[str, Point]:
    return {p.name: p for p in POINTS}


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def _yaml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return _num(value)


def profile_yaml() -> str:
    out = [
        "# Generated by Tests/integration/pantau_harness/mixed_types.py; edit that file, then regenerate:",
        "#   python -m pantau_harness.mixed_types > fixtures/profiles/test-mixed-types.yaml",
        f"id: {PROFILE_ID}",
        "version: 1",
        "manufacturer: Pantau test harness",
        "model: mixed-types",
        'firmware: "any"',
        'source: "Tests/integration/pantau_harness/mixed_types.py (raw registers computed with Python struct)"',
        "unit_id: 1",
        "serial: {baud: 9600, parity: none, data_bits: 8, stop_bits: 1}",
        "timing:",
        "  response_timeout_ms: 500",
        "  retries: 1",
        "points:",
    ]
    for p in POINTS:
        out.append(f"  - name: {p.name}")
        out.append(f"    quantity: {p.quantity}")
        out.append(f"    table: {p.table}")
        out.append(f"    address: {p.address}")
        out.append(f"    type: {p.type}")
        if p.order:
            out.append(f"    order: {p.order}")
        if p.encoding:
            out.append(f"    encoding: {p.encoding}")
        if p.scale is not None:
            out.append(f"    scale: {_num(p.scale)}")
        if p.offset is not None:
            out.append(f"    offset: {_num(p.offset)}")
        if p.bit is not None:
            out.append(f"    bit: {p.bit}")
        if p.length is not None:
            out.append(f"    length: {p.length}")
        out.append(f'    unit: "{p.unit}"')
        if p.range:
            out.append(f"    range: [{_num(p.range[0])}, {_num(p.range[1])}]")
    spec = register_spec()
    out += ["test_vectors:", '  - description: "every point at once, registers from Python struct"', "    registers:"]
    for table in ("holding", "input", "coil", "discrete"):
        regs = spec[table]
        if regs:
            body = ", ".join(f"{a}: 0x{v:04X}" if table in ("holding", "input") else f"{a}: {v}"
                             for a, v in sorted(regs.items()))
            out.append(f"      {table}: {{{body}}}")
    out.append("    expect:")
    for p in POINTS:
        out.append(f"      {p.name}: {_yaml_value(p.value)}")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(profile_yaml(), end="")
