#!/usr/bin/env bash
# Creates the two benchmark virtualenvs under bench/out/ (ignored by git):
#   bench/out/venv     pymodbus devices, MQTT subscriber, fake RTU slave, the orchestrator
#   bench/out/venv-tb  ThingsBoard IoT Gateway 3.8.5 with the pymodbus it insists on (otherwise it pip-installs
#                      pymodbus 3.9.2 itself at every start)
# and builds the minimal libmosquitto publisher used as the ceiling for the backlog drain.
# Usage: bench/setup.sh [--no-tb]
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p out
PY=${PYTHON:-python3}

if [ ! -x out/venv/bin/python ]; then
    "$PY" -m venv out/venv
fi
out/venv/bin/pip install -q pymodbus==3.16.1 pyserial==3.5 paho-mqtt==2.2.0

if [ "${1:-}" != "--no-tb" ]; then
    if [ ! -x out/venv-tb/bin/python ]; then
        "$PY" -m venv out/venv-tb
    fi
    out/venv-tb/bin/pip install -q thingsboard-gateway==3.8.5 pymodbus==3.9.2 pyserial==3.5 pyserial-asyncio==0.6
fi

cc -O2 -Wall -o out/mosq_pub c/mosq_pub.c -lmosquitto
echo "bench/setup.sh: done"
