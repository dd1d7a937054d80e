#!/usr/bin/env python3
"""Pantau benchmarks, one machine, one go (issue #8).

Benches (--only NAME, repeatable; default all):
  standard    N Modbus TCP devices x M registers at 1 s through Pantau and through ThingsBoard IoT Gateway 3.8.5,
              same devices and broker: CPU per 1,000 readings, RSS, messages and bytes, latency, disk writes
  sweep       the standard load at a few smaller sizes, for the CPU/RSS-against-load chart
  throughput  the load stepped up until the journal grows or delivery falls behind: sustained points/s
  outage      the standard load with the broker down: disk bytes written per reading while everything is journaled
  backlog     a journal of --backlog-readings readings drained to mosquitto vs the C libmosquitto ceiling
  bus         transactions per poll for every shipped profile vs the minimum; RTU cycle time on a fake slave
  size        release binary (and .deb) size

Writes bench/out/results.json, bench/out/load.svg (also copied to docs/benchmarks-load.svg) and regenerates the
tables in docs/benchmarks.md between the BENCH markers. --smoke runs every bench for seconds, skips ThingsBoard
and leaves the docs alone.

Run bench/setup.sh first. Everything runs on 127.0.0.1; every loop is bounded in count and time.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import benchlib  # noqa: E402
import report  # noqa: E402
import tbg  # noqa: E402

OUT = BENCH / "out"
VENV_PY = OUT / "venv" / "bin" / "python"
WORK = OUT / "work"  # replaced by --workdir
ALL = ["standard", "sweep", "journal", "outage", "throughput", "backlog", "bus", "size"]


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def bench_python() -> str:
    return str(VENV_PY) if VENV_PY.exists() else sys.executable


# ----------------------------------------------------------------------------------------------------------------
# Pantau


def find_pantau(explicit: str | None) -> Path | None:
    candidates = [explicit, os.environ.get("PANTAU_BIN"), str(OUT / "pantau"),
                  str(ROOT / ".build" / "release" / "pantau"),
                  str(ROOT / ".build-bench" / "release" / "pantau"), str(ROOT / ".build" / "debug" / "pantau")]
    for c in candidates:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return Path(c).resolve()
    return None


def has_subcommand(binary: Path | None, *words: str) -> bool:
    if binary is None:
        return False
    try:
        r = subprocess.run([str(binary), "help", *words], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    # An unknown subcommand prints the top-level help with status 0, so look for its own usage line.
    return r.returncode == 0 and ("USAGE: pantau " + " ".join(words)) in r.stdout


def write_profile(directory: Path, registers: int) -> str:
    pid = f"bench-u16x{registers}"
    directory.mkdir(parents=True, exist_ok=True)
    lines = [
        f"# Benchmark device: {registers} u16 holding registers at 0..{registers - 1}, one block read.",
        f"id: {pid}", "version: 1", "manufacturer: bench", f"model: U16X{registers}", 'firmware: "any"',
        'source: "bench/run.py (synthetic benchmark device)"', "unit_id: 1",
        "serial: {baud: 9600, parity: even, data_bits: 8, stop_bits: 1}",
        "timing: {response_timeout_ms: 1000, retries: 1, max_registers_per_read: 125, max_gap: 0}",
        "points:",
    ]
    for a in range(registers):
        lines.append(f"  - {{name: r{a}, quantity: counter, table: holding, address: {a}, type: u16, unit: count}}")
    lines += ["test_vectors:", '  - description: "identity: raw 7 -> 7"', "    registers:",
              "      holding: {0: 7}", "    expect: {r0: 7}"]
    (directory / f"{pid}.yaml").write_text("\n".join(lines) + "\n")
    return pid


def pantau_config(workdir: Path, broker_port: int, device_ports: list[int], registers: int, poll_ms: int,
                  journal: Path, durability: str = "full", commit_interval: str = "200ms") -> Path:
    profiles = workdir / "profiles"
    pid = write_profile(profiles, registers)
    lines = ["gateway: {site: bench, id: gw}", f"profiles: [{profiles}]", "buses:"]
    for i, port in enumerate(device_ports):
        lines.append(f"  - {{name: tcp{i:03d}, type: tcp, host: 127.0.0.1, port: {port}}}")
    lines.append("devices:")
    for i, _ in enumerate(device_ports):
        lines.append(f"  - {{name: d{i:03d}, bus: tcp{i:03d}, unit: 1, profile: {pid}, poll_interval: {poll_ms}ms}}")
    lines += [
        "mqtt:",
        f"  brokers: [{{host: 127.0.0.1, port: {broker_port}}}]",
        f"  client_id: pantau-bench-{os.getpid()}",
        "  topic_prefix: pantau",
        "  inflight: 64",
        "journal:",
        f"  path: {journal}",
        f"  durability: {durability}",
        "  max_bytes: 4GiB",
        f"  commit_interval: {commit_interval}",
        f"status: {{socket: {workdir / 'status.sock'}}}",
    ]
    cfg = workdir / "gateway.yaml"
    cfg.write_text("\n".join(lines) + "\n")
    return cfg


def start_pantau(binary: Path, cfg: Path, workdir: Path, wrapper: tuple[str, ...] = ()) -> subprocess.Popen:
    """`pantau run` on cfg, logging to workdir/pantau.log; `wrapper` goes first (valgrind, for instance)."""
    out = open(workdir / "pantau.log", "w")
    return subprocess.Popen([*wrapper, str(binary), "run", "--config", str(cfg)], cwd=workdir, stdout=out,
                            stderr=subprocess.STDOUT, start_new_session=True)


# ----------------------------------------------------------------------------------------------------------------
# Devices and subscriber


def start_devices(ports: list[int], registers: int, max_seconds: float) -> tuple[subprocess.Popen, benchlib.ProcTree]:
    proc = subprocess.Popen([bench_python(), str(BENCH / "devices.py"), "--ports", ",".join(map(str, ports)),
                             "--registers", str(registers), "--max-seconds", str(int(max_seconds))],
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.startswith("{"):
        benchlib.stop(proc)
        raise RuntimeError("the pymodbus devices did not start")
    for p in ports[:1]:
        benchlib.wait_port(p, 10)
    return proc, benchlib.ProcTree(proc.pid, children=False, interval=1.0).start()


class Subscriber:
    def __init__(self, broker_port: int, out: Path, max_seconds: float, answer_rpc: bool, sample_dir: Path):
        self.out = out
        self.proc = subprocess.Popen(
            [bench_python(), str(BENCH / "subscriber.py"), "--port", str(broker_port), "--out", str(out),
             "--max-seconds", str(int(max_seconds)), "--sample-dir", str(sample_dir)]
            + (["--answer-rpc"] if answer_rpc else []),
            stdout=subprocess.PIPE, text=True, start_new_session=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if "ready" not in line:
            raise RuntimeError("the MQTT subscriber did not subscribe")

    def finish(self) -> dict:
        benchlib.stop(self.proc, timeout=20, sig=signal.SIGTERM)
        return benchlib.read_json(self.out, {"rows": []})


def summarise_rows(rows: list[list], t0: float, t1: float) -> dict:
    inside = [r for r in rows if t0 <= r[0] <= t1]
    lat = [r[3] for r in inside if r[3] is not None]
    return {
        "messages": sum(1 for r in inside if r[1] > 0),
        "bytes": sum(r[1] for r in inside),
        "readings": sum(r[2] for r in inside),
        "latency_p50_ms": benchlib.percentile(lat, 0.5),
        "latency_p99_ms": benchlib.percentile(lat, 0.99),
        "latency_max_ms": max(lat) if lat else None,
    }


# ----------------------------------------------------------------------------------------------------------------
# One system under the standard load


def measure_system(name: str, start, broker: benchlib.Mosquitto, sub_dir: Path, duration: float, warmup: float,
                   offered_per_s: float, answer_rpc: bool, children: bool,
                   journal: Path | None = None) -> dict:
    sub = Subscriber(broker.port, sub_dir / f"sub-{name}.json", warmup + duration + 120, answer_rpc,
                     sub_dir / "samples")
    proc = start()
    tree = benchlib.ProcTree(proc.pid, children=children, interval=0.5).start()
    result: dict = {"system": name}
    try:
        deadline = time.monotonic() + warmup
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with status {proc.returncode} during warm-up")
        pids = set(benchlib.descendants(proc.pid))
        s0 = tree.snapshot()
        w0, m0 = time.time(), time.monotonic()
        wire0 = benchlib.wire_bytes_to(broker.port, pids)
        depth0 = benchlib.journal_depth(journal) if journal else None
        deadline = m0 + duration
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        s1 = tree.snapshot()
        w1, m1 = time.time(), time.monotonic()
        pids = set(benchlib.descendants(proc.pid))
        wire1 = benchlib.wire_bytes_to(broker.port, pids)
        depth1 = benchlib.journal_depth(journal) if journal else None
        hwm = benchlib.status_kb(proc.pid, "VmHWM") if proc.poll() is None else 0
        if s0 is None or s1 is None:
            raise RuntimeError(f"{name} exited during the measurement")
    finally:
        tree.stop()
        rc = benchlib.stop(proc, timeout=20)
    data = sub.finish()
    rows = data.get("rows", [])
    seen = summarise_rows(rows, w0, w1)
    window = tree.window(m0, m1)
    cpu = s1[1] - s0[1]
    elapsed = m1 - m0
    rss_all = [s[2] for s in tree.samples]
    rss_win = [s[2] for s in window] or rss_all
    result.update({
        "seconds": round(elapsed, 2),
        "offered_readings_per_s": offered_per_s,
        "readings": seen["readings"],
        "readings_per_s": round(seen["readings"] / elapsed, 1),
        "messages": seen["messages"],
        "messages_per_s": round(seen["messages"] / elapsed, 2),
        "mqtt_payload_and_topic_bytes": seen["bytes"],
        "bytes_per_reading_mqtt": round(seen["bytes"] / seen["readings"], 1) if seen["readings"] else None,
        "wire_bytes_to_broker": (wire1 - wire0) if wire0 is not None and wire1 is not None else None,
        "cpu_seconds": round(cpu, 3),
        "cpu_percent_of_one_core": round(100 * cpu / elapsed, 1),
        "cpu_s_per_1000_readings": round(cpu / (seen["readings"] / 1000), 4) if seen["readings"] else None,
        "rss_peak_mb": round(max(max(rss_all, default=0), hwm) / 1024, 1),
        "rss_steady_mb": round(benchlib.median(rss_win) / 1024, 1) if rss_win else None,
        "disk_write_bytes": s1[3] - s0[3],
        "disk_write_bytes_per_reading": round((s1[3] - s0[3]) / seen["readings"], 1) if seen["readings"] else None,
        "latency_p50_ms": round(seen["latency_p50_ms"], 1) if seen["latency_p50_ms"] is not None else None,
        "latency_p99_ms": round(seen["latency_p99_ms"], 1) if seen["latency_p99_ms"] is not None else None,
        "latency_max_ms": round(seen["latency_max_ms"], 1) if seen["latency_max_ms"] is not None else None,
        "other_messages": data.get("other_messages"),
        "parse_errors": data.get("parse_errors"),
        "exit_status": rc,
    })
    if journal is not None:
        result["journal_depth_start"] = depth0
        result["journal_depth_end"] = depth1
    if answer_rpc:
        result["session_limits_rpc_answered"] = data.get("rpc_answered")
    return result


def run_load(args, work: Path, devices: int, registers: int, poll_ms: int, duration: float, warmup: float,
             pantau: Path | None, with_tb: bool, tb_mapping: str, block_too: bool = False, sqlite_too: bool = False,
             journal_options: dict | None = None) -> dict:
    """The same devices and broker through Pantau, then through ThingsBoard gateway."""
    work.mkdir(parents=True, exist_ok=True)
    offered = devices * registers * 1000 / poll_ms
    out: dict = {"devices": devices, "registers": registers, "poll_ms": poll_ms,
                 "offered_readings_per_s": offered}
    broker = benchlib.Mosquitto(work / "broker").start()
    ports = benchlib.free_ports(devices)
    total = 2 * (duration + warmup) + 600
    dev_proc, dev_tree = start_devices(ports, registers, total)
    try:
        if pantau is not None:
            pw = work / "pantau"
            if pw.exists():
                shutil.rmtree(pw)
            pw.mkdir(parents=True)
            journal = pw / "journal.sqlite"
            cfg = pantau_config(pw, broker.port, ports, registers, poll_ms, journal, **(journal_options or {}))
            log(f"pantau: {devices} devices x {registers} registers every {poll_ms} ms for {duration:.0f} s")
            try:
                out["pantau"] = measure_system("pantau", lambda: start_pantau(pantau, cfg, pw), broker, work,
                                               duration, warmup, offered, False, False, journal)
            except RuntimeError as e:
                out["pantau"] = {"error": str(e), "log_tail": tail(pw / "pantau.log")}
            log(f"pantau: {short(out['pantau'])}")
        if with_tb:
            tw = work / "tbg"
            if tw.exists():
                shutil.rmtree(tw)
            tbg.write_config(tw / "config", broker.port, ports, registers, poll_ms, tb_mapping)
            log(f"thingsboard-gateway ({tb_mapping} mapping): {devices} x {registers} every {poll_ms} ms")
            try:
                out["tbg"] = measure_system("tbg", lambda: tbg.start(tw / "run", tw / "config"), broker, work,
                                            duration, max(warmup, 15), offered, True, True)
                out["tbg"]["mapping"] = tb_mapping
            except RuntimeError as e:
                out["tbg"] = {"error": str(e), "log_tail": tail(tw / "run" / "stdout.log")}
            log(f"tbg: {short(out['tbg'])}")
        if with_tb and block_too and tb_mapping != "block":
            tw = work / "tbg-block"
            if tw.exists():
                shutil.rmtree(tw)
            tbg.write_config(tw / "config", broker.port, ports, registers, poll_ms, "block")
            log(f"thingsboard-gateway (block mapping): {devices} x {registers} every {poll_ms} ms")
            try:
                out["tbg_block"] = measure_system("tbg-block", lambda: tbg.start(tw / "run", tw / "config"), broker,
                                                  work, duration, max(warmup, 15), offered, True, True)
                out["tbg_block"]["mapping"] = "block"
            except RuntimeError as e:
                out["tbg_block"] = {"error": str(e), "log_tail": tail(tw / "run" / "stdout.log")}
            log(f"tbg block: {short(out['tbg_block'])}")
        if with_tb and sqlite_too:
            tw = work / "tbg-sqlite"
            if tw.exists():
                shutil.rmtree(tw)
            tbg.write_config(tw / "config", broker.port, ports, registers, poll_ms, tb_mapping, storage="sqlite")
            (tw / "data").mkdir(parents=True, exist_ok=True)
            log(f"thingsboard-gateway ({tb_mapping} mapping, SQLite storage): {devices} x {registers} every {poll_ms} ms")
            try:
                out["tbg_sqlite"] = measure_system("tbg-sqlite", lambda: tbg.start(tw / "run", tw / "config"), broker,
                                                   work, duration, max(warmup, 15), offered, True, True)
                out["tbg_sqlite"]["mapping"] = tb_mapping
                out["tbg_sqlite"]["storage"] = "sqlite"
            except RuntimeError as e:
                out["tbg_sqlite"] = {"error": str(e), "log_tail": tail(tw / "run" / "stdout.log")}
            log(f"tbg sqlite: {short(out['tbg_sqlite'])}")
    finally:
        dev_tree.stop()
        benchlib.stop(dev_proc)
        broker.stop()
    if dev_tree.samples:
        first, last = dev_tree.samples[0], dev_tree.samples[-1]
        if last[0] > first[0]:
            out["device_simulator_cpu_percent"] = round(100 * (last[1] - first[1]) / (last[0] - first[0]), 1)
    compute_ratios(out)
    return out


def compute_ratios(out: dict) -> None:
    p = out.get("pantau", {})
    for other in ("tbg", "tbg_block", "tbg_sqlite"):
        t = out.get(other, {})
        ratios = {}
        for key in ("cpu_s_per_1000_readings", "rss_peak_mb", "rss_steady_mb", "messages_per_s",
                    "mqtt_payload_and_topic_bytes", "wire_bytes_to_broker", "latency_p50_ms", "latency_p99_ms",
                    "disk_write_bytes_per_reading"):
            if isinstance(p.get(key), (int, float)) and isinstance(t.get(key), (int, float)) and p[key]:
                ratios[key] = round(t[key] / p[key], 2)
        if ratios:
            out[f"{other}_over_pantau"] = ratios


def short(r: dict) -> str:
    if "error" in r:
        return "ERROR " + r["error"]
    keys = ("readings_per_s", "cpu_percent_of_one_core", "cpu_s_per_1000_readings", "rss_steady_mb", "rss_peak_mb",
            "latency_p50_ms", "latency_p99_ms")
    return ", ".join(f"{k}={r.get(k)}" for k in keys)


def tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


# ----------------------------------------------------------------------------------------------------------------
# Journal settings: what the group commit costs in latency, CPU and disk


def bench_journal_options(args, pantau: Path | None) -> dict:
    if pantau is None:
        return {"skipped": "no pantau binary with `run`"}
    variants = [("full", "50ms"), ("normal", "200ms"), ("full", "1s")]
    if args.smoke:
        variants = variants[:1]
    out = []
    dur = args.duration if args.smoke else min(args.duration, 60)
    for durability, commit in variants:
        work = WORK / f"journal-{durability}-{commit}"
        if work.exists():
            shutil.rmtree(work)
        r = run_load(args, work, args.devices, args.registers, 1000, dur, args.warmup, pantau, False, "block",
                     journal_options={"durability": durability, "commit_interval": commit})
        p = r.get("pantau", {})
        p.update({"durability": durability, "commit_interval": commit})
        out.append(p)
    return {"devices": args.devices, "registers": args.registers, "variants": out}


# ----------------------------------------------------------------------------------------------------------------
# Maximum throughput


def bench_outage(args, pantau: Path | None) -> dict:
    """Pantau alone at the standard load, broker up for the warm-up and then stopped: what the journal writes
    when nothing is acknowledged (write-behind then writes every reading once)."""
    out: dict = {"devices": args.devices, "registers": args.registers, "poll_ms": 1000}
    if pantau is None:
        out["skipped"] = "no pantau binary with `run`"
        return out
    work = WORK / "outage"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    broker = benchlib.Mosquitto(work / "broker").start()
    ports = benchlib.free_ports(args.devices)
    # 60 s: the window holds exactly one minute boundary, where every point's one-minute window closes and its
    # aggregate is journaled too (a 30 s window held one boundary or none, so runs were not comparable).
    duration = min(args.duration, 30) if args.smoke else 60
    dev_proc, dev_tree = start_devices(ports, args.registers, args.warmup + duration + 120)
    journal = work / "journal.sqlite"
    cfg = pantau_config(work, broker.port, ports, args.registers, 1000, journal)
    proc = start_pantau(pantau, cfg, work)
    tree = benchlib.ProcTree(proc.pid, children=False, interval=0.5).start()
    try:
        time.sleep(args.warmup)
        broker.stop()
        time.sleep(3)
        s0 = tree.snapshot()
        d0 = benchlib.journal_depth(journal)
        k0 = benchlib.journal_kinds(journal) or {}
        time.sleep(duration)
        s1 = tree.snapshot()
        d1 = benchlib.journal_depth(journal)
        k1 = benchlib.journal_kinds(journal) or {}
    finally:
        tree.stop()
        benchlib.stop(proc, timeout=20)
        dev_tree.stop()
        benchlib.stop(dev_proc)
    if s0 is None or s1 is None:
        out["error"] = "pantau exited during the outage"
        return out
    seconds = s1[0] - s0[0]
    readings = args.devices * args.registers * seconds
    out.update({
        "seconds": round(seconds, 2),
        "readings_offered": round(readings),
        "journal_rows_added": (d1 - d0) if d0 is not None and d1 is not None else None,
        "journal_rows_added_by_kind": {k: k1.get(k, 0) - k0.get(k, 0) for k in sorted(set(k0) | set(k1))},
        "disk_write_bytes": s1[3] - s0[3],
        "disk_write_bytes_per_reading": round((s1[3] - s0[3]) / readings, 1) if readings else None,
        "cpu_s_per_1000_readings": round((s1[1] - s0[1]) / (readings / 1000), 4) if readings else None,
    })
    log(f"outage: {out}")
    return out


def bench_throughput(args, pantau: Path | None) -> dict:
    if pantau is None or not has_subcommand(pantau, "run"):
        return {"skipped": "no pantau binary with `run`"}
    if args.smoke:
        steps = [(4, 20, 1000), (4, 125, 500)]
    else:
        # Up to 312,500 readings/s: issue 12 asks for 300,000 within one core.
        steps = [(50, 20, 1000), (50, 125, 1000), (50, 125, 500), (50, 125, 250), (50, 125, 100),
                 (75, 125, 100), (100, 125, 100), (150, 125, 100), (200, 125, 100), (250, 125, 100)]
    if args.throughput_steps:
        # e.g. "250x125@100,200x125@100": re-run chosen steps only.
        steps = [tuple(int(n) for n in spec.replace("@", "x").split("x")) for spec in args.throughput_steps.split(",")]
    warm, dur = (2, 4) if args.smoke else (8, 20)
    results = []
    best = None
    for devices, registers, poll_ms in steps:
        work = WORK / "throughput" / f"{devices}x{registers}@{poll_ms}"
        if work.exists():
            shutil.rmtree(work)
        r = run_load(args, work, devices, registers, poll_ms, dur, warm, pantau, False, "block")
        p = r.get("pantau", {})
        offered = r["offered_readings_per_s"]
        step = {"devices": devices, "registers": registers, "poll_ms": poll_ms, "offered_readings_per_s": offered,
                "device_simulator_cpu_percent": r.get("device_simulator_cpu_percent")}
        if "error" in p:
            step["error"] = p["error"]
            results.append(step)
            break
        growth = None
        if p.get("journal_depth_start") is not None and p.get("journal_depth_end") is not None:
            growth = p["journal_depth_end"] - p["journal_depth_start"]
        records_per_s = devices * 1000 / poll_ms
        delivered_ok = p["readings_per_s"] >= 0.95 * offered
        journal_ok = growth is None or growth <= max(2 * records_per_s, 0.05 * records_per_s * p["seconds"])
        step.update({k: p.get(k) for k in ("readings_per_s", "cpu_percent_of_one_core", "cpu_s_per_1000_readings",
                                           "rss_steady_mb", "latency_p50_ms", "latency_p99_ms",
                                           "journal_depth_start", "journal_depth_end")})
        step["journal_growth_rows"] = growth
        step["journal_depth_known"] = growth is not None
        step["sustained"] = bool(delivered_ok and journal_ok)
        per_1000 = p.get("cpu_s_per_1000_readings")
        step["cpu_us_per_reading"] = round(1e3 * per_1000, 2) if per_1000 else None
        results.append(step)
        log(f"throughput step {devices}x{registers}@{poll_ms}ms: offered {offered:.0f}/s, delivered "
            f"{p['readings_per_s']}/s, journal growth {growth}, sustained={step['sustained']}")
        if step["sustained"]:
            best = step
        else:
            break
    return {"steps": results, "max_sustained": best,
            "limited_by_device_simulator": bool(best and results and results[-1] is best
                                                and (best.get("device_simulator_cpu_percent") or 0) > 85)}


# ----------------------------------------------------------------------------------------------------------------
# Backlog drain


def bench_backlog(args, pantau: Path | None) -> dict:
    readings_target = args.backlog_readings
    registers = 20
    records_target = readings_target // registers
    out: dict = {"readings_target": readings_target, "registers_per_record": registers,
                 "records_target": records_target}
    work = WORK / "backlog"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    # A telemetry message of 20 readings as Pantau sent it in the standard load (or any 20-register run).
    sample = WORK / "standard" / "samples" / "pantau-telemetry.json"
    if not sample.exists():
        sample = next(iter(sorted(WORK.glob("*/samples/pantau-telemetry.json"))), sample)
    mosq_pub = OUT / "mosq_pub"
    if not mosq_pub.exists():
        r = subprocess.run(["cc", "-O2", "-o", str(mosq_pub), str(BENCH / "c" / "mosq_pub.c"), "-lmosquitto"],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            out["ceiling_error"] = r.stderr[-500:]
    # The ceiling: the same number of messages, of the same payload bytes, QoS 1, window 64.
    # Both publishers keep 64 QoS 1 messages in flight (Pantau: `mqtt.inflight: 64`, which it hands to libmosquitto
    # as its send maximum; mosq_pub: -w 64) against a private mosquitto with the same settings.
    out["inflight_window"] = 64
    out["broker_settings"] = benchlib.Mosquitto(work / "unused").settings()
    payload = sample if sample.exists() else None

    def ceiling_round(index: int) -> dict:
        broker = benchlib.Mosquitto(work / f"broker-c{index}").start()
        try:
            cmd = [str(mosq_pub), "-p", str(broker.port), "-n", str(records_target), "-w", "64"]
            if payload:
                cmd += ["-f", str(payload)]
            t0 = time.monotonic()
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
            stdout = proc.stdout.read() if proc.stdout else ""  # mosq_pub gives up by itself after 600 s
            _, status, ru = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            res = json.loads(stdout.strip().splitlines()[-1]) if stdout.strip() else {}
            res["cpu_seconds"] = round(ru.ru_utime + ru.ru_stime, 3)
            res["exit_status"] = proc.returncode
            res["wall_seconds"] = round(time.monotonic() - t0, 3)
            res["payload_from"] = "a Pantau telemetry message" if payload else "200 bytes of 'x' (no sample)"
            log(f"backlog ceiling round {index}: {res}")
            return res
        finally:
            broker.stop()

    if pantau is None or not has_subcommand(pantau, "run"):
        if mosq_pub.exists():
            out["ceiling_c_libmosquitto"] = ceiling_round(0)
        out["pantau"] = {"skipped": "no pantau binary with `run`"}
        return out
    # Fill once: the gateway polls fast with its broker down until the journal holds the target; a copy of the
    # filled journal is kept so every drain round starts from the same rows.
    broker_port = benchlib.free_port()
    devices, poll_ms = (4, 100) if args.smoke else (50, 100)
    ports = benchlib.free_ports(devices)
    filled = work / "filled"
    filled.mkdir()
    journal = filled / "journal.sqlite"
    cfg = pantau_config(filled, broker_port, ports, registers, poll_ms, journal)
    dev_proc, dev_tree = start_devices(ports, registers, 3600)
    fill_limit = 60 if args.smoke else 600
    t0 = time.monotonic()
    proc = start_pantau(pantau, cfg, filled)
    depth = None
    fill_hwm_kb = 0
    try:
        while time.monotonic() - t0 < fill_limit and proc.poll() is None:
            time.sleep(1)
            depth = benchlib.journal_depth(journal)
            if depth is not None and depth >= records_target:
                break
        fill_hwm_kb = benchlib.status_kb(proc.pid, "VmHWM") if proc.poll() is None else 0
    finally:
        benchlib.stop(proc, timeout=30)
        dev_tree.stop()
        benchlib.stop(dev_proc)
    depth = benchlib.journal_depth(journal)
    out["fill_seconds"] = round(time.monotonic() - t0, 1)
    out["journal_rows_before_drain"] = depth
    out["fill_rss_hwm_mb"] = round(fill_hwm_kb / 1024, 1) if fill_hwm_kb else None
    out["journal_bytes_before_drain"] = sum(p.stat().st_size for p in journal.parent.glob("journal.sqlite*"))
    if not depth:
        out["pantau"] = {"error": "the journal did not fill (depth unknown or 0)", "log_tail": tail(filled / "pantau.log")}
        return out

    def drain_round(index: int) -> dict:
        # Drain: broker up on the same port, devices gone (their polls fail fast: connection refused), the gateway
        # restarted on a copy of the filled journal. Its status socket is read every 50 ms: the broker's
        # acknowledgements (`broker.acked_total`) and the rows left in the file (`journal.pending` plus
        # `journal.acked_in_file`, acknowledged rows whose deletes wait for the end of the drain). The clock starts
        # at the gateway's CONNACK (its log line, ms), as mosq_pub's does; the moment the acknowledgements reach the
        # backlog's size is interpolated between the two samples around it.
        rundir = work / f"drain{index}"
        shutil.copytree(filled, rundir, ignore=shutil.ignore_patterns("*.sock", "pantau.log"))
        cfg_round = rundir / "gateway.yaml"
        cfg_round.write_text(cfg.read_text().replace(str(filled), str(rundir)))
        broker = benchlib.Mosquitto(work / f"broker-p{index}", port=broker_port).start()
        proc = start_pantau(pantau, cfg_round, rundir)
        tree = benchlib.ProcTree(proc.pid, children=False, interval=0.5).start()
        t_start = time.time()
        samples: list[tuple[float, int, int]] = []  # (seconds since start, acked_total, rows left in the file)
        hwm_kb = 0
        limit = 120 if args.smoke else 900
        try:
            while time.time() - t_start < limit and proc.poll() is None:
                time.sleep(0.05)
                status = benchlib.status_json(rundir / "status.sock")
                if not status:
                    continue
                journal_part = status["journal"]
                samples.append((time.time() - t_start, status["broker"]["acked_total"],
                                journal_part["pending"] + journal_part.get("acked_in_file", 0)))
                if samples[-1][2] <= max(10, depth // 1000):
                    break
            s1 = tree.snapshot()
            # The drain lasts about a second: the kernel's high-water mark sees a peak the samples can miss.
            hwm_kb = benchlib.status_kb(proc.pid, "VmHWM") if proc.poll() is None else 0
        finally:
            tree.stop()
            benchlib.stop(proc, timeout=30)
            broker.stop()
        res: dict = {"samples": len(samples)}
        first_ack = next((i for i, (_, acked, _) in enumerate(samples) if acked > 0), None)
        if first_ack is None:
            res["error"] = "no acknowledgement seen"
            res["log_tail"] = tail(rundir / "pantau.log")
            return res
        # From the CONNACK (start-up and connect excluded), else from the last sample before the first acknowledgement.
        connack = benchlib.log_time(rundir / "pantau.log", "connected to MQTT broker")
        t_a = (connack - t_start) if connack else (samples[first_ack - 1][0] if first_ack > 0 else 0.0)
        crossing = next((i for i, (_, acked, _) in enumerate(samples) if acked >= depth), None)
        to_broker = None
        if crossing is not None:
            t1, a1, _ = samples[crossing]
            t0, a0, _ = samples[crossing - 1] if crossing > 0 else (t_a, 0, 0)
            to_broker = t0 + (t1 - t0) * (depth - a0) / (a1 - a0) if a1 > a0 else t1
        sampled_start = samples[first_ack - 1][0] if first_ack > 0 else 0.0
        sampled_end = samples[crossing][0] if crossing is not None else None
        t_end, acked_end, pending_end = samples[-1]
        drained = depth - pending_end
        res.update({
            "records_drained": drained,
            "readings_drained": drained * registers,
            # Every journaled message the broker acknowledged, the backlog and what the gateway made meanwhile
            # (device offline alerts, aggregates of the windows its restart closed).
            "messages_acked": acked_end,
            "start": "CONNACK (log)" if connack else "last sample before the first acknowledgement",
            # The method used before 2026-12-06 14:55 UTC, on the same samples: from the last sample before the first
            # acknowledgement to the first sample past the backlog's size (both ends quantised to 50 ms).
            "records_per_s_to_broker_sampled": round(depth / (sampled_end - sampled_start), 1)
            if sampled_end and sampled_end > sampled_start else None,
            "seconds_to_broker": round(to_broker - t_a, 3) if to_broker else None,
            "records_per_s_to_broker": round(depth / (to_broker - t_a), 1) if to_broker else None,
            "seconds_to_empty_file": round(t_end - t_a, 3),
            "records_per_s_to_empty_file": round(drained / (t_end - t_a), 1) if t_end > t_a else None,
            "cpu_seconds": round(s1[1] - tree.samples[0][1], 2) if s1 and tree.samples else None,
            "rss_peak_mb": round(max([s[2] for s in tree.samples] + [hwm_kb]) / 1024, 1),
            "rss_hwm_mb": round(hwm_kb / 1024, 1) if hwm_kb else None,
        })
        log(f"backlog drain round {index}: {res}")
        return res

    # Rounds alternate, ceiling then drain, so both see the same machine; the medians go in the table.
    rounds = 1 if args.smoke else 3
    ceilings, drains = [], []
    for index in range(rounds):
        if mosq_pub.exists():
            ceilings.append(ceiling_round(index))
        drains.append(drain_round(index))

    def median_round(items: list[dict], key: str) -> dict:
        ok = sorted((r for r in items if r.get(key)), key=lambda r: r[key])
        return ok[len(ok) // 2] if ok else (items[0] if items else {})

    c = median_round(ceilings, "messages_per_s")
    if c:
        out["ceiling_c_libmosquitto"] = c
        out["ceiling_rounds_messages_per_s"] = [r.get("messages_per_s") for r in ceilings]
    p = median_round(drains, "records_per_s_to_broker")
    out["pantau"] = p
    out["pantau_rounds_records_per_s_to_broker"] = [r.get("records_per_s_to_broker") for r in drains]
    out["pantau_rounds_records_per_s_to_broker_sampled"] = [r.get("records_per_s_to_broker_sampled") for r in drains]
    out["pantau_rounds_records_per_s_to_empty_file"] = [r.get("records_per_s_to_empty_file") for r in drains]
    if p.get("records_per_s_to_broker") and c.get("messages_per_s"):
        out["pantau_over_ceiling"] = round(p["records_per_s_to_broker"] / c["messages_per_s"], 3)
    file_rates = sorted(r for r in out["pantau_rounds_records_per_s_to_empty_file"] if r)
    if file_rates and c.get("messages_per_s"):
        out["pantau_over_ceiling_to_empty_file"] = round(file_rates[len(file_rates) // 2] / c["messages_per_s"], 3)
    log(f"backlog pantau: {p.get('records_per_s_to_broker')} records/s to the broker; ceiling {c.get('messages_per_s')}")
    return out


# ----------------------------------------------------------------------------------------------------------------
# Bus efficiency


def bench_bus(args, pantau: Path | None) -> dict:
    import bus
    out = {"profiles": [], "rtu": None}
    profile_dir = ROOT / "firmware-profiles"
    if not profile_dir.is_dir():
        return {"skipped": f"{profile_dir} not found"}
    out["profiles"] = bus.profile_table(profile_dir, pantau)
    if pantau is None or not has_subcommand(pantau, "run"):
        out["rtu"] = {"skipped": "no pantau binary with `run`"}
    else:
        out["rtu"] = bus.rtu_cycle(pantau, profile_dir, WORK / "rtu", 8 if args.smoke else 40, bench_python(),
                                   [p for p in out["profiles"] if p.get("plan_requests")])
    out["rtu_reference_mbpoll"] = bus.mbpoll_reference(WORK / "rtu-mbpoll", bench_python())
    return out


# ----------------------------------------------------------------------------------------------------------------
# Size


def bench_size(args, pantau: Path | None) -> dict:
    out: dict = {}
    if pantau is not None:
        out["binary"] = str(pantau)
        out["binary_bytes"] = pantau.stat().st_size
        out["binary_is_release"] = "/release/" in str(pantau) or pantau.parent == OUT
        try:
            info = subprocess.run(["file", "-b", str(pantau)], capture_output=True, text=True, timeout=10).stdout
            out["file"] = info.strip()[:200]
            ldd = subprocess.run(["ldd", str(pantau)], capture_output=True, text=True, timeout=10).stdout
            out["shared_libraries"] = sorted({line.split()[0] for line in ldd.splitlines() if "=>" in line})
        except (OSError, subprocess.TimeoutExpired):
            pass
        stripped = OUT / "pantau.stripped"
        try:
            shutil.copy(pantau, stripped)
            subprocess.run(["strip", str(stripped)], check=True, timeout=60)
            out["binary_stripped_bytes"] = stripped.stat().st_size
        except (OSError, subprocess.SubprocessError):
            pass
    deb_script = Path(args.deb_script) if args.deb_script else ROOT / "scripts" / "build-deb.sh"
    dist = OUT / "dist"
    if not deb_script.exists():
        out["deb"] = f"{deb_script} does not exist in this tree"
    elif args.smoke or not args.build_deb:
        debs = sorted(dist.glob("*.deb")) if dist.is_dir() else []
        out["deb"] = {d.name: d.stat().st_size for d in debs} or "not built (pass --build-deb)"
    elif pantau is None:
        out["deb"] = "no pantau binary to package"
    else:
        # Packages the binary measured above, so the .deb holds exactly what was benchmarked.
        if dist.exists():
            shutil.rmtree(dist)
        r = subprocess.run(["bash", str(deb_script), "--binary", str(pantau), "--out", str(dist)],
                           cwd=deb_script.parent.parent, timeout=1800, capture_output=True, text=True)
        debs = sorted(dist.glob("*.deb")) if dist.is_dir() else []
        out["deb"] = {d.name: d.stat().st_size for d in debs} or f"build-deb.sh failed: {r.stderr[-300:]}"
    return out


# ----------------------------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=60, help="measured seconds per system (standard load)")
    ap.add_argument("--warmup", type=float, default=15)
    ap.add_argument("--devices", type=int, default=50)
    ap.add_argument("--registers", type=int, default=20)
    ap.add_argument("--smoke", action="store_true", help="seconds per bench, no ThingsBoard, docs untouched")
    ap.add_argument("--only", action="append", choices=ALL, help="run only this bench (repeatable)")
    ap.add_argument("--pantau", help="the pantau binary (default: $PANTAU_BIN, bench/out/pantau, .build/release)")
    ap.add_argument("--no-tb", action="store_true", help="leave ThingsBoard gateway out")
    ap.add_argument("--tb-mapping", choices=["per-register", "block"], default="per-register")
    ap.add_argument("--tb-block-too", action=argparse.BooleanOptionalAction, default=True,
                    help="standard load: also measure ThingsBoard with one range read per device")
    ap.add_argument("--tb-sqlite-too", action=argparse.BooleanOptionalAction, default=True,
                    help="standard load: also measure ThingsBoard with its SQLite storage (durable, like the journal)")
    ap.add_argument("--backlog-readings", type=int, default=1_000_000)
    ap.add_argument("--throughput-steps", help="only these throughput steps, DEVICESxREGISTERS@POLL_MS,...")
    ap.add_argument("--build-deb", action="store_true", help="package the measured binary with build-deb.sh")
    ap.add_argument("--deb-script", help="build-deb.sh to use (default scripts/build-deb.sh of this tree)")
    ap.add_argument("--results", default=str(OUT / "results.json"))
    ap.add_argument("--no-docs", action="store_true")
    ap.add_argument("--workdir", help="scratch folder (default bench/out/work, bench/out/work-smoke with --smoke)")
    args = ap.parse_args()
    global WORK
    WORK = Path(args.workdir).resolve() if args.workdir else OUT / ("work-smoke" if args.smoke else "work")
    if args.smoke:
        args.duration, args.warmup = min(args.duration, 4), min(args.warmup, 3)
        args.devices, args.registers = min(args.devices, 3), min(args.registers, 20)
        args.backlog_readings = min(args.backlog_readings, 2000)
        args.no_tb = True
        if args.results == str(OUT / "results.json"):
            args.results = str(OUT / "smoke-results.json")
    OUT.mkdir(parents=True, exist_ok=True)
    benches = args.only or ALL
    pantau = find_pantau(args.pantau)
    can_run = has_subcommand(pantau, "run")
    with_tb = not args.no_tb and tbg.available()
    results_path = Path(args.results)
    results = benchlib.read_json(results_path, {}) if args.only else {}
    meta = {
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "host": platform.node(), "cpus": os.cpu_count(), "kernel": platform.release(),
        "cpu_model": next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                           if line.startswith("model name")), ""),
        "loadavg_at_start": open("/proc/loadavg").read().split()[:3],
        "pantau": str(pantau) if pantau else None, "pantau_has_run": can_run,
        "pantau_version": version_of(pantau),
        "thingsboard_gateway": "3.8.5" if with_tb else (
            "not installed (bench/setup.sh)" if not tbg.available() else "skipped"),
        "smoke": args.smoke, "command": " ".join(["bench/run.py"] + sys.argv[1:]),
    }
    if args.only and results.get("meta") and not args.smoke:
        meta["benches"] = benches
        results["meta"].setdefault("later_runs", []).append(meta)
    else:
        results["meta"] = meta
    if pantau is None:
        log("no pantau binary found: Pantau parts are skipped (build it, or pass --pantau)")
    elif not can_run:
        log(f"{pantau} has no `run` subcommand yet: Pantau load parts are skipped")
    if not with_tb and not args.smoke:
        log("ThingsBoard gateway not installed or disabled: run bench/setup.sh for the comparison")
    if args.smoke:
        log("smoke mode: ThingsBoard gateway skipped")

    previous = benchlib.read_json(results_path, {})
    if "standard" in benches:
        results["standard"] = run_load(args, WORK / "standard", args.devices, args.registers, 1000,
                                       args.duration, args.warmup, pantau if can_run else None, with_tb,
                                       args.tb_mapping, args.tb_block_too, args.tb_sqlite_too)
        save(results_path, results)
    if "sweep" in benches:
        loads = [2] if args.smoke else [10, 25]
        dur = args.duration if args.smoke else min(args.duration, 30)
        results["sweep"] = [run_load(args, WORK / f"sweep-{n}", n, args.registers, 1000, dur, args.warmup,
                                     pantau if can_run else None, with_tb, args.tb_mapping) for n in loads]
        save(results_path, results)
    if not with_tb and not args.smoke:
        carry_over(previous, results)
    if "journal" in benches:
        results["journal"] = bench_journal_options(args, pantau if can_run else None)
        save(results_path, results)
    if "outage" in benches:
        results["outage"] = bench_outage(args, pantau if can_run else None)
        save(results_path, results)
    if "throughput" in benches:
        if results.get("throughput", {}).get("steps") and not args.smoke:
            # The machine is shared: keep each earlier run's outcome next to the new one.
            earlier = results.setdefault("throughput_earlier", [])
            t = results["throughput"]
            best = t.get("max_sustained") or {}
            earlier.append({"date_utc": t.get("date_utc") or (results.get("meta") or {}).get("date_utc"),
                            "max_sustained_readings_per_s": best.get("readings_per_s"),
                            "cpu_us_per_reading": best.get("cpu_us_per_reading"),
                            "first_failed": next(({k: s.get(k) for k in ("devices", "registers", "poll_ms",
                                                                          "offered_readings_per_s", "readings_per_s",
                                                                          "cpu_percent_of_one_core")}
                                                  for s in t.get("steps", []) if not s.get("sustained")), None)})
        results["throughput"] = bench_throughput(args, pantau)
        results["throughput"]["date_utc"] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        save(results_path, results)
    if "backlog" in benches:
        results["backlog"] = bench_backlog(args, pantau)
        save(results_path, results)
    if "bus" in benches:
        results["bus"] = bench_bus(args, pantau)
        save(results_path, results)
    if "size" in benches:
        results["size"] = bench_size(args, pantau)
        save(results_path, results)

    svg = results_path.with_suffix(".svg") if args.smoke else OUT / "load.svg"
    report.write_chart(results, svg)
    if not args.smoke and not args.no_docs:
        shutil.copy(svg, ROOT / "docs" / "benchmarks-load.svg")
        report.update_doc(results, ROOT / "docs" / "benchmarks.md")
        log("docs/benchmarks.md tables regenerated")
    log(f"results: {results_path}")
    return 0


def carry_over(previous: dict, results: dict) -> None:
    """A run without ThingsBoard keeps the ThingsBoard figures of an earlier run for the same loads, marked with
    that run's date, so Pantau can be re-measured alone."""
    when = (previous.get("meta") or {}).get("date_utc")
    old_runs = ([previous["standard"]] if previous.get("standard") else []) + list(previous.get("sweep") or [])
    new_runs = ([results["standard"]] if results.get("standard") else []) + list(results.get("sweep") or [])
    for new in new_runs:
        for old in old_runs:
            if (old.get("devices"), old.get("registers"), old.get("poll_ms")) != (
                    new.get("devices"), new.get("registers"), new.get("poll_ms")):
                continue
            for key in ("tbg", "tbg_block"):
                if key in old and key not in new and "error" not in old[key]:
                    new[key] = dict(old[key])
                    new[key]["measured_in_earlier_run"] = old[key].get("measured_in_earlier_run") or when
            compute_ratios(new)
            break


def version_of(binary: Path | None) -> str | None:
    if binary is None:
        return None
    try:
        return subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None


def save(path: Path, results: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    sys.exit(main())
