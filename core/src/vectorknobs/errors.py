"""One exception hierarchy for everything vectorknobs raises.

Catch ``VectorknobsError`` for all of them, or a subclass by kind::

    try:
        await store.create(record)
    except vk.DuplicateIdError as err:
        ...
"""

from __future__ import annotations


class VectorknobsError(Exception):
    """Root of every error vectorknobs raises on purpose."""


class ValidationError(VectorknobsError, ValueError):
    """Input was rejected before anything was written or searched."""


class InvalidNameError(ValidationError):
    """A field name, path or identifier is not allowed (it could be an injection)."""


class InvalidRecordError(ValidationError):
    """A record or one of its fields is malformed."""


class SourceTextError(InvalidRecordError):
    """A record's source text field, which a vector is made from, is missing or does not hold text."""


class VectorValueError(ValidationError):
    """A vector has the wrong shape, dtype, dimension, or holds NaN/inf."""


class DimensionMismatchError(VectorValueError):
    """A vector's dimension differs from the one its field already has."""


class QueryError(ValidationError):
    """A query, filter or sort is malformed."""


class FilterError(QueryError):
    """A filter is malformed: unknown operator, bad operand, uncomparable type."""


class UnknownFieldError(QueryError):
    """A query names a field that no record in the store has."""


class ConfigError(VectorknobsError, ValueError):
    """A store configuration (string or dict) is invalid."""


class UnknownBackendError(ConfigError):
    """No installed plugin answers the configuration's scheme."""


class CapabilityError(VectorknobsError):
    """The store cannot do what was asked (operator, metric, hybrid, persistence...)."""


class RecordError(VectorknobsError):
    """A write conflicts with what is stored."""


class DuplicateIdError(RecordError):
    """``create`` was given an id that already exists."""


class RecordNotFoundError(RecordError, KeyError):
    """``update`` was given an id that does not exist."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class StoreError(VectorknobsError):
    """The store failed: I/O, a lost connection, a corrupt file. The operation did not apply."""


class StoreClosedError(StoreError):
    """The store was used after ``close()``."""


class StoreLockedError(StoreError):
    """Another process holds the store open for writing."""


class CorruptStoreError(StoreError):
    """Stored data cannot be read back: wrong format, wrong version, truncated."""


class EmbeddingError(VectorknobsError):
    """An embedding function failed or returned unusable vectors."""


class InvalidEmbeddingError(EmbeddingError):
    """An embedding function returned the wrong shape or dimension, non-numbers, NaN or inf (retrying
    will not help: fix the function or its configuration)."""


class PluginError(VectorknobsError):
    """A plugin registered something invalid."""


class WriteListenerError(VectorknobsError):
    """A write listener failed *after* the batch was written: the write itself applied."""


class SyncError(VectorknobsError):
    """Keeping vectors in step with their text failed part-way; what was done is kept and reported.

    ``result`` holds the report (a ``SyncResult``, ``MigrationResult`` or ``VectorizerReport``) up to the
    failure; the cause is chained. Running the same operation again resumes it.
    """

    def __init__(self, message: str, result: object = None) -> None:
        super().__init__(message)
        self.result = result


class MigrationError(SyncError):
    """A migration stopped part-way; its checkpoint (if any) lets the same call resume it."""


class CheckpointError(MigrationError):
    """A migration checkpoint is unreadable or belongs to another source and target."""


class VectorizerError(SyncError):
    """The incremental vectorizer could not embed some records after retrying; ``result.failed`` names them."""
