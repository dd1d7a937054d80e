"""SDI-12 v1.4 sensors emulated in Python on one end of a socat pty pair (independent of the gateway's Swift code).

    python -m pantau_harness.sdi12_sensor --tty DIR/dev --sensor 0:1.234,25.1 [--sensor 1:7,8,9] \
        [--ttt 1] [--per-line 2] [--faults 2:crc,4:truncate]

Answers `?!` (first address), `a!`, `aI!`, `aM!`/`aMC!` (`atttn`, then the service request `a<CR><LF>` after ttt
seconds), `aC!`/`aCC!` (`atttnn`, no service request), and `aD0!`...`aD9!` with up to --per-line values each
(`a+1.234+25.1`), followed after a C variant by the 3-character CRC-16/ARC (0x40 | 6-bit groups). Addresses not
served stay silent. The line is 1200 baud 7E1 (a pty ignores the rate; a break is not observable on a pty, so it is
not required here).

--faults N:KIND spoils the N-th data response sent (1-based): `crc` (the CRC's last character changed; values are
the sentinel 999) or `truncate` (half the response, no CR LF). Each data response is logged to stderr as
`data N ok|crc|truncate`. Prints "READY" once the tty is open.
"""

from __future__ import annotations

import argparse
import os
import select
import sys
import termios
import time
import tty

SENTINEL = 999


def crc16_arc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def crc_chars(data: bytes) -> bytes:
    crc = crc16_arc(data)
    return bytes([0x40 | (crc >> 12), 0x40 | ((crc >> 6) & 0x3F), 0x40 | (crc & 0x3F)])


def fmt(value: float) -> str:
    text = f"{value:+.3f}".rstrip("0").rstrip(".")
    return text if text not in ("+", "-") else "+0"


class Sensors:
    def __init__(self, sensors: dict[str, list[float]], ttt: int, per_line: int, faults: dict[int, str]):
        self.sensors = sensors
        self.ttt = ttt
        self.per_line = per_line
        self.faults = faults
        self.crc = {a: False for a in sensors}
        self.data_sent = 0
        self.pending_service: list[tuple[float, bytes]] = []

    def handle(self, command: str) -> bytes:
        if command == "?!":
            return (next(iter(self.sensors)) + "\r\n").encode()
        address, body = command[0], command[1:-1]
        if address not in self.sensors:
            return b""
        values = self.sensors[address]
        if body == "":
            return f"{address}\r\n".encode()
        if body == "I":
            return f"{address}14PANTAUEMSDI12E01000001\r\n".encode()
        if body in ("M", "MC"):
            self.crc[address] = body == "MC"
            if self.ttt > 0:
                self.pending_service.append((time.monotonic() + self.ttt, f"{address}\r\n".encode()))
            return f"{address}{self.ttt:03d}{len(values)}\r\n".encode()
        if body in ("C", "CC"):
            self.crc[address] = body == "CC"
            return f"{address}{self.ttt:03d}{len(values):02d}\r\n".encode()
        if len(body) == 2 and body[0] == "D" and body[1].isdigit():
            index = int(body[1])
            chunk = values[index * self.per_line:(index + 1) * self.per_line]
            self.data_sent += 1
            fault = self.faults.get(self.data_sent, "ok")
            if fault == "crc":
                chunk = [SENTINEL] * len(chunk)
            line = (address + "".join(fmt(v) for v in chunk)).encode()
            if self.crc[address]:
                tail = crc_chars(line)
                if fault == "crc":
                    tail = tail[:2] + bytes([0x40 | ((tail[2] + 1) & 0x3F)])
                line += tail
            print(f"data {self.data_sent} {fault}", file=sys.stderr, flush=True)
            if fault == "truncate":
                return line[: max(1, len(line) // 2)]
            return line + b"\r\n"
        return b""


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="pantau_harness.sdi12_sensor")
    p.add_argument("--tty", required=True)
    p.add_argument("--sensor", action="append", required=True, metavar="ADDRESS:V1,V2,...")
    p.add_argument("--ttt", type=int, default=0)
    p.add_argument("--per-line", type=int, default=3)
    p.add_argument("--faults", default="")
    args = p.parse_args(argv)
    sensors = {}
    for item in args.sensor:
        address, _, values = item.partition(":")
        sensors[address] = [float(v) for v in values.split(",")]
    faults = {}
    for item in filter(None, args.faults.split(",")):
        n, _, kind = item.partition(":")
        faults[int(n)] = kind
    state = Sensors(sensors, args.ttt, args.per_line, faults)
    fd = os.open(args.tty, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    attrs = termios.tcgetattr(fd)
    attrs[2] = (attrs[2] & ~termios.CSIZE) | termios.CS7 | termios.PARENB
    attrs[4] = attrs[5] = termios.B1200
    termios.tcsetattr(fd, termios.TCSANOW, attrs)
    print("READY", flush=True)
    received = b""
    while True:
        now = time.monotonic()
        for due, line in [x for x in state.pending_service if x[0] <= now]:
            state.pending_service.remove((due, line))
            os.write(fd, line)
        ready, _, _ = select.select([fd], [], [], 0.05)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 128)
        except OSError:
            return
        received += bytes(b & 0x7F for b in chunk)
        while b"!" in received:
            command, _, received = received.partition(b"!")
            text = command.decode("ascii", "replace").lstrip("\x00") + "!"
            reply = state.handle(text)
            if reply:
                os.write(fd, reply)


if __name__ == "__main__":
    main()
