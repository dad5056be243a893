"""Records as table rows and back: ``id``, ``_body`` (lossless JSON), ``_doc`` (jsonb for filters), vectors.

``_body`` is a ``json`` column (kept verbatim, so floats, big ints and ``\\u0000`` survive) holding
``{field: Field.to_dict()}`` for every field, or ``{field: value}`` for a plain str, int, float, bool or
None of its inferred type without metadata (the common case, in a third of the bytes; rows written by earlier
versions hold ``[value]`` there, and read back the same); a vector field's entry has
its dimensions, provenance and metadata but not its values, which live in the field's own ``vector(d)`` /
``halfvec(d)`` column.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import numpy as np
from vectorknobs.batch import RecordBatch
from vectorknobs.codec import encode, parse_stored_json
from vectorknobs.fields import PLAIN_TYPES, PROVENANCE, Field, FloatArray, VectorField
from vectorknobs.record import Record

from vectorknobs_pgvector.sql import EXACT_FLOAT, escape_text, project

_HEADER = struct.Struct(">HH")
_F32 = np.dtype(">f4")
_F16 = np.dtype(">f2")
_PLAIN = frozenset((str, int, float, bool, type(None)))  # JSON-safe as they are (the core rejects NaN and inf)
_to_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_json_text: Callable[[str], str] = json.encoder.encode_basestring  # what _to_json does with a str


# -- binary codecs for pgvector's types (asyncpg ``set_type_codec(format="binary")``) ------------------------
def encode_vector(value: Any) -> bytes:
    if value.__class__ is bytes:  # encoded already, by encode_vectors
        return value  # type: ignore[no-any-return]
    array = np.asarray(value, dtype=_F32)
    return _HEADER.pack(array.shape[0], 0) + array.tobytes()


def encode_vectors(matrix: FloatArray) -> list[bytes]:
    """``encode_vector`` of every row of a matrix, in one numpy pass (the header is one float's width)."""
    rows, dims = matrix.shape
    binary = np.empty((rows, dims + 1), dtype=_F32)
    binary.view(np.uint8)[:, :_HEADER.size] = np.frombuffer(_HEADER.pack(dims, 0), dtype=np.uint8)
    binary[:, 1:] = matrix
    data, width = binary.tobytes(), (dims + 1) * 4
    return [data[start:start + width] for start in range(0, rows * width, width)]


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
            elif f.type is PLAIN_TYPES[type(value)]:
                body[name] = value
            else:
                body[name] = {"type": f.type.value, "value": value}
            doc[name] = project(value)
    fields = record.fields
    vectors = [v.value if isinstance(v := fields.get(name), VectorField) else None for name in vector_columns]
    return (record.key, _to_json(body), _to_json(doc), *vectors)


def rows_of_batch(
    batch: RecordBatch, vector_columns: Sequence[str], float32: Collection[str] = (),
) -> list[tuple[Any, ...]]:
    """``row_of`` of every row of ``batch``, built column by column: each value's ``_body`` entry and ``_doc``
    projection are encoded once, by kind, and each row's documents are joined from those pieces. Vectors of
    the ``float32`` columns (``vector``, not ``halfvec``) come already in pgvector's binary form, made for
    the whole matrix at once."""
    bodies: list[list[str]] = []
    docs: list[list[str]] = []
    for name, values in batch.columns.items():
        body_parts, doc_parts = _column_json(_to_json(name), values)
        bodies.append(body_parts)
        docs.append(doc_parts)
    for name, column in batch.vectors.items():
        key = _to_json(name)
        entry: dict[str, Any] = {"type": "vector", "dimensions": column.dimensions}
        entry.update((k, v) for k in PROVENANCE[:-1] if (v := getattr(column, k)) is not None)
        fixed = f"{key}:{_to_json(entry)}"
        hashes = column.content_hashes  # the last provenance key, so the last key of the entry
        bodies.append([fixed] * len(batch) if hashes is None
                      else [f'{fixed[:-1]},"content_hash":{_to_json(h)}}}' for h in hashes])
        docs.append([f"{key}:{{}}"] * len(batch))
    assert batch.ids is not None
    vectors = [[None] * len(batch) if name not in batch.vectors else
               encode_vectors(batch.vectors[name].matrix) if name in float32 else batch.vectors[name].matrix
               for name in vector_columns]
    return list(zip(
        batch.ids, [f"{{{row}}}" for row in map(",".join, zip(*bodies, strict=True))],
        [f"{{{row}}}" for row in map(",".join, zip(*docs, strict=True))], *vectors, strict=True,
    ))


def _column_json(key: str, values: Sequence[Any]) -> tuple[list[str], list[str]]:
    """Each value's ``"name":`` ``_body`` entry and ``_doc`` projection, exactly as ``row_of`` writes them;
    plain scalars without the generic encoder."""
    bodies, docs = [], []
    for value in values:
        cls = value.__class__
        if cls is str:
            text = _json_text(value)
            doc = text if "\x00" not in value and "\x01" not in value else _json_text(escape_text(value))
        elif cls is float:
            text = float.__repr__(value)
            doc = text if abs(value) < EXACT_FLOAT else _to_json(project(value))
        elif cls is int:
            text = doc = int.__repr__(value)
        elif cls is bool:
            text = doc = "true" if value else "false"
        elif value is None:
            text = doc = "null"
        else:
            bodies.append(f"{key}:{_to_json(Field.restore('', value).to_dict())}")
            docs.append(f"{key}:{_to_json(project(value))}")
            continue
        bodies.append(f"{key}:{text}")
        docs.append(f"{key}:{doc}")
    return bodies, docs


def record_of(record_id: str, body: str, vectors: Mapping[str, FloatArray | None]) -> Record:
    """The record a row holds; its values were checked when written, so they are restored unchecked. A vector
    field whose column ``vectors`` lacks (or holds NULL) is left out."""
    return hit_of(record_id, body, vectors, "")[0]


def hit_of(record_id: str, body: str, vectors: Mapping[str, FloatArray | None], field: str
           ) -> tuple[Record, str | None]:
    """``record_of``, and the ``source_field`` of vector field ``field`` (which ``vectors`` may leave out)."""
    fields: dict[str, Field] = {}
    source = None
    for name, entry in parse_stored_json(body).items():
        cls = entry.__class__
        if cls is not dict:  # a plain value of its inferred type: bare, or [value] in rows of earlier versions
            fields[name] = Field.restore(name, entry[0] if cls is list else entry)
            continue
        if entry.get("type") == "vector":
            if name == field:
                source = entry.get("source_field")
            value = vectors.get(name)
            if value is None:
                continue  # not read, or the column was dropped by hand: the field is gone
            entry["value"] = value  # a fresh dict of json.loads: the vector column completes it
        fields[name] = Field.from_dict(name, entry, checked=False)
    return Record.restore(record_id, fields), source
