"""``RecordBatch``: many records as columns, written without building a ``Record`` per row.

A batch holds one id per row, plain value columns and vector matrices; every value is checked once, when
the batch is built (a matrix in one numpy pass), and the batch is immutable afterwards, so a store writes
it without copying or re-checking anything. Stores that can write columns directly override
``VectorStore._write_batch``; every other store receives the rows as restored ``Record``s.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from vectorknobs.codec import check_value
from vectorknobs.errors import InvalidRecordError, VectorValueError
from vectorknobs.fields import (
    CONTAINERS,
    PLAIN_TYPES,
    Field,
    FloatArray,
    VectorField,
    as_matrix,
    copy_value,
    inferred_type,
)
from vectorknobs.names import check_field_name, check_record_ids
from vectorknobs.record import Record

_UNCHECKED = frozenset((str, int, float, bool, type(None)))  # immutable plain values (floats: if finite)


class VectorColumn:
    """One vector field for every row of a ``RecordBatch``: a ``rows x dimensions`` matrix and its
    provenance (``content_hashes``: one per row, or None).

    ``VectorColumn(embeddings, source_field="text", model_name="all-MiniLM-L6-v2")``
    """

    __slots__ = ("content_hashes", "matrix", "model_name", "model_version", "source_field")

    def __init__(
        self,
        matrix: npt.ArrayLike,
        *,
        source_field: str | None = None,
        model_name: str | None = None,
        model_version: str | None = None,
        content_hashes: Sequence[str] | None = None,
    ) -> None:
        checked = as_matrix(matrix, "vector column")
        if checked.size == 0:
            raise VectorValueError("vector column: no vectors; a batch needs at least one row")
        shared = isinstance(matrix, np.ndarray) and np.may_share_memory(checked, matrix)
        self.matrix: FloatArray = checked.copy() if shared else checked  # private: the caller keeps theirs
        self.matrix.flags.writeable = False
        for label, text in (("source_field", source_field), ("model_name", model_name),
                            ("model_version", model_version)):
            if text is not None and not isinstance(text, str):
                raise InvalidRecordError(f"vector column: {label} must be a str, got {text!r}")
        self.source_field = source_field
        self.model_name = model_name
        self.model_version = model_version
        self.content_hashes: tuple[str, ...] | None = None
        if content_hashes is not None:
            hashes = tuple(content_hashes)
            if len(hashes) != len(self.matrix) or not all(isinstance(h, str) for h in hashes):
                raise InvalidRecordError(
                    f"vector column: content_hashes must be {len(self.matrix)} strings, one per row"
                )
            self.content_hashes = hashes

    @classmethod
    def restore(
        cls, matrix: FloatArray, *, source_field: str | None = None, model_name: str | None = None,
        model_version: str | None = None, content_hashes: tuple[str, ...] | None = None,
    ) -> VectorColumn:
        """A column rebuilt from a store's own data (as ``VectorField.restore``): ``matrix``, a C-contiguous
        float32 matrix, is made read-only and kept, nothing is checked or copied."""
        column = object.__new__(cls)
        matrix.flags.writeable = False
        column.matrix = matrix
        column.source_field, column.model_name, column.model_version = source_field, model_name, model_version
        column.content_hashes = content_hashes
        return column

    @property
    def dimensions(self) -> int:
        return int(self.matrix.shape[1])

    def field(self, name: str, row: int) -> VectorField:
        """The ``VectorField`` of ``row`` (its vector is a read-only view of the matrix)."""
        return VectorField.restore(
            name, self.matrix[row], source_field=self.source_field, model_name=self.model_name,
            model_version=self.model_version,
            content_hash=None if self.content_hashes is None else self.content_hashes[row],
        )


class RecordBatch:
    """Rows as columns: ``ids`` (generated at write time when None) plus one entry per field, a sequence of
    plain values (str, int, float, bool, datetime, None, lists and dicts; a 1-D numpy array works too) or a
    ``VectorColumn`` (a bare 2-D numpy array is a vector column without provenance). Every row has every
    field. Write it with ``bulk_create`` / ``bulk_upsert`` / ``bulk_update``.

    >>> batch = RecordBatch({"text": ["a", "b"], "embedding": VectorColumn(np.eye(2), source_field="text")},
    ...                     ids=["doc-1", "doc-2"])
    >>> len(batch), batch.vector_names()
    (2, ('embedding',))
    """

    __slots__ = ("_records", "columns", "ids", "vectors")

    def __init__(
        self,
        columns: Mapping[str, Sequence[Any] | npt.NDArray[Any] | VectorColumn],
        *,
        ids: Sequence[str] | None = None,
    ) -> None:
        if not isinstance(columns, Mapping) or not columns:
            raise InvalidRecordError("a RecordBatch needs a mapping of field name -> column with at least one column")
        self.columns: dict[str, tuple[Any, ...]] = {}
        self.vectors: dict[str, VectorColumn] = {}
        lengths: dict[str, int] = {}
        for name, given in columns.items():
            check_field_name(name)
            column = VectorColumn(given) if isinstance(given, np.ndarray) and given.ndim == 2 else given
            if isinstance(column, VectorColumn):
                self.vectors[name] = column
                lengths[name] = len(column.matrix)
            else:
                self.columns[name] = _checked_column(name, column)
                lengths[name] = len(self.columns[name])
        rows = next(iter(lengths.values()))
        if any(n != rows for n in lengths.values()):
            raise InvalidRecordError(
                "every column of a RecordBatch needs one value per row; got "
                + ", ".join(f"{name}: {n}" for name, n in lengths.items())
            )
        if rows == 0:
            raise InvalidRecordError("a RecordBatch needs at least one row")
        self.ids: tuple[str, ...] | None = None
        if ids is not None:
            self.ids = _checked_ids(ids, rows)
        self._records: list[Record] | None = None

    @classmethod
    def from_records(cls, records: Sequence[Record]) -> RecordBatch | None:
        """The same rows as a batch, or None when they cannot be one: every record needs an id (or none
        does: a batch without ids), the same field names, every value field its inferred type and no metadata,
        and each vector field the same provenance in every row (content hashes aside, all set or all None)
        and no metadata. The values, checked when their fields were built, are not checked again (containers
        are copied)."""
        if not records:
            return None
        missing = sum(r.id is None for r in records)
        if missing and missing < len(records):
            return None
        # ids and fields can be set past Record's checks: check them here
        ids = None if missing else _checked_ids([r.key for r in records], len(records))
        first = records[0].fields
        for name in first:
            check_field_name(name)
        scalars = [name for name, f in first.items() if type(f) is Field]
        models = {name: f for name, f in first.items() if type(f) is VectorField}
        if len(scalars) + len(models) != len(first):
            return None  # sparse vectors or Field subclasses
        columns: dict[str, list[Any]] = {name: [] for name in scalars}
        rows: dict[str, list[FloatArray]] = {name: [] for name in models}
        hashes: dict[str, list[str | None]] = {name: [] for name in models}
        for record in records:
            fields = record.fields
            if fields.keys() != first.keys():
                return None
            for name, column in columns.items():
                f = fields[name]
                if type(f) is not Field or f.metadata or f.type is not inferred_type(f.value):
                    return None
                value = f.value
                column.append(copy_value(value) if value.__class__ in CONTAINERS else value)
            for name, model in models.items():
                v = fields[name]
                if type(v) is not VectorField or v.metadata or (v.source_field, v.model_name, v.model_version) != (
                        model.source_field, model.model_name, model.model_version):
                    return None
                rows[name].append(v.value)
                hashes[name].append(v.content_hash)
        vectors: dict[str, VectorColumn] = {}
        for name, model in models.items():
            column_hashes = [h for h in hashes[name] if h is not None]
            if column_hashes and len(column_hashes) != len(records):
                return None
            vectors[name] = VectorColumn.restore(
                np.stack(rows[name]), source_field=model.source_field, model_name=model.model_name,
                model_version=model.model_version, content_hashes=tuple(column_hashes) if column_hashes else None)
        return cls.restore({name: tuple(values) for name, values in columns.items()}, vectors, ids)

    @classmethod
    def restore(
        cls, columns: dict[str, tuple[Any, ...]], vectors: dict[str, VectorColumn], ids: tuple[str, ...] | None,
    ) -> RecordBatch:
        """A batch rebuilt from a store's own data (as ``Record.restore``): plain values of their inferred
        types, taken as they are, unchecked. Stores use it to read pages as columns."""
        batch = object.__new__(cls)
        batch.columns, batch.vectors, batch.ids, batch._records = columns, vectors, ids, None
        return batch

    def __len__(self) -> int:
        column = next(iter(self.columns.values()), None)
        return len(column) if column is not None else len(next(iter(self.vectors.values())).matrix)

    def names(self) -> tuple[str, ...]:
        """Every field name, scalar columns first."""
        return (*self.columns, *self.vectors)

    def vector_names(self) -> tuple[str, ...]:
        return tuple(self.vectors)

    def with_ids(self, ids: Sequence[str]) -> RecordBatch:
        """The same columns (shared, they are immutable) under other ids."""
        return RecordBatch.restore(self.columns, self.vectors, _checked_ids(ids, len(self)))

    def records(self) -> list[Record]:
        """The rows as ``Record``s (built once, without re-checking; they share the batch's read-only vectors
        and copy its dicts and lists)."""
        if self._records is None:
            if self.ids is None:
                raise InvalidRecordError("this batch has no ids yet; a store gives it ids when it is written")
            self._records = list(self._rows())
        return self._records

    def _rows(self) -> Iterator[Record]:
        assert self.ids is not None
        scalars = list(self.columns.items())
        vectors = list(self.vectors.items())
        for row, record_id in enumerate(self.ids):
            fields: dict[str, Field] = {}
            for name, values in scalars:
                value = values[row]  # containers are copied: the records are the store's to keep
                fields[name] = Field.restore(name, copy_value(value) if value.__class__ in CONTAINERS else value)
            for name, column in vectors:
                fields[name] = column.field(name, row)
            yield Record.restore(record_id, fields)

    def __repr__(self) -> str:
        return f"RecordBatch({len(self)} rows: {', '.join(self.names())})"


def last_id(page: RecordBatch | Sequence[Record]) -> str:
    """The id of the last row of a page a store wrote or read (its rows have ids)."""
    if isinstance(page, RecordBatch):
        assert page.ids is not None
        return page.ids[-1]
    return page[-1].key


def _checked_ids(ids: Sequence[str], rows: int) -> tuple[str, ...]:
    if isinstance(ids, (str, bytes)) or not hasattr(ids, "__len__"):
        raise InvalidRecordError(f"RecordBatch ids must be a sequence of str, got {type(ids).__name__}")
    checked = check_record_ids(ids)
    if len(checked) != rows:
        raise InvalidRecordError(f"RecordBatch: {len(checked)} ids for {rows} rows")
    if len(set(checked)) != rows:
        seen: set[str] = set()
        twice = next(i for i in checked if i in seen or seen.add(i))  # type: ignore[func-returns-value]
        raise InvalidRecordError(f"record id {twice!r} appears twice in one batch")
    return checked


def _checked_column(name: str, column: Any) -> tuple[Any, ...]:
    """A column's values, checked as ``Field`` checks one value (numpy arrays converted in one pass)."""
    where = f"column {name!r}"
    if isinstance(column, np.ndarray):
        if column.ndim != 1:
            raise InvalidRecordError(f"{where}: a value column must be 1-D, got shape {column.shape} "
                                     "(a 2-D float array is a vector column)")
        if column.dtype.kind == "f" and not np.isfinite(column).all():
            raise InvalidRecordError(f"{where}: holds NaN or inf; store None instead")
        if column.dtype.kind in "biuf":
            return tuple(column.tolist())
        column = column.tolist()
    if isinstance(column, (str, bytes, Mapping)) or not hasattr(column, "__iter__"):
        raise InvalidRecordError(f"{where}: expected a sequence with one value per row, got {type(column).__name__}")
    values = list(column)
    if set(map(type, values)) <= _UNCHECKED and all(map(math.isfinite, (v for v in values if v.__class__ is float))):
        return tuple(values)  # immutable plain values need no check or copy
    for row, value in enumerate(values):
        plain = PLAIN_TYPES.get(value.__class__)
        if plain is None or (value.__class__ is float and not math.isfinite(value)):
            values[row] = check_value(value, f"{where} row {row}")  # raises for what a field cannot hold
    return tuple(values)

