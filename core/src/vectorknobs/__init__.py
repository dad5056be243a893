"""vectorknobs: one async API for records that carry text and the vectors made from it, over any store.

>>> import vectorknobs as vk
>>> async def main():
...     async with vk.connect("memory://") as store:
...         await store.create(vk.Record({"text": "hi", "embedding": vk.VectorField([1.0, 0.0])}))
"""

from vectorknobs.capabilities import Capabilities
from vectorknobs.config import Option, StoreConfig
from vectorknobs.connect import connect
from vectorknobs.embedders import EmbeddingFunction, HashingEmbedder
from vectorknobs.errors import (
    CapabilityError,
    ConfigError,
    CorruptStoreError,
    DimensionMismatchError,
    DuplicateIdError,
    EmbeddingError,
    FilterError,
    InvalidNameError,
    InvalidRecordError,
    PluginError,
    QueryError,
    RecordError,
    RecordNotFoundError,
    StoreClosedError,
    StoreError,
    StoreLockedError,
    UnknownBackendError,
    UnknownFieldError,
    ValidationError,
    VectorknobsError,
    VectorValueError,
)
from vectorknobs.fields import Field, FieldType, SparseVectorField, VectorField
from vectorknobs.filters import And, Condition, Filter, Not, Operator, Or, and_, not_, or_, where
from vectorknobs.hookspecs import hookimpl
from vectorknobs.metrics import DistanceMetric
from vectorknobs.query import Query, VectorQuery
from vectorknobs.record import Record
from vectorknobs.results import VectorSearchResult
from vectorknobs.store import Hit, Schema, VectorStore, WriteMode

__all__ = [
    "And",
    "Capabilities",
    "CapabilityError",
    "Condition",
    "ConfigError",
    "CorruptStoreError",
    "DimensionMismatchError",
    "DistanceMetric",
    "DuplicateIdError",
    "EmbeddingError",
    "EmbeddingFunction",
    "Field",
    "FieldType",
    "Filter",
    "FilterError",
    "HashingEmbedder",
    "Hit",
    "InvalidNameError",
    "InvalidRecordError",
    "Not",
    "Operator",
    "Option",
    "Or",
    "PluginError",
    "Query",
    "QueryError",
    "Record",
    "RecordError",
    "RecordNotFoundError",
    "Schema",
    "SparseVectorField",
    "StoreClosedError",
    "StoreConfig",
    "StoreError",
    "StoreLockedError",
    "UnknownBackendError",
    "UnknownFieldError",
    "ValidationError",
    "VectorField",
    "VectorQuery",
    "VectorSearchResult",
    "VectorStore",
    "VectorValueError",
    "VectorknobsError",
    "WriteMode",
    "and_",
    "connect",
    "hookimpl",
    "not_",
    "or_",
    "where",
]
