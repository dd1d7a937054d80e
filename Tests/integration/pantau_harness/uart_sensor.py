"""Framed UART particle sensors emulated in Python on one end of a socat pty pair, written from the datasheets
independently of the gateway's Swift code (frames built with `struct`, checksums summed here).

    python -m pantau_harness.uart_sensor --model pms5003 --tty DIR/dev --values pm2_5=13,pm10=22 \
        [--mode passive|active] [--period 0.3] [--faults 2:checksum,4:truncate]

Models:
- `pms5003` / `pms7003` (Plantower): 32-byte frame 42 4D, length 28 (big endian), 13 big-endian data words,
  16-bit sum of bytes 0..29 at 30..31. Passive mode answers `42 4D E2 00 00 01 71` with one frame; the mode command
  `42 4D E1 00 00 01 70` is answered `42 4D 00 04 E1 00 01 74`. Active mode streams a frame every --period s.
- `sds011` (Nova): 10-byte frame AA C0 PM2.5 (lo, hi) PM10 (lo, hi) ID1 ID2 CS AB, values x10, CS = sum of bytes
  2..7 mod 256. Answers the 19-byte query-data command (AA B4 04 ... FF FF 02 AB); the set-mode command gets an
  AA C5 reply.

--faults N:KIND makes the N-th frame sent (1-based) bad: `checksum` (the checksum is off by one, and the PM values
are the sentinel 999 so a decoded bad frame would show) or `truncate` (only the first half of the frame, then
nothing until the next request). Each frame sent is logged to stderr as `sent N ok|checksum|truncate`.
Prints "READY" once the tty is open.
"""

from __future__ import annotations

import argparse
import os
import select
import struct
import sys
import termios
import time
import tty

PMS_QUERY = bytes.fromhex("424DE200000171")
PMS_MODE_PASSIVE = bytes.fromhex("424DE100000170")
PMS_MODE_REPLY = bytes.fromhex("424D0004E1000174")
SDS_QUERY = bytes.fromhex("AAB404000000000000000000000000FFFF02AB")
SDS_SET_QUERY_MODE = bytes.fromhex("AAB402010100000000000000000000FFFF02AB")
SENTINEL = 999

PMS_FIELDS = ("pm1_cf1", "pm2_5_cf1", "pm10_cf1", "pm1", "pm2_5", "pm10", "count_0_3um", "count_0_5um",
              "count_1_0um", "count_2_5um", "count_5_0um", "count_10um", "reserved")


def pms_frame(values: dict[str, float], bad_checksum: bool = False) -> bytes:
    words = [int(values.get(name, 0)) for name in PMS_FIELDS]
    if bad_checksum:
        words[3:6] = [SENTINEL] * 3
    body = b"\x42\x4d" + struct.pack(">H", 28) + struct.pack(">13H", *words)
    checksum = sum(body) & 0xFFFF
    if bad_checksum:
        checksum = (checksum + 1) & 0xFFFF
    return body + struct.pack(">H", checksum)


def sds_frame(values: dict[str, float], bad_checksum: bool = False) -> bytes:
    pm25 = SENTINEL * 10 if bad_checksum else round(values.get("pm2_5", 0) * 10)
    pm10 = SENTINEL * 10 if bad_checksum else round(values.get("pm10", 0) * 10)
    data = struct.pack("<HH", pm25, pm10) + bytes([0xA1, 0x60])
    checksum = sum(data) & 0xFF
    if bad_checksum:
        checksum = (checksum + 1) & 0xFF
    return b"\xaa\xc0" + data + bytes([checksum, 0xAB])


class Sensor:
    def __init__(self, model: str, values: dict[str, float], faults: dict[int, str]):
        self.model = model
        self.values = values
        self.faults = faults
        self.sent = 0

    def frame(self) -> bytes:
        self.sent += 1
        fault = self.faults.get(self.sent, "ok")
        build = sds_frame if self.model == "sds011" else pms_frame
        frame = build(self.values, bad_checksum=fault == "checksum")
        if fault == "truncate":
            frame = frame[: len(frame) // 2]
        print(f"sent {self.sent} {fault}", file=sys.stderr, flush=True)
        return frame

    def answer(self, received: bytearray) -> bytes:
        """Replies to every whole command in `received` (consumed)."""
        out = b""
        commands = [(SDS_QUERY, None), (SDS_SET_QUERY_MODE, "set")] if self.model == "sds011" else [
            (PMS_QUERY, None), (PMS_MODE_PASSIVE, "mode")]
        while True:
            hits = [(received.find(c), c, kind) for c, kind in commands if received.find(c) >= 0]
            if not hits:
                break
            at, command, kind = min(hits)
            del received[: at + len(command)]
            if kind is None:
                out += self.frame()
            elif kind == "mode":
                out += PMS_MODE_REPLY
            else:
                data = bytes([0x02, 0x01, 0x01, 0x00, 0xA1, 0x60])
                out += b"\xaa\xc5" + data + bytes([sum(data) & 0xFF, 0xAB])
        if len(received) > 256:
            del received[:-64]
        return out


def parse_values(text: str) -> dict[str, float]:
    out = {}
    for item in filter(None, text.split(",")):
        name, _, value = item.partition("=")
        out[name.strip()] = float(value)
    return out


def parse_faults(text: str) -> dict[int, str]:
    out = {}
    for item in filter(None, text.split(",")):
        n, _, kind = item.partition(":")
        if kind not in ("checksum", "truncate"):
            raise SystemExit(f"unknown fault {kind!r}")
        out[int(n)] = kind
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="pantau_harness.uart_sensor")
    p.add_argument("--model", required=True, choices=["pms5003", "pms7003", "sds011"])
    p.add_argument("--tty", required=True)
    p.add_argument("--mode", default="passive", choices=["passive", "active"])
    p.add_argument("--period", type=float, default=0.3)
    p.add_argument("--values", default="")
    p.add_argument("--faults", default="")
    args = p.parse_args(argv)
    sensor = Sensor(args.model, parse_values(args.values), parse_faults(args.faults))
    fd = os.open(args.tty, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    attrs = termios.tcgetattr(fd)
    attrs[4] = attrs[5] = termios.B9600
    termios.tcsetattr(fd, termios.TCSANOW, attrs)
    print("READY", flush=True)
    received = bytearray()
    next_send = time.monotonic()
    while True:
        timeout = 0.1
        if args.mode == "active":
            now = time.monotonic()
            if now >= next_send:
                os.write(fd, sensor.frame())
                next_send = now + args.period
            timeout = max(0.0, min(0.1, next_send - time.monotonic()))
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 256)
        except OSError:
            return  # the other end of the pty pair went away
        received += chunk
        if args.mode == "passive":
            reply = sensor.answer(received)
            if reply:
                os.write(fd, reply)
        else:
            received.clear()


if __name__ == "__main__":
    main()
