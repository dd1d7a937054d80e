"""A Modbus device simulated by pymodbus, run as its own process.

    python -m pantau_harness.device --tcp PORT --unit 1:spec.json [--unit 2:spec.json]
    python -m pantau_harness.device --rtu /path/to/pty --baud 9600 --parity N --unit 1:spec.json

A spec file is JSON: {"holding": {"0": 1234, ...}, "input": {...}, "coil": {"0": 1}, "discrete": {...}},
protocol (0-based, PDU) addresses to raw values. Every table is dense from address 0 to past the highest
address given (zeros elsewhere), so block reads across gaps succeed like on a real device.

Unit ids not listed get no answer at all: the request is dropped before it reaches the datastore, so a
client times out exactly as with an absent device on an RS-485 line. (pymodbus 3.16.1 falls back to device 0
or answers DEVICE_FAILURE for an unknown id even with ignore_missing_devices, so we filter in trace_pdu.)

Prints "READY" on stdout once serving.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys

from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

TABLES = ("coil", "discrete", "holding", "input")
MIN_TABLE_SIZE = 256


def load_spec(path: str) -> dict[str, dict[int, int]]:
    with open(path, encoding="utf-8") as f:
        raw = json.load(f)
    unknown = set(raw) - set(TABLES)
    if unknown:
        raise SystemExit(f"{path}: unknown tables {sorted(unknown)}; use {TABLES}")
    return {table: {int(a): int(v) for a, v in raw.get(table, {}).items()} for table in TABLES}


def dense(values: dict[int, int]) -> list[int]:
    size = max(MIN_TABLE_SIZE, max(values, default=0) + 16)
    out = [0] * size
    for address, value in values.items():
        if not 0 <= value <= 0xFFFF:
            raise SystemExit(f"register value {value} at {address} is not a 16-bit raw value")
        out[address] = value
    return out


def sim_device(unit: int, spec: dict[str, dict[int, int]]) -> SimDevice:
    """Four separate tables (the classic Modbus data model), each addressed from protocol address 0."""
    coils = [bool(v) for v in dense(spec["coil"])]
    discretes = [bool(v) for v in dense(spec["discrete"])]
    return SimDevice(
        id=unit,
        simdata=(
            [SimData(0, values=coils, datatype=DataType.BITS)],
            [SimData(0, values=discretes, datatype=DataType.BITS)],
            [SimData(0, values=dense(spec["holding"]), datatype=DataType.REGISTERS)],
            [SimData(0, values=dense(spec["input"]), datatype=DataType.REGISTERS)],
        ),
    )


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="pantau_harness.device")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--tcp", type=int, metavar="PORT")
    where.add_argument("--rtu", metavar="TTY")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--baud", type=int, default=9600)
    p.add_argument("--parity", default="N", choices=["N", "E", "O"])
    p.add_argument("--stopbits", type=int, default=1)
    p.add_argument("--unit", action="append", required=True, metavar="ID:SPEC.json")
    p.add_argument("--verbose", action="store_true")
    return p.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    devices = []
    for item in args.unit:
        unit, _, path = item.partition(":")
        if not 1 <= int(unit) <= 247:
            raise SystemExit(f"unit id {unit} outside 1..247")
        devices.append(sim_device(int(unit), load_spec(path)))
    served = {d.id for d in devices}

    def drop_unknown_units(sending: bool, pdu):
        if not sending and pdu.dev_id not in served:
            return None
        return pdu

    if args.tcp is not None:
        server = ModbusTcpServer(
            devices, framer=FramerType.SOCKET, address=(args.host, args.tcp), trace_pdu=drop_unknown_units
        )
    else:
        server = ModbusSerialServer(
            devices,
            framer=FramerType.RTU,
            port=args.rtu,
            baudrate=args.baud,
            parity=args.parity,
            stopbits=args.stopbits,
            bytesize=8,
            trace_pdu=drop_unknown_units,
        )
    await server.serve_forever(background=True)
    print("READY", flush=True)
    await server.serving


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, stream=sys.stderr)
    if not args.verbose:
        # The SimData deprecation chatter and per-request logs would drown real errors in the device log.
        logging.getLogger("pymodbus").setLevel(logging.ERROR)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
