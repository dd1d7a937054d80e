"""Helpers shared by the benchmarks: ports, mosquitto, process sampling from /proc, sockets' byte counters.

Everything stays on 127.0.0.1, and every wait is bounded in time.
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import statistics
import subprocess
import threading
import time
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(n: int) -> list[int]:
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def wait_port(port: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def stop(proc: subprocess.Popen | None, timeout: float = 10.0, sig=signal.SIGTERM) -> int | None:
    """Stops one process we started (by its pid), escalating to SIGKILL after the timeout."""
    if proc is None or proc.poll() is not None:
        return None if proc is None else proc.returncode
    try:
        proc.send_signal(sig)
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(5)


class Mosquitto:
    """A private mosquitto on a free loopback port, with unlimited in-flight and queued messages.

    TCP_NODELAY on its client sockets (`set_tcp_nodelay true`; BENCH_BROKER_NODELAY=0 turns it off): with Nagle's
    algorithm on, the broker held the rest of each second's burst of messages to the bench subscriber (which
    subscribes with QoS 0 and so sends nothing back) behind the delayed ACK of the first, about 40 ms, in one
    second in four to ten. That was the bench's subscriber path, not the gateway's, and it made the p99 latency.
    """

    def __init__(self, workdir: Path, port: int | None = None, nodelay: bool | None = None):
        self.workdir = workdir
        self.port = port or free_port()
        self.nodelay = nodelay if nodelay is not None else os.environ.get("BENCH_BROKER_NODELAY", "1") != "0"
        self.proc: subprocess.Popen | None = None

    def settings(self) -> list[str]:
        """The broker's settings besides its listener, as written in its configuration file."""
        return (["allow_anonymous true", "persistence false", "max_inflight_messages 0", "max_queued_messages 0",
                 "log_type error"] + (["set_tcp_nodelay true"] if self.nodelay else []))

    def start(self) -> "Mosquitto":
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\n" + "".join(line + "\n" for line in self.settings()))
        log = open(self.workdir / "mosquitto.log", "w")
        self.proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
        if not wait_port(self.port):
            raise RuntimeError(f"mosquitto did not listen on {self.port}; see {self.workdir}/mosquitto.log")
        return self

    def stop(self) -> None:
        stop(self.proc)
        self.proc = None


def descendants(pid: int) -> list[int]:
    """pid and every live descendant (from /proc/*/stat ppid)."""
    parent: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                data = f.read()
        except OSError:
            continue
        ppid = int(data[data.rindex(")") + 2:].split()[1])
        parent.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo and len(out) < 10000:
        p = todo.pop()
        out.append(p)
        todo.extend(parent.get(p, []))
    return out


