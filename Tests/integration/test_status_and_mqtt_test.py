"""Issue #6: the technician's diagnostics against real processes.

- `pantau status` (human and `--json`) reads a running gateway's status socket: the bus, one line per device with
  its state and poll interval, the journal and the broker connection.
- `pantau mqtt-test` walks resolve, tcp, (tls), mqtt connect, subscribe, publish, receive against a real mosquitto
  and names the first failing step: a refused TCP port, a wrong password (mosquitto `password_file`), a broker
  certificate not signed by the configured CA. Failures exit 69 (EX_UNAVAILABLE).
"""

from __future__ import annotations

import getpass
import json
import os
import re
import subprocess

import pytest

from pantau_harness import mixed_types
from pantau_harness.broker import MosquittoBroker
from pantau_harness.config import BASE_TOPIC, GATEWAY_ID, SITE, device, gateway_yaml, tcp_bus, topic
from pantau_harness.procs import free_port

pytestmark = pytest.mark.gateway

EX_UNAVAILABLE = 69
PROBE_STEPS = ["resolve", "tcp", "mqtt connect", "subscribe", "publish", "receive"]
TLS_PROBE_STEPS = ["resolve", "tcp", "tls", "mqtt connect", "subscribe", "publish", "receive"]


def run_cli(binary: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [binary, *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def output(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


def with_mqtt_settings(config_text: str, *lines: str) -> str:
    """Adds `mqtt:` keys (username, password_file, tls) to a harness config; the harness writes none of them."""
    assert "\nmqtt:\n" in config_text
    return config_text.replace("\nmqtt:\n", "\nmqtt:\n" + "".join(f"  {line}\n" for line in lines), 1)


def probe_config(workdir: str, broker_port: int, *mqtt_lines: str) -> str:
    """A config file for `pantau mqtt-test`: only its mqtt section matters (no gateway runs)."""
    text = gateway_yaml(
        broker_port=broker_port, workdir=workdir, buses=[tcp_bus("tcp-1", free_port())],
        devices=[device("dev-a", "tcp-1", 1)], status_socket=os.path.join(workdir, "status.sock"),
    )
    path = os.path.join(workdir, "probe.yaml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(with_mqtt_settings(text, *mqtt_lines))
    return path


def mqtt_test_json(binary: str, config_path: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
    result = run_cli(binary, "mqtt-test", "--config", config_path, "--json", "--timeout-ms", "5000")
    try:
        steps = json.loads(result.stdout)
    except ValueError as error:
        raise AssertionError(f"mqtt-test --json printed no JSON ({error})\n{output(result)}") from None
    assert isinstance(steps, list) and all({"name", "ok", "detail"} <= set(s) for s in steps), output(result)
    return result, steps


def assert_all_ok(result, steps, expected_names) -> None:
    assert result.returncode == 0, output(result)
    assert [s["name"] for s in steps] == expected_names, output(result)
    assert all(s["ok"] is True and s["detail"] for s in steps), output(result)


def assert_fails_at(result, steps, failing: str) -> dict:
    """Every step before `failing` passed, `failing` failed and is the last one, and the exit code says so."""
    assert result.returncode == EX_UNAVAILABLE, output(result)
    names = [s["name"] for s in steps]
    assert failing in names, f"no {failing!r} step\n{output(result)}"
    index = names.index(failing)
    assert all(s["ok"] for s in steps[:index]), output(result)
    assert steps[index]["ok"] is False and index == len(steps) - 1, output(result)
    assert steps[index]["detail"], output(result)
    return steps[index]


# --- pantau status -------------------------------------------------------------------------------------------


def test_status_human_and_json_describe_a_running_gateway(
    pantau_bin, mosquitto_broker, mqtt_collector, pymodbus_tcp_device, gateway, short_tmp, schemas,
):
    collector = mqtt_collector(mosquitto_broker, f"{BASE_TOPIC}/#")
    sim = pymodbus_tcp_device({1: mixed_types.register_spec()})  # unit 2 never answers
    socket_path = os.path.join(short_tmp, "st.sock")
    journal_path = os.path.join(short_tmp, "journal.sqlite")
    config = gateway_yaml(
        broker_port=mosquitto_broker.port, workdir=short_tmp, buses=[tcp_bus("tcp-1", sim.port)],
        devices=[
            device("dev-a", "tcp-1", 1, poll_interval="1s"),
            device("dev-b", "tcp-1", 2, poll_interval="2s", timeout_ms=300, retries=0),
        ],
        status_socket=socket_path,
    )
    gw = gateway(config)
    collector.wait_for_messages(topic("telemetry", "dev-a"), 2, 30, watch=gw)
    collector.wait_for(
        lambda c: [m for m in c.messages(topic("availability", "dev-b")) if m.json().get("state") == "offline"],
        30, "dev-b offline", gw)
    collector.wait_for(
        lambda c: [m for m in c.messages(topic("status")) if m.json().get("state") == "online"], 10,
        "gateway online", gw)

    result = run_cli(pantau_bin, "status", "--socket", socket_path, "--json")
    assert result.returncode == 0, output(result)
    snapshot = json.loads(result.stdout)
    schemas.validate("health", snapshot)  # the status socket answers the health message's body
    assert (snapshot["site"], snapshot["gateway"]) == (SITE, GATEWAY_ID), snapshot
    assert snapshot["uptime_s"] > 0, snapshot
    assert snapshot["broker"]["connected"] is True, snapshot["broker"]
    assert str(mosquitto_broker.port) in (snapshot["broker"].get("broker") or ""), snapshot["broker"]
    assert snapshot["broker"]["acked_total"] > 0, snapshot["broker"]
    journal = snapshot["journal"]
    assert os.path.realpath(journal["path"]) == os.path.realpath(journal_path), journal
    assert isinstance(journal["pending"], int) and journal["pending"] >= 0, journal
    # Write-behind: with the broker up, PUBACKs arrive before the group commit, so nothing needs writing.
    assert journal["committed_total"] >= journal["acked_total"] >= 0, journal
    assert journal["never_written_total"] > 0 and journal["lost_in_crash"] == 0, journal
    assert journal["drops_total"] == 0, journal

    assert [b["name"] for b in snapshot["buses"]] == ["tcp-1"], snapshot["buses"]
    bus = snapshot["buses"][0]
    assert bus["connected"] is True and bus["transactions"] > 0 and bus["timeouts"] > 0, bus
    devices = {d["name"]: d for d in bus["devices"]}
    assert set(devices) == {"dev-a", "dev-b"}, bus["devices"]
    a, b = devices["dev-a"], devices["dev-b"]
    assert (a["unit"], a["state"], a["interval_ms"]) == (1, "online", 1000), a
    assert a["polls"] >= 2 and a["consecutive_errors"] == 0, a
    last_telemetry_ms = collector.last(topic("telemetry", "dev-a")).json()[0]["bt"] * 1000
    assert isinstance(a["last_reading_ts"], int) and a["last_reading_ts"] >= last_telemetry_ms, (a, last_telemetry_ms)
    assert a["last_reading_ts"] <= snapshot["ts"], (a, snapshot["ts"])
    # An offline device is probed at a backoff interval, never faster than configured.
    assert (b["unit"], b["state"]) == (2, "offline") and b["interval_ms"] >= 2000, b
    assert b["errors_total"] > 0 and b["last_error"], b
    assert b.get("last_reading_ts") is None, b

    human = run_cli(pantau_bin, "status", "--socket", socket_path)
    assert human.returncode == 0, output(human)
    text = human.stdout
    assert re.search(rf"site {SITE}\s+gateway {GATEWAY_ID}", text), text
    assert re.search(rf"^broker\s+connected\b.*{mosquitto_broker.port}", text, re.M), text
    assert re.search(r"^journal\s+backlog \d+ ", text, re.M), text
    assert re.search(r"^bus tcp-1\s+open\s+transactions \d+\s+timeouts [1-9]", text, re.M), text
    assert re.search(r"^\s+dev-a\s+unit 1\s+ONLINE\s+last reading \d+s ago\s+every 1s\s+errors 0", text, re.M), text
    assert re.search(r"^\s+dev-b\s+unit 2\s+OFFLINE\s+last reading never\s+every \d+s\s+errors [1-9]", text, re.M), text

    # The socket path also comes from the configuration file.
    by_config = run_cli(pantau_bin, "status", "--config", gw.config_path, "--json")
    assert by_config.returncode == 0, output(by_config)
    assert json.loads(by_config.stdout)["gateway"] == GATEWAY_ID


def test_status_without_a_gateway_exits_69_with_a_hint(pantau_bin, short_tmp):
    result = run_cli(pantau_bin, "status", "--socket", os.path.join(short_tmp, "none.sock"))
    assert result.returncode == EX_UNAVAILABLE, output(result)
    assert "none.sock" in result.stderr and "gateway running" in result.stderr, output(result)


# --- pantau mqtt-test ----------------------------------------------------------------------------------------


def test_mqtt_test_passes_every_step_against_the_plain_broker(pantau_bin, mosquitto_broker, mqtt_collector, tmp_path):
    watcher = mqtt_collector(mosquitto_broker, f"{BASE_TOPIC}/test")
    config_path = probe_config(str(tmp_path), mosquitto_broker.port)
    result, steps = mqtt_test_json(pantau_bin, config_path)
    assert_all_ok(result, steps, PROBE_STEPS)
    # The round trip really went through this broker, on the contract's test topic.
    token = watcher.wait_for_messages(f"{BASE_TOPIC}/test", 1, 10)[0]
    assert token.payload.startswith(b"pantau-mqtt-test-"), token

    human = run_cli(pantau_bin, "mqtt-test", "--config", config_path)
    assert human.returncode == 0, output(human)
    assert f"127.0.0.1:{mosquitto_broker.port}" in human.stdout and "anonymous" in human.stdout, output(human)
    for name in PROBE_STEPS:
        assert re.search(rf"^ok\s+{name}\b", human.stdout, re.M), f"no ok line for {name}\n{output(human)}"


def test_mqtt_test_names_the_tcp_step_when_nothing_listens(pantau_bin, tmp_path):
    config_path = probe_config(str(tmp_path), free_port())
    result, steps = mqtt_test_json(pantau_bin, config_path)
    assert_fails_at(result, steps, "tcp")
    assert [s["name"] for s in steps] == ["resolve", "tcp"], output(result)


class ConfiguredBroker(MosquittoBroker):
    """A mosquitto with listener options of the test's choosing (password file, TLS); no anonymous access."""

    def __init__(self, workdir: str, listener_lines: list[str]):
        self.listener_lines = listener_lines
        super().__init__(workdir)

    def _write_conf(self) -> None:
        lines = [
            f"listener {self.port} 127.0.0.1",
            *self.listener_lines,
            f"user {getpass.getuser()}",
            "log_dest stderr",
            "log_type all",
            "persistence false",
        ]
        with open(self.conf_path, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")


@pytest.fixture
def configured_broker(tmp_path, request):
    brokers: list[ConfiguredBroker] = []

    def make(listener_lines: list[str]) -> ConfiguredBroker:
        workdir = tmp_path / f"cbroker{len(brokers)}"
        workdir.mkdir()
        broker = ConfiguredBroker(str(workdir), listener_lines)
        brokers.append(broker)
        broker.start()
        return broker

    yield make
    for broker in brokers:
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            print(f"--- mosquitto log (port {broker.port}) ---\n{broker.logs()[-4000:]}")
        broker.kill()


def test_mqtt_test_with_a_password_file_names_the_connect_step_on_a_wrong_password(
    pantau_bin, configured_broker, tmp_path,
):
    passwd = tmp_path / "mosquitto.passwd"
    made = subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(passwd), "gw-01", "right-secret"], capture_output=True, text=True,
        timeout=30)
    assert made.returncode == 0, made.stderr
    os.chmod(passwd, 0o600)
    broker = configured_broker(["allow_anonymous false", f"password_file {passwd}"])

    right = tmp_path / "right.pw"
    right.write_text("right-secret\n")  # the trailing newline is dropped, as for a file written with echo
    wrong = tmp_path / "wrong.pw"
    wrong.write_text("not-the-secret\n")
    for secret in (right, wrong):
        os.chmod(secret, 0o600)  # a password file readable by everyone is refused (issue 11)

    ok_dir = tmp_path / "ok"
    ok_dir.mkdir()
    result, steps = mqtt_test_json(
        pantau_bin, probe_config(str(ok_dir), broker.port, "username: gw-01", f"password_file: {right}"))
    assert_all_ok(result, steps, PROBE_STEPS)
    assert "gw-01" in steps[PROBE_STEPS.index("mqtt connect")]["detail"], steps

    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    config_path = probe_config(str(bad_dir), broker.port, "username: gw-01", f"password_file: {wrong}")
    result, steps = mqtt_test_json(pantau_bin, config_path)
    failed = assert_fails_at(result, steps, "mqtt connect")
    assert [s["name"] for s in steps] == ["resolve", "tcp", "mqtt connect"], output(result)
    # MQTT 5 CONNACK 0x86 "bad user name or password" or 0x87 "not authorized": either way, an auth refusal.
    assert re.search(r"user ?name or password|not authori[sz]ed|0x8[67]|13[45]", failed["detail"], re.I), failed
    assert "not-the-secret" not in result.stdout + result.stderr, "the password must never be printed"

    human = run_cli(pantau_bin, "mqtt-test", "--config", config_path)
    assert human.returncode == EX_UNAVAILABLE, output(human)
    assert re.search(r"^FAIL\s+mqtt connect\b", human.stdout, re.M), output(human)
    assert "mqtt connect failed" in human.stderr and "password" in human.stderr, output(human)


def openssl(*args: str, cwd: str) -> None:
    result = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60, cwd=cwd)
    assert result.returncode == 0, f"openssl {' '.join(args)}:\n{result.stderr}"


def make_ca(directory: str, name: str) -> tuple[str, str]:
    key, cert = os.path.join(directory, f"{name}.key"), os.path.join(directory, f"{name}.crt")
    openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
        "-out", cert, "-days", "3", "-subj", f"/CN=Pantau test {name}", cwd=directory)
    return key, cert


def make_server_cert(directory: str, ca_key: str, ca_cert: str) -> tuple[str, str]:
    key, csr, cert = (os.path.join(directory, f"server.{ext}") for ext in ("key", "csr", "crt"))
    ext = os.path.join(directory, "server.ext")
    with open(ext, "w", encoding="utf-8") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", csr,
        "-subj", "/CN=127.0.0.1", cwd=directory)
    openssl(
        "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial", "-out", cert, "-days", "3",
        "-extfile", ext, cwd=directory)
    return key, cert


def test_mqtt_test_over_tls_verifies_the_broker_against_the_configured_ca(pantau_bin, configured_broker, tmp_path):
    pki = str(tmp_path / "pki")
    os.mkdir(pki)
    ca_key, ca_cert = make_ca(pki, "ca")
    _, other_ca = make_ca(pki, "other-ca")
    server_key, server_cert = make_server_cert(pki, ca_key, ca_cert)
    broker = configured_broker([
        "allow_anonymous true", f"cafile {ca_cert}", f"certfile {server_cert}", f"keyfile {server_key}",
    ])

    wrong_dir = tmp_path / "wrong"
    wrong_dir.mkdir()
    wrong_config = probe_config(str(wrong_dir), broker.port, f"tls: {{ca_file: {other_ca}}}")
    result, steps = mqtt_test_json(pantau_bin, wrong_config)
    failed = assert_fails_at(result, steps, "tls")
    assert [s["name"] for s in steps] == ["resolve", "tcp", "tls"], output(result)
    assert "certificate verif" in failed["detail"] and other_ca in failed["detail"], failed

    right_dir = tmp_path / "right"
    right_dir.mkdir()
    config_path = probe_config(str(right_dir), broker.port, f"tls: {{ca_file: {ca_cert}}}")
    result, steps = mqtt_test_json(pantau_bin, config_path)
    assert_all_ok(result, steps, TLS_PROBE_STEPS)
    assert ca_cert in steps[TLS_PROBE_STEPS.index("tls")]["detail"], steps

    human = run_cli(pantau_bin, "mqtt-test", "--config", config_path)
    assert human.returncode == 0, output(human)
    assert "with TLS" in human.stdout and re.search(r"^ok\s+tls\b", human.stdout, re.M), output(human)

    # A plain client cannot talk to the TLS listener: the TLS step is not decorative.
    plain_dir = tmp_path / "plain"
    plain_dir.mkdir()
    result, steps = mqtt_test_json(pantau_bin, probe_config(str(plain_dir), broker.port))
    assert result.returncode == EX_UNAVAILABLE, output(result)
    assert not all(s["ok"] for s in steps), output(result)
