"""Reading the gateway's SenML telemetry batches (RFC 8428) back into named records."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .config import GATEWAY_ID, SITE

VALUE_KEYS = ("v", "vs", "vb", "vd")


@dataclass
class Record:
    name: str
    unit: str | None
    key: str  # which SenML value field carried the value: v | vs | vb
    value: Any
    quality: str | None
    time: float | None
    raw: dict


def base_name(device: str) -> str:
    return f"urn:dev:pantau:{SITE}:{GATEWAY_ID}:{device}:"


def resolve(batch: list[dict]) -> dict[str, Record]:
    """Records by point name (`n` without the base name), applying bn/bt from earlier records as RFC 8428 does."""
    if not isinstance(batch, list) or not batch:
        raise AssertionError(f"telemetry is not a non-empty SenML array: {batch!r}")
    bn, bt, bu = "", 0.0, None
    out: dict[str, Record] = {}
    for rec in batch:
        bn = rec.get("bn", bn)
        bt = rec.get("bt", bt)
        bu = rec.get("bu", bu)
        if "n" not in rec:
            continue
        keys = [k for k in VALUE_KEYS if k in rec]
        # A point that could not be read carries its quality and no value: a missing value is never invented.
        if rec.get("q") == "device_error":
            if keys:
                raise AssertionError(f"device_error record {rec!r} must not carry a value")
        elif len(keys) != 1:
            raise AssertionError(f"record {rec!r} must carry exactly one of {VALUE_KEYS}")
        name = rec["n"]
        if name in out:
            raise AssertionError(f"point {name} appears twice in one batch: {batch!r}")
        value = (keys[0], rec[keys[0]]) if keys else (None, None)
        out[name] = Record(name, rec.get("u", bu), value[0], value[1], rec.get("q"), bt + rec.get("t", 0.0), rec)
    return out


def close(actual: Any, expected: float) -> bool:
    return (
        isinstance(actual, (int, float)) and not isinstance(actual, bool)
        and math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-9)
    )
