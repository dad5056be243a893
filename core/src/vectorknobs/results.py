"""``VectorSearchResult``: a matched record with its score and the text its vector was made from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vectorknobs.fields import VectorField
from vectorknobs.record import Record


@dataclass
class VectorSearchResult:
    """One hit. ``score``: higher = more similar; ``distance``: the metric's raw distance."""

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
    return SourceTexts(vector_field)(record)


class SourceTexts:
    """``source_text_of`` for the hits of one search: each distinct ``source_field`` is split only once."""

    __slots__ = ("_names", "vector_field")

    def __init__(self, vector_field: str) -> None:
        self.vector_field = vector_field
        self._names: dict[str, tuple[str, ...]] = {}

    def __call__(self, record: Record) -> str | None:
        found = record.fields.get(self.vector_field)
        if not isinstance(found, VectorField) or not found.source_field:
            return None
        names = self._names.get(found.source_field)
        if names is None:
            names = self._names[found.source_field] = found.source_fields
        if len(names) == 1:
            text = record.lookup(names[0])
            return text if isinstance(text, str) else None
        texts = [text for text in map(record.lookup, names) if isinstance(text, str)]
        return "\n".join(texts) if texts else None
