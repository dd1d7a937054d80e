"""A real mosquitto broker on a loopback port, restartable on the same port."""

from __future__ import annotations

import getpass
import os
import subprocess

from .procs import free_port, kill, port_open, terminate, wait_until

MOSQUITTO = "/usr/sbin/mosquitto"
STARTUP_TIMEOUT = 10.0


class MosquittoBroker:
    """mosquitto with anonymous access on 127.0.0.1:`port`.

    With `persistent=True` the broker saves sessions, queued QoS 1 messages and retained messages on SIGTERM and
    restores them on start: a collector with a persistent session then misses nothing across `stop()`/`start()`,
    whatever the order in which it and the gateway reconnect.
    """

    def __init__(self, workdir: str, port: int | None = None, persistent: bool = False):
        self.workdir = workdir
        self.port = port or free_port()
        self.persistent = persistent
        self.conf_path = os.path.join(workdir, "mosquitto.conf")
        self.log_path = os.path.join(workdir, "mosquitto.log")
        self.proc: subprocess.Popen | None = None
        self._write_conf()

    def _write_conf(self) -> None:
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            # Started as root, mosquitto would switch to user `mosquitto`, which cannot write our temp dir.
            f"user {getpass.getuser()}",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "log_timestamp true",
            "max_queued_messages 100000",
            # A restarted broker must not drop QoS 0 for a collector that reconnects after the gateway.
            "queue_qos0_messages true",
        ]
        if self.persistent:
            store = os.path.join(self.workdir, "mosquitto-db")
            os.makedirs(store, exist_ok=True)
            lines += ["persistence true", f"persistence_location {store}/", "autosave_interval 0"]
        else:
            lines.append("persistence false")
        with open(self.conf_path, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")

    def start(self) -> None:
        """Starts (or restarts) on the same port; retries while the old socket is still being released."""
        if self.running:
            return
        for _ in range(3):
            log = open(self.log_path, "ab")
            self.proc = subprocess.Popen([MOSQUITTO, "-c", self.conf_path], stdout=log, stderr=log)
            log.close()
            if wait_until(lambda: port_open(self.port) or self.proc.poll() is not None, STARTUP_TIMEOUT):
                if self.proc.poll() is None:
                    return
            kill(self.proc)
            wait_until(lambda: False, 1.0)
        raise RuntimeError(f"mosquitto did not start on port {self.port}: {self.logs()[-2000:]}")

    def stop(self) -> None:
        """SIGTERM: a clean broker shutdown (clients see the connection drop; no Will is sent by a dead broker)."""
        terminate(self.proc, grace=5)
        wait_until(lambda: not port_open(self.port), 5)

    def kill(self) -> None:
        kill(self.proc)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def logs(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""
