"""vectorknobs-sentence-transformers: registered through the plugin hook's entry point, loads the packaged
all-MiniLM-L6-v2 offline, and its vectors mean something."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import numpy as np
import pytest
import vectorknobs as vk
from vectorknobs.embedders import describe, embed
from vectorknobs.plugins import get_registry, reset_registry
from vectorknobs.sync import VectorTextSynchronizer
from vectorknobs_sentence_transformers import SentenceTransformerEmbedder, minilm

CAT = "A cat is sleeping on the sofa."
KITTEN = "A small kitten naps on the couch."
MARKET = "The stock market fell sharply after the interest rate decision."
CODE = "Python lists are dynamic arrays that grow as you append."


@pytest.fixture(scope="module")
def model() -> SentenceTransformerEmbedder:
    """One loaded model for the module (loading torch and the weights takes seconds)."""
    embedder = minilm()
    embedder([CAT])
    return embedder


def test_registered_by_name_through_the_entry_point() -> None:
    reset_registry()
    registry = get_registry()
    by_name = registry.embedder("minilm")
    assert isinstance(by_name, SentenceTransformerEmbedder)
    assert isinstance(registry.embedder("all-MiniLM-L6-v2"), SentenceTransformerEmbedder)
    assert isinstance(registry.embedder("st", model=by_name.model), SentenceTransformerEmbedder)
    infos = {info.name: info for info in registry.embedders()}
    assert infos["all-MiniLM-L6-v2"].distribution == "vectorknobs-sentence-transformers"
    assert infos["sentence-transformers"].aliases == ("st",)
    assert isinstance(by_name, vk.EmbeddingFunction)


def test_identity_is_known_before_the_model_loads() -> None:
    embedder = minilm()
    name, version, dimensions = describe(embedder)
    assert (name, dimensions) == ("all-MiniLM-L6-v2", 384)
    assert version is not None
    assert len(version) == 16
    assert minilm().version == version  # the same files: the same version, in any process
    assert embedder._loaded is None


def test_changed_model_files_change_the_version(tmp_path: Path) -> None:
    packaged = Path(minilm().model)
    copy = tmp_path / "model"
    shutil.copytree(packaged, copy, copy_function=lambda src, dst: Path(dst).symlink_to(src))
    assert SentenceTransformerEmbedder(copy).version == minilm().version
    (copy / "config.json").unlink()
    (copy / "config.json").write_text((packaged / "config.json").read_text().replace("}", ', "tuned": 1}', 1))
    assert SentenceTransformerEmbedder(copy).version != minilm().version
    assert SentenceTransformerEmbedder(copy, version="v2").version == "v2"


def test_close_meanings_score_higher_than_unrelated_ones(model: SentenceTransformerEmbedder) -> None:
    cat, kitten, market, code = model([CAT, KITTEN, MARKET, CODE])
    np.testing.assert_allclose(np.linalg.norm(model([CAT, MARKET]), axis=1), 1.0, rtol=1e-5)
    assert float(cat @ kitten) > 0.5  # paraphrases with no content word in common
    assert float(cat @ kitten) > float(cat @ market) + 0.3
    assert float(cat @ kitten) > float(cat @ code) + 0.3
    assert model([]).shape == (0, 384)


@pytest.mark.asyncio
async def test_semantic_search_in_a_store(model: SentenceTransformerEmbedder) -> None:
    async with vk.connect("memory://") as store:
        sync = VectorTextSynchronizer(store, model, "text")
        await sync.bulk_create([vk.Record({"text": t}, id=i) for i, t in
                                [("cat", CAT), ("market", MARKET), ("code", CODE)]])
        stored = await store.read("cat")
        assert stored is not None
        assert stored.fields["embedding"].model_name == "all-MiniLM-L6-v2"
        hits = await store.search(vk.Query().near_text("a feline resting on furniture", embedding_fn=model, k=3))
        assert hits[0].id == "cat"
        assert hits[0].source_text == CAT
        hits = await store.search(vk.Query().near_text("equities dropped", embedding_fn=model, k=1))
        assert hits[0].id == "market"
        assert (await sync.bulk_sync()).embedded == 0  # current: nothing embedded again


@pytest.mark.asyncio
async def test_embedding_runs_off_the_event_loop(model: SentenceTransformerEmbedder) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    task = asyncio.create_task(ticker())
    out = await embed(model, [CODE] * 256)
    task.cancel()
    assert out.shape == (256, 384)
    assert ticks > 5


def test_a_missing_model_is_a_typed_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "no-model-here"
    missing.mkdir()
    with pytest.raises(vk.EmbeddingError, match=r"could not load sentence-transformers model '.*no-model-here'"):
        SentenceTransformerEmbedder(missing)(["text"])
    with pytest.raises(vk.EmbeddingError, match="batch_size must be a positive int"):
        SentenceTransformerEmbedder(missing, batch_size=0)


def test_the_core_extra_installs_this_distribution() -> None:
    import tomllib

    here = Path(__file__).resolve().parents[1]
    ours = tomllib.loads((here / "pyproject.toml").read_text())["project"]
    core = tomllib.loads((here.parents[1] / "core" / "pyproject.toml").read_text())["project"]
    assert core["optional-dependencies"]["sentence-transformers"] == [ours["name"]]
    assert ours["entry-points"]["vectorknobs"] == {"sentence-transformers": "vectorknobs_sentence_transformers"}
