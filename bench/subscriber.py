#!/usr/bin/env python3
"""MQTT subscriber for the benchmarks: counts messages, bytes and readings, and measures the latency from
acquisition to arrival.

- Pantau telemetry (`<prefix>/<site>/<gw>/devices/<dev>/telemetry`): a SenML array whose first record carries
  "bt" (acquisition time, seconds); every record with a value is one reading.
- ThingsBoard gateway telemetry (`v1/gateway/telemetry`): {"dev": [{"ts": ms, "values": {...}}]}; every value is
  one reading, latency per device record.
- With --answer-rpc it answers ThingsBoard's `getSessionLimits` RPC (the gateway publishes nothing before it has an
  answer), with no rate limits.

Prints "ready" once subscribed. On SIGTERM/SIGINT, or after --max-seconds, writes --out (JSON) and exits.
"""
import argparse
import json
import os
import signal
import sys
import threading
import time

import paho.mqtt.client as mqtt

SESSION_LIMITS = {
    "maxPayloadSize": 65536,
    "maxInflightMessages": 100,
    "rateLimits": {"messages": "0:0,", "telemetryMessages": "0:0,", "telemetryDataPoints": "0:0,"},
    "gatewayRateLimits": {"messages": "0:0,", "telemetryMessages": "0:0,", "telemetryDataPoints": "0:0,"},
}


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        # One row per telemetry message: [arrival s, payload+topic bytes, readings, latency ms or None]
        self.rows: list[list] = []
        self.other_messages = 0
        self.other_bytes = 0
        self.rpc_answered = 0
        self.parse_errors = 0
        self.seqs: list[int] = []


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--max-seconds", type=float, default=3600)
    ap.add_argument("--answer-rpc", action="store_true")
    ap.add_argument("--topic", action="append", default=None)
    ap.add_argument("--sample-dir", default=None, help="keeps the first telemetry payload of each kind here")
    args = ap.parse_args()
    topics = args.topic or ["pantau/#", "v1/#"]
    stats = Stats()
    done = threading.Event()
    sampled: set[str] = set()

    def keep_sample(kind: str, payload: bytes) -> None:
        if args.sample_dir and kind not in sampled:
            sampled.add(kind)
            os.makedirs(args.sample_dir, exist_ok=True)
            with open(os.path.join(args.sample_dir, f"{kind}-telemetry.json"), "wb") as f:
                f.write(payload)

    def on_connect(client, userdata, flags, reason_code, properties):
        client.subscribe([(t, 0) for t in topics])

    def on_subscribe(client, userdata, mid, reason_codes, properties):
        print("ready", flush=True)

    def on_message(client, userdata, msg):
        now = time.time()
        size = len(msg.payload) + len(msg.topic)
        topic = msg.topic
        if topic.startswith("v1/devices/me/rpc/request/"):
            try:
                req = json.loads(msg.payload)
            except ValueError:
                req = {}
            if args.answer_rpc and req.get("method") == "getSessionLimits":
                rid = topic.rsplit("/", 1)[1]
                client.publish("v1/devices/me/rpc/response/" + rid, json.dumps(SESSION_LIMITS), qos=1)
                with stats.lock:
                    stats.rpc_answered += 1
            return
        if topic.endswith("/telemetry") and topic.startswith("pantau/"):
            try:
                pack = json.loads(msg.payload)
                first = pack[0]
                bt = float(first.get("bt", 0))
                readings = sum(1 for r in pack if "v" in r or "vs" in r or "vb" in r or "vd" in r)
                latency = (now - bt) * 1000 if bt > 0 else None
                seq = first.get("seq")
            except (ValueError, TypeError, IndexError, AttributeError):
                with stats.lock:
                    stats.parse_errors += 1
                return
            keep_sample("pantau", msg.payload)
            with stats.lock:
                stats.rows.append([now, size, readings, latency])
                if isinstance(seq, int):
                    stats.seqs.append(seq)
            return
        if topic == "v1/gateway/telemetry":
            try:
                body = json.loads(msg.payload)
                rows = []
                for dev, records in body.items():
                    for rec in records:
                        values = rec.get("values", rec)
                        n = len(values)
                        ts = rec.get("ts")
                        latency = now * 1000 - float(ts) if ts else None
                        rows.append([now, 0, n, latency])
                if rows:
                    rows[0][1] = size
            except (ValueError, TypeError, AttributeError):
                with stats.lock:
                    stats.parse_errors += 1
                return
            keep_sample("tbg", msg.payload)
            with stats.lock:
                stats.rows.extend(rows)
            return
        with stats.lock:
            stats.other_messages += 1
            stats.other_bytes += size

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-sub-{time.time_ns()}")
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", args.port, keepalive=30)
    client.loop_start()

    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait(args.max_seconds)
    client.loop_stop()
    with stats.lock:
        out = {
            "rows": stats.rows,
            "other_messages": stats.other_messages,
            "other_bytes": stats.other_bytes,
            "rpc_answered": stats.rpc_answered,
            "parse_errors": stats.parse_errors,
            "seq_first": stats.seqs[0] if stats.seqs else None,
            "seq_last": stats.seqs[-1] if stats.seqs else None,
        }
    with open(args.out, "w") as f:
        json.dump(out, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
