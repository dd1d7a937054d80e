"""`pantau simulate` as a test device: shipped (or test) profiles served as units of one Modbus TCP server."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence

from .gateway import binary_path
from .procs import kill, terminate, wait_until

SERVING = re.compile(r"serving Modbus TCP on [0-9.]+:(\d+)")


class Simulator:
    """`pantau simulate --tcp-port 0` serving several profiles as units of one Modbus TCP server."""

    def __init__(self, workdir: str, profiles: Sequence[str], args: Sequence[str] = ()):
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.log_path = os.path.join(workdir, "simulate.log")
        self.argv = [binary_path(), "simulate", "--tcp-port", "0"]
        for p in profiles:
            self.argv += ["--profile", p]
        self.argv += list(args)
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None

    def start(self, timeout: float = 15.0) -> "Simulator":
        out_path = os.path.join(self.workdir, "simulate.out")
        out = open(out_path, "wb")
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=log)
        out.close()
        log.close()

        def port_printed() -> bool:
            with open(out_path, encoding="utf-8", errors="replace") as f:
                m = SERVING.search(f.read())
            if m:
                self.port = int(m.group(1))
            return self.port is not None or self.proc.poll() is not None

        wait_until(port_printed, timeout)
        if self.port is None:
            self.kill()
            raise RuntimeError(f"pantau simulate did not start: {self.argv}\n{self.logs()[-2000:]}")
        return self

    def kill(self) -> None:
        kill(self.proc)

    def logs(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        terminate(self.proc, grace=5)
