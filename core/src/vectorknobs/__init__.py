"""vectorknobs: one async API for records that carry text and the vectors made from it, over any store.

>>> import vectorknobs as vk
>>> async def main():
...     async with vk.connect("memory://") as store:
...         await store.create(vk.Record({"text": "hi", "embedding": vk.VectorField([1.0, 0.0])}))
"""

from vectorknobs.batch import RecordBatch, VectorColumn
from vectorknobs.capabilities import Capabilities
from vectorknobs.config import Option, StoreConfig
from vectorknobs.connect import connect
from vectorknobs.embedders import EmbeddingFunction, HashingEmbedder
from vectorknobs.errors import (
    CapabilityError,
    CheckpointError,
    ConfigError,
    CorruptStoreError,
    DimensionMismatchError,
    DuplicateIdError,
    EmbeddingError,
    FilterError,
    InvalidEmbeddingError,
    InvalidNameError,
    InvalidRecordError,
    MigrationError,
    PluginError,
    QueryError,
    RecordError,
    RecordNotFoundError,
    SourceTextError,
    StoreClosedError,
    StoreError,
    StoreLockedError,
    SyncError,
    UnknownBackendError,
    UnknownFieldError,
    ValidationError,
    VectorizerError,
    VectorknobsError,
    VectorValueError,
    WriteListenerError,
)
from vectorknobs.fields import Field, FieldType, SparseVectorField, VectorField
from vectorknobs.filters import And, Condition, Filter, Not, Operator, Or, and_, not_, or_, where
from vectorknobs.hookspecs import hookimpl
from vectorknobs.metrics import DistanceMetric
from vectorknobs.query import Query, VectorQuery
from vectorknobs.record import Record
from vectorknobs.results import VectorSearchResult
from vectorknobs.store import Hit, Schema, VectorStore, WriteEvent, WriteMode

__all__ = [
    "And",
    "Capabilities",
    "CapabilityError",
    "CheckpointError",
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
    "InvalidEmbeddingError",
    "InvalidNameError",
    "InvalidRecordError",
    "MigrationError",
    "Not",
    "Operator",
    "Option",
    "Or",
    "PluginError",
    "Query",
    "QueryError",
    "Record",
    "RecordBatch",
    "RecordError",
    "RecordNotFoundError",
    "Schema",
    "SourceTextError",
    "SparseVectorField",
    "StoreClosedError",
    "StoreConfig",
    "StoreError",
    "StoreLockedError",
    "SyncError",
    "UnknownBackendError",
    "UnknownFieldError",
    "ValidationError",
    "VectorColumn",
    "VectorField",
    "VectorQuery",
    "VectorSearchResult",
    "VectorStore",
    "VectorValueError",
    "VectorizerError",
    "VectorknobsError",
    "WriteEvent",
    "WriteListenerError",
    "WriteMode",
    "and_",
    "connect",
    "hookimpl",
    "not_",
    "or_",
    "where",
]
