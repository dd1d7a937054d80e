"""An MQTT 5 subscriber that records everything it receives, for assertions."""

from __future__ import annotations

import fnmatch
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

_ids = itertools.count(1)


@dataclass
class Received:
    """One PUBLISH as the subscriber saw it; `received_at` is time.time() on arrival."""

    topic: str
    payload: bytes
    retain: bool
    properties: dict[str, Any]
    received_at: float
    qos: int = 1
    _json: Any = field(default=None, repr=False)

    def json(self) -> Any:
        if self._json is None:
            self._json = json.loads(self.payload)
        return self._json

    @property
    def seq(self) -> int | None:
        """The journal sequence the gateway framed into the body (`"seq"` in the object or first record)."""
        try:
            body = self.json()
        except ValueError:
            return None
        first = body[0] if isinstance(body, list) and body else body
        value = first.get("seq") if isinstance(first, dict) else None
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def historical(self) -> bool:
        body = self.json()
        first = body[0] if isinstance(body, list) and body else body
        return isinstance(first, dict) and first.get("hist") is True


def topic_matches(pattern: str, topic: str) -> bool:
    """MQTT filters (`+`, `#`) match as MQTT does; anything else is a shell glob (`*` crosses `/`)."""
    if "+" in pattern or "#" in pattern:
        return mqtt.topic_matches_sub(pattern, topic)
    return fnmatch.fnmatchcase(topic, pattern)


class MqttCollector:
    """Subscribes `topic_filter` at QoS 1 and keeps every message.

    With `persistent=True` the session outlives disconnects (MQTT 5 session expiry), so with a persistent broker
    messages published while the collector was away are delivered when it reconnects.
    """

    def __init__(self, port: int, topic_filter: str = "#", persistent: bool = False, host: str = "127.0.0.1"):
        self.port = port
        self.host = host
        self.topic_filter = topic_filter
        self.persistent = persistent
        self._lock = threading.Lock()
        self._messages: list[Received] = []
        self._subscribed = threading.Event()
        self.connects = 0
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"pantau-collector-{next(_ids)}-{time.monotonic_ns()}",
            protocol=mqtt.MQTTv5,
        )
        self.client.reconnect_delay_set(min_delay=0.2, max_delay=1)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def start(self, timeout: float = 10.0) -> "MqttCollector":
        props = None
        # mosquitto 2.0 persists only sessions opened with clean_start false, even when they have an expiry.
        clean_start = False if self.persistent else mqtt.MQTT_CLEAN_START_FIRST_ONLY
        if self.persistent:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 3600
        self.client.connect(
            self.host, self.port, keepalive=10, clean_start=clean_start, properties=props
        )
        self.client.loop_start()
        if not self._subscribed.wait(timeout):
            self.stop()
            raise RuntimeError(f"collector could not subscribe to {self.topic_filter} on port {self.port}")
        return self

    def stop(self) -> None:
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            return
        self.connects += 1
        # A resumed session keeps its subscription; subscribing again would replay retained messages as new.
        if not flags.session_present:
            client.subscribe(self.topic_filter, qos=1)
        else:
            self._subscribed.set()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        self._subscribed.set()

    def _on_message(self, client, userdata, msg) -> None:
        props = {}
        if msg.properties is not None:
            props = {k: v for k, v in msg.properties.json().items()}
        item = Received(msg.topic, bytes(msg.payload), bool(msg.retain), props, time.time(), msg.qos)
        with self._lock:
            self._messages.append(item)

    @property
    def connected(self) -> bool:
        return self.client.is_connected()

    def all(self) -> list[Received]:
        with self._lock:
            return list(self._messages)

    def messages(self, topic_glob: str = "#", since: float | None = None) -> list[Received]:
        """Messages on topics matching `topic_glob`, in arrival order, optionally received at or after `since`."""
        return [
            m for m in self.all()
            if topic_matches(topic_glob, m.topic) and (since is None or m.received_at >= since)
        ]

    def json(self, topic_glob: str = "#", since: float | None = None) -> list[Any]:
        return [m.json() for m in self.messages(topic_glob, since)]

    def last(self, topic_glob: str) -> Received | None:
        found = self.messages(topic_glob)
        return found[-1] if found else None

    def wait_for(
        self, predicate: Callable[["MqttCollector"], Any], timeout: float, what: str = "condition",
        watch: Any = None,
    ) -> Any:
        """Returns the first truthy value of `predicate(self)`; fails the test after `timeout` seconds.

        `watch` (e.g. the GatewayProcess) fails the wait at once when its `.alive` turns false, with its logs.
        """
        deadline = time.monotonic() + timeout
        while True:
            value = predicate(self)
            if value:
                return value
            if watch is not None and not watch.alive:
                raise AssertionError(f"process exited while waiting for {what}:\n{watch.logs()[-4000:]}")
            if time.monotonic() >= deadline:
                topics = sorted({m.topic for m in self.all()})
                raise AssertionError(
                    f"timed out after {timeout:.0f}s waiting for {what}; "
                    f"{len(self.all())} messages received on {topics}"
                )
            time.sleep(0.05)

    def wait_for_messages(
        self, topic_glob: str, count: int = 1, timeout: float = 10.0, since: float | None = None, watch: Any = None,
    ) -> list[Received]:
        return self.wait_for(
            lambda c: (found := c.messages(topic_glob, since)) and len(found) >= count and found,
            timeout, f"{count} message(s) on {topic_glob}", watch,
        )
