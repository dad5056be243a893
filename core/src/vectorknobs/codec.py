"""Lossless conversion of field values to JSON-safe data and back.

JSON has no datetimes, so nested datetimes become ``{"$datetime": "<iso>"}``; a dict whose own keys
start with ``$`` is wrapped as ``{"$dict": {...}}`` so it can never be mistaken for a tag.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import numpy as np

from vectorknobs.errors import InvalidRecordError

Scalar = str | int | float | bool | datetime | None


def check_value(value: Any, where: str) -> Any:
    """Return a private deep copy of ``value`` if it is storable, else raise ``InvalidRecordError``.

    Storable: str, int, float (finite), bool, None, timezone-naive or aware datetime, and lists or
    dicts with string keys of those.
    """
    kind = type(value)
    if kind is str or kind is bool or value is None:  # the common cases first, by exact type
        return value
    if kind is float:
        if not math.isfinite(value):
            raise InvalidRecordError(f"{where}: {value} is not a finite number; store None instead")
        return value
    if isinstance(value, (np.bool_, np.integer, np.floating)):
        value = value.item()  # a numpy scalar (a computed score, a count) is stored as the Python value
    if value is None or isinstance(value, (str, bool, datetime)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidRecordError(f"{where}: {value} is not a finite number; store None instead")
        return float(value)
    if isinstance(value, Mapping):
        copied: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidRecordError(f"{where}: dict keys must be str, got {key!r}")
            copied[key] = check_value(item, f"{where}.{key}")
        return copied
    if isinstance(value, (list, tuple)):
        return [check_value(item, f"{where}[{i}]") for i, item in enumerate(value)]
    raise InvalidRecordError(
        f"{where}: cannot store a {type(value).__name__}; use str, int, float, bool, datetime, None, "
        "list or dict (vectors go in a VectorField)"
    )


def encode(value: Any) -> Any:
    """Turn a checked value into JSON-safe data."""
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, dict):
        encoded = {key: encode(item) for key, item in value.items()}
        return {"$dict": encoded} if any(key.startswith("$") for key in value) else encoded
    if isinstance(value, list):
        return [encode(item) for item in value]
    return value


def decode(data: Any) -> Any:
    """Inverse of :func:`encode`."""
    if isinstance(data, dict):
        if len(data) == 1:
            if "$datetime" in data:
                return datetime.fromisoformat(data["$datetime"])
            if "$dict" in data:
                return {key: decode(item) for key, item in data["$dict"].items()}
        return {key: decode(item) for key, item in data.items()}
    if isinstance(data, list):
        return [decode(item) for item in data]
    return data


_SCAN = json.JSONDecoder().raw_decode


def parse_stored_json(text: str) -> Any:
    """``json.loads`` of JSON a store wrote itself (compact, nothing before or after the document): the same
    parser, without the whitespace checks around it (about half the time of ``json.loads`` for a record)."""
    return _SCAN(text)[0]
