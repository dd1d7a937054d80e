"""Bus efficiency: Modbus transactions per poll cycle for each shipped profile against the minimum, and the RTU
cycle time Pantau achieves on a timing-faithful fake slave against the serial-line timing table."""
from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
import time
from pathlib import Path

import benchlib

SPAN = {"u16": 1, "i16": 1, "bit": 1, "u32": 2, "i32": 2, "f32": 2, "u64": 4, "i64": 4, "f64": 4}
LIMIT = {"holding": 125, "input": 125, "coil": 2000, "discrete": 2000}
FC = {"holding": 3, "input": 4, "coil": 1, "discrete": 2}


def run(cmd: list[str], timeout: float = 30) -> str:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.strip()[-300:]}")
    return r.stdout


def parse_show(text: str) -> dict:
    """Points and timing from `pantau profiles show ID`."""
    timing = {"max_registers": 125, "max_gap": 8, "single": False}
    m = re.search(r"max (\d+) registers per read, max gap (\d+)", text)
    if m:
        timing["max_registers"], timing["max_gap"] = int(m.group(1)), int(m.group(2))
    timing["single"] = "one request per point" in text
    points = []
    in_points = False
    for line in text.splitlines():
        if line.startswith("points"):
            in_points = True
            continue
        if in_points and line.startswith("  "):
            f = line.split()
            if len(f) >= 4 and f[1] in LIMIT:
                points.append({"name": f[0], "table": f[1], "address": int(f[2]),
                               "span": 1 if f[1] in ("coil", "discrete") else SPAN.get(f[3], 1)})
    return {"timing": timing, "points": points}


def greedy_reads(points: list[dict], limit: int, max_gap: int | None, single: bool) -> list[tuple[str, int, int]]:
    """Fewest reads covering every point: per table, start at the lowest uncovered point and extend while the
    read stays within `limit` and no hole exceeds `max_gap` (None = any hole). Greedy is optimal for covering
    points on a line with these two constraints (an exchange argument)."""
    reads = []
    by_table: dict[str, list[tuple[int, int]]] = {}
    for p in points:
        by_table.setdefault(p["table"], []).append((p["address"], p["address"] + p["span"]))
    for table, spans in sorted(by_table.items()):
        spans = sorted(set(spans))
        if single:
            reads += [(table, a, e - a) for a, e in spans]
            continue
        cap = min(limit, LIMIT[table])
        i = 0
        while i < len(spans):
            start, end = spans[i]
            j = i + 1
            while j < len(spans):
                a, e = spans[j]
                if e - start > cap or (max_gap is not None and a - end > max_gap):
                    break
                end = max(end, e)
                j += 1
            reads.append((table, start, end - start))
            i = j
    return reads


def profile_table(profile_dir: Path, pantau: Path | None) -> list[dict]:
    rows = []
    ids = sorted(p.stem for p in profile_dir.glob("*.yaml"))
    for pid in ids:
        row: dict = {"profile": pid}
        if pantau is None:
            row["error"] = "no pantau binary"
            rows.append(row)
            continue
        try:
            shown = parse_show(run([str(pantau), "profiles", "show", pid, "--dir", str(profile_dir)]))
            plan_text = run([str(pantau), "profiles", "plan", pid, "--dir", str(profile_dir)])
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            row["error"] = str(e)
            rows.append(row)
            continue
        m = re.search(r"(\d+) requests? per poll for (\d+) points", plan_text)
        requests = [(int(fc, 16), int(count)) for fc, count in
                    re.findall(r"FC([0-9a-fA-F]{2})\s+\S+\s+address\s+\d+\s+count\s+(\d+)", plan_text)]
        t = shown["timing"]
        pts = shown["points"]
        row.update({
            "points": len(pts),
            "plan_requests": int(m.group(1)) if m else None,
            "plan_registers": sum(c for _, c in requests),
            "plan": requests,
            "min_within_profile_limits": len(greedy_reads(pts, t["max_registers"], t["max_gap"], t["single"])),
            "min_protocol": len(greedy_reads(pts, 125, None, False)),
            "one_read_per_point": len(pts),
            "profile_max_registers": t["max_registers"], "profile_max_gap": t["max_gap"],
            "single_point_reads": t["single"],
            "rtu_9600_8e1_theory_ms": round(rtu_ms(requests), 1),
        })
        rows.append(row)
    return rows


