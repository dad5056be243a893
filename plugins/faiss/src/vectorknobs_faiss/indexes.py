"""One vector field's faiss index: build, add, remove, search, and its crash-safe file.

Labels are the records' SQLite rowids, which are never reused and never change their vectors (an
update writes a new row), so any saved index can be brought up to date by adding the labels it lacks
and removing those whose records are gone. HNSW cannot remove vectors: their labels are kept as
``dead`` and excluded from every search until the index is rebuilt.

A field's file is the faiss index followed by a JSON trailer (what it is, for which store, a CRC32),
the trailer's length and a magic number; a file that does not check out is rebuilt, never trusted.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import faiss as _faiss
import numpy as np
import numpy.typing as npt
from vectorknobs import DistanceMetric
from vectorknobs._fs import atomic_file
from vectorknobs.fields import FloatArray

from vectorknobs_faiss.options import IndexSpec

#: faiss' bundled stubs miss much of its SWIG API (search parameters, IO callbacks): use it untyped
faiss: Any = _faiss

Labels = npt.NDArray[np.int64]

FORMAT = "vectorknobs-faiss-index"
VERSION = 1
MAGIC = b"VKFAISS\x01"
_TAIL = struct.Struct("<Q8s")
_CHUNK = 1 << 23
#: HNSW indexes are rebuilt once this share of their vectors belongs to deleted records
COMPACT_RATIO = 0.25


class FieldIndex:
    """A faiss index over one vector field, labelled by record rowid. Not thread-safe: callers lock."""

    def __init__(self, spec: IndexSpec, index: Any, trained_on: int) -> None:
        self.spec = spec
        self.index = index
        self.trained_on = trained_on
        self.dead: Labels = np.empty(0, dtype=np.int64)
        self.dirty = False
        self._dead_selector: tuple[Any, ...] | None = None
        #: search parameters of unfiltered searches by (ef_search, nprobe); they hold the dead labels' selector
        self._unfiltered: dict[tuple[int, int], Any] = {}

    @classmethod
    def build(cls, spec: IndexSpec, n: int, train: FloatArray | None, batches: Iterable[tuple[Labels, FloatArray]]
              ) -> FieldIndex:
        """A new index over ``batches``, trained on ``train`` if it needs training."""
        index = faiss.index_factory(spec.dims, spec.factory, faiss_metric(spec.metric))
        if spec.kind == "hnsw":
            faiss.downcast_index(index.index).hnsw.efConstruction = spec.ef_construction
        if spec.quantizer == "pq" and spec.kind == "ivf":
            # polysemous codes are only used by Hamming-threshold searches, which the store never runs;
            # training them takes minutes for a few thousand vectors
            index.do_polysemous_training = False
        if not index.is_trained:
            assert train is not None
            index.train(prepare(train, spec.metric))
        built = cls(spec, index, n)
        for labels, vectors in batches:
            built.add(labels, vectors)
        built.dirty = True
        return built

    @property
    def size(self) -> int:
        """Vectors of live records."""
        return int(self.index.ntotal) - len(self.dead)

    @property
    def needs_compaction(self) -> bool:
        return len(self.dead) > COMPACT_RATIO * max(1, int(self.index.ntotal))

    def add(self, labels: Labels, vectors: FloatArray) -> None:
        if len(labels):
            self.index.add_with_ids(prepare(vectors, self.spec.metric), labels)
            self.dirty = True

    def remove(self, labels: Labels) -> None:
        """Forget the vectors of ``labels`` (all of which are in the index)."""
        if not len(labels):
            return
        if self.spec.kind == "hnsw":
            self.dead = np.union1d(self.dead, labels)
            self._dead_selector = None
            self._unfiltered.clear()
        else:
            self.index.remove_ids(faiss.IDSelectorBatch(labels))
        self.dirty = True

    def labels(self) -> Labels:
        """Every label in the index, dead ones included."""
        if self.spec.kind != "ivf":
            return faiss.vector_to_array(self.index.id_map).astype(np.int64, copy=False)  # type: ignore[no-any-return]
        lists = self.index.invlists
        parts = [
            faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
            for i in range(lists.nlist) if lists.list_size(i)
        ]
        return np.concatenate(parts).astype(np.int64, copy=False) if parts else np.empty(0, dtype=np.int64)

    @property
    def exact_distances(self) -> bool:
        """Are faiss' distances the float32 arithmetic on the stored vectors themselves? Not for quantized
        codes, nor for a flat index, whose batches go through BLAS (squared L2 by its expansion, which
        cancels badly for near vectors, and dot products summed in another order than a single search)."""
        return self.spec.quantizer == "none" and self.spec.kind in ("hnsw", "ivf")

    def search(self, queries: FloatArray, k: int, *, ef_search: int, nprobe: int, allowed: Labels | None = None
               ) -> tuple[npt.NDArray[np.float32], Labels]:
        """Distances and labels of the ``k`` nearest vectors (among ``allowed`` when given) of each row of
        ``queries``, nearest first by faiss' distances; label -1 pads a row that found fewer."""
        keep: tuple[Any, ...] = ()  # faiss holds raw pointers: keep selectors and bitmaps alive
        if allowed is not None:
            keep = _bitmap_selector(allowed)
        elif len(self.dead):
            if self._dead_selector is None:
                inner = _bitmap_selector(self.dead)
                self._dead_selector = (faiss.IDSelectorNot(inner[0]), *inner)
            keep = self._dead_selector
        selector = keep[0] if keep else None
        depth = (max(ef_search, k), min(nprobe, self.spec.nlist))
        params = self._unfiltered.get(depth) if allowed is None else None
        if params is None:
            if self.spec.kind == "hnsw":
                params = faiss.SearchParametersHNSW(efSearch=depth[0], sel=selector)
            elif self.spec.kind == "ivf":
                params = faiss.SearchParametersIVF(nprobe=depth[1], sel=selector)
            else:
                params = faiss.SearchParameters(sel=selector)
            if allowed is None:  # the same for every unfiltered search until the dead labels change
                self._unfiltered[depth] = params
        distances, labels = self.index.search(prepare(queries, self.spec.metric), k, params=params)
        return distances, labels

    # -- file -------------------------------------------------------------------------------------
    def save(self, path: Path, header: dict[str, Any]) -> None:
        """Write the index and a checked trailer to ``path`` atomically (``StoreError`` on failure)."""
        crc, size = 0, 0
        with atomic_file(path) as out:

            def write(chunk: bytes) -> None:
                nonlocal crc, size
                crc = zlib.crc32(chunk, crc)
                size += len(chunk)
                out.write(chunk)

            faiss.write_index(self.index, faiss.PyCallbackIOWriter(write))
            trailer = json.dumps({
                **header, "format": FORMAT, "version": VERSION, "spec": self.spec.to_dict(),
                "trained_on": self.trained_on, "size": size, "crc32": crc,
            }).encode()
            out.write(trailer + _TAIL.pack(len(trailer), MAGIC))
        self.dirty = False

    @classmethod
    def load(cls, path: Path, header: dict[str, Any]) -> FieldIndex:
        """The index saved at ``path``; ``ValueError`` says why when it is missing, foreign or damaged."""
        try:
            with path.open("rb") as handle:
                total = handle.seek(0, 2)
                if total < _TAIL.size:
                    raise ValueError("file too short")
                handle.seek(total - _TAIL.size)
                length, magic = _TAIL.unpack(handle.read(_TAIL.size))
                if magic != MAGIC or length > total - _TAIL.size:
                    raise ValueError("not a vectorknobs faiss index file")
                handle.seek(total - _TAIL.size - length)
                trailer = json.loads(handle.read(length))
                expected = {**header, "format": FORMAT, "version": VERSION}
                if not isinstance(trailer, dict) or any(trailer.get(k) != v for k, v in expected.items()):
                    raise ValueError("written for another store, field, dimension or format version")
                if trailer["size"] != total - _TAIL.size - length or _crc(handle, trailer["size"]) != trailer["crc32"]:
                    raise ValueError("truncated or damaged (checksum mismatch)")
                spec = IndexSpec.from_dict(trailer["spec"])
            index = faiss.read_index(str(path))
        except (OSError, KeyError, TypeError, json.JSONDecodeError, UnicodeDecodeError, RuntimeError) as err:
            raise ValueError(str(err)) from None
        if index.d != spec.dims or index.metric_type != faiss_metric(spec.metric):
            raise ValueError("index does not match its trailer")
        return cls(spec, index, int(trailer["trained_on"]))


