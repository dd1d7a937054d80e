"""Two independent peers for Modbus RTU over TCP (RTU frames with CRC in a TCP stream, no MBAP header).

1. `RtuFramerTcpDevice`: pymodbus's TCP server with the RTU framer (`FramerType.RTU`) in a subprocess:

       python -m pantau_harness.rtu_over_tcp --port PORT --unit 1:spec.json [--unit 2:spec.json]

2. `SocatDtu`: the shape of a real serial device server or 4G DTU in transparent mode: `socat TCP-LISTEN:PORT`
   forwarding the stream to one end of a pty pair, with pymodbus's RTU *serial* server on the other end
   (`modbus_sim.RtuDevice`). A DTU keeps no state, so killing socat drops the TCP connection while the "RS-485
   side" (the pty pair and pymodbus) stays up, and restarting it on the same port is the DTU coming back.

Register specs and unit handling are those of `pantau_harness.device`: unit ids not served never answer.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Mapping

from pymodbus.framer import FramerType
from pymodbus.server import ModbusTcpServer

from .device import load_spec, sim_device
from .modbus_sim import STARTUP_TIMEOUT, ModbusDevice, PtyPair, RegisterSpec, _readline_with_timeout
from .procs import free_port, harness_root, port_open, wait_until


class RtuFramerTcpDevice(ModbusDevice):
    """pymodbus `ModbusTcpServer(framer=FramerType.RTU)` on 127.0.0.1:`port`."""

    def __init__(self, workdir: str, units: Mapping[int, RegisterSpec], name: str = "rtu-framer-tcp"):
        super().__init__(workdir, units, name)
        self.host = "127.0.0.1"
        self.port = free_port()

    def start(self) -> None:
        env = dict(os.environ, PYTHONPATH=harness_root() + os.pathsep + os.environ.get("PYTHONPATH", ""))
        cmd = [sys.executable, "-m", "pantau_harness.rtu_over_tcp", "--port", str(self.port), *self._unit_args()]
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, env=env, cwd=self.workdir)
        log.close()
        line = _readline_with_timeout(self.proc, STARTUP_TIMEOUT)
        if line.strip() != b"READY" or not wait_until(lambda: port_open(self.port), STARTUP_TIMEOUT):
            self.kill()
            raise RuntimeError(f"{self.name} did not start: {self.logs()[-2000:]}")


class SocatDtu:
    """`socat TCP-LISTEN:port,fork,reuseaddr <pty>`: a transparent DTU in front of one end of a pty pair.

    `fork` lets it accept again after a connection closes, as DTUs do (one client at a time, like a DTU). Readiness is read from socat's log, never
    by connecting (a probe connection would be a client of the "RS-485 line" too).
    """

    def __init__(self, workdir: str, pair: PtyPair, port: int | None = None):
        self.workdir = workdir
        self.pair = pair
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.log_path = os.path.join(workdir, "dtu-socat.log")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        offset = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            # -t 0: a child whose client left exits at once instead of reading (stealing) the next client's reply
            # for socat's default 0.5 s half-close wait.
            ["socat", "-d", "-d", "-t", "0", f"TCP-LISTEN:{self.port},bind=127.0.0.1,reuseaddr,fork",
             f"OPEN:{self.pair.gateway_path},raw,echo=0"],
            stdout=subprocess.DEVNULL, stderr=log, start_new_session=True,
        )
        log.close()

        def listening() -> bool:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return b"listening on" in f.read()

        if not wait_until(listening, STARTUP_TIMEOUT):
            self.kill()
            raise RuntimeError(f"socat DTU did not listen on {self.port}: {self.logs()[-2000:]}")

    def kill(self) -> None:
        """Kills socat and its per-connection children: the TCP connection drops at once."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)
        self.proc = None

    def logs(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="pantau_harness.rtu_over_tcp")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--unit", action="append", required=True, metavar="ID:SPEC.json")
    p.add_argument("--verbose", action="store_true")
    return p.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    devices = []
    for item in args.unit:
        unit, _, path = item.partition(":")
        devices.append(sim_device(int(unit), load_spec(path)))
    served = {d.id for d in devices}

    def drop_unknown_units(sending: bool, pdu):
        if not sending and pdu.dev_id not in served:
            return None
        return pdu

    server = ModbusTcpServer(
        devices, framer=FramerType.RTU, address=(args.host, args.port), trace_pdu=drop_unknown_units
    )
    await server.serve_forever(background=True)
    print("READY", flush=True)
    await server.serving


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, stream=sys.stderr)
    if not args.verbose:
        logging.getLogger("pymodbus").setLevel(logging.ERROR)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()


def crc16_modbus(data: bytes) -> bytes:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return bytes([crc & 0xFF, crc >> 8])


class GarbageDtu:
    """A DTU-shaped peer in a thread that answers FC03/FC04 reads of one register per a script cycling through
    `good` (value `value`), `bad_crc`, `other_unit`, `long` (a byte count of 4 for a 1-register read) and `silent`.
    Bad answers carry the sentinel value 999, which must never be published. `.answered` counts by kind."""

    SENTINEL = 999

    def __init__(self, script: list[str], value: int = 42):
        import socketserver
        import threading

        self.script = script
        self.value = value
        self.answered: dict[str, int] = {}
        self._lock = threading.Lock()
        self._n = 0
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                buffer = b""
                while True:
                    try:
                        chunk = self.request.recv(256)
                    except OSError:
                        return
                    if not chunk:
                        return
                    buffer += chunk
                    while len(buffer) >= 8:
                        frame, buffer = buffer[:8], buffer[8:]
                        if crc16_modbus(frame[:6]) != frame[6:]:
                            buffer = b""
                            break
                        reply = outer.reply(frame)
                        if reply:
                            self.request.sendall(reply)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def reply(self, request: bytes) -> bytes:
        with self._lock:
            kind = self.script[self._n % len(self.script)]
            self._n += 1
            self.answered[kind] = self.answered.get(kind, 0) + 1
        unit, function = request[0], request[1]
        value = self.value if kind == "good" else self.SENTINEL
        body = bytes([unit, function, 2]) + value.to_bytes(2, "big")
        if kind == "silent":
            return b""
        if kind == "other_unit":
            body = bytes([unit + 1]) + body[1:]
        if kind == "long":
            body = bytes([unit, function, 4]) + value.to_bytes(2, "big") * 2
        frame = body + crc16_modbus(body)
        if kind == "bad_crc":
            frame = frame[:-1] + bytes([frame[-1] ^ 0xFF])
        return frame

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
