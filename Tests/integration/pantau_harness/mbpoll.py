"""Reads through Debian's mbpoll (libmodbus): an implementation independent of both pymodbus and the gateway."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

MBPOLL = "/usr/bin/mbpoll"
VALUE_LINE = re.compile(r"^\[(\d+)\]:\s+(-?[0-9.eE+-]+)")
TYPES = {"holding": "4", "input": "3", "coil": "0", "discrete": "1"}


@dataclass
class MbpollResult:
    returncode: int
    values: dict[int, float]
    output: str


def read(
    target: list[str], unit: int, table: str, address: int, count: int, timeout_s: float = 1.0,
    kind: str | None = None, big_endian_words: bool = False,
) -> MbpollResult:
    """Reads `count` items from 0-based protocol `address` (mbpoll -0), returning {address: value}.

    `kind` "int" or "float" asks mbpoll to combine two registers itself (low word first, or high word first with
    `big_endian_words`): libmodbus's decoding, a second opinion on the harness's own struct encoding.

    `target` is the transport part of the command line, e.g. ["-m", "tcp", "-p", "5020", "127.0.0.1"] or
    ["-m", "rtu", "-b", "9600", "-P", "none", "/tmp/x/gw"].
    """
    cmd = [
        MBPOLL, *target[:-1], "-a", str(unit), "-0", "-r", str(address), "-c", str(count),
        "-t", TYPES[table] + (f":{kind}" if kind else ""), *(["-B"] if big_endian_words else []),
        "-o", f"{timeout_s:.2f}", "-1", target[-1],
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s + 10)
    values = {}
    for line in done.stdout.splitlines():
        m = VALUE_LINE.match(line.strip())
        if m:
            # mbpoll prints "65535 (-1)" for holding registers: the first number is the raw word.
            text = m.group(2)
            values[int(m.group(1))] = float(text) if kind == "float" else int(text)
    return MbpollResult(done.returncode, values, done.stdout + done.stderr)


def tcp_target(port: int, host: str = "127.0.0.1") -> list[str]:
    return ["-m", "tcp", "-p", str(port), host]


def rtu_target(path: str, baud: int = 9600, parity: str = "none") -> list[str]:
    return ["-m", "rtu", "-b", str(baud), "-P", parity, "-s", "1", "-d", "8", path]
