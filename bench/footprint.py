#!/usr/bin/env python3
"""Where Pantau's memory goes, and how often its threads wake (issue 17).

  bench/footprint.py memory [--devices 50 --registers 20 --poll-ms 1000 --seconds 30]
      runs the gateway against pymodbus devices and a private mosquitto; after a warm-up it samples VmRSS every
      0.5 s and then classifies every mapping of /proc/PID/smaps (Rss, kB): the binary's text and data, each shared
      library, the main heap, glibc malloc arenas (64 MiB reservations), thread stacks (a mapping with a guard
      page below it), other anonymous memory. Prints JSON.
  bench/footprint.py idle [--devices 5 --poll-ms 10000 --seconds 60]
      counts voluntary and involuntary context switches of every thread over the window; prints per-thread
      and total wake-ups per second.
  bench/footprint.py smaps PID
      the breakdown of a running process.
  bench/footprint.py floor [--warmup 15 --seconds 10] -- BINARY [ARGS...]
      the same figures as `memory` (median VmRSS every 0.5 s over the window after the warm-up, and the smaps
      breakdown) for any program, e.g. the runtime-floor programs of bench/floor/build.sh: the program must stay
      up for warm-up plus window.
  bench/footprint.py pages PID
      which parts of the program file are resident in a running process: every page of its mappings of the
      executable (from /proc/PID/pagemap, root only), by ELF section, split into clean file pages and private
      (copied on write: relocated or written) pages; the resident .text by module of the symbols on each page
      (Swift mangled names carry the module).
  bench/footprint.py cpu [--devices 10 --registers 20 --poll-ms 1000 --seconds 60 --warmup 30]
      runs the gateway under `valgrind --tool=callgrind` (instruction counts are repeatable on a noisy machine)
      with instrumentation off during start-up and warm-up, counts instructions over the window and the readings
      a subscriber received in it, and prints instructions per reading, the top functions (inclusive and self)
      and where the callgrind file is (for callgrind_annotate).

--pantau PATH (default as bench/run.py: $PANTAU_BIN, .build/release/pantau). Everything on 127.0.0.1.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import benchlib  # noqa: E402
import run  # noqa: E402

HEAD = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \d+\s*(.*)$")
ARENA_KB = 64 * 1024


def read_smaps(pid: int) -> list[dict]:
    maps: list[dict] = []
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            m = HEAD.match(line)
            if m:
                maps.append({"lo": int(m.group(1), 16), "hi": int(m.group(2), 16), "perm": m.group(3),
                             "path": m.group(4).strip(), "Rss": 0})
            elif maps and line.startswith("Rss:"):
                maps[-1]["Rss"] = int(line.split()[1])
    return maps


def classify(pid: int) -> dict[str, int]:
    """Rss kB by category."""
    exe = str(Path(f"/proc/{pid}/exe").resolve())
    maps = read_smaps(pid)
    out: dict[str, int] = {}

    def add(key: str, kb: int) -> None:
        out[key] = out.get(key, 0) + kb

    for i, m in enumerate(maps):
        path, perm, rss = m["path"], m["perm"], m["Rss"]
        size_kb = (m["hi"] - m["lo"]) // 1024
        if path == exe or path.endswith("/pantau"):
            add("binary text (r-x)" if "x" in perm else "binary data and relocations (r--/rw-)", rss)
        elif path.startswith("/"):
            name = Path(path).name
            lib = re.sub(r"[-.]so.*$|\.so.*$", "", name)
            if lib.startswith("libswift") or lib.startswith("libFoundation") or lib.startswith("lib_Foundation"):
                lib = "Swift runtime and Foundation (shared)"
            add(f"lib {lib}", rss)
        elif path == "[heap]":
            add("malloc main arena ([heap])", rss)
        elif path == "[stack]":
            add("main thread stack", rss)
        elif path.startswith("["):
            add(f"kernel {path}", rss)
        elif perm.startswith("---"):
            add("guard/reserved (---p)", rss)
        else:
            prev = maps[i - 1] if i > 0 else None
            nxt = maps[i + 1] if i + 1 < len(maps) else None
            below_guard = prev is not None and prev["hi"] == m["lo"] and prev["perm"].startswith("---") \
                and not prev["path"] and (prev["hi"] - prev["lo"]) <= 64 * 1024
            above_reserve = nxt is not None and nxt["lo"] == m["hi"] and nxt["perm"].startswith("---") \
                and not nxt["path"]
            if above_reserve and (size_kb + (nxt["hi"] - nxt["lo"]) // 1024) == ARENA_KB:
                add("malloc thread arenas", rss)
            elif m["lo"] % (ARENA_KB * 1024) == 0 and size_kb <= ARENA_KB and "x" not in perm:
                add("malloc thread arenas", rss)
            elif below_guard:
                add("thread stacks", rss)
            else:
                add("other anonymous (large mallocs, Swift metadata, SQLite page cache above 128 KiB)", rss)
    out["TOTAL (sum of Rss)"] = sum(v for k, v in out.items())
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def elf_layout(exe: str) -> tuple[int, list[tuple[str, int, int]]]:
    """The first LOAD segment's address and the allocated sections (name, address, size), from readelf."""
    heads = subprocess.run(["readelf", "-lW", exe], capture_output=True, text=True, check=True).stdout
    first = min(int(line.split()[2], 16) for line in heads.splitlines() if line.strip().startswith("LOAD"))
    secs = []
    out = subprocess.run(["readelf", "-SW", exe], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        m = re.match(r"\s*\[\s*\d+\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+\S+\s+(\S*A\S*)", line)
        if m and int(m.group(2), 16):
            secs.append((m.group(1), int(m.group(2), 16), int(m.group(3), 16)))
    return first, sorted(secs, key=lambda x: x[1])


def symbol_module(name: str) -> str:
    """The module a symbol's code belongs to, from its (Swift or C++) mangled name, roughly."""
    if name.startswith("$s"):
        rest = name[2:]
        if rest.startswith("s") or rest.startswith("S"):
            return "Swift standard library"
        m = re.match(r"(\d+)", rest)
        if m:
            n = int(m.group(1))
            mod = rest[len(m.group(1)):len(m.group(1)) + n]
            return "Swift runtime and Concurrency" if mod.startswith("Swift") or mod == "_Concurrency" else mod
        return "Swift (other)"
    if name.startswith("CCryptoBoringSSL") or name.startswith("_CCryptoBoringSSL"):
        return "BoringSSL (swift-crypto)"
    if name.startswith("swift") or name.startswith("_swift") or name.startswith("_ZN5swift") \
            or name.startswith("_ZN4llvm") or name.startswith("_ZNK5swift"):
        return "Swift runtime and Concurrency"
    if name.startswith("_Z"):
        return "C++ (other)"
    return "C (other)"


def resident_pages(pid: int) -> dict:
    """Resident pages of the executable's mappings, by section and (for .text) by module, in kB."""
    exe = str(Path(f"/proc/{pid}/exe").resolve())
    first, secs = elf_layout(exe)
    maps = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and parts[5] == exe:
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                maps.append((lo, hi, int(parts[2], 16)))
    base = next(lo for lo, _, off in maps if off == 0) - (first & ~0xFFF)
    pages: list[tuple[int, bool]] = []  # (vaddr, private)
    with open(f"/proc/{pid}/pagemap", "rb") as pm:
        for lo, hi, _ in maps:
            pm.seek((lo // 4096) * 8)
            raw = pm.read(((hi - lo) // 4096) * 8)
            for i in range(len(raw) // 8):
                e = int.from_bytes(raw[i * 8:i * 8 + 8], "little")
                if e >> 63 & 1:
                    pages.append((lo + i * 4096 - base, not (e >> 61 & 1)))
    # the anonymous rw mapping right after the executable (the rest of .bss) is not a mapping of the file
    by_sec: dict[str, dict[str, int]] = {}
    text = next((s for s in secs if s[0] == ".text"), None)
    text_pages = []
    for va, private in pages:
        names = [n for n, a, z in secs if a < va + 4096 and a + z > va] or ["(between sections)"]
        key = names[0] if len(names) == 1 else f"{names[0]} .. {names[-1]}"
        d = by_sec.setdefault(key, {"clean": 0, "private": 0})
        d["private" if private else "clean"] += 4
        if text and text[1] <= va < text[1] + text[2]:
            text_pages.append(va)
    syms = []
    out = subprocess.run(["nm", "-nS", "--defined-only", exe], capture_output=True, text=True).stdout
    for line in out.splitlines():
        f = line.split()
        if len(f) == 4 and f[2] in "tTwW":
            syms.append((int(f[0], 16), int(f[1], 16), f[3]))
    by_mod: dict[str, float] = {}
    j = 0
    for va in sorted(text_pages):
        while j < len(syms) and syms[j][0] + syms[j][1] <= va:
            j += 1
        k, covered = j, 0
        while k < len(syms) and syms[k][0] < va + 4096:
            a, z, n = syms[k]
            part = min(a + z, va + 4096) - max(a, va)
            if part > 0:
                by_mod[symbol_module(n)] = by_mod.get(symbol_module(n), 0) + part / 1024
                covered += part
            k += 1
        by_mod["(no symbol)"] = by_mod.get("(no symbol)", 0) + (4096 - covered) / 1024
    return {"by_section_kb": dict(sorted(by_sec.items(), key=lambda kv: -sum(kv[1].values()))),
            "text_by_module_kb": {k: round(v) for k, v in sorted(by_mod.items(), key=lambda kv: -kv[1])}}


def threads(pid: int) -> dict[str, dict]:
    out = {}
    for t in sorted(Path(f"/proc/{pid}/task").iterdir()):
        try:
            comm = (t / "comm").read_text().strip()
            st = dict(line.split(":", 1) for line in (t / "status").read_text().splitlines() if ":" in line)
        except OSError:
            continue
        out[f"{t.name} {comm}"] = {"vol": int(st["voluntary_ctxt_switches"]),
                                   "invol": int(st["nonvoluntary_ctxt_switches"])}
    return out


def start_load(args, seconds: float):
    """The pantau binary, a fresh workdir, a private mosquitto, the pymodbus devices (for `seconds`) and the gateway
    configuration for the load in `args`."""
    pantau = run.find_pantau(args.pantau)
    if pantau is None:
        sys.exit("no pantau binary; build one or pass --pantau")
    work = Path(args.workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    (work / "journal.db").unlink(missing_ok=True)
    broker = benchlib.Mosquitto(work / "mosq").start()
    ports = benchlib.free_ports(args.devices)
    devices, _ = run.start_devices(ports, args.registers, seconds)
    cfg = run.pantau_config(work, broker.port, ports, args.registers, args.poll_ms, work / "journal.db")
    return pantau, work, broker, devices, cfg


def with_gateway(args, body):
    pantau, work, broker, devices, cfg = start_load(args, args.seconds + args.warmup + 60)
    gw = run.start_pantau(pantau, cfg, work)
    try:
        time.sleep(args.warmup)
        if gw.poll() is not None:
            sys.exit(f"pantau exited; see {work}/pantau.log")
        result = body(gw.pid)
        result["binary"] = str(pantau)
        result["load"] = f"{args.devices} x {args.registers} @ {args.poll_ms} ms"
        return result
    finally:
        benchlib.stop(gw)
        benchlib.stop(devices)
        broker.stop()


def measure_memory(pid: int, seconds: float) -> dict:
    rss = []
    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end:
        rss.append(benchlib.status_kb(pid, "VmRSS"))
        time.sleep(0.5)
    return {"steady_rss_kb": benchlib.median(rss), "peak_rss_kb": benchlib.status_kb(pid, "VmHWM"),
            "rss_anon_kb": benchlib.status_kb(pid, "RssAnon"), "rss_file_kb": benchlib.status_kb(pid, "RssFile"),
            "threads": len(list(Path(f"/proc/{pid}/task").iterdir())), "smaps_kb": classify(pid)}


def measure_idle(pid: int, seconds: float) -> dict:
    a = threads(pid)
    t0 = time.monotonic()
    time.sleep(seconds)
    b = threads(pid)
    dt = time.monotonic() - t0
    per = {k: round((b[k]["vol"] - a[k]["vol"]) / dt, 2) for k in b if k in a}
    total = sum(per.values())
    invol = sum(b[k]["invol"] - a[k]["invol"] for k in b if k in a) / dt
    return {"seconds": round(dt, 1), "voluntary_per_s_total": round(total, 2),
            "involuntary_per_s_total": round(invol, 2),
            "voluntary_per_s_by_thread": dict(sorted(per.items(), key=lambda kv: -kv[1]))}


def measure_cpu(args) -> dict:
    """Instructions per reading under callgrind, over a window after the warm-up."""
    for old in Path(args.workdir).resolve().glob("callgrind.out*"):
        old.unlink()
    total = args.seconds + args.warmup + 120
    pantau, work, broker, devices, cfg = start_load(args, total)
    # valgrind 3.19 gives up on the Swift 6.3 toolchain's debug information ("Possibly corrupted debuginfo file"):
    # profile a copy without it (function names come from .symtab).
    plain = work / "pantau-nodebug"
    subprocess.run(["strip", "--strip-debug", "-o", str(plain), str(pantau)], check=True)
    sub = run.Subscriber(broker.port, work / "sub.json", total, False, work / "samples")
    gw = run.start_pantau(plain, cfg, work, wrapper=(
        "valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={work / 'callgrind.out'}",
        "--dump-instr=no"))
    try:
        time.sleep(args.warmup)
        if gw.poll() is not None:
            sys.exit(f"pantau exited; see {work}/pantau.log")
        subprocess.run(["callgrind_control", "-i", "on", str(gw.pid)], check=True, capture_output=True)
        t0 = time.time()
        time.sleep(args.seconds)
        subprocess.run(["callgrind_control", "-i", "off", str(gw.pid)], check=True, capture_output=True)
        t1 = time.time()
        subprocess.run(["callgrind_control", "-d", "window", str(gw.pid)], check=True, capture_output=True)
    finally:
        benchlib.stop(gw, timeout=60)
        data = sub.finish()
        benchlib.stop(devices)
        broker.stop()
    seen = run.summarise_rows(data.get("rows", []), t0, t1)
    dumps = sorted(work.glob("callgrind.out*"), key=lambda p: p.stat().st_mtime)
    window = next((d for d in dumps if "window" in d.read_text(errors="replace")[:4000]), dumps[0])
    ann = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=99", str(window)],
                         capture_output=True, text=True).stdout
    total_ir = 0
    for line in ann.splitlines():
        if "PROGRAM TOTALS" in line:
            total_ir = int(line.split()[0].replace(",", ""))
    readings = seen["readings"]
    return {"load": f"{args.devices} x {args.registers} @ {args.poll_ms} ms", "binary": str(pantau),
            "seconds": round(t1 - t0, 1), "readings": readings, "instructions": total_ir,
            "instructions_per_reading": round(total_ir / readings) if readings else None,
            "callgrind_file": str(window),
            "top_self": [line for line in ann.splitlines() if "Ir" not in line and line.strip()][:45]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["memory", "idle", "smaps", "pages", "floor", "cpu"])
    ap.add_argument("rest", nargs="*")
    ap.add_argument("--pantau")
    ap.add_argument("--devices", type=int)
    ap.add_argument("--registers", type=int, default=20)
    ap.add_argument("--poll-ms", type=int)
    ap.add_argument("--seconds", type=float)
    ap.add_argument("--warmup", type=float, default=15)
    ap.add_argument("--workdir", default=str(BENCH / "out" / "work-footprint"))
    argv = sys.argv[1:]
    program = argv[argv.index("--") + 1:] if "--" in argv else []
    args = ap.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    args.rest += program
    if args.mode == "pages":
        print(json.dumps(resident_pages(int(args.rest[0])), indent=1))
        return 0
    if args.mode == "smaps":
        print(json.dumps(classify(int(args.rest[0])), indent=1))
        return 0
    if args.mode == "floor":
        args.seconds = args.seconds or 10
        p = subprocess.Popen(args.rest, stdout=subprocess.DEVNULL)
        try:
            time.sleep(args.warmup)
            if p.poll() is not None:
                sys.exit(f"{args.rest[0]} exited before the window; give it more seconds")
            r = {"program": " ".join(args.rest)} | measure_memory(p.pid, args.seconds)
        finally:
            benchlib.stop(p)
        print(json.dumps(r, indent=1))
        return 0
    if args.mode == "cpu":
        args.devices = args.devices or 10
        args.poll_ms = args.poll_ms or 1000
        args.seconds = args.seconds or 60
        r = measure_cpu(args)
        top = r.pop("top_self")
        print(json.dumps(r, indent=1))
        print("\n".join(top))
        return 0
    if args.mode == "memory":
        args.devices = args.devices or 50
        args.poll_ms = args.poll_ms or 1000
        args.seconds = args.seconds or 30
        print(json.dumps(with_gateway(args, lambda pid: measure_memory(pid, args.seconds)), indent=1))
    else:
        args.devices = args.devices or 5
        args.poll_ms = args.poll_ms or 10000
        args.seconds = args.seconds or 60
        print(json.dumps(with_gateway(args, lambda pid: measure_idle(pid, args.seconds)), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
