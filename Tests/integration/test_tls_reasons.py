"""Issue #19 item 5: the gateway's log names why a TLS connection to the broker failed, as `mqtt-test` does.

Before, an expired certificate and a hostname mismatch both read "not signed by ... or does not name this host",
and a broker that requires a client certificate showed only "Protocol error" in the gateway log. Each case here is
a real mosquitto with openssl-made certificates; the gateway runs against it and its log is read, then `mqtt-test`
against the same broker must give the same reason.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from pantau_harness.procs import free_port, wait_until
from pantau_harness.config import device, gateway_yaml, tcp_bus
from test_status_and_mqtt_test import ConfiguredBroker, make_ca, openssl, with_mqtt_settings

pytestmark = pytest.mark.gateway

CA_CONF = """[ ca ]
default_ca = CA_default
[ CA_default ]
dir = .
database = ./index.txt
serial = ./serial
new_certs_dir = .
default_md = sha256
policy = policy_any
copy_extensions = none
[ policy_any ]
commonName = supplied
[ server ]
subjectAltName = {san}
extendedKeyUsage = serverAuth
"""


def server_cert(pki: str, ca_key: str, ca_cert: str, name: str, san: str, start: str, end: str) -> tuple[str, str]:
    """A server certificate signed by the CA with the given subjectAltName and validity (openssl ca dates)."""
    key, csr, cert = (os.path.join(pki, f"{name}.{ext}") for ext in ("key", "csr", "crt"))
    conf = os.path.join(pki, f"{name}.cnf")
    with open(conf, "w", encoding="utf-8") as f:
        f.write(CA_CONF.format(san=san))
    open(os.path.join(pki, "index.txt"), "w").close()
    with open(os.path.join(pki, "serial"), "w") as f:
        f.write(f"{abs(hash(name)) % 10**6 + 16:06X}\n")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out",
            csr, "-subj", "/CN=127.0.0.1", cwd=pki)
    openssl("ca", "-batch", "-config", conf, "-cert", ca_cert, "-keyfile", ca_key, "-in", csr, "-out", cert,
            "-startdate", start, "-enddate", end, "-extensions", "server", cwd=pki)
    return key, cert


GOOD_SAN = "IP:127.0.0.1,DNS:localhost"
PAST, YESTERDAY = "20200101000000Z", "20200102000000Z"
FUTURE, FAR = "20990101000000Z", "20991231000000Z"
NOW, LATER = "20240101000000Z", "20980101000000Z"

CASES = {
    "expired": dict(san=GOOD_SAN, start=PAST, end=YESTERDAY, require_client=False, other_ca=False,
                    reason="the broker's certificate has expired"),
    "not_yet_valid": dict(san=GOOD_SAN, start=FUTURE, end=FAR, require_client=False, other_ca=False,
                          reason="the broker's certificate is not valid yet"),
    "hostname": dict(san="DNS:elsewhere.example", start=NOW, end=LATER, require_client=False, other_ca=False,
                     reason="the broker's certificate does not name 127.0.0.1"),
    "unknown_ca": dict(san=GOOD_SAN, start=NOW, end=LATER, require_client=False, other_ca=True,
                       reason="the broker's certificate is not signed by the CA in"),
    "client_cert_required": dict(san=GOOD_SAN, start=NOW, end=LATER, require_client=True, other_ca=False,
                                 reason="the broker requires a client certificate"),
}


@pytest.fixture
def tls_broker(tmp_path):
    brokers: list[ConfiguredBroker] = []

    def make(lines: list[str]) -> ConfiguredBroker:
        workdir = tmp_path / f"tlsbroker{len(brokers)}"
        workdir.mkdir()
        broker = ConfiguredBroker(str(workdir), lines)
        brokers.append(broker)
        broker.start()
        return broker

    yield make
    for broker in brokers:
        broker.kill()


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_gateway_log_and_mqtt_test_name_the_same_tls_reason(case, tls_broker, gateway, pantau_bin, tmp_path):
    spec = CASES[case]
    pki = str(tmp_path / "pki")
    os.mkdir(pki)
    ca_key, ca_cert = make_ca(pki, "ca")
    _, other_ca = make_ca(pki, "other-ca")
    key, cert = server_cert(pki, ca_key, ca_cert, case, spec["san"], spec["start"], spec["end"])
    lines = ["allow_anonymous true", f"cafile {ca_cert}", f"certfile {cert}", f"keyfile {key}"]
    if spec["require_client"]:
        lines.append("require_certificate true")
    broker = tls_broker(lines)
    ca_file = other_ca if spec["other_ca"] else ca_cert

    workdir = str(tmp_path / "gw")
    os.mkdir(workdir)
    text = gateway_yaml(
        broker_port=broker.port, workdir=workdir, buses=[tcp_bus("tcp-1", free_port())],
        devices=[device("dev-a", "tcp-1", 1)], status_socket=os.path.join(workdir, "st.sock"))
    config = with_mqtt_settings(text, f"tls: {{ca_file: {ca_file}}}")
    gw = gateway(config)
    assert wait_until(lambda: "MQTT connection" in gw.logs() or not gw.alive, 60), gw.logs()[-3000:]
    assert wait_until(lambda: spec["reason"] in gw.logs() or not gw.alive, 30), gw.logs()[-3000:]
    failures = [line for line in gw.logs().splitlines() if "MQTT connection" in line]
    assert any(spec["reason"] in line and "tls" in line for line in failures), "\n".join(failures[-5:])
    assert "Protocol error" not in "\n".join(failures), "\n".join(failures[-5:])
    gw.stop()

    path = os.path.join(workdir, "probe.yaml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(config)
    probe = subprocess.run([pantau_bin, "mqtt-test", "--config", path, "--json", "--timeout-ms", "5000"],
                           capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    steps = json.loads(probe.stdout)
    failed = [s for s in steps if not s["ok"]]
    assert failed and failed[0]["name"] == "tls", steps
    assert spec["reason"] in failed[0]["detail"], steps
