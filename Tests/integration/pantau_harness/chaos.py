"""Helpers for the chaos tests: simulated fleets, a crash-tolerant broker, journal and status probes, seq ledgers."""

from __future__ import annotations

import json
import os
import queue
import re
import socket
import sqlite3
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .broker import MosquittoBroker
from .collector import Received
from .config import gateway_yaml
from .gateway import binary_path
from .procs import kill, wait_until
from .simulate import Simulator  # noqa: F401  (the chaos tests import it from here)

class CrashSafeBroker(MosquittoBroker):
    """A persistent mosquitto that also saves its store every second, so a SIGKILL loses at most the last second.

    `MosquittoBroker(persistent=True)` saves only on a clean exit: after a SIGKILL the persistent collector's
    session (and its subscription) would be gone, and whatever the gateway published before the collector came
    back would be lost by the broker, not by the gateway. With a periodic save the session survives any kill that
    comes at least a second after the collector subscribed.
    """

    def __init__(self, workdir: str):
        super().__init__(workdir, persistent=True)

    def _write_conf(self) -> None:
        super()._write_conf()
        with open(self.conf_path, encoding="utf-8") as f:
            text = f.read()
        text = text.replace("autosave_interval 0", "autosave_interval 1")
        with open(self.conf_path, "w", encoding="utf-8") as f:
            f.write(text)


def chaos_config(
    *, broker_port: int, workdir: str, buses, devices, status_socket: str, profiles: Sequence[str] | None = None,
    journal: dict[str, str] | None = None, reconnect_max: str = "1s",
) -> str:
    """The harness config with a short reconnect backoff and the given journal settings."""
    text = gateway_yaml(
        broker_port=broker_port, workdir=workdir, buses=buses, devices=devices, status_socket=status_socket,
        profiles=profiles,
    )
    backoff = f"  reconnect_min: 100ms\n  reconnect_max: {reconnect_max}\n"
    text = text.replace("  keepalive: 10\n", "  keepalive: 10\n" + backoff)
    if journal is not None:
        journal = {"path": os.path.join(workdir, "journal.sqlite"), "commit_interval": "100ms", **journal}
        body = ", ".join(f"{k}: {v}" for k, v in journal.items())
        text = re.sub(r"^journal: .*$", "journal: {" + body + "}", text, count=1, flags=re.M)
    return text


def journal_path(workdir: str) -> str:
    return os.path.join(workdir, "journal.sqlite")


def _run_json(argv: list[str], timeout: float = 20.0):
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()[-1000:]}")
    return json.loads(done.stdout)


def journal_stats(path: str) -> dict:
    """`pantau journal stats --path FILE --json` (works while the gateway runs and while it is stopped)."""
    return _run_json([binary_path(), "journal", "stats", "--path", path, "--json"])


