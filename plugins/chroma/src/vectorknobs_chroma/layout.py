"""How one record becomes Chroma entries, and how entries become the record again, losslessly.

A Chroma entry is an id, one embedding and flat metadata (str, int, float, bool, or a non-empty list of
one of those). A record has any number of vector fields and nested values, so:

* **where a record lives**: each vector field ``F`` has a collection ``<base>.<F>.vectors``; the record's
  entry there holds its ``F`` vector as the embedding. The record's *home* is the collection of its first
  vector field by name (``<base>`` itself, with a 1-dimensional placeholder embedding, for records without
  vectors); the home entry alone holds what is needed to rebuild the record. Entries in the other vector
  collections are *guests*: ``~g`` is true and ``~h`` names the home field.
* **metadata, for filters** (on home and guest entries alike, so a filtered vector search on any field is
  one Chroma query): every non-null value at a filterable path (a field, or a dotted path into nested
  dicts) is flattened. A string, bool or number (as a float) sits under the path itself (Chroma compares
  those with the core's typing: numbers with numbers, never ``True == 1``); a datetime under ``~t:<path>``
  as UTC epoch microseconds; a list's scalar items under ``~ls:``/``~ln:``/``~lb:``/``~lt:<path>`` by kind
  (Chroma's lists hold one type each). Chroma has no "field exists" test, so ``exists``, ``None`` and the
  complements under ``not`` need each value's kind (``s`` string, ``n`` number, ``b`` bool, ``t`` datetime,
  ``x`` list or dict): the kinds of the top-level fields make the record's *signature* under ``~s``
  (``"price:n,text:s"``: name-sorted, null fields left out), one key however many fields there are, and a
  value nested in a dict is tagged under ``~k:<path>``. Every signature written is registered in the
  ``<base>.kinds`` collection first, so a filter on a field's kind becomes ``~s`` in (or not in) the
  registered signatures that have that field with that kind. (Each metadata key is a row Chroma writes,
  indexes and reads back with every hit: one key per field, as a tag each was, cost 16% of the insert
  time of a three-field record.)
* **vectors**: as written, except in cosine collections, which hold unit vectors and a short code that
  restores the exact vector (``unit.py``: Chroma's own cosine space would keep only the normalized
  vector): a guest entry's under ``~c``, a home entry's as the ``"~c"`` member of its ``~r`` (one key less,
  on the entry every record has; no field is named ``~c``).
* **the rest, for the round trip** (home entries only): ``~r`` holds the canonical JSON form
  (``Field.to_dict``) of every field the flat metadata cannot give back exactly: vector fields (without
  the vector, which is the embedding), dicts, lists, None, datetimes (their offset), integers, typed
  fields, field metadata. A plain str, float or bool field is read back from its metadata key, so the
  common record adds little beyond what Chroma stores anyway.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from vectorknobs import Field, InvalidRecordError, Record, RecordBatch, VectorField
from vectorknobs.codec import parse_stored_json
from vectorknobs.fields import FloatArray, infer_type
from vectorknobs.filters import normalize
from vectorknobs.names import is_path_segment

from vectorknobs_chroma.unit import from_unit, to_unit

KIND = "~k:"
SIGNATURE = "~s"
DATETIME = "~t:"
LIST_STR, LIST_NUMBER, LIST_BOOL, LIST_DATETIME = "~ls:", "~ln:", "~lb:", "~lt:"
EXTRAS = "~r"
CODE = "~c"  # cosine collections: what gives back the exact vector from the stored unit vector (unit.py)
GUEST = "~g"
HOME = "~h"
NEVER = "~never"  # no entry has it: {NEVER: True} matches nothing

STRING, NUMBER, BOOLEAN, TIME, OTHER = "s", "n", "b", "t", "x"
TAGS = [STRING, NUMBER, BOOLEAN, TIME, OTHER]

#: the placeholder embedding of entries in the records collection (records without vectors)
NO_VECTOR = np.zeros(1, dtype=np.float32)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def micros(value: datetime) -> int:
    """UTC epoch microseconds (naive datetimes are UTC); exact, and ordered like the datetimes."""
    return int((normalize(value) - _EPOCH) // _MICROSECOND)


def chroma_number(value: int | float) -> float:
    """A number as it is stored for filters: always a float. Chroma compares an int it stores with a float
    operand after truncating the operand (``{"n": {"$gte": 2.5}}`` matches ``2``), and floats with any
    operand correctly. Integers beyond 2**53 round, but still order correctly against every operand a
    filter sends natively (``where.py``); beyond the float range they become the largest float."""
    try:
        return float(value)
    except OverflowError:
        return sys.float_info.max if value > 0 else -sys.float_info.max


@dataclass(frozen=True)
class Encoded:
    """One record as Chroma entries: ``entries[F]`` is the embedding and metadata of its entry in vector
    field ``F``'s collection (``None``: the records collection); ``home`` is where its home entry is."""

    id: str
    home: str | None
    entries: dict[str | None, tuple[FloatArray, dict[str, Any] | None]]
    dims: dict[str, int]
    names: frozenset[str]  # top-level field names
    signature: str | None  # the kinds of its top-level values (``SIGNATURE``); None: it has none


