"""An independent command client: MQTT 5 request/response with paho, signed with Python's own hmac/hashlib."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import queue
import secrets
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from .config import BASE_TOPIC, GATEWAY_ID, SITE

_ids = itertools.count()
SIGNED_FIELDS = ("device", "duration_s", "interval_ms", "point", "value")


def signed_text(verb: str, body: dict[str, Any], target: str = f"{SITE}/{GATEWAY_ID}") -> str:
    """docs/mqtt.md, "Signing": pantau-cmd-v1, verb, target, sorted key=value arguments, ts, nonce; one per line."""
    args = "&".join(f"{k}={body[k]}" for k in SIGNED_FIELDS if k in body)
    return "\n".join(["pantau-cmd-v1", verb, target, args, str(body["ts"]), body["nonce"]])


def sign(verb: str, body: dict[str, Any], key: bytes) -> dict[str, Any]:
    """Adds ts (now, ms) and a fresh nonce unless present, and sig."""
    body = dict(body)
    body.setdefault("ts", int(time.time() * 1000))
    body.setdefault("nonce", secrets.token_hex(8))
    body["sig"] = hmac.new(key, signed_text(verb, body).encode(), hashlib.sha256).hexdigest()
    return body


class Commander:
    """Sends `<base>/cmd/<verb>` with a Response Topic and Correlation Data and waits for the matching reply."""

    def __init__(self, port: int, base: str = BASE_TOPIC):
        self.base = base
        self.reply_topic = f"test/replies/{next(_ids)}-{time.monotonic_ns()}"
        self.replies: queue.Queue = queue.Queue()
        self.all_replies: list[dict[str, Any]] = []
        self._subscribed = queue.Queue()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"pantau-commander-{next(_ids)}-{time.monotonic_ns()}",
            protocol=mqtt.MQTTv5,
        )
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self._subscribed.put(True)
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        self.client.subscribe(self.reply_topic, qos=1)
        self._subscribed.get(timeout=10)

    def _on_message(self, client, userdata, msg) -> None:
        corr = msg.properties.CorrelationData if hasattr(msg.properties, "CorrelationData") else None
        reply = json.loads(msg.payload)
        self.all_replies.append(reply)
        self.replies.put((corr, reply))

    def request(self, verb: str, body: dict[str, Any] | bytes, timeout: float = 20.0) -> dict[str, Any]:
        correlation = secrets.token_bytes(8)
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = self.reply_topic
        props.CorrelationData = correlation
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.client.publish(f"{self.base}/cmd/{verb}", payload, qos=1, properties=props)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no reply to {verb} {body!r} within {timeout:.0f}s")
            corr, reply = self.replies.get(timeout=remaining)
            if corr == correlation:
                return reply

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
