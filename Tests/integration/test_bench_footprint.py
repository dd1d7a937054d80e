"""bench/footprint.py's smaps breakdown accounts for every resident kB of a process (issue 17).

No figure is asserted against a threshold: the check is that the classification loses and invents nothing, so the
breakdown in docs/benchmarks.md sums to the process's Rss.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def rollup_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Rss:"):
            return int(line.split()[1])
    raise AssertionError("no Rss in smaps_rollup")


def test_breakdown_sums_to_the_process_rss():
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        out = subprocess.run([sys.executable, str(ROOT / "bench" / "footprint.py"), "smaps", str(sleeper.pid)],
                             capture_output=True, text=True, timeout=60, check=True)
        breakdown = json.loads(out.stdout)
        total = breakdown.pop("TOTAL (sum of Rss)")
        assert total == sum(breakdown.values())
        assert total == rollup_rss(sleeper.pid)
        assert breakdown["main thread stack"] > 0
        assert any(k.startswith("lib libc") for k in breakdown)
    finally:
        sleeper.kill()
        sleeper.wait()


def test_pages_account_for_every_resident_page_of_the_executable():
    """`footprint.py pages` puts every resident page of the executable's file mappings in exactly one section row."""
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        out = subprocess.run([sys.executable, str(ROOT / "bench" / "footprint.py"), "pages", str(sleeper.pid)],
                             capture_output=True, text=True, timeout=120, check=True)
        pages = json.loads(out.stdout)
        exe = str(Path(f"/proc/{sleeper.pid}/exe").resolve())
        smaps_kb, current = 0, None
        for line in Path(f"/proc/{sleeper.pid}/smaps").read_text().splitlines():
            head = line.split()
            if "-" in head[0] and len(head) >= 5 and ":" not in head[0]:
                current = head[5] if len(head) > 5 else ""
            elif head[0] == "Rss:" and current == exe:
                smaps_kb += int(head[1])
        by_section = pages["by_section_kb"]
        assert smaps_kb > 0
        assert sum(v["clean"] + v["private"] for v in by_section.values()) == smaps_kb
        assert by_section[".text"]["clean"] > 0
        assert by_section[".text"]["private"] == 0
    finally:
        sleeper.kill()
        sleeper.wait()