def encode_batch(records: list[Record], unit_vectors: bool) -> list[Encoded]:
    """Encode records; ``unit_vectors``: the store's vector collections hold unit vectors (cosine)."""
    parts = [_split(record) for record in records]
    stored: list[dict[str, tuple[FloatArray, str | None]]] = [{} for _ in records]
    rows: dict[str, list[int]] = {}
    for n, (_, _, vectors) in enumerate(parts):
        for name in vectors:
            rows.setdefault(name, []).append(n)
    for name, members in rows.items():
        matrix, codes = _stored(np.stack([parts[n][2][name] for n in members]), unit_vectors)
        for j, n in enumerate(members):
            stored[n][name] = (matrix[j], codes[j])
    return [
        _entries(record.key, frozenset(record.fields), flat, _dumps(extras) if extras else None, vectors)
        for record, (flat, extras, _), vectors in zip(records, parts, stored, strict=True)
    ]


def encode_columns(batch: RecordBatch, unit_vectors: bool) -> list[Encoded]:
    """``encode_batch`` of a batch's rows, straight from its columns: their values are plain, of their
    inferred types, without field metadata, and each vector column has one provenance (content hashes
    aside), so the vector fields' canonical forms are made once."""
    assert batch.ids is not None
    names = frozenset(batch.names())
    scalars = list(batch.columns.items())
    vectors = list(batch.vectors.items())
    stored = {name: _stored(column.matrix, unit_vectors) for name, column in vectors}
    hashed = any(column.content_hashes is not None for _, column in vectors)
    models = {name: column.field(name, 0).to_dict(with_value=False) for name, column in vectors}
    # the extras of a row whose values are all plain (with content hashes, each row has its own)
    shared = _dumps(models) if models and not hashed else None
    out = []
    for row, record_id in enumerate(batch.ids):
        _check_text(record_id, "the record id")
        flat: dict[str, Any] = {}
        extras: dict[str, Any] = {}
        kinds: list[tuple[str, str]] = []
        for name, values in scalars:
            value = values[row]
            if (tag := _flatten(flat, name, value)) is not None:
                kinds.append((name, tag))
            if value.__class__ not in _PLAIN:
                extras[name] = Field.restore(name, value).to_dict()
            elif value.__class__ is str:
                _check_text(value, name)
        if hashed:
            extras.update((name, column.field(name, row).to_dict(with_value=False)) for name, column in vectors)
        text = _dumps({**models, **extras}) if extras else shared
        entry = {name: (matrix[row], codes[row]) for name, (matrix, codes) in stored.items()}
        out.append(_entries(record_id, names, _signed(flat, kinds), text, entry))
    return out


def _stored(matrix: FloatArray, unit_vectors: bool) -> tuple[FloatArray, list[str | None]]:
    """The rows as Chroma stores them, with their cosine codes (``None`` each: stored as written)."""
    if not unit_vectors:
        return matrix, [None] * len(matrix)
    units, codes = to_unit(matrix)
    return units, list(codes)


