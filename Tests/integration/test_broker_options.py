"""The command-center tools (`pantau cmd`, `pantau monitor`) read the MQTT password the way the gateway does: a
password file that every user of the machine may read is refused before any connection, with the gateway's own
message, and a private one is used."""

from __future__ import annotations

import os
import subprocess


def run_cmd(pantau_bin: str, port: int, password_file: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [pantau_bin, "cmd", "--host", "127.0.0.1", "--port", str(port), "--username", "center",
         "--password-file", password_file, "--site", "s", "--gateway", "g", "--timeout-ms", "1000", "health"],
        capture_output=True, text=True, timeout=30)


def test_world_readable_password_file_is_refused_like_the_gateway_refuses_it(pantau_bin, mosquitto_broker, tmp_path):
    secret = tmp_path / "mqtt-password"
    secret.write_text("s3cret\n")
    os.chmod(secret, 0o644)
    done = run_cmd(pantau_bin, mosquitto_broker.port, str(secret))
    assert done.returncode == 78, done.stderr
    assert f"password_file '{secret}' is readable by everyone (mode 644)" in done.stderr
    assert f"chmod o-rwx '{secret}'" in done.stderr


def test_private_password_file_is_used(pantau_bin, mosquitto_broker, tmp_path):
    secret = tmp_path / "mqtt-password"
    secret.write_text("s3cret\n")
    os.chmod(secret, 0o640)
    done = run_cmd(pantau_bin, mosquitto_broker.port, str(secret))
    # The anonymous test broker takes the login; no gateway answers, so the command times out (exit 69), which
    # shows it got past the password check and connected.
    assert "readable by everyone" not in done.stderr
    assert done.returncode == 69, done.stderr
    assert "no reply from s/g within 1000 ms" in done.stderr
