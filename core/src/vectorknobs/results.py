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
    found = record.fields.get(vector_field)
    if not isinstance(found, VectorField) or not found.source_field:
        return None
    parts = [record.get_value(name) for name in found.source_fields]
    texts = [p for p in parts if isinstance(p, str)]
    return "\n".join(texts) if texts else None