def use_one_thread() -> None:
    """Make faiss calls from the current thread run on one OpenMP thread.

    A single-vector search has nothing to split across threads, yet faiss still enters a parallel
    region: on a busy machine the idle team members wait to be scheduled and a 0.3 ms search takes
    ten times that. The setting is per thread (an OpenMP ICV), so builds elsewhere keep every core.
    """
    faiss.omp_set_num_threads(1)


def faiss_metric(metric: DistanceMetric) -> int:
    return int(faiss.METRIC_L2 if metric is DistanceMetric.EUCLIDEAN else faiss.METRIC_INNER_PRODUCT)


def prepare(vectors: FloatArray, metric: DistanceMetric) -> FloatArray:
    """Vectors as faiss takes them: contiguous float32, unit length for cosine (zero stays zero)."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if metric is DistanceMetric.COSINE:
        norms = row_norms(x)  # in float64: float32 squares overflow for large components
        x = x * (1.0 / np.where(norms > 0, norms, 1.0)).astype(np.float32)[:, None]
    return x


def row_norms(matrix: FloatArray) -> npt.NDArray[np.float64]:
    """L2 norm of each row, computed in float64."""
    return np.sqrt(np.einsum("ij,ij->i", matrix, matrix, dtype=np.float64))


def _bitmap_selector(labels: Labels) -> tuple[Any, ...]:
    bits = np.zeros(int(labels.max()) + 1 if len(labels) else 1, dtype=bool)
    bits[labels] = True
    bitmap = np.packbits(bits, bitorder="little")
    return faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap)), bitmap


def _crc(handle: Any, size: int) -> int:
    handle.seek(0)
    crc, left = 0, size
    while left > 0:
        chunk = handle.read(min(_CHUNK, left))
        if not chunk:
            break
        crc = zlib.crc32(chunk, crc)
        left -= len(chunk)
    return crc
