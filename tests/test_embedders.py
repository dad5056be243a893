"""Embedding functions: the hashing embedder, and ``embed()``'s checks on any callable."""

from __future__ import annotations

import asyncio
import functools
import subprocess
import sys
import threading
from typing import Any

import numpy as np
import pytest
from vectorknobs import EmbeddingError, EmbeddingFunction, HashingEmbedder, VectorknobsError
from vectorknobs.embedders import content_hash, describe, embed, tokens

TEXTS = ["The quick brown fox", "jumps over the lazy dog", "", "Ünïcode — text 123", "fox"]

# -- HashingEmbedder ------------------------------------------------------------------------------


def test_hashing_embedder_shape_dtype_and_unit_norm() -> None:
    embedder = HashingEmbedder(64)
    out = embedder(TEXTS)
    assert out.shape == (len(TEXTS), 64)
    assert out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-6)
    assert np.isfinite(out).all()


def test_hashing_embedder_is_deterministic_within_and_across_processes() -> None:
    first = HashingEmbedder(32)(TEXTS)
    assert np.array_equal(first, HashingEmbedder(32)(TEXTS))
    assert np.array_equal(first[1], HashingEmbedder(32)([TEXTS[1]])[0])  # batch-independent
    code = (
        "import sys, numpy as np; from vectorknobs import HashingEmbedder; "
        f"sys.stdout.write(HashingEmbedder(32)({TEXTS!r}).tobytes().hex())"
    )
    # a different hash seed must not change anything (the embedder may not use hash())
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": "123"}
    ).stdout
    assert bytes.fromhex(other) == first.tobytes()


def test_hashing_embedder_empty_text_still_gets_a_unit_vector() -> None:
    out = HashingEmbedder(16)(["", "   ", "!!!"])
    assert np.array_equal(out, np.tile(np.eye(16, dtype=np.float32)[0], (3, 1)))


def test_hashing_embedder_similar_texts_are_closer() -> None:
    a, b, c = HashingEmbedder(256)(["red apple pie", "apple pie recipe", "stock market crash"])
    assert float(a @ b) > float(a @ c)
    assert float(a @ b) > 0.3


def test_hashing_embedder_dimensions_change_the_output() -> None:
    assert HashingEmbedder().dimensions == 256
    assert HashingEmbedder(8)(["x"]).shape == (1, 8)
    assert HashingEmbedder(1000)(["x"]).shape == (1, 1000)


@pytest.mark.parametrize("dimensions", [7, 0, -1, 8.0, True, "16", None])
def test_hashing_embedder_rejects_bad_dimensions(dimensions: Any) -> None:
    with pytest.raises(EmbeddingError, match="int >= 8"):
        HashingEmbedder(dimensions)


def test_hashing_embedder_satisfies_the_protocol() -> None:
    embedder = HashingEmbedder(16, name="demo")
    assert isinstance(embedder, EmbeddingFunction)
    assert describe(embedder) == ("demo", "1", 16)
    assert HashingEmbedder(16).name == "hash"


def test_hashing_embedder_empty_batch() -> None:
    assert HashingEmbedder(16)([]).shape == (0, 16)


def test_tokens_and_content_hash() -> None:
    assert tokens("Hello, World! ÜBER-cool 42") == ["hello", "world", "über", "cool", "42"]
    assert content_hash("abc") == content_hash("abc")
    assert content_hash("abc") != content_hash("abd")
    assert len(content_hash("")) == 64


# -- embed() ------------------------------------------------------------------------------------------


def sync_fn(texts: list[str]) -> list[list[float]]:
    return [[float(len(t)), 1.0] for t in texts]


async def async_fn(texts: list[str]) -> np.ndarray:
    await asyncio.sleep(0)
    return np.array([[float(len(t)), 2.0] for t in texts])


class AsyncCallable:
    name = "async-callable"
    version = "3"
    dimensions = 2

    async def __call__(self, texts: list[str]) -> np.ndarray:
        return np.ones((len(texts), 2))


def returns_coroutine(texts: list[str]) -> Any:
    return async_fn(texts)


@pytest.mark.asyncio
async def test_embed_runs_sync_callables_off_the_event_loop() -> None:
    loop_thread = threading.get_ident()
    seen: list[int] = []

    def fn(texts: list[str]) -> np.ndarray:
        seen.append(threading.get_ident())
        return np.zeros((len(texts), 3))

    out = await embed(fn, ("a", "b"))
    assert out.shape == (2, 3)
    assert out.dtype == np.float32
    assert seen
    assert seen[0] != loop_thread


