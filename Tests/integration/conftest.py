"""Fixtures for Pantau's end-to-end tests. Every process a fixture starts is killed at teardown."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pantau_harness.broker import MosquittoBroker  # noqa: E402
from pantau_harness.collector import MqttCollector  # noqa: E402
from pantau_harness.gateway import GatewayProcess, binary_missing_reason, binary_path  # noqa: E402
from pantau_harness.modbus_sim import PtyPair, RegisterSpec, RtuDevice, TcpDevice  # noqa: E402
from pantau_harness.schemas import Schemas  # noqa: E402

# The test host's kernel clock may not be disciplined (a CI container: adjtimex says unsynchronised); the gateway would
# then hold telemetry back (time.unsynced: hold, issue 14). Every pantau process the tests start inherits a test-only
# clock source saying "synchronised, no offset"; test_clock_trust.py gives its gateway a clock of its own.
if "PANTAU_TEST_CLOCK" not in os.environ:
    import tempfile  # noqa: E402

    _clock_fd, _clock_path = tempfile.mkstemp(prefix="pantau-clock-")
    os.write(_clock_fd, b"0 1\n")
    os.close(_clock_fd)
    os.environ["PANTAU_TEST_CLOCK"] = _clock_path


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def _failed(request) -> bool:
    report = getattr(request.node, "report_call", None)
    return report is not None and report.failed


@pytest.fixture
def short_tmp() -> Iterator[str]:
    """A temp dir with a short path: unix socket paths must stay under 108 bytes."""
    path = tempfile.mkdtemp(prefix="pantau-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def make_broker(tmp_path, request):
    """Factory: `make_broker(persistent=False)` starts a mosquitto; all are killed at teardown."""
    brokers: list[MosquittoBroker] = []

    def make(persistent: bool = False) -> MosquittoBroker:
        workdir = tmp_path / f"broker{len(brokers)}"
        workdir.mkdir()
        broker = MosquittoBroker(str(workdir), persistent=persistent)
        brokers.append(broker)
        broker.start()
        return broker

    yield make
    for broker in brokers:
        if _failed(request):
            print(f"--- mosquitto log (port {broker.port}) ---\n{broker.logs()[-4000:]}")
        broker.kill()


@pytest.fixture
def mosquitto_broker(make_broker) -> MosquittoBroker:
    """A running mosquitto on a free loopback port: .port, .stop(), .start() (same port), .kill()."""
    return make_broker()


@pytest.fixture
def mqtt_collector():
    """Factory: `mqtt_collector(broker, topic_filter="#", persistent=False)` returns a subscribed collector."""
    collectors: list[MqttCollector] = []

    def make(broker, topic_filter: str = "#", persistent: bool = False) -> MqttCollector:
        port = broker if isinstance(broker, int) else broker.port
        collector = MqttCollector(port, topic_filter, persistent=persistent).start()
        collectors.append(collector)
        return collector

    yield make
    for collector in collectors:
        collector.stop()


def _units(registers) -> dict[int, RegisterSpec]:
    """A single spec means unit 1; otherwise {unit id: spec}."""
    if registers and all(isinstance(k, int) for k in registers):
        return dict(registers)
    return {1: registers}


@pytest.fixture
def pymodbus_tcp_device(tmp_path, request):
    """Factory: `pymodbus_tcp_device({1: spec, 2: spec})` or `(spec)` for unit 1; returns a TcpDevice (.port)."""
    devices: list[TcpDevice] = []

    def make(registers: Mapping) -> TcpDevice:
        workdir = tmp_path / f"tcpdev{len(devices)}"
        workdir.mkdir()
        device = TcpDevice(str(workdir), _units(registers))
        devices.append(device)
        device.start()
        return device

    yield make
    for device in devices:
        if _failed(request):
            print(f"--- pymodbus TCP device log ---\n{device.logs()[-4000:]}")
        device.kill()


@pytest.fixture
def pymodbus_rtu_device(tmp_path, request):
    """Factory: `pymodbus_rtu_device(registers, baud=9600)` serves RTU on a socat pty pair.

    The gateway (or mbpoll) opens `.gateway_path` (DIR/gw); pymodbus holds DIR/dev.
    """
    started: list[tuple[PtyPair, RtuDevice]] = []

    def make(registers: Mapping, baud: int = 9600) -> RtuDevice:
        workdir = tmp_path / f"rtudev{len(started)}"
        workdir.mkdir()
        pair = PtyPair(str(workdir))
        pair.start()
        device = RtuDevice(str(workdir), _units(registers), pair, baud=baud)
        started.append((pair, device))
        device.start()
        return device

    yield make
    for pair, device in started:
        if _failed(request):
            print(f"--- pymodbus RTU device log ---\n{device.logs()[-4000:]}")
        device.kill()
        pair.stop()


@pytest.fixture
def pantau_bin() -> str:
    """The gateway binary (env PANTAU_BIN, default <repo>/.build/debug/pantau); skips the test when missing."""
    reason = binary_missing_reason()
    if reason:
        pytest.skip(reason)
    return binary_path()


@pytest.fixture
def gateway(pantau_bin, tmp_path, request):
    """Factory: `gateway(config_text, env=None)` writes the config and starts `pantau run --config FILE`.

    Returns a GatewayProcess: .stop() (SIGTERM, wait), .kill(), .restart(), .logs(), .alive, .config_path.
    """
    processes: list[GatewayProcess] = []

    def make(config_text: str, env: dict[str, str] | None = None) -> GatewayProcess:
        workdir = tmp_path / f"gateway{len(processes)}"
        workdir.mkdir()
        process = GatewayProcess(str(workdir), config_text, env)
        processes.append(process)
        return process.start()

    yield make
    for process in processes:
        process.stop(grace=5)
        if _failed(request):
            print(f"--- gateway log ({process.config_path}) ---\n{process.logs()[-8000:]}")


@pytest.fixture(scope="session")
def schemas() -> Schemas:
    """docs/schemas/*.schema.json; `schemas.validate(name, obj)` skips (warns) when a schema file is missing."""
    return Schemas()
