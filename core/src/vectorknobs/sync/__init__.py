"""Keeping text and vectors in step, on any store.

* ``VectorTextSynchronizer`` — embed on create, re-embed when the source text changes, skip unchanged text;
  ``bulk_sync`` brings a whole store up to date.
* ``ChangeTracker`` — re-syncs automatically after every write (through the ``register_write_listeners`` hook).
* ``VectorMigration`` / ``migrate_between_stores`` — add vectors to existing records; copy between stores;
  resumable from a checkpoint.
* ``IncrementalVectorizer`` — a bounded background queue that embeds in batches, retries, and loses nothing.

>>> from vectorknobs.sync import VectorTextSynchronizer, ChangeTracker
"""

from vectorknobs.sync._flow import Failure
from vectorknobs.sync.migration import Checkpoint, MigrationResult, VectorMigration, migrate_between_stores
from vectorknobs.sync.synchronizer import SyncResult, VectorTextSynchronizer
from vectorknobs.sync.tracker import ChangeTracker
from vectorknobs.sync.vectorizer import IncrementalVectorizer, VectorizerReport

__all__ = [
    "ChangeTracker",
    "Checkpoint",
    "Failure",
    "IncrementalVectorizer",
    "MigrationResult",
    "SyncResult",
    "VectorMigration",
    "VectorTextSynchronizer",
    "VectorizerReport",
    "migrate_between_stores",
]
