#!/usr/bin/env python3
"""N Modbus TCP devices (pymodbus) on loopback, one listening port each, M u16 holding registers at 0..M-1.

The values change every second (so that an on-change report strategy publishes as much as a periodic one):
register i of device d holds (whole seconds + 7*d + i) mod 1000. Listens until killed or --max-seconds passes.
Prints one JSON line {"ports": [...]} on stdout once every server listens.

Usage: devices.py --ports 15020,15021,... --registers 20 [--max-seconds 3600]
"""
import argparse
import asyncio
import json
import logging
import sys
import time

from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice


def make_action(index: int):
    async def action(function_code, start_address, address, count, registers, set_values):
        if set_values is None:
            base = int(time.time()) + 7 * index
            for i in range(len(registers)):
                registers[i] = (base + i) % 1000
        return None
    return action


async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ports", required=True, help="comma-separated TCP ports, one device each")
    ap.add_argument("--registers", type=int, default=20)
    ap.add_argument("--max-seconds", type=float, default=3600.0)
    args = ap.parse_args()
    logging.getLogger("pymodbus").setLevel(logging.ERROR)
    ports = [int(p) for p in args.ports.split(",") if p]
    servers = []
    for index, port in enumerate(ports):
        device = SimDevice(
            id=0,
            simdata=SimData(0, count=args.registers, values=0, datatype=DataType.REGISTERS),
            action=make_action(index),
        )
        server = ModbusTcpServer(device, address=("127.0.0.1", port))
        await server.serve_forever(background=True)
        servers.append(server)
    print(json.dumps({"ports": ports}), flush=True)
    try:
        await asyncio.sleep(args.max_seconds)
    finally:
        for server in servers:
            await server.shutdown()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main()))
    except KeyboardInterrupt:
        sys.exit(0)
