#!/usr/bin/env python3
"""A timing-faithful fake Modbus RTU slave on one end of a socat pty pair.

A pty delivers bytes instantly whatever the baud rate, so this slave models the serial line itself: a request
counts as having started when its first byte arrives; the reply is written only after the request's own transmit
time, the t3.5 silence and the reply's transmit time at the configured baud and bits per character. The master's
t3.5 silence before its next request is then the master's business, and a request that arrives sooner than t3.5
after the previous reply ended is counted as a gap violation (a real bus would have merged the frames).

Answers FC 01/02 (bits) and 03/04 (registers) for any unit id in --units with plausible constant values; other
function codes get exception 01. Logs every transaction to --log as JSON lines
{"unit", "fc", "count", "t_start", "t_end", "gap_violation"} with times in seconds (monotonic).

Usage: fake_rtu.py --port /tmp/ptyB --baud 9600 --bits 11 --units 1-11 --log FILE [--max-seconds S]
"""
import argparse
import json
import os
import select
import sys
import termios
import time
import tty


def crc16(data: bytes) -> int:
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def with_crc(frame: bytes) -> bytes:
    c = crc16(frame)
    return frame + bytes([c & 0xFF, c >> 8])


def parse_units(spec: str) -> set[int]:
    out = set()
    for part in spec.split(","):
        if "-" in part:
            a, b = part.split("-")
            out.update(range(int(a), int(b) + 1))
        elif part:
            out.add(int(part))
    return out


def request_length(buf: bytes) -> int | None:
    """Expected length of the request at the start of buf, or None if not yet known."""
    if len(buf) < 2:
        return None
    fc = buf[1]
    if fc in (1, 2, 3, 4, 5, 6):
        return 8
    if fc in (15, 16):
        return 9 + buf[6] if len(buf) >= 7 else None
    return 4  # unknown: unit, fc, crc


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", required=True)
    ap.add_argument("--baud", type=int, default=9600)
    ap.add_argument("--bits", type=int, default=11, help="bits per character: 11 for 8E1/8N2, 10 for 8N1")
    ap.add_argument("--units", default="1-247")
    ap.add_argument("--log", required=True)
    ap.add_argument("--max-seconds", type=float, default=600)
    args = ap.parse_args()
    t_char = args.bits / args.baud
    t35 = 3.5 * t_char if args.baud <= 19200 else 0.00175
    units = parse_units(args.units)

    fd = os.open(args.port, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    attrs = termios.tcgetattr(fd)
    attrs[3] &= ~termios.ECHO
    termios.tcsetattr(fd, termios.TCSANOW, attrs)
    log = open(args.log, "w", buffering=1)
    print("ready", flush=True)

    deadline = time.monotonic() + args.max_seconds
    buf = b""
    t_first = None
    last_end = None
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.2)
        if not r:
            if buf and t_first is not None and time.monotonic() - t_first > 0.5:
                buf, t_first = b"", None  # a stray fragment: drop it, as a slave does after a silence
            continue
        chunk = os.read(fd, 512)
        if not chunk:
            break
        if not buf:
            t_first = time.monotonic()
        buf += chunk
        while True:
            n = request_length(buf)
            if n is None or len(buf) < n:
                break
            frame, buf = buf[:n], buf[n:]
            t_start = t_first
            t_first = time.monotonic() if buf else None
            if crc16(frame[:-2]) != (frame[-2] | frame[-1] << 8):
                continue
            unit, fc = frame[0], frame[1]
            if unit not in units:
                continue
            count = int.from_bytes(frame[4:6], "big") if n == 8 else 0
            if fc in (3, 4) and 1 <= count <= 125:
                reply = bytes([unit, fc, 2 * count]) + b"".join(
                    ((100 + i) & 0xFFFF).to_bytes(2, "big") for i in range(count))
            elif fc in (1, 2) and 1 <= count <= 2000:
                nbytes = (count + 7) // 8
                reply = bytes([unit, fc, nbytes]) + bytes(nbytes)
            elif fc in (5, 6):
                reply = frame[:6]
            else:
                reply = bytes([unit, fc | 0x80, 1])
            reply = with_crc(reply)
            gap_violation = last_end is not None and t_start - last_end < t35 * 0.9
            # request on the wire, t3.5 silence, reply on the wire
            t_reply_done = t_start + n * t_char + t35 + len(reply) * t_char
            delay = t_reply_done - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            os.write(fd, reply)
            last_end = time.monotonic()
            log.write(json.dumps({"unit": unit, "fc": fc, "count": count, "request_bytes": n,
                                  "reply_bytes": len(reply), "t_start": t_start, "t_end": last_end,
                                  "gap_violation": gap_violation}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
