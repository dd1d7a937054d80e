"""Launchers for simulated Modbus devices (pymodbus in a subprocess) and the socat pty pair for RTU."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
from collections.abc import Mapping

from .procs import free_port, harness_root, kill, port_open, terminate, wait_until

# table -> {protocol address: raw value}; tables: holding, input, coil, discrete.
RegisterSpec = Mapping[str, Mapping[int, int]]

STARTUP_TIMEOUT = 15.0


class ModbusDevice:
    """A pymodbus server process serving some unit ids; ids not served stay silent."""

    def __init__(self, workdir: str, units: Mapping[int, RegisterSpec], name: str):
        self.workdir = workdir
        self.units = dict(units)
        self.name = name
        self.proc: subprocess.Popen | None = None
        self.log_path = os.path.join(workdir, f"{name}.log")

    def _unit_args(self) -> list[str]:
        args = []
        for unit, spec in self.units.items():
            path = os.path.join(self.workdir, f"{self.name}-unit{unit}.json")
            with open(path, "w", encoding="utf-8") as f:
                json.dump({t: {str(a): v for a, v in regs.items()} for t, regs in spec.items()}, f)
            args += ["--unit", f"{unit}:{path}"]
        return args

    def _where_args(self) -> list[str]:
        raise NotImplementedError

    def _ready(self) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        env = dict(os.environ, PYTHONPATH=harness_root() + os.pathsep + os.environ.get("PYTHONPATH", ""))
        cmd = [sys.executable, "-m", "pantau_harness.device", *self._where_args(), *self._unit_args()]
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, env=env, cwd=self.workdir)
        log.close()
        line = _readline_with_timeout(self.proc, STARTUP_TIMEOUT)
        if line.strip() != b"READY" or not wait_until(self._ready, STARTUP_TIMEOUT):
            self.kill()
            raise RuntimeError(f"{self.name} did not start: {self.logs()[-2000:]}")

    def stop(self) -> None:
        terminate(self.proc, grace=3)

    def kill(self) -> None:
        kill(self.proc)

    def logs(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""


class TcpDevice(ModbusDevice):
    """Modbus TCP on 127.0.0.1:`port`."""

    def __init__(self, workdir: str, units: Mapping[int, RegisterSpec], name: str = "tcp-device"):
        super().__init__(workdir, units, name)
        self.host = "127.0.0.1"
        self.port = free_port()

    def _where_args(self) -> list[str]:
        return ["--tcp", str(self.port), "--host", self.host]

    def _ready(self) -> bool:
        return port_open(self.port)


class RtuDevice(ModbusDevice):
    """Modbus RTU (9600 8N1 by default) on the device end of a pty pair; the gateway uses `pair.gateway_path`."""

    def __init__(
        self, workdir: str, units: Mapping[int, RegisterSpec], pair: "PtyPair", baud: int = 9600,
        parity: str = "N", name: str = "rtu-device",
    ):
        super().__init__(workdir, units, name)
        self.pair = pair
        self.baud = baud
        self.parity = parity

    @property
    def gateway_path(self) -> str:
        return self.pair.gateway_path

    def _where_args(self) -> list[str]:
        return ["--rtu", self.pair.device_path, "--baud", str(self.baud), "--parity", self.parity]

    def _ready(self) -> bool:
        return True  # no port to probe: the READY line means pymodbus holds the pty


class PtyPair:
    """`socat` joining two ptys: `gateway_path` (DIR/gw) for the master, `device_path` (DIR/dev) for pymodbus."""

    def __init__(self, workdir: str):
        self.workdir = workdir
        self.gateway_path = os.path.join(workdir, "gw")
        self.device_path = os.path.join(workdir, "dev")
        self.log_path = os.path.join(workdir, "socat.log")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [
                "socat", "-d", "-d",
                f"PTY,raw,echo=0,link={self.gateway_path}",
                f"PTY,raw,echo=0,link={self.device_path}",
            ],
            stdout=subprocess.DEVNULL, stderr=log,
        )
        log.close()
        if not wait_until(self._linked, STARTUP_TIMEOUT):
            self.stop()
            raise RuntimeError("socat did not create the pty pair")
        # socat logs "starting data transfer loop" once both ends are open; before that, bytes may be lost.
        wait_until(self._transferring, 5)

    def _linked(self) -> bool:
        return os.path.exists(self.gateway_path) and os.path.exists(self.device_path)

    def _transferring(self) -> bool:
        with open(self.log_path, "rb") as f:
            return b"starting data transfer loop" in f.read()

    def stop(self) -> None:
        terminate(self.proc, grace=3)


def _readline_with_timeout(proc: subprocess.Popen, timeout: float) -> bytes:
    """The first stdout line of `proc`, or b"" if it exits or stays quiet past `timeout`."""
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    buf = b""
    try:
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                return buf
            chunk = os.read(proc.stdout.fileno(), 256)
            if not chunk:
                return buf
            buf += chunk
        return buf.split(b"\n", 1)[0]
    finally:
        sel.close()
