"""Records as table rows and back: ``id``, ``_body`` (lossless JSON), ``_doc`` (jsonb for filters), vectors.

``_body`` is a ``json`` column (kept verbatim, so floats, big ints and ``\\u0000`` survive) holding
``{field: Field.to_dict()}`` for every field; a vector field's entry has its dimensions, provenance and
metadata but not its values, which live in the field's own ``vector(d)`` / ``halfvec(d)`` column.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from vectorknobs.batch import RecordBatch
from vectorknobs.codec import encode
from vectorknobs.fields import PROVENANCE, Field, FloatArray, VectorField
from vectorknobs.record import Record

from vectorknobs_pgvector.sql import EXACT_FLOAT, escape_text, project

_HEADER = struct.Struct(">HH")
_F32 = np.dtype(">f4")
_F16 = np.dtype(">f2")
_PLAIN = frozenset((str, int, float, bool, type(None)))  # JSON-safe as they are (the core rejects NaN and inf)
_to_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


# -- binary codecs for pgvector's types (asyncpg ``set_type_codec(format="binary")``) ------------------------
def encode_vector(value: Any) -> bytes:
    array = np.asarray(value, dtype=_F32)
    return _HEADER.pack(array.shape[0], 0) + array.tobytes()


def decode_vector(data: bytes) -> FloatArray:
    return np.frombuffer(data, dtype=_F32, offset=_HEADER.size).astype(np.float32)


def encode_halfvec(value: Any) -> bytes:
    array = np.asarray(value, dtype=np.float32)
    with np.errstate(over="ignore"):
        half = array.astype(_F16)
    if not np.isfinite(half).all():
        raise ValueError("a value is beyond half precision's range (65504); use vector_type=vector")
    return _HEADER.pack(array.shape[0], 0) + half.tobytes()


def decode_halfvec(data: bytes) -> FloatArray:
    return np.frombuffer(data, dtype=_F16, offset=_HEADER.size).astype(np.float32)


# -- records <-> rows -----------------------------------------------------------------------------------------
def row_of(record: Record, vector_columns: Sequence[str]) -> tuple[Any, ...]:
    """``(id, _body, _doc, *vectors)`` in one pass over the fields; a vector column the record lacks is NULL.

    ``_body`` holds ``Field.to_dict()`` of every scalar field (a plain str, int, float, bool or None is
    already JSON-safe, so the common case skips the generic encoder) and, for a vector field, its
    dimensions, provenance and metadata; ``_doc`` the projection ``sql.project`` makes for filters.
    """
    body: dict[str, Any] = {}
    doc: dict[str, Any] = {}
    for name, f in record.fields.items():
        if isinstance(f, VectorField):
            entry: dict[str, Any] = {"type": "vector", "dimensions": f.dimensions}
            for key in PROVENANCE:
                if (value := getattr(f, key)) is not None:
                    entry[key] = value
            if f.metadata:
                entry["metadata"] = encode(f.metadata)
            body[name] = entry
            doc[name] = {}
        else:
            value = f.value
            if f.metadata or type(value) not in _PLAIN:
                body[name] = f.to_dict()
            else:
                body[name] = {"type": f.type.value, "value": value}
            doc[name] = project(value)
    fields = record.fields
    vectors = [v.value if isinstance(v := fields.get(name), VectorField) else None for name in vector_columns]
    return (record.key, _to_json(body), _to_json(doc), *vectors)


def rows_of_batch(batch: RecordBatch, vector_columns: Sequence[str]) -> list[tuple[Any, ...]]:
    """``row_of`` of every row of ``batch``, built column by column: each value's ``_body`` entry and ``_doc``
    projection are encoded once, by kind, and each row's documents are joined from those pieces."""
    pieces: list[tuple[list[str], list[str]]] = []
    for name, values in batch.columns.items():
        key = _to_json(name)
        body_parts, doc_parts = [], []
        for value in values:
            body, doc = _json_pair(value)
            body_parts.append(f"{key}:{body}")
            doc_parts.append(f"{key}:{doc}")
        pieces.append((body_parts, doc_parts))
    for name, column in batch.vectors.items():
        key = _to_json(name)
        entry: dict[str, Any] = {"type": "vector", "dimensions": column.dimensions}
        entry.update((k, v) for k in PROVENANCE[:-1] if (v := getattr(column, k)) is not None)
        fixed = f"{key}:{_to_json(entry)}"
        hashes = column.content_hashes  # the last provenance key, so the last key of the entry
        body_parts = ([fixed] * len(batch) if hashes is None
                      else [f'{fixed[:-1]},"content_hash":{_to_json(h)}}}' for h in hashes])
        pieces.append((body_parts, [f"{key}:{{}}"] * len(batch)))
    matrices = [batch.vectors[name].matrix if name in batch.vectors else None for name in vector_columns]
    assert batch.ids is not None
    bodies, docs = [body for body, _ in pieces], [doc for _, doc in pieces]
    return [
        (record_id, f"{{{','.join(body[row] for body in bodies)}}}", f"{{{','.join(doc[row] for doc in docs)}}}",
         *(None if matrix is None else matrix[row] for matrix in matrices))
        for row, record_id in enumerate(batch.ids)
    ]


def _json_pair(value: Any) -> tuple[str, str]:
    """The JSON of a value's ``_body`` entry and of its ``_doc`` projection, exactly as ``row_of`` writes
    them; plain scalars without the generic encoder."""
    cls = value.__class__
    if cls is str:
        text = _to_json(value)
        escaped = escape_text(value)
        return f'{{"type":"string","value":{text}}}', text if escaped is value else _to_json(escaped)
    if cls is float:
        text = float.__repr__(value)
        return f'{{"type":"float","value":{text}}}', text if abs(value) < EXACT_FLOAT else _to_json(project(value))
    if cls is int:
        text = int.__repr__(value)
        return f'{{"type":"integer","value":{text}}}', text
    if cls is bool:
        text = "true" if value else "false"
        return f'{{"type":"boolean","value":{text}}}', text
    if value is None:
        return '{"type":"json","value":null}', "null"
    return _to_json(Field.restore("", value).to_dict()), _to_json(project(value))


def record_of(record_id: str, body: str, vectors: Mapping[str, FloatArray | None]) -> Record:
    """The record a row holds; its values were checked when written, so they are restored unchecked."""
    fields: dict[str, Field] = {}
    for name, entry in json.loads(body).items():
        if entry.get("type") == "vector":
            value = vectors.get(name)
            if value is None:
                continue  # the column was dropped by hand: the field is gone
            entry["value"] = value  # a fresh dict of json.loads: the vector column completes it
        fields[name] = Field.from_dict(name, entry, checked=False)
    return Record.restore(record_id, fields)