def _split(record: Record) -> tuple[dict[str, Any], dict[str, Any], dict[str, FloatArray]]:
    """(flattened metadata, the fields' canonical forms that the metadata cannot give back, vectors)."""
    _check_text(record.key, "the record id")
    flat: dict[str, Any] = {}
    extras: dict[str, Any] = {}
    vectors: dict[str, FloatArray] = {}
    kinds: list[tuple[str, str]] = []
    for name, field in record.fields.items():
        if isinstance(field, VectorField):
            vectors[name] = field.value
            extras[name] = field.to_dict(with_value=False)
            continue
        if (tag := _flatten(flat, name, field.value)) is not None:
            kinds.append((name, tag))
        if not _plain(field):
            extras[name] = field.to_dict()
        elif isinstance(field.value, str):
            _check_text(field.value, name)
    return _signed(flat, kinds), extras, vectors


def _signed(flat: dict[str, Any], kinds: list[tuple[str, str]]) -> dict[str, Any]:
    """``flat`` with the signature of the top-level ``kinds`` (``(name, tag)``), if there are any."""
    if kinds:
        flat[SIGNATURE] = signature(kinds)
    return flat


def signature(kinds: Iterable[tuple[str, str]]) -> str:
    """``"price:n,text:s"``: the ``(name, tag)`` pairs by name (field names hold no ``:`` or ``,``)."""
    return ",".join(f"{name}:{tag}" for name, tag in sorted(kinds))


def signature_kinds(text: str) -> dict[str, str]:
    """The ``{name: tag}`` a signature holds."""
    return dict(item.split(":") for item in text.split(","))


def _entries(record_id: str, names: frozenset[str], flat: dict[str, Any], extras: str | None,
             vectors: dict[str, tuple[FloatArray, str | None]]) -> Encoded:
    """The entries of a record: its ``flat`` metadata, its ``extras`` (their JSON text) and its stored
    vectors with their codes."""
    home = min(vectors) if vectors else None
    entries: dict[str | None, tuple[FloatArray, dict[str, Any] | None]] = {}
    for name, (embedding, code) in vectors.items():
        if name != home:
            metadata = {**flat, GUEST: True, HOME: home}
            if code is not None:
                metadata[CODE] = code
        else:  # extras holds at least this vector field: a JSON object with members
            assert extras is not None
            metadata = {**flat, EXTRAS: extras if code is None else f'{{"{CODE}":"{code}",{extras[1:]}'}
        entries[name] = (embedding, metadata)
    if home is None:
        entries[None] = (NO_VECTOR, {**flat, EXTRAS: extras} if extras else flat or None)
    dims = {n: len(v) for n, (v, _) in vectors.items()}
    return Encoded(record_id, home, entries, dims, names, flat.get(SIGNATURE))


_PLAIN = frozenset((str, float, bool))  # given back by their metadata key (ints are stored as floats)


def _plain(field: Field) -> bool:
    """Is the field given back exactly by its metadata key alone?"""
    value = field.value
    if type(field) is not Field or field.metadata or field.type is not infer_type(value):
        return False
    return isinstance(value, (str, float, bool))


def _flatten(out: dict[str, Any], path: str, value: Any) -> str | None:
    """Put ``value`` (at ``path``) into ``out`` as Chroma metadata; its kind tag (None for None). Values
    nested in a dict are tagged in ``out``; the caller records a top-level value's kind in the signature."""
    if value is None:
        return None
    if isinstance(value, bool):
        out[path], tag = value, BOOLEAN
    elif isinstance(value, (int, float)):
        out[path], tag = chroma_number(value), NUMBER
    elif isinstance(value, str):
        out[path], tag = value, STRING
    elif isinstance(value, datetime):
        out[DATETIME + path], tag = micros(value), TIME
    elif isinstance(value, list):
        _flatten_items(out, path, value)
        tag = OTHER
    else:
        for key, item in value.items():
            if is_path_segment(key) and (inner := _flatten(out, f"{path}.{key}", item)) is not None:
                out[f"{KIND}{path}.{key}"] = inner
        tag = OTHER
    return tag


