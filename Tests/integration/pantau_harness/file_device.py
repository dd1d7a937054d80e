"""A pymodbus TCP device whose holding registers the test changes while it runs, and that can answer slowly.

    python -m pantau_harness.file_device --port PORT --control control.json

control.json is re-read on every request: {"holding": {"4": 120, ...}, "delay_s": 0}. `holding` maps protocol
(0-based) addresses to raw 16-bit values (zeros elsewhere); `delay_s` holds every answer back that long (a device
whose valid `timeout_ms` is long). Unit id 1 only. Prints "READY" and the port on stdout once serving.
Used by the field sign-off tests (issue 19), e.g. a river level that rises, or a device that answers in 25 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time

from pymodbus.framer import FramerType
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

SIZE = 64


def read_control(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


async def serve(port: int, control: str) -> None:
    zeros = [0] * SIZE
    device = SimDevice(
        id=1,
        simdata=(
            [SimData(0, values=[False] * SIZE, datatype=DataType.BITS)],
            [SimData(0, values=[False] * SIZE, datatype=DataType.BITS)],
            [SimData(0, values=zeros, datatype=DataType.REGISTERS)],
            [SimData(0, values=zeros, datatype=DataType.REGISTERS)],
        ),
    )
    asked: dict[str, int] = {}

    def from_control_file(sending: bool, pdu):
        # pymodbus 3.16's datastore is static; the answer's registers are replaced on their way out.
        if not sending:
            if pdu.dev_id != 1:
                return None
            asked["address"] = getattr(pdu, "address", 0)
            asked["count"] = getattr(pdu, "count", 0)
            delay = float(read_control(control).get("delay_s", 0))
            if delay > 0:
                time.sleep(delay)  # blocks the device's loop: a slow device, not a slow network
            return pdu
        registers = getattr(pdu, "registers", None)
        if registers:
            values = [0] * SIZE
            for a, v in read_control(control).get("holding", {}).items():
                values[int(a)] = int(v) & 0xFFFF
            first = asked.get("address", 0)
            pdu.registers = values[first:first + len(registers)]
        return pdu

    server = ModbusTcpServer(
        [device], framer=FramerType.SOCKET, address=("127.0.0.1", port), trace_pdu=from_control_file)
    await server.serve_forever(background=True)
    print("READY", flush=True)
    await server.serving


def main() -> None:
    p = argparse.ArgumentParser(prog="pantau_harness.file_device")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--control", required=True)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.getLogger("pymodbus").setLevel(logging.ERROR)
    asyncio.run(serve(args.port, args.control))


if __name__ == "__main__":
    main()
