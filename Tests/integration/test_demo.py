"""`pantau demo`: a private mosquitto, simulated devices and the gateway in one command, messages printed live.

The demo is what an installer runs first (README quickstart), so it must show telemetry within seconds, stop by
itself after `--duration`, exit 0 and leave no broker behind.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time

import pytest

from pantau_harness.procs import kill, port_open, wait_until

pytestmark = pytest.mark.gateway

# `HH:MM:SSZ devices/<dev>/telemetry #SEQ name=value unit, ... [tq: unsynced]`, as DemoSubscriber prints it (the
# time quality only when the message carries one).
TELEMETRY_LINE = re.compile(r"^\d\d:\d\d:\d\dZ devices/([\w.-]+)/telemetry #(\d+) (.+?)(?: \[tq: (\w+)\])?$")
# What the demo says about the board's clock (KernelClock, like the gateway).
CLOCK_LINE = re.compile(r"^demo: clock (synced|NOT SYNCED)")
BROKER_LINE = re.compile(r"^demo: mosquitto on 127\.0\.0\.1:(\d+), simulated devices on 127\.0\.0\.1:(\d+)$")
COUNT_LINE = re.compile(r"^demo: (\d+) messages received$")
DEMO_DEVICES = {"aq-01", "river-01", "rain-01"}


class DemoRun:
    """`pantau demo` with its stdout read line by line on a thread, each line stamped on arrival."""

    def __init__(self, binary: str, args: list[str], workdir: str, env: dict[str, str] | None = None):
        self.lines: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self.stderr_path = os.path.join(workdir, "demo.stderr")
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [binary, "demo", *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, cwd=workdir,
                text=True, bufsize=1, env={**os.environ, **(env or {})},
            )
        self.started = time.monotonic()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self.lines.append((time.monotonic(), line.rstrip("\n")))

    def text(self) -> list[str]:
        with self._lock:
            return [line for _, line in self.lines]

    def first(self, pattern: re.Pattern) -> tuple[float, re.Match] | None:
        with self._lock:
            for at, line in self.lines:
                m = pattern.match(line)
                if m:
                    return at, m
        return None

    def wait(self, timeout: float) -> int | None:
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self._reader.join(timeout=5)
        return rc

    def stderr(self) -> str:
        with open(self.stderr_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def diagnostics(self) -> str:
        return "stdout:\n" + "\n".join(self.text()[-40:]) + "\nstderr:\n" + self.stderr()[-3000:]

    def kill(self) -> None:
        kill(self.proc)


@pytest.fixture
def demo(pantau_bin, tmp_path):
    runs: list[DemoRun] = []

    def start(*args: str, env: dict[str, str] | None = None) -> DemoRun:
        run = DemoRun(pantau_bin, list(args), str(tmp_path), env)
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.kill()


def telemetry_lines(run: DemoRun) -> list[re.Match]:
    return [m for line in run.text() if (m := TELEMETRY_LINE.match(line))]


def test_demo_prints_telemetry_within_seconds_and_exits_0_after_its_duration(demo):
    duration = 10
    run = demo("--duration", str(duration))

    # Generous bounds: the machine is shared. Telemetry must show long before the demo ends by itself.
    assert wait_until(lambda: run.first(TELEMETRY_LINE) is not None or run.proc.poll() is not None, 20), (
        "no telemetry line within 20 s\n" + run.diagnostics())
    found = run.first(TELEMETRY_LINE)
    assert found is not None, "the demo exited without printing telemetry\n" + run.diagnostics()
    assert found[0] - run.started < duration, "the first telemetry line came only after the demo's duration"
    broker = run.first(BROKER_LINE)
    assert broker is not None, "the demo does not say where its broker listens\n" + run.diagnostics()
    broker_port = int(broker[1].group(1))

    rc = run.wait(duration + 30)
    assert rc is not None, "the demo did not stop by itself after --duration\n" + run.diagnostics()
    assert rc == 0, f"exit {rc}\n" + run.diagnostics()

    lines = telemetry_lines(run)
    devices = {m.group(1) for m in lines}
    assert devices == DEMO_DEVICES, f"telemetry from {devices}, expected {DEMO_DEVICES}\n" + run.diagnostics()
    for m in lines:
        # Each value is `name=number unit` (or `name=?` for a point that could not be read); all of them read here.
        values = [v.strip() for v in m.group(3).split(",")]
        assert values and all(re.match(r"^[\w.]+=-?\d+(\.\d+)?( \S+)*$", v) for v in values), m.group(0)
    seqs = [int(m.group(2)) for m in lines]
    assert len(set(seqs)) == len(seqs), f"a telemetry seq printed twice: {seqs}"
    # The demo says what the board's clock is, and the telemetry is marked accordingly.
    clock = run.first(CLOCK_LINE)
    assert clock is not None, "the demo does not say whether the clock is synchronised\n" + run.diagnostics()
    expected_tq = None if clock[1].group(1) == "synced" else "unsynced"
    assert {m.group(4) for m in lines} == {expected_tq}, [m.group(0) for m in lines][:5]
    river = [m.group(3) for m in lines if m.group(1) == "river-01"]
    assert river and all(re.match(r"^level=\d+(\.\d+)? cm$", r) for r in river), river

    count = run.first(COUNT_LINE)
    assert count is not None, "no closing message count\n" + run.diagnostics()
    printed = [line for line in run.text() if re.match(r"^\d\d:\d\d:\d\dZ ", line)]
    assert int(count[1].group(1)) == len(printed), (
        f"the demo counts {count[1].group(1)} messages but printed {len(printed)}\n" + run.diagnostics())
    # The last message is the gateway's own offline status, published on the way out.
    assert re.search(r' status .*"state":"offline"', printed[-1]), printed[-1]
    # Its private broker is gone with it.
    assert wait_until(lambda: not port_open(broker_port), 5), f"mosquitto still listens on {broker_port}"


def test_demo_stops_cleanly_on_sigterm_before_its_duration(demo):
    run = demo("--duration", "300")
    assert wait_until(lambda: run.first(TELEMETRY_LINE) is not None or run.proc.poll() is not None, 20), (
        "no telemetry line within 20 s\n" + run.diagnostics())
    assert run.proc.poll() is None, "the demo exited early\n" + run.diagnostics()
    broker = run.first(BROKER_LINE)
    assert broker is not None
    run.proc.send_signal(signal.SIGTERM)
    rc = run.wait(30)
    assert rc == 0, f"exit {rc} after SIGTERM\n" + run.diagnostics()
    assert "demo: stopping" in run.text(), run.diagnostics()
    assert wait_until(lambda: not port_open(int(broker[1].group(1))), 5), "mosquitto outlived the demo"


@pytest.mark.parametrize("synced", [False, True], ids=["unsynced", "synced"])
def test_demo_shows_the_boards_true_clock_state(demo, tmp_path, synced):
    """The demo runs on the kernel's clock state like the gateway (here the test-only clock source standing in for
    it): an unsynchronised board says so and its telemetry is marked `tq: unsynced`; a synchronised one is not."""
    clock = os.path.join(str(tmp_path), "clock")
    with open(clock, "w") as f:
        f.write(f"0 {1 if synced else 0}\n")
    run = demo("--duration", "6", env={"PANTAU_TEST_CLOCK": clock})
    rc = run.wait(40)
    assert rc == 0, f"exit {rc}\n" + run.diagnostics()
    line = run.first(CLOCK_LINE)
    assert line is not None, run.diagnostics()
    assert line[1].group(1) == ("synced" if synced else "NOT SYNCED"), line[1].group(0)
    lines = telemetry_lines(run)
    assert lines, "no telemetry\n" + run.diagnostics()
    assert {m.group(4) for m in lines} == {None if synced else "unsynced"}, [m.group(0) for m in lines][:5]