def _flatten_items(out: dict[str, Any], path: str, items: list[Any]) -> None:
    groups: dict[str, list[Any]] = {}
    for item in items:
        if isinstance(item, bool):
            groups.setdefault(LIST_BOOL, []).append(item)
        elif isinstance(item, (int, float)):
            groups.setdefault(LIST_NUMBER, []).append(chroma_number(item))
        elif isinstance(item, str):
            groups.setdefault(LIST_STR, []).append(item)
        elif isinstance(item, datetime):
            groups.setdefault(LIST_DATETIME, []).append(micros(item))
    for prefix, group in groups.items():
        out[prefix + path] = group


def _dumps(data: Any) -> str:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    _check_text(text, "a field")
    return text


def _check_text(text: str, where: str) -> None:
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            raise InvalidRecordError(
                f"{where} holds text that is not valid Unicode (a lone surrogate); Chroma stores UTF-8 only"
            ) from None


# -- reading back --------------------------------------------------------------------------------------
def is_home(metadata: Mapping[str, Any] | None) -> bool:
    return not (metadata and metadata.get(GUEST) is True)


def entry_vectors(metadatas: Sequence[Mapping[str, Any] | None], embeddings: Any) -> FloatArray:
    """The vectors of entries (rows), as written: cosine entries are decoded with their codes."""
    matrix = np.array(embeddings, dtype=np.float32).reshape(len(embeddings), -1)
    codes = {n: code for n, meta in enumerate(metadatas) if (code := _code(meta)) is not None}  # [] if not read
    if codes:
        rows = list(codes)
        matrix[rows] = from_unit(matrix[rows], list(codes.values()))
    return matrix


def _code(metadata: Mapping[str, Any] | None) -> str | None:
    """The cosine code of an entry: a guest's own key, or a member of a home entry's extras."""
    if not metadata:
        return None
    if CODE in metadata:
        return str(metadata[CODE])
    extras = metadata.get(EXTRAS)
    if extras is None or not extras.startswith(f'{{"{CODE}"'):
        return None
    code: str = parse_stored_json(extras)[CODE]
    return code


@dataclass(frozen=True)
class Home:
    """A home entry, parsed: enough to know the record's vector fields before fetching their vectors."""

    id: str
    metadata: Mapping[str, Any]
    extras: Mapping[str, Mapping[str, Any]]
    vector_fields: tuple[str, ...]

    def record(self, vectors: Mapping[str, Any] | None) -> Record:
        """The record; ``vectors`` by field name (arrays as Chroma returns them). ``None`` builds a skeleton
        for filtering and sorting only: each vector is a 1-dimensional stand-in (a filter only ever tests
        whether a vector field is present)."""
        fields = self._values()
        for name in self.vector_fields:
            value = NO_VECTOR if vectors is None else vectors[name]
            fields[name] = Field.from_dict(name, {**self.extras[name], "value": value}, checked=False)
        return Record.restore(self.id, fields)

    def bare(self, field: str) -> tuple[Record, str | None]:
        """The record without its vector fields, and the ``source_field`` of its vector field ``field``."""
        return Record.restore(self.id, self._values()), self.extras.get(field, {}).get("source_field")

    def _values(self) -> dict[str, Field]:
        """Every field but the vector fields, restored unchecked: the values were checked when written."""
        fields: dict[str, Field] = {}
        for key, value in self.metadata.items():
            if "." not in key and not key.startswith("~"):
                fields[key] = Field.restore(key, value)
        for name, data in self.extras.items():
            if data.get("type") != "vector":
                fields[name] = Field.from_dict(name, data, checked=False)
        return fields


def parse_home(record_id: str, metadata: Mapping[str, Any] | None) -> Home:
    metadata = metadata or {}
    extras = parse_stored_json(metadata[EXTRAS]) if EXTRAS in metadata else {}
    extras.pop(CODE, None)  # the cosine code (entry_vectors reads it)
    return Home(record_id, metadata, extras, tuple(n for n, data in extras.items() if data.get("type") == "vector"))