def journal_export(path: str, kind: str | None = None) -> list[dict]:
    """The pending records as `pantau journal export --format jsonl` prints them (seq, kind, device, ...)."""
    argv = [binary_path(), "journal", "export", "--path", path, "--format", "jsonl"]
    if kind:
        argv += ["--kind", kind]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(f"journal export exited {done.returncode}: {done.stderr.strip()[-1000:]}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def status(socket_path: str, timeout: float = 10.0) -> dict:
    """`pantau status --socket S --json`: the health message's content, answered by the running gateway."""
    return _run_json([binary_path(), "status", "--socket", socket_path, "--json"], timeout=timeout)


def try_status(socket_path: str) -> dict | None:
    try:
        return status(socket_path)
    except (RuntimeError, ValueError, subprocess.TimeoutExpired):
        return None


def integrity_check(path: str) -> list[str]:
    """`PRAGMA integrity_check` on a read-only connection (the gateway must be stopped)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return [row[0] for row in db.execute("PRAGMA integrity_check").fetchall()]
    finally:
        db.close()


class ExportSampler:
    """Samples `pantau journal export` in a thread: seq -> (kind, device, acquired_at) for every record seen pending.

    A record dropped by a bound is never received, so this is how the test learns which device it belonged to.
    """

    def __init__(self, path: str, interval: float = 0.5):
        self.path = path
        self.interval = interval
        self.seen: dict[int, tuple[str, str | None, int]] = {}
        self.samples = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "ExportSampler":
        self._thread.start()
        return self

    def sample(self) -> None:
        try:
            rows = journal_export(self.path)
        except (RuntimeError, ValueError, subprocess.TimeoutExpired) as e:
            self.errors.append(str(e))
            return
        for r in rows:
            self.seen.setdefault(int(r["seq"]), (r["kind"], r.get("device"), int(r["acquired_at"])))
        self.samples += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


@dataclass
class Ledger:
    """What a subscriber received, by seq: the first copy of each seq, duplicates counted and compared."""

    first: dict[int, Received] = field(default_factory=dict)
    order: list[Received] = field(default_factory=list)
    duplicates: int = 0
    conflicts: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, messages: Iterable[Received]) -> "Ledger":
        ledger = cls()
        for m in messages:
            try:
                seq = m.seq
            except ValueError:
                continue
            if seq is None:
                continue
            if seq in ledger.first:
                ledger.duplicates += 1
                if not same_record(ledger.first[seq], m):
                    ledger.conflicts.append(
                        f"seq {seq} reused: {ledger.first[seq].topic} {strip(ledger.first[seq])[:200]} "
                        f"vs {m.topic} {strip(m)[:200]}"
                    )
                continue
            ledger.first[seq] = m
            ledger.order.append(m)
        return ledger

    @property
    def seqs(self) -> set[int]:
        return set(self.first)

    def missing(self, upto: int, start: int = 1) -> list[int]:
        return [s for s in range(start, upto + 1) if s not in self.first]


def strip(m: Received) -> str:
    """The body without the send-time fields (seq, hist), for comparing two copies of one record."""
    body = m.json()
    first = body[0] if isinstance(body, list) and body else body
    if isinstance(first, dict):
        first = {k: v for k, v in first.items() if k not in ("seq", "hist")}
        body = [first, *body[1:]] if isinstance(body, list) else first
    return json.dumps(body, sort_keys=True)


def same_record(a: Received, b: Received) -> bool:
    return a.topic == b.topic and strip(a) == strip(b)


def acquisition_ms(m: Received) -> int | None:
    """Telemetry `bt` (seconds) as integer milliseconds."""
    body = m.json()
    if isinstance(body, list) and body and isinstance(body[0], dict) and "bt" in body[0]:
        return round(body[0]["bt"] * 1000)
    return None


def device_of(topic: str) -> str | None:
    parts = topic.split("/")
    return parts[parts.index("devices") + 1] if "devices" in parts else None


def order_violations(ledger: Ledger, redelivery_window: int = 0) -> list[str]:
    """Per device, first copies of telemetry must arrive in acquisition order within the live and the hist stream.

    A connection lost with messages in flight resends them after the reconnect (at least once), so one of them may
    first reach the subscriber after a newer message: a late arrival whose seq lies within `redelivery_window` (the
    publisher's in-flight window) of the newest seen in its stream is that resend, not a violation."""
    last: dict[tuple[str, bool], tuple[int, int]] = {}
    bad: list[str] = []
    for m in ledger.order:
        if not m.topic.endswith("/telemetry"):
            continue
        dev, hist, at = device_of(m.topic), m.historical, acquisition_ms(m)
        key = (dev, hist)
        resent = key in last and last[key][0] - m.seq <= redelivery_window
        if key in last and (at < last[key][1] or m.seq < last[key][0]) and not resent:
            bad.append(
                f"{dev} {'hist' if hist else 'live'}: seq {m.seq} acquired {at} after seq {last[key][0]} "
                f"acquired {last[key][1]}"
            )
        last[key] = (max(m.seq, last.get(key, (0, 0))[0]), max(at, last.get(key, (0, 0))[1]))
    return bad


def ranges(seqs: Iterable[int]) -> str:
    """`1-4, 9, 12-13` for a human reading a failure."""
    out: list[str] = []
    items = sorted(seqs)
    i = 0
    while i < len(items):
        j = i
        while j + 1 < len(items) and items[j + 1] == items[j] + 1:
            j += 1
        out.append(str(items[i]) if i == j else f"{items[i]}-{items[j]}")
        i = j + 1
    text = ", ".join(out)
    return text if len(text) < 1500 else text[:1500] + " ..."


def count_by(items: Iterable, key) -> dict:
    out: dict = defaultdict(int)
    for item in items:
        out[key(item)] += 1
    return dict(out)


def wait_connected(socket_path: str, timeout: float, gateway=None) -> dict:
    """Waits until the gateway's status says the broker is connected; returns that status."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = try_status(socket_path)
        if last and last.get("broker", {}).get("connected"):
            return last
        if gateway is not None and not gateway.alive:
            raise AssertionError(f"gateway exited:\n{gateway.logs()[-4000:]}")
        time.sleep(0.2)
    raise AssertionError(f"gateway not connected to the broker after {timeout:.0f}s; last status {last}")


class SlowLink:
    """A loopback TCP proxy that delays every byte by `delay` seconds each way: a high-latency uplink (GSM, VSAT).

    Order is kept; a failed upstream connect closes the client, as an unreachable broker would. Runs in threads of
    the test process; `close()` ends them.
    """

    def __init__(self, upstream_port: int, delay: float):
        self.upstream_port = upstream_port
        self.delay = delay
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port = self._listener.getsockname()[1]
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=2)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            # The proxy adds latency, not Nagle stalls: without NODELAY its small writes (PUBACKs) wait for delayed
            # ACKs, capping the link at about a hundred messages a second whatever the window.
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                self._pump(src, dst)

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        chunks: queue.Queue = queue.Queue()

        def read() -> None:
            while True:
                try:
                    data = src.recv(65536)
                except OSError:
                    data = b""
                chunks.put((time.monotonic() + self.delay, data))
                if not data:
                    return

        def write() -> None:
            while True:
                due, data = chunks.get()
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                try:
                    if not data:
                        dst.shutdown(socket.SHUT_WR)
                        return
                    dst.sendall(data)
                except OSError:
                    for s in (src, dst):
                        try:
                            s.close()
                        except OSError:
                            pass
                    return

        threading.Thread(target=read, daemon=True).start()
        threading.Thread(target=write, daemon=True).start()

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        with self._lock:
            for s in self._sockets:
                try:
                    s.close()
                except OSError:
                    pass
