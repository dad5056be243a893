"""What a store can do. The conformance suite holds every store to what it declares."""

from __future__ import annotations

from dataclasses import dataclass, field

from vectorknobs.filters import ALL_OPERATORS, Operator
from vectorknobs.metrics import DistanceMetric
from vectorknobs.query import MAX_K


@dataclass(frozen=True)
class Capabilities:
    """Declared by every store class; ``vectorknobs stores`` prints them."""

    filter_operators: frozenset[Operator] = ALL_OPERATORS
    metrics: frozenset[DistanceMetric] = frozenset(DistanceMetric)
    #: any metric on any search; False means only the collection's configured metric
    per_query_metric: bool = True
    hybrid_search: bool = False
    sparse_vectors: bool = False
    persistence: bool = False
    transactions: bool = False
    exact_search: bool = True
    max_dimensions: int = 65_536
    max_k: int = MAX_K
    extras: dict[str, str] = field(default_factory=dict)

    def describe(self) -> dict[str, object]:
        return {
            "filter_operators": sorted(op.value for op in self.filter_operators),
            "metrics": sorted(m.value for m in self.metrics),
            "per_query_metric": self.per_query_metric,
            "hybrid_search": self.hybrid_search,
            "sparse_vectors": self.sparse_vectors,
            "persistence": self.persistence,
            "transactions": self.transactions,
            "exact_search": self.exact_search,
            "max_dimensions": self.max_dimensions,
            "max_k": self.max_k,
            **self.extras,
        }
