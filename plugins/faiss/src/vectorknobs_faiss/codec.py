"""How a record is laid out in SQLite: one queryable JSON document plus raw vector bytes.

``doc`` holds ``{field: value}`` with every dotted path intact, so SQLite's JSON functions can filter
and sort on it: datetimes become ``{"$datetime": iso}`` and a nested key starting with ``$`` gets one
more ``$`` (unlike the core codec's ``{"$dict": ...}`` wrapper, which would hide the keys beside it).
A vector field appears as ``{}`` (present, never equal or ordered, exactly like an array under the
reference semantics); its float32 bytes live in the field's own table. What the values cannot say
(explicit field types, field metadata, vector provenance) goes under ``_m``, a key no field can have.

``pyeval`` marks a document SQLite cannot compare exactly (integers beyond 64 bits, NUL characters,
lone surrogates); filters evaluate those rows in Python.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from vectorknobs import Field, Record, RecordBatch, VectorColumn, VectorField
from vectorknobs.codec import parse_stored_json
from vectorknobs.fields import FieldType, FloatArray, infer_type

VECTOR_DTYPE = np.dtype("<f4")
META_KEY = "_m"
_INT64 = (-(2**63), 2**63 - 1)
_PLAIN = frozenset({str, float, bool, type(None)})
_SCALARS = _PLAIN | {int}
_VECTOR_ATTRS = ("source_field", "model_name", "model_version", "content_hash")
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)
_JSON_ASCII = json.JSONEncoder(separators=(",", ":"), check_circular=False)


@dataclass
class Row:
    """One record ready for SQLite."""

    id: str
    names: list[str]
    doc: str
    pyeval: bool
    vectors: dict[str, FloatArray]


def encode_record(record: Record) -> Row:
    values: dict[str, Any] = {}
    meta: dict[str, Any] = {}
    vectors: dict[str, FloatArray] = {}
    unsafe: list[bool] = []
    for name, f in record.fields.items():
        extra: dict[str, Any] = {}
        if isinstance(f, VectorField):
            values[name] = {}
            vectors[name] = f.value
            attrs = {key: getattr(f, key) for key in _VECTOR_ATTRS if getattr(f, key) is not None}
            if attrs:
                extra["vector"] = attrs
        else:
            value = f.value
            values[name] = value if type(value) in _PLAIN else to_doc(value, unsafe)
            if f.type is not infer_type(value):
                extra["type"] = f.type.value
        if f.metadata:
            extra["metadata"] = to_doc(f.metadata, unsafe)
        if extra:
            meta[name] = extra
    return _row(record.key, list(record.fields), values, meta, unsafe, vectors)


def encode_batch(batch: RecordBatch) -> list[Row]:
    """``encode_record`` of every row of ``batch``, straight from its columns (whose values are plain, with
    inferred types and no metadata)."""
    assert batch.ids is not None
    names = list(batch.names())
    scalars = list(batch.columns.items())
    vectors = list(batch.vectors.items())
    attrs = {name: {key: value for key in _VECTOR_ATTRS[:-1] if (value := getattr(column, key)) is not None}
             for name, column in vectors}
    rows = []
    for row, record_id in enumerate(batch.ids):
        unsafe: list[bool] = []
        values: dict[str, Any] = {}
        for name, column in scalars:
            value = column[row]
            values[name] = value if type(value) in _PLAIN else to_doc(value, unsafe)
        meta: dict[str, Any] = {}
        for name, vector_column in vectors:
            values[name] = {}
            hashes = vector_column.content_hashes
            provenance = attrs[name] if hashes is None else {**attrs[name], "content_hash": hashes[row]}
            if provenance:
                meta[name] = {"vector": provenance}
        rows.append(_row(record_id, names, values, meta, unsafe,
                         {name: column.matrix[row] for name, column in vectors}))
    return rows


def _row(record_id: str, names: list[str], values: dict[str, Any], meta: dict[str, Any], unsafe: list[bool],
         vectors: dict[str, FloatArray]) -> Row:
    if meta:
        values[META_KEY] = meta
    doc = _JSON.encode(values)
    if not _utf8_safe(doc):  # lone surrogates cannot cross into SQLite as UTF-8; escaped JSON keeps them
        doc = _JSON_ASCII.encode(values)
        unsafe.append(True)
    return Row(record_id, names, doc, bool(unsafe) or "\\u0000" in doc, vectors)


def decode_record(record_id: str, doc: str, vectors: Mapping[str, bytes]) -> Record:
    """The record a row holds; its values were checked when written, so they are restored unchecked."""
    return _restore(record_id, parse_stored_json(doc), vectors, ())


def decode_hit(record_id: str, doc: str, vectors: Mapping[str, bytes], omit: Collection[str], field: str
               ) -> tuple[Record, str | None]:
    """``decode_record``, leaving out the vector fields named in ``omit`` (their bytes were not read), and the
    ``source_field`` of vector field ``field``."""
    values: dict[str, Any] = parse_stored_json(doc)
    provenance = values.get(META_KEY, {}).get(field, {}).get("vector", {})
    return _restore(record_id, values, vectors, omit), provenance.get("source_field")


def _restore(record_id: str, values: dict[str, Any], vectors: Mapping[str, bytes], omit: Collection[str]) -> Record:
    extras: dict[str, Any] = values.pop(META_KEY, {})
    fields: dict[str, Field] = {}
    for name, value in values.items():
        if name in omit:
            continue
        extra = extras.get(name)
        if extra is None and name not in vectors:  # a plain value of its inferred type
            fields[name] = Field.restore(name, from_doc(value))
            continue
        extra = extra or {}
        metadata = from_doc(extra["metadata"]) if "metadata" in extra else None
        if name in vectors:
            vector = np.frombuffer(vectors[name], dtype=VECTOR_DTYPE)
            fields[name] = VectorField.restore(name, vector, metadata=metadata, **extra.get("vector", {}))
        else:
            field_type = FieldType(extra["type"]) if "type" in extra else None
            fields[name] = Field.restore(name, from_doc(value), field_type, metadata)
    return Record.restore(record_id, fields)


def decode_batch(ids: list[str], docs: list[str], blobs: Mapping[str, list[bytes | None]]) -> RecordBatch | None:
    """The rows as one ``RecordBatch`` straight from their documents and vector bytes (``blobs``: per vector
    table, one entry per row), or None when they cannot be one (``RecordBatch.from_records``): every row
    with the same fields, no explicit types or metadata, each vector field in every row with the same
    provenance (content hashes aside, all set or all None)."""
    rows = [parse_stored_json(doc) for doc in docs]
    first = rows[0]
    first_meta = first.get(META_KEY, {})
    vector_names = [name for name, values in blobs.items() if values[0] is not None]
    if set(vector_names) - first.keys():
        return None
    scalar_names = [name for name in first if name != META_KEY and name not in vector_names]
    provenance = {name: dict(first_meta.get(name, {}).get("vector", {})) for name in vector_names}
    for name in vector_names:
        provenance[name].pop("content_hash", None)
    columns: dict[str, list[Any]] = {name: [] for name in scalar_names}
    hashes: dict[str, list[str | None]] = {name: [] for name in vector_names}
    keys = first.keys()
    for values in rows:
        if values.keys() != keys:
            return None
        meta = values.get(META_KEY, {})
        if meta.keys() - provenance.keys():
            return None  # a value field with an explicit type or metadata
        for name, column in columns.items():
            column.append(from_doc(values[name]))
        for name in vector_names:
            extra = meta.get(name, {})
            vector = dict(extra.get("vector", {}))
            hashes[name].append(vector.pop("content_hash", None))
            if extra.keys() - {"vector"} or vector != provenance[name]:
                return None
    vectors: dict[str, VectorColumn] = {}
    for name in vector_names:
        found = blobs[name]
        column_hashes = hashes[name]
        if None in found or (None in column_hashes and any(h is not None for h in column_hashes)):
            return None
        matrix = np.frombuffer(b"".join(found), dtype=VECTOR_DTYPE).reshape(len(found), -1)  # type: ignore[arg-type]
        vectors[name] = VectorColumn.restore(
            matrix.astype(np.float32, copy=False), content_hashes=None if column_hashes[0] is None else tuple(
                column_hashes), **provenance[name])  # type: ignore[arg-type]
    return RecordBatch.restore({name: tuple(values) for name, values in columns.items()}, vectors, tuple(ids))


def to_doc(value: Any, unsafe: list[bool] | None = None) -> Any:
    """A checked field value as path-preserving JSON data; appends to ``unsafe`` for huge integers."""
    if value is None or isinstance(value, (str, float, bool)):
        return value
    if isinstance(value, int):
        if unsafe is not None and not _INT64[0] <= value <= _INT64[1]:
            unsafe.append(True)
        return value
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, dict):
        return {("$" + k if k.startswith("$") else k): to_doc(v, unsafe) for k, v in value.items()}
    return [to_doc(item, unsafe) for item in value]


def from_doc(data: Any) -> Any:
    """Inverse of :func:`to_doc`."""
    if data.__class__ in _SCALARS:
        return data
    if isinstance(data, dict):
        if len(data) == 1 and "$datetime" in data:
            return datetime.fromisoformat(data["$datetime"])
        return {(k[1:] if k.startswith("$") else k): from_doc(v) for k, v in data.items()}
    if isinstance(data, list):
        return [from_doc(item) for item in data]
    return data


def _utf8_safe(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
