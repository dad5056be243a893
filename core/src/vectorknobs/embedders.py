"""Embedding functions: a small protocol, and a dependency-free deterministic embedder.

Any callable ``list[str] -> array (n, d)`` works, sync or async; give it ``name``, ``version`` and
``dimensions`` attributes to have them recorded on the vectors it makes. Plugins register factories of
them by name (``register_embedders``); ``resolve_embedder("hash")`` finds one.

Also here, shared by ``bulk_embed_and_store`` and the synchronizer: which text a vector is made from
(``source_text``) and how a vector records where it came from (``stamp``).
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from vectorknobs.errors import (
    EmbeddingError,
    InvalidEmbeddingError,
    SourceTextError,
    ValidationError,
    VectorknobsError,
)
from vectorknobs.fields import FloatArray, VectorField
from vectorknobs.query import EmbeddingFnRef

if TYPE_CHECKING:
    from vectorknobs.record import Record


@runtime_checkable
class EmbeddingFunction(Protocol):
    """``fn(texts) -> (len(texts), dimensions)`` float array, or an awaitable of one."""

    name: str
    version: str
    dimensions: int

    def __call__(self, texts: list[str]) -> FloatArray | Awaitable[FloatArray]: ...


def content_hash(text: str) -> str:
    """The hash stored on a vector to tell whether its source text changed."""
    return hashlib.sha256(text.encode()).hexdigest()


def resolve_embedder(ref: EmbeddingFnRef | None, **options: Any) -> Callable[..., Any]:
    """The embedding function ``ref`` names (``"hash"``, ``"minilm"``...) or ``ref`` itself if it is one."""
    if ref is None:
        raise ValidationError("an embedding_fn is needed: a registered name such as 'hash', or a callable")
    if isinstance(ref, str):
        from vectorknobs.plugins import get_registry

        return get_registry().embedder(ref, **options)
    if not callable(ref):
        raise ValidationError(f"embedding_fn must be a name or a callable, got {ref!r}")
    return ref


def source_text(record: Record, text_fields: Sequence[str]) -> str:
    """The text a vector of ``record`` is made from: its ``text_fields`` joined by newlines.

    A field that is absent or None is left out; ``SourceTextError`` if one holds something other than
    text, or if none holds any. ``source_text(Record({"title": "Hi", "body": "there"}), ["title", "body"])``
    """
    parts = []
    for name in text_fields:
        value = record.get_value(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise SourceTextError(
                f"record {record.id!r}: source field {name!r} must hold text, got {type(value).__name__} {value!r:.60}"
            )
        parts.append(value)
    if not parts:
        raise SourceTextError(
            f"record {record.id!r} has no text in {', '.join(map(repr, text_fields))}: "
            "give it that field, or choose the text fields with text_fields=[...]"
        )
    return "\n".join(parts)


def stamp(vector: npt.ArrayLike, text_fields: Sequence[str], text: str, fn: Callable[..., Any]) -> VectorField:
    """A ``VectorField`` that records its source fields, the model's name and version and the text's hash."""
    name, version, _ = describe(fn)
    return VectorField(
        vector, source_field=",".join(text_fields), model_name=name, model_version=version,
        content_hash=content_hash(text),
    )


def describe(fn: Callable[..., Any]) -> tuple[str, str | None, int | None]:
    """``(name, version, dimensions)`` of any embedding callable."""
    name = getattr(fn, "name", None) or getattr(fn, "__name__", None) or type(fn).__name__
    return str(name), getattr(fn, "version", None), getattr(fn, "dimensions", None)


async def embed(fn: Callable[..., Any], texts: Sequence[str]) -> FloatArray:
    """Run ``fn`` on ``texts`` without blocking the loop, and check what it returns."""
    batch = list(texts)
    name, _, dimensions = describe(fn)
    try:
        if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__):
            out = await fn(batch)
        else:
            out = await asyncio.to_thread(fn, batch)
            if inspect.isawaitable(out):
                out = await out
    except VectorknobsError:
        raise
    except Exception as err:  # a failing model or API is caught by kind, with the cause chained
        raise EmbeddingError(f"embedder {name!r} failed on {len(batch)} texts: {type(err).__name__}: {err}") from err
    try:
        with np.errstate(over="ignore"):  # values beyond float32 become inf, reported below
            array = np.asarray(out, dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise InvalidEmbeddingError(f"embedder {name!r} returned something that is not numbers: {err}") from None
    if array.ndim != 2 or array.shape[0] != len(batch):
        raise InvalidEmbeddingError(
            f"embedder {name!r} returned shape {array.shape} for {len(batch)} texts; expected ({len(batch)}, d)"
        )
    if dimensions is not None and array.shape[1] != dimensions:
        raise InvalidEmbeddingError(f"embedder {name!r} declares {dimensions} dimensions but returned {array.shape[1]}")
    if not np.isfinite(array).all():
        raise InvalidEmbeddingError(f"embedder {name!r} returned NaN or inf")
    return array


_TOKEN = re.compile(r"\w+", re.UNICODE)


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens; the keyword half of hybrid search uses the same ones."""
    return _TOKEN.findall(text.lower())


class HashingEmbedder:
    """Deterministic, dependency-free embeddings by feature hashing of words and character trigrams.

    Texts sharing words get similar vectors, so it is good enough for demos, offline tests and the
    quickstart, never for production relevance.
    """

    version = "1"

    def __init__(self, dimensions: int = 256, name: str = "hash") -> None:
        if isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 8:
            raise EmbeddingError(f"HashingEmbedder dimensions must be an int >= 8, got {dimensions!r}")
        self.dimensions = dimensions
        self.name = name

    def __call__(self, texts: list[str]) -> FloatArray:
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for row, text in enumerate(texts):
            words = tokens(text)
            features = words + [f"#{w[i:i + 3]}" for w in words for i in range(max(1, len(w) - 2))]
            for feature in features:
                digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
                bucket = int.from_bytes(digest[:4], "little") % self.dimensions
                out[row, bucket] += 1.0 if digest[4] & 1 else -1.0
            norm = float(np.linalg.norm(out[row]))
            if norm > 0:
                out[row] /= norm
            else:
                out[row, 0] = 1.0  # an empty text still gets a valid unit vector
        return out