def rtu_ms(requests: list[tuple[int, int]], baud: int = 9600, bits: int = 11) -> float:
    """Modbus over Serial Line V1.02 timing: request (8 chars) + response (5 + data chars) + 2 x t3.5 each."""
    t_char = bits / baud
    t35 = 3.5 * t_char if baud <= 19200 else 0.00175
    total = 0.0
    for fc, count in requests:
        data = 2 * count if fc in (3, 4) else (count + 7) // 8
        total += (8 + 5 + data) * t_char + 2 * t35
    return total * 1000


class PtyPair:
    def __init__(self, workdir: Path):
        self.a, self.b = workdir / "ptyA", workdir / "ptyB"
        for p in (self.a, self.b):
            if p.exists() or p.is_symlink():
                p.unlink()
        self.proc = subprocess.Popen(["socat", f"PTY,raw,echo=0,link={self.a}", f"PTY,raw,echo=0,link={self.b}"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (self.a.exists() and self.b.exists()):
            time.sleep(0.05)
        if not (self.a.exists() and self.b.exists()):
            raise RuntimeError("socat did not create the pty pair")

    def stop(self) -> None:
        benchlib.stop(self.proc)


def start_fake(python: str, port: Path, units: str, log: Path, max_seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([python, str(Path(__file__).parent / "fake_rtu.py"), "--port", str(port), "--baud", "9600",
                             "--bits", "11", "--units", units, "--log", str(log),
                             "--max-seconds", str(int(max_seconds))],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if "ready" not in line:
        benchlib.stop(proc)
        raise RuntimeError("fake RTU slave did not start")
    return proc


def read_log(path: Path) -> list[dict]:
    out = []
    try:
        for line in path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    except OSError:
        pass
    return out


def rtu_cycle(pantau: Path, profile_dir: Path, workdir: Path, seconds: float, python: str,
              profiles: list[dict]) -> dict:
    """Every shipped profile as one device on one 9600 8E1 bus, polled every 100 ms (faster than the bus can go, so
    the bus runs back to back): the achieved cycle (between successive polls of unit 1) against the theory."""
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    pty = PtyPair(workdir)
    log = workdir / "transactions.jsonl"
    fake = None
    gw = None
    try:
        fake = start_fake(python, pty.b, f"1-{len(profiles)}", log, seconds + 60)
        lines = ["gateway: {site: bench, id: rtu}", f"profiles: [{profile_dir}]", "buses:",
                 f"  - {{name: rs485, type: rtu, device: {pty.a}, baud: 9600, parity: even, data_bits: 8, "
                 "stop_bits: 1, rs485: false}", "devices:"]
        for i, p in enumerate(profiles):
            lines.append(f"  - {{name: dev{i + 1:02d}, bus: rs485, unit: {i + 1}, profile: {p['profile']}, "
                         "poll_interval: 100ms}")
        broker_port = benchlib.free_port()  # nobody listens: readings stay in the journal, which is fine here
        lines += ["mqtt:", f"  brokers: [{{host: 127.0.0.1, port: {broker_port}}}]", "  client_id: pantau-bench-rtu",
                  "journal:", f"  path: {workdir / 'journal.sqlite'}", "  durability: normal",
                  f"status: {{socket: {workdir / 'status.sock'}}}"]
        cfg = workdir / "gateway.yaml"
        cfg.write_text("\n".join(lines) + "\n")
        out_log = open(workdir / "pantau.log", "w")
        gw = subprocess.Popen([str(pantau), "run", "--config", str(cfg)], cwd=workdir, stdout=out_log,
                              stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and gw.poll() is None:
            time.sleep(0.25)
        exited = gw.poll()
    finally:
        benchlib.stop(gw)
        benchlib.stop(fake)
        pty.stop()
    tx = read_log(log)
    result: dict = {"seconds": seconds, "devices": len(profiles), "transactions": len(tx),
                    "gateway_exited_early": exited is not None}
    if exited is not None:
        try:
            result["log_tail"] = "\n".join((workdir / "pantau.log").read_text().splitlines()[-10:])
        except OSError:
            pass
    plan_per_cycle = [tuple(r) for p in profiles for r in p["plan"]]
    theory = rtu_ms(plan_per_cycle)
    result["transactions_per_cycle_planned"] = len(plan_per_cycle)
    result["theory_cycle_ms"] = round(theory, 1)
    if len(tx) < 3:
        result["error"] = "too few transactions on the fake bus"
        return result
    t_char = 11 / 9600
    t35 = 3.5 * t_char
    starts = [t["t_start"] for t in tx if t["unit"] == 1]
    # Skip the first cycle: connections open and devices are discovered then.
    cycles = [(b - a) * 1000 for a, b in zip(starts[1:], starts[2:])]
    gaps = [(b["t_start"] - a["t_end"]) * 1000 for a, b in zip(tx, tx[1:]) if b["t_start"] - a["t_end"] < 0.5]
    busy = sum(t["t_end"] - t["t_start"] + t35 for t in tx)
    span = tx[-1]["t_end"] - tx[0]["t_start"]
    per_cycle = None
    if len(starts) >= 3:
        counts = []
        for a, b in zip(starts[1:], starts[2:]):
            counts.append(sum(1 for t in tx if a <= t["t_start"] < b))
        per_cycle = statistics.median(counts)
    result.update({
        "achieved_cycle_ms_median": round(statistics.median(cycles), 1) if cycles else None,
        "achieved_cycle_ms_p90": round(benchlib.percentile(cycles, 0.9), 1) if cycles else None,
        "cycles_measured": len(cycles),
        "transactions_per_cycle_observed": per_cycle,
        "achieved_over_theory": round(statistics.median(cycles) / theory, 3) if cycles and theory else None,
        "master_gap_ms_median": round(statistics.median(gaps), 2) if gaps else None,
        "t35_ms": round(t35 * 1000, 2),
        "gap_violations": sum(1 for t in tx if t["gap_violation"]),
        "bus_utilisation": round(busy / span, 3) if span > 0 else None,
    })
    return result


def mbpoll_reference(workdir: Path, python: str) -> dict:
    """Checks the fake slave's timing model with a reference master (mbpoll): one read of 1, 10 and 125 registers,
    the slave's modelled time against (13 + 2N) t_char + t3.5."""
    if shutil.which("mbpoll") is None:
        return {"skipped": "mbpoll not installed"}
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    pty = PtyPair(workdir)
    log = workdir / "transactions.jsonl"
    fake = None
    try:
        fake = start_fake(python, pty.b, "1", log, 60)
        for n in (1, 10, 125):
            subprocess.run(["mbpoll", "-m", "rtu", "-b", "9600", "-P", "even", "-a", "1", "-r", "1", "-c", str(n),
                            "-t", "4", "-1", str(pty.a)], capture_output=True, timeout=20)
    finally:
        benchlib.stop(fake)
        pty.stop()
    t_char = 11 / 9600
    rows = []
    for t in read_log(log):
        model = ((8 + 5 + 2 * t["count"]) * t_char + 3.5 * t_char) * 1000
        rows.append({"registers": t["count"], "slave_ms": round((t["t_end"] - t["t_start"]) * 1000, 2),
                     "model_ms": round(model, 2), "table_ms_incl_master_gap": round(model + 3.5 * t_char * 1000, 1)})
    return {"reads": rows}
