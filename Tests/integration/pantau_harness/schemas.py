"""JSON Schemas of the MQTT payloads (docs/schemas/*.schema.json, written by the lead)."""

from __future__ import annotations

import glob
import json
import os
import warnings
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from .procs import repo_root


class Schemas:
    """`validate("telemetry", payload)` checks against docs/schemas/telemetry.schema.json when that file exists."""

    def __init__(self, directory: str | None = None):
        self.directory = directory or os.path.join(repo_root(), "docs", "schemas")
        self.documents: dict[str, dict] = {}
        for path in sorted(glob.glob(os.path.join(self.directory, "*.schema.json"))):
            with open(path, encoding="utf-8") as f:
                self.documents[os.path.basename(path)[: -len(".schema.json")]] = json.load(f)
        resources = []
        for name, doc in self.documents.items():
            resource = Resource.from_contents(doc, default_specification=_draft202012())
            resources.append((f"{name}.schema.json", resource))
            if "$id" in doc:
                resources.append((doc["$id"], resource))
        self.registry = Registry().with_resources(resources)

    def has(self, name: str) -> bool:
        return name in self.documents

    def validate(self, name: str, obj: Any) -> bool:
        """Raises AssertionError listing every violation; returns False (and warns) when the schema is missing."""
        if name not in self.documents:
            warnings.warn(f"schema {name}.schema.json not found in {self.directory}; check skipped")
            return False
        validator = Draft202012Validator(self.documents[name], registry=self.registry)
        errors = sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path))
        if errors:
            lines = [f"  at /{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:20]]
            raise AssertionError(f"payload does not match {name}.schema.json:\n" + "\n".join(lines))
        return True


def _draft202012():
    from referencing.jsonschema import DRAFT202012

    return DRAFT202012
