"""``VectorSearchResult``: a matched record with its score and the text its vector was made from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vectorknobs.fields import FieldType, VectorField, split_source_field
from vectorknobs.names import is_field_name
from vectorknobs.record import Record

_VECTOR_TYPES = (FieldType.VECTOR, FieldType.SPARSE_VECTOR)


@dataclass(slots=True)
class VectorSearchResult:
    """One hit. ``score``: higher = more similar; ``distance``: the metric's raw distance. ``record`` has no
    vector fields when the search was made with ``include_vectors=False``."""

    record: Record
    score: float
    distance: float
    source_text: str | None = None
    vector_field: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        assert self.record.id is not None
        return self.record.id


def source_text_of(record: Record, vector_field: str) -> str | None:
    """The text a vector field was made from, joined with newlines when it names several fields."""
    return SourceTexts()(record, source_field_of(record, vector_field))


def source_field_of(record: Record, vector_field: str) -> str | None:
    """The ``source_field`` of ``record``'s vector field ``vector_field`` (None without one)."""
    found = record.fields.get(vector_field)
    return found.source_field if isinstance(found, VectorField) else None


def without_vectors(record: Record) -> Record:
    """``record`` without its vector fields (itself when it has none): what ``include_vectors=False`` returns."""
    fields = record.fields
    for f in fields.values():
        if f.type in _VECTOR_TYPES:
            return Record.restore(record.key, {name: f for name, f in fields.items() if f.type not in _VECTOR_TYPES})
    return record


class SourceTexts:
    """``source_text_of`` for the hits of one search: each distinct ``source_field`` is split only once."""

    __slots__ = ("_readers",)

    def __init__(self) -> None:
        self._readers: dict[str, Callable[[Record], str | None]] = {}

    def __call__(self, record: Record, source_field: str | None) -> str | None:
        """The text of ``record``'s fields that ``source_field`` names (a vector field's provenance)."""
        if not source_field:
            return None
        read = self._readers.get(source_field)
        if read is None:
            read = self._readers[source_field] = _text_reader(split_source_field(source_field))
        return read(record)


def _text_reader(names: tuple[str, ...]) -> Callable[[Record], str | None]:
    """Reads the text of the fields or paths ``names`` out of a record, joined with newlines."""
    if len(names) == 1 and is_field_name(names[0]):  # the common case: one top-level field
        name = names[0]

        def read_field(record: Record) -> str | None:
            found = record.fields.get(name)
            return found.value if found is not None and isinstance(found.value, str) else None

        return read_field

    def read_paths(record: Record) -> str | None:
        texts = [text for text in map(record.lookup, names) if isinstance(text, str)]
        return "\n".join(texts) if texts else None

    return read_paths
