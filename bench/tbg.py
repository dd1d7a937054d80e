"""ThingsBoard IoT Gateway 3.8.5 as the comparison: its configuration for the bench load, and how to start it."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

BENCH = Path(__file__).resolve().parent
VENV_TB = BENCH / "out" / "venv-tb"


def available() -> bool:
    return (VENV_TB / "bin" / "thingsboard-gateway").exists()


def write_config(confdir: Path, broker_port: int, device_ports: list[int], registers: int, poll_ms: int = 1000,
                 mapping: str = "per-register", storage: str = "memory") -> None:
    """tb_gateway.json, modbus.json and logs.json for N devices of `registers` u16 holding registers.

    mapping "per-register" is the usual TBG mapping (one timeseries key per register: one read per register);
    "block" uses one "0-(M-1)" range key, one read per device.
    storage "memory" is its default in-memory queue; "sqlite" its durable SQLite event storage (data.db next to the
    configuration folder, its default TTL and batch settings), the like-for-like comparison for Pantau's journal.
    """
    confdir.mkdir(parents=True, exist_ok=True)
    no_limit = "0:0,"
    tb = {
        "thingsboard": {
            "host": "127.0.0.1", "port": broker_port,
            "remoteShell": False, "remoteConfiguration": False, "latencyDebugMode": False,
            # Statistics are off: their custom commands run shell commands every period.
            "statistics": {"enable": False, "statsSendPeriodInSeconds": 60, "customStatsSendPeriodInSeconds": 3600},
            "deviceFiltering": {"enable": False, "filterFile": "list.json"},
            "maxPayloadSizeBytes": 65536, "minPackSendDelayMS": 50, "minPackSizeToSend": 500,
            "checkConnectorsConfigurationInSeconds": 60, "handleDeviceRenaming": True,
            "security": {"type": "accessToken", "accessToken": "bench-token"},
            "qos": 1,
            "reportStrategy": {"type": "ON_RECEIVED"},
            "checkingDeviceActivity": {"checkDeviceInactivity": False, "inactivityTimeoutSeconds": 300,
                                       "inactivityCheckPeriodSeconds": 10},
            "rateLimits": no_limit, "dpRateLimits": no_limit, "messagesRateLimits": no_limit,
            "deviceMessagesRateLimits": no_limit, "deviceRateLimits": no_limit, "deviceDpRateLimits": no_limit,
        },
        "storage": ({"type": "memory", "read_records_count": 100, "max_records_count": 100000}
                    if storage == "memory" else
                    {"type": "sqlite", "data_file_path": str(confdir.parent / "data") + "/",
                     "messages_ttl_check_in_hours": 1, "messages_ttl_in_days": 7, "max_read_records_count": 1000}),
        "grpc": {"enabled": False},
        "connectors": [{"type": "modbus", "name": "Modbus", "configuration": "modbus.json"}],
    }
    slaves = []
    for i, port in enumerate(device_ports):
        if mapping == "block":
            ts = [{"tag": "r${address}", "type": "16uint", "address": f"0-{registers - 1}", "objectsCount": 1,
                   "functionCode": 3, "maxRegistersPerRequest": 125}]
        else:
            ts = [{"tag": f"r{a}", "type": "16uint", "address": a, "objectsCount": 1, "functionCode": 3}
                  for a in range(registers)]
        slaves.append({
            "host": "127.0.0.1", "port": port, "type": "tcp", "method": "socket", "unitId": 1,
            "deviceName": f"d{i:03d}", "deviceType": "default", "timeout": 35, "byteOrder": "BIG",
            "wordOrder": "BIG", "retries": 3, "retryOnEmpty": True, "retryOnInvalid": True,
            "pollPeriod": poll_ms, "connectAttemptTimeMs": 5000, "connectAttemptCount": 5,
            "waitAfterFailedAttemptsMs": 300000,
            "attributes": [], "timeseries": ts, "attributeUpdates": [], "rpc": [],
        })
    modbus = {"master": {"slaves": slaves}}
    (confdir / "tb_gateway.json").write_text(json.dumps(tb, indent=2))
    (confdir / "modbus.json").write_text(json.dumps(modbus, indent=2))
    # Its modules at WARNING, the root logger at ERROR as in its shipped logs.json (pymodbus 3.9.2 warns about a
    # deprecation on every decode), to files: the gateway is measured, not its logging.
    handlers = {}
    loggers = {}
    for name in ("service", "connector", "converter", "tb_connection", "storage", "extension", "database"):
        handlers[f"{name}Handler"] = {
            "class": "logging.FileHandler", "formatter": "LogFormatter", "filename": f"./logs/{name}.log",
            "encoding": "utf-8", "level": "WARNING"}
        loggers[name] = {"handlers": [f"{name}Handler"], "level": "WARNING", "propagate": False}
    logs = {
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"LogFormatter": {"class": "logging.Formatter",
                                        "format": "%(asctime)s |%(levelname)s| %(name)s %(message)s"}},
        "handlers": handlers, "loggers": loggers,
        "root": {"level": "ERROR", "handlers": ["serviceHandler"]},  # as in its shipped logs.json
    }
    (confdir / "logs.json").write_text(json.dumps(logs, indent=2))
    for extra in ("list.json",):
        src = VENV_TB / "lib" / "python3.11" / "site-packages" / "thingsboard_gateway" / "config" / extra
        if src.exists():
            shutil.copy(src, confdir / extra)


def start(workdir: Path, confdir: Path) -> subprocess.Popen:
    """Starts the gateway from a scratch directory; its update check goes to a dead loopback proxy."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "logs").mkdir(exist_ok=True)
    env = dict(os.environ)
    env.update({
        "TB_GW_CONFIG_DIR": str(confdir),
        "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
        "https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9",
        "NO_PROXY": "", "no_proxy": "",
    })
    log = open(workdir / "stdout.log", "w")
    return subprocess.Popen([str(VENV_TB / "bin" / "thingsboard-gateway")], cwd=workdir, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
