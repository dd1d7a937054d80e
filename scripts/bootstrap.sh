#!/usr/bin/env bash
# Installs what Pantau needs to build, run the demo and run the tests: Debian packages and a pinned Python venv
# (.venv) for the independent Modbus device (pymodbus) and the MQTT test subscriber. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  pkg-config libmodbus-dev libmosquitto-dev libssl-dev libsqlite3-dev libyaml-dev   # build
  mosquitto mosquitto-clients                                             # broker for the demo and the tests
  socat mbpoll openssl                                                     # serial pty pairs, reference Modbus tool, TLS test certs
  systemd dpkg-dev fakeroot                                                # systemd-analyze, the .deb build
  strace                                                                   # the unit's syscall filter test (who calls what)
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

REQ=Tests/integration/requirements.txt
if [ ! -x .venv/bin/python ] || ! cmp -s "$REQ" .venv/.requirements 2>/dev/null; then
  echo "bootstrap: creating .venv from $REQ"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r "$REQ"
  .venv/bin/pip install -q --disable-pip-version-check --no-deps -r Tests/integration/requirements-nodeps.txt
  cp "$REQ" .venv/.requirements
fi