@pytest.mark.parametrize(
    ("fn", "second_column"),
    [
        (sync_fn, 1.0),
        (async_fn, 2.0),
        (functools.partial(async_fn), 2.0),
        (returns_coroutine, 2.0),
        (AsyncCallable(), 1.0),
        (lambda texts: np.full((len(texts), 2), 1.0), 1.0),
    ],
)
@pytest.mark.asyncio
async def test_embed_accepts_sync_and_async_callables(fn: Any, second_column: float) -> None:
    out = await embed(fn, ["ab", "cde"])
    assert out.dtype == np.float32
    assert out.shape == (2, 2)
    assert out[:, 1].tolist() == [second_column, second_column]


@pytest.mark.asyncio
async def test_embed_passes_a_list_of_the_texts() -> None:
    received: list[Any] = []

    def fn(texts: Any) -> np.ndarray:
        received.append(texts)
        return np.zeros((len(texts), 2))

    await embed(fn, iter(["x", "y"]))  # type: ignore[arg-type]
    assert received == [["x", "y"]]
    assert type(received[0]) is list


@pytest.mark.asyncio
async def test_embed_with_the_hashing_embedder() -> None:
    out = await embed(HashingEmbedder(16), ["hello"])
    assert np.array_equal(out, HashingEmbedder(16)(["hello"]))


class Declared:
    def __init__(self, dims: int, out: Any) -> None:
        self.name = "declared"
        self.version = "1"
        self.dimensions = dims
        self.out = out

    def __call__(self, texts: list[str]) -> Any:
        return self.out


@pytest.mark.parametrize(
    ("fn", "match"),
    [
        (lambda texts: np.zeros(2), r"shape \(2,\) for 2 texts"),
        (lambda texts: np.zeros((3, 4)), r"shape \(3, 4\) for 2 texts"),
        (lambda texts: np.zeros((2, 4, 1)), "shape"),
        (lambda texts: None, "shape"),
        (lambda texts: 5.0, "shape"),
        (lambda texts: [[1.0, 2.0], [3.0]], "not numbers"),
        (lambda texts: [["a", "b"], ["c", "d"]], "not numbers"),
        (lambda texts: {"a": 1}, "not numbers"),
        (lambda texts: np.array([[np.nan, 1.0], [1.0, 1.0]]), "NaN or inf"),
        (lambda texts: np.array([[np.inf, 1.0], [1.0, 1.0]]), "NaN or inf"),
        (lambda texts: np.array([[1e39, 1.0], [1.0, 1.0]]), "NaN or inf"),
        (Declared(3, np.zeros((2, 4))), "declares 3 dimensions but returned 4"),
        (Declared(4, np.full((2, 4), np.nan)), "NaN"),
    ],
)
@pytest.mark.asyncio
async def test_embed_rejects_unusable_output(fn: Any, match: str) -> None:
    with pytest.raises(EmbeddingError, match=match):
        await embed(fn, ["a", "b"])


@pytest.mark.asyncio
async def test_the_error_names_the_embedder() -> None:
    with pytest.raises(EmbeddingError, match="'declared'"):
        await embed(Declared(3, np.zeros((2, 4))), ["a", "b"])

    def my_model(texts: list[str]) -> np.ndarray:
        return np.zeros(1)

    with pytest.raises(EmbeddingError, match="'my_model'"):
        await embed(my_model, ["a"])


@pytest.mark.parametrize("fn", [sync_fn, async_fn])
@pytest.mark.asyncio
async def test_a_failing_embedder_raises_embedding_error_with_the_cause(fn: Any) -> None:
    def broken_sync(texts: list[str]) -> Any:
        raise ConnectionError("model server down")

    async def broken_async(texts: list[str]) -> Any:
        raise ConnectionError("model server down")

    broken = broken_sync if fn is sync_fn else broken_async
    with pytest.raises(EmbeddingError, match="failed on 1 texts: ConnectionError: model server down") as info:
        await embed(broken, ["x"])
    assert isinstance(info.value.__cause__, ConnectionError)


@pytest.mark.asyncio
async def test_vectorknobs_errors_from_an_embedder_pass_through_unchanged() -> None:
    with pytest.raises(EmbeddingError, match="int >= 8"):
        await embed(HashingEmbedder(2), ["x"])

    async def raises_own() -> None:
        raise EmbeddingError("mine")

    with pytest.raises(VectorknobsError, match=r"^mine$"):
        await embed(lambda texts: raises_own(), ["x"])


@pytest.mark.asyncio
async def test_cancellation_is_not_turned_into_an_embedding_error() -> None:
    started = asyncio.Event()

    async def slow(texts: list[str]) -> np.ndarray:
        started.set()
        await asyncio.sleep(60)
        return np.zeros((1, 2))

    task = asyncio.create_task(embed(slow, ["x"]))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_describe_falls_back_to_names() -> None:
    assert describe(sync_fn) == ("sync_fn", None, None)
    assert describe(AsyncCallable()) == ("async-callable", "3", 2)
    assert describe(functools.partial(sync_fn))[0] == "partial"