def cpu_seconds(pid: int, include_reaped_children: bool = True) -> float:
    """utime+stime (+ cutime+cstime of children already reaped) of one process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    fields = data[data.rindex(")") + 2:].split()
    # fields[0] is state (field 3); utime is field 14 -> index 11
    ticks = int(fields[11]) + int(fields[12])
    if include_reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLK_TCK


def status_kb(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def io_counters(pid: int) -> dict[str, int]:
    out = {}
    try:
        with open(f"/proc/{pid}/io") as f:
            for line in f:
                k, v = line.split(":")
                out[k.strip()] = int(v)
    except OSError:
        pass
    return out


class ProcTree:
    """CPU, RSS and write_bytes of a process and (optionally) its descendants, sampled on a thread."""

    def __init__(self, pid: int, children: bool = True, interval: float = 0.5):
        self.pid = pid
        self.children = children
        self.interval = interval
        self.samples: list[tuple[float, float, int, int]] = []  # (monotonic, cpu s, rss kB, write_bytes)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._dead_cpu: dict[int, float] = {}

    def snapshot(self) -> tuple[float, float, int, int] | None:
        pids = descendants(self.pid) if self.children else [self.pid]
        cpu, rss, wb = 0.0, 0, 0
        alive = False
        for p in pids:
            try:
                c = cpu_seconds(p)
                r = status_kb(p, "VmRSS")
                w = io_counters(p).get("write_bytes", 0)
            except (OSError, ValueError, IndexError):
                continue
            if p == self.pid:
                alive = True
            # A child that exits unreaped loses its counters; remember the last value seen.
            self._dead_cpu[p] = c
            cpu += c
            rss += r
            wb += w
        if not alive:
            return None
        gone = sum(v for p, v in self._dead_cpu.items() if p not in pids)
        return (time.monotonic(), cpu + gone, rss, wb)

    def _run(self) -> None:
        deadline = time.monotonic() + 4 * 3600
        while not self._stop.is_set() and time.monotonic() < deadline:
            s = self.snapshot()
            if s is None:
                break
            self.samples.append(s)
            self._stop.wait(self.interval)

    def start(self) -> "ProcTree":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def window(self, t0: float, t1: float) -> list[tuple[float, float, int, int]]:
        return [s for s in self.samples if t0 <= s[0] <= t1]


def wire_bytes_to(port: int, pids: set[int]) -> int | None:
    """Bytes the given processes sent on TCP connections to 127.0.0.1:port (from `ss -tinp`), or None."""
    try:
        out = subprocess.run(["ss", "-tinpH", "dst", f"127.0.0.1:{port}"], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    total, matched = 0, False
    blocks = re.split(r"\n(?=\S)", out)
    for block in blocks:
        owners = {int(p) for p in re.findall(r"pid=(\d+)", block)}
        if not owners & pids:
            continue
        m = re.search(r"bytes_sent:(\d+)", block)
        if m:
            total += int(m.group(1))
            matched = True
    return total if matched else None


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def median(values):
    return statistics.median(values) if values else None


def log_time(log: Path, text: str) -> float | None:
    """The time (Unix seconds) of the first line of a pantau log that contains `text`, or None."""
    import datetime
    try:
        for line in log.read_text(errors="replace").splitlines():
            if text in line:
                stamp = line.split(" ", 1)[0].replace("Z", "+00:00")
                return datetime.datetime.fromisoformat(stamp).timestamp()
    except (OSError, ValueError):
        return None
    return None


def status_json(sock: Path) -> dict | None:
    """The gateway's status snapshot from its unix socket (`pantau status` reads the same), or None."""
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(1)
            s.connect(str(sock))
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        return json.loads(data)
    except (OSError, ValueError):
        return None


def journal_kinds(path: Path) -> dict[str, int] | None:
    """Rows in Pantau's journal by message kind (Sources/PantauCore/OutboundMessage.swift), or None if unknown."""
    names = {0: "alert", 1: "status", 2: "aggregate", 3: "telemetry"}
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)
        try:
            rows = con.execute("SELECT kind, count(*) FROM records GROUP BY kind").fetchall()
        finally:
            con.close()
    except sqlite3.Error:
        return None
    return {names.get(kind, str(kind)): n for kind, n in rows}


def journal_depth(path: Path) -> int | None:
    """Rows waiting in Pantau's journal, read with a read-only SQLite connection, or None if unknown."""
    if not path.exists():
        return None
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)
    except sqlite3.Error:
        return None
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        # Pantau's schema (Sources/PantauJournal/JournalSchema.swift): pending records live in `records` and are
        # deleted once acknowledged; while a backlog drains, acknowledged rows stay until it is over, listed as
        # ranges in `acked`, and are not pending.
        if "records" in tables and "acked" in tables:
            return int(con.execute("SELECT count(*) FROM records WHERE NOT EXISTS "
                                   "(SELECT 1 FROM acked WHERE seq BETWEEN lo AND hi)").fetchone()[0])
        preferred = ["records"] if "records" in tables else [
            t for t in tables if re.search(r"journal|record|outbox|message|queue", t, re.I)]
        for t in preferred or tables:
            if t.startswith("sqlite_"):
                continue
            return int(con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0])
    except sqlite3.Error:
        return None
    finally:
        con.close()
    return None


def read_json(path: Path, default=None):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return default
