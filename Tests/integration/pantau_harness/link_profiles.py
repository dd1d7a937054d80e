"""Shipped profiles that are not Modbus (framed UART `frame:`, SDI-12 `sdi12:`), polled end to end: `pantau
simulate` serves the profile on one end of a socat pty pair, `pantau run` polls the other end, and the telemetry
must carry exactly the profile's published points with a usable quality."""

from __future__ import annotations

import glob
import math
import os
import subprocess

from . import senml
from .config import BASE_TOPIC, gateway_yaml, topic
from .gateway import binary_path
from .modbus_sim import PtyPair
from .procs import kill, repo_root, wait_until

PROFILE_DIR = os.path.join(repo_root(), "firmware-profiles")


def shipped(kind: str) -> list[str]:
    """Ids of the shipped profiles with a top-level `kind:` section (`frame` or `sdi12`)."""
    out = []
    for path in sorted(glob.glob(os.path.join(PROFILE_DIR, "*.yaml"))):
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        if any(line.startswith(f"{kind}:") for line in lines):
            out.append(next(line.split(":", 1)[1].strip() for line in lines if line.startswith("id:")))
    return out


def poll_shipped(profile: str, kind: str, workdir: str, short_tmp: str, broker, collector, gateway) -> None:
    from test_shipped_profiles_e2e import read_profile  # the independent YAML point reader

    _, points = read_profile(os.path.join(PROFILE_DIR, f"{profile}.yaml"))
    published = {p.name: p for p in points if p.publish}
    pair = PtyPair(workdir)
    pair.start()
    unit = 48 if kind == "sdi12" else 1
    flag = "--sdi12" if kind == "sdi12" else "--uart"
    out_path = os.path.join(workdir, "simulate.out")
    with open(out_path, "wb") as out, open(os.path.join(workdir, "simulate.log"), "wb") as log:
        sim = subprocess.Popen([binary_path(), "simulate", "--dir", PROFILE_DIR, "--profile", f"{profile}:{unit}",
                                flag, pair.device_path], stdin=subprocess.DEVNULL, stdout=out, stderr=log)
    try:
        assert wait_until(lambda: b"serving" in open(out_path, "rb").read() or sim.poll() is not None, 15)
        assert sim.poll() is None, open(os.path.join(workdir, "simulate.log")).read()
        bus = {"name": "link", "type": "sdi12" if kind == "sdi12" else "uart", "device": pair.gateway_path}
        gw = gateway(gateway_yaml(
            broker_port=broker.port, workdir=short_tmp, status_socket=os.path.join(short_tmp, "s.sock"),
            profiles=[PROFILE_DIR], buses=[bus],
            devices=[{"name": "d", "bus": "link", "unit": unit, "profile": profile, "poll_interval": "1s"}]))
        message = collector.wait_for_messages(topic("telemetry", "d"), 2, 30, watch=gw)[1]
        records = senml.resolve(message.json())
        assert set(records) == set(published), (sorted(records), sorted(published))
        for name, record in records.items():
            assert record.quality in ("good", "out_of_range"), (name, record)
            assert isinstance(record.value, (int, float)) and math.isfinite(record.value), (name, record)
            assert (record.unit or "") == published[name].unit, (name, record.unit, published[name].unit)
    finally:
        kill(sim)
        pair.stop()


__all__ = ["BASE_TOPIC", "poll_shipped", "shipped"]
