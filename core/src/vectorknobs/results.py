"""``VectorSearchResult``: a matched record with its score and the text its vector was made from."""

from __future__ import annotations

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

    __slots__ = ("_paths",)

    def __init__(self) -> None:
        #: per source_field, its names, each with whether it is a top-level field (looked up directly)
        self._paths: dict[str, tuple[tuple[str, bool], ...]] = {}

    def __call__(self, record: Record, source_field: str | None) -> str | None:
        """The text of ``record``'s fields that ``source_field`` names (a vector field's provenance)."""
        if not source_field:
            return None
        paths = self._paths.get(source_field)
        if paths is None:
            paths = self._paths[source_field] = tuple(
                (name, is_field_name(name)) for name in split_source_field(source_field))
        if len(paths) == 1:
            return _text_at(record, *paths[0])
        texts = [text for text in (_text_at(record, *path) for path in paths) if text is not None]
        return "\n".join(texts) if texts else None


def _text_at(record: Record, name: str, top_level: bool) -> str | None:
    if top_level:
        found = record.fields.get(name)
        text = None if found is None else found.value
    else:
        text = record.lookup(name)
    return text if isinstance(text, str) else None
