"""Index types and their parameters, the automatic choice by size, per-query search parameters, several
vector fields, and filtered search on approximate indexes — all against real faiss indexes."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pytest
import vectorknobs as vk
from faiss_helpers import clustered, exact_ids, mean_recall, records

pytestmark = pytest.mark.asyncio


def saved_index(store_dir: Path, slot: int = 1) -> Any:
    """The faiss index as saved in the store's directory, read by faiss itself."""
    owner = faiss.read_index(str(store_dir / "index" / f"field-{slot}.faiss"))
    index = faiss.downcast_index(owner)
    index.referenced_objects = [owner]  # the downcast proxy does not own the C++ object
    return index


# options, rows, the factory string, recall@10 it must reach with those parameters, and a check of the
# faiss object read back from the saved file
KINDS = {
    "flat": ({"index": "flat"}, 300, "IDMap,Flat", 1.0,
             lambda i: isinstance(faiss.downcast_index(i.index), faiss.IndexFlat)),
    "ivf": ({"index": "ivf", "nlist": 16, "nprobe": 4}, 1200, "IVF16,Flat", 0.9,
            lambda i: isinstance(i, faiss.IndexIVFFlat) and i.nlist == 16),
    "ivf-sq8": ({"index": "ivf", "nlist": 16, "quantizer": "sq8"}, 1200, "IVF16,SQ8", 0.9,
                lambda i: isinstance(i, faiss.IndexIVFScalarQuantizer) and i.nlist == 16),
    # 4-byte PQ codes of 32 dimensions rank candidates coarsely: about a fifth of the true neighbours
    # (a random order would find 0.1%)
    "ivf-pq": ({"index": "ivf", "nlist": 8, "quantizer": "pq", "pq_m": 4}, 9984, "IVF8,PQ4", 0.15,
               lambda i: isinstance(i, faiss.IndexIVFPQ) and i.pq.M == 4 and i.nlist == 8),
    "hnsw": ({"index": "hnsw", "m": 8, "ef_construction": 40}, 1200, "IDMap,HNSW8", 0.9,
             lambda i: isinstance(faiss.downcast_index(i.index), faiss.IndexHNSWFlat)
             and faiss.downcast_index(i.index).hnsw.efConstruction == 40
             and faiss.downcast_index(i.index).hnsw.nb_neighbors(1) == 8),
    "hnsw-sq8": ({"index": "hnsw", "quantizer": "sq8"}, 1200, "IDMap,HNSW16_SQ8", 0.9,
                 lambda i: isinstance(faiss.downcast_index(i.index), faiss.IndexHNSWSQ)),
}


@pytest.mark.parametrize(("kind", "form"), [(kind, "url") for kind in KINDS] + [
    (kind, "dict") for kind in KINDS if kind != "ivf-pq"  # the slowest to train; the dict path is the same
])
async def test_index_kind_and_parameters_from_config(store_dir: Path, kind: str, form: str) -> None:
    """Each index kind is built as configured (checked on the faiss index read back from its file) and
    searches it with exact scores: candidates from faiss, scores from the stored vectors."""
    options, n, factory, min_recall, check = KINDS[kind]
    config: str | dict[str, Any]
    if form == "url":
        config = f"faiss://{store_dir}?" + "&".join(f"{k}={v}" for k, v in options.items())
    else:
        config = {"backend": "faiss", "path": str(store_dir), **options}
    vectors = clustered(n, 32, seed=1)
    queries = clustered(10, 32, seed=2)
    async with vk.connect(config) as store:
        await store.bulk_create(records(vectors))
        await store.wait_for_indexes()
        info = store.index_info()["embedding"]
        assert (info["factory"], info["size"]) == (factory, n)
        hits = await store.vector_search(queries[0], k=10)
        assert len(hits) == 10
        assert hits == sorted(hits, key=lambda h: -h.score)
        stored = {f"r{i}": v for i, v in enumerate(vectors)}
        for hit in hits:
            v = stored[hit.id].astype(np.float64)
            cosine = float(v @ queries[0]) / (np.linalg.norm(v) * np.linalg.norm(queries[0]))
            assert hit.score == pytest.approx(cosine, rel=1e-5)
        assert await mean_recall(store, vectors, queries) >= min_recall
    assert check(saved_index(store_dir))


async def test_bad_index_options_are_config_errors(store_dir: Path) -> None:
    for bad in ("index=annoy", "quantizer=opq", "m=1", "ef_search=0", "nlist=-1", "flat_limit=x", "nprobe=1.5"):
        with pytest.raises(vk.ConfigError, match=bad.split("=")[0]):
            await vk.connect(f"faiss://{store_dir}?{bad}")


async def test_automatic_choice_by_size(store_dir: Path) -> None:
    """index=auto: exact below flat_limit, IVF up to ivf_limit (trained once enough vectors are stored),
    HNSW above; each step is a background rebuild, and results stay right throughout."""
    vectors = clustered(3500, 16, seed=3)
    queries = clustered(20, 16, seed=4)
    steps = {150: "flat", 600: "flat", 1200: "ivf", 3000: "ivf", 3500: "hnsw"}
    async with vk.connect(f"faiss://{store_dir}?flat_limit=200&ivf_limit=3000") as store:
        done = 0
        for upto, kind in steps.items():
            await store.bulk_create(records(vectors[done:upto], start=done))
            done = upto
            await store.wait_for_indexes()
            info = store.index_info()["embedding"]
            assert (info["kind"], info["size"]) == (kind, upto), upto
            assert await mean_recall(store, vectors[:upto], queries) >= (1.0 if kind == "flat" else 0.9)
            if kind == "ivf":  # trained at 1200 on what was there, kept (not retrained) up to 3000
                assert info["trained_on"] == 1200
    async with vk.connect(f"faiss://{store_dir}?flat_limit=200&ivf_limit=3000") as store:
        assert store.index_info()["embedding"]["kind"] == "hnsw"
        assert isinstance(faiss.downcast_index(saved_index(store_dir).index), faiss.IndexHNSWFlat)


async def test_writes_during_a_rebuild_get_the_index_their_size_calls_for(
        store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rebuild plans from the size when it starts; writes while it runs schedule nothing (one rebuild per
    field at a time). When it ends, the store plans again: here the IVF build is held until the records pass
    ivf_limit, and HNSW follows it."""
    from vectorknobs_faiss.indexes import FieldIndex

    vectors = clustered(1800, 16, seed=5)
    held, release = asyncio.Event(), threading.Event()
    build = FieldIndex.build.__func__  # type: ignore[attr-defined]

    def slow_build(cls: type[FieldIndex], spec: Any, *args: Any) -> Any:
        if spec.kind == "ivf":  # planned for 1,200 records: hold it (on its worker thread) until told
            loop.call_soon_threadsafe(held.set)
            release.wait(30)
        return build(cls, spec, *args)

    monkeypatch.setattr(FieldIndex, "build", classmethod(slow_build))
    loop = asyncio.get_running_loop()
    async with vk.connect(f"faiss://{store_dir}?flat_limit=200&ivf_limit=1500") as store:
        await store.bulk_create(records(vectors[:1200]))  # past flat_limit: an IVF rebuild starts
        await asyncio.wait_for(held.wait(), 30)
        await store.bulk_create(records(vectors[1200:], start=1200))  # past ivf_limit while it runs
        release.set()
        await store.wait_for_indexes()
        info = store.index_info()["embedding"]
        assert (info["kind"], info["size"]) == ("hnsw", 1800)


async def test_ivf_trains_once_enough_vectors_are_stored(store_dir: Path) -> None:
    """An explicit IVF index searches exactly until it has enough vectors to train (39 per list, at
    least 1000), then trains on them; later writes are added to the trained index, not retrained."""
    vectors = clustered(1300, 16, seed=5)
    async with vk.connect(f"faiss://{store_dir}?index=ivf&nlist=20") as store:
        await store.bulk_create(records(vectors[:999]))
        await store.wait_for_indexes()
        assert store.index_info()["embedding"]["kind"] == "flat"
        await store.bulk_create(records(vectors[999:1000], start=999))
        await store.wait_for_indexes()
        info = store.index_info()["embedding"]
        assert (info["kind"], info["nlist"], info["trained_on"], info["size"]) == ("ivf", 20, 1000, 1000)
        await store.bulk_create(records(vectors[1000:], start=1000))
        await store.wait_for_indexes()
        info = store.index_info()["embedding"]
        assert (info["trained_on"], info["size"]) == (1000, 1300)


async def test_per_query_nprobe(store_dir: Path) -> None:
    """search_params(nprobe=...) applies to searches inside the block only: one list finds fewer true
    neighbours than all of them, which find exactly the exact ones."""
    vectors = clustered(4000, 32, seed=6, clusters=200)
    queries = clustered(30, 32, seed=7, clusters=200)
    async with vk.connect(f"faiss://{store_dir}?index=ivf&nlist=64&nprobe=1") as store:
        await store.bulk_create(records(vectors))
        await store.wait_for_indexes()
        narrow = await mean_recall(store, vectors, queries)
        with store.search_params(nprobe=64):
            wide = await mean_recall(store, vectors, queries)
        assert await mean_recall(store, vectors, queries) == narrow  # the default is back after the block
    assert wide == 1.0
    assert narrow < 0.9


async def test_per_query_ef_search(store_dir: Path) -> None:
    """search_params(ef_search=...) widens HNSW's candidate list for searches inside the block."""
    rng = np.random.default_rng(8)
    vectors = rng.normal(size=(3000, 48)).astype(np.float32)  # uniform: hard for a sparse graph
    queries = rng.normal(size=(30, 48)).astype(np.float32)
    async with vk.connect(f"faiss://{store_dir}?index=hnsw&m=4&ef_construction=16&ef_search=10") as store:
        await store.bulk_create(records(vectors))
        narrow = await mean_recall(store, vectors, queries)
        with store.search_params(ef_search=800):
            wide = await mean_recall(store, vectors, queries)
        with store.search_params(exact=True):
            exact = await mean_recall(store, vectors, queries)
    assert exact == 1.0
    assert wide >= 0.98
    assert narrow < 0.9


async def test_search_params_are_scoped_to_their_task(store_dir: Path) -> None:
    """Another task searching at the same time keeps the store's defaults."""
    import asyncio

    rng = np.random.default_rng(9)
    vectors = rng.normal(size=(3000, 48)).astype(np.float32)
    queries = rng.normal(size=(30, 48)).astype(np.float32)
    async with vk.connect(f"faiss://{store_dir}?index=hnsw&m=4&ef_construction=16&ef_search=10") as store:
        await store.bulk_create(records(vectors))
        plain = await mean_recall(store, vectors, queries)

        async def wide() -> float:
            with store.search_params(ef_search=800):
                return await mean_recall(store, vectors, queries)

        wide_recall, plain_again = await asyncio.gather(wide(), mean_recall(store, vectors, queries))
    assert plain_again == plain < wide_recall


async def test_search_params_are_checked() -> None:
    from vectorknobs_faiss import FaissStore

    for bad in ({"ef_search": 0}, {"nprobe": -1}, {"nprobe": True}, {"ef_search": 2.5}, {"exact": "yes"}):
        with pytest.raises(vk.QueryError), FaissStore.search_params(**bad):
            pass


async def test_several_vector_fields_per_record(store_dir: Path) -> None:
    """Each vector field has its own index, dimension and kind of content; a record may lack one."""
    rng = np.random.default_rng(10)
    title, body = rng.normal(size=(1200, 8)).astype(np.float32), rng.normal(size=(1200, 24)).astype(np.float32)
    batch = [
        vk.Record({"title": f"t{i}", "title_vec": vk.VectorField(title[i], source_field="title"),
                   **({"body_vec": vk.VectorField(body[i])} if i % 3 else {})}, id=f"r{i}")
        for i in range(1200)
    ]
    async with vk.connect(f"faiss://{store_dir}?index=hnsw") as store:
        await store.bulk_create(batch)
    async with vk.connect(f"faiss://{store_dir}?index=hnsw") as store:  # both indexes survive reopening
        info = store.index_info()
        assert {name: (i["dims"], i["size"], i["kind"]) for name, i in info.items()} == {
            "title_vec": (8, 1200, "hnsw"), "body_vec": (24, 800, "hnsw")}
        with store.search_params(ef_search=400):
            by_title = await store.vector_search(title[5], vector_field="title_vec", k=5)
            by_body = await store.vector_search(body[5], vector_field="body_vec", k=50)
        assert [h.id for h in by_title] == exact_ids(title, title[5], 5)
        assert by_title[0].source_text == "t5"
        with_body = [i for i in range(1200) if i % 3]
        assert [h.id for h in by_body] == exact_ids(body, body[5], 50, rows=with_body)
        with pytest.raises(vk.DimensionMismatchError):
            await store.vector_search(title[0], vector_field="body_vec")


@pytest.mark.parametrize("config", [
    "index=ivf&nlist=32&nprobe=1", "index=hnsw&m=4&ef_construction=16&ef_search=10", "index=hnsw&quantizer=sq8",
])
async def test_filtered_search_returns_k_on_approximate_indexes(store_dir: Path, config: str) -> None:
    """A filter matching 2% of the records still gives k results, all matching (the index pre-filters with
    an id selector and searches wider when the filtered candidates run short: one IVF list of 32 holds
    fewer than k matches); ``exact_limit=0`` keeps the score-them-all shortcut for small matches away."""
    vectors = clustered(5000, 32, seed=11, clusters=50)
    batch = records(vectors)
    for i, r in enumerate(batch):
        r["rare"] = i % 50 == 0
    async with vk.connect(f"faiss://{store_dir}?{config}&exact_limit=0") as store:
        await store.bulk_create(batch)
        await store.wait_for_indexes()
        assert store.index_info()["embedding"]["kind"] in ("ivf", "hnsw")
        matching = list(range(0, 5000, 50))
        for seed in range(5):
            query = clustered(1, 32, seed=100 + seed, clusters=50)[0]
            hits = await store.vector_search(query, k=10, filter={"rare": True})
            assert len(hits) == 10
            assert all(h.record["rare"] is True for h in hits)
            if "ivf" in config:  # IVF searching every list is exact, filtered too
                with store.search_params(nprobe=32):
                    hits = await store.vector_search(query, k=10, filter={"rare": True})
                assert [h.id for h in hits] == exact_ids(vectors, query, 10, rows=matching)
            few = await store.vector_search(query, k=10, filter={"rare": True, "group": 0, "text": "doc 100"})
            assert [h.id for h in few] == ["r100"]


async def test_filtered_searches_see_every_write(store_dir: Path) -> None:
    """Filters' matches are cached between writes; each create, update and delete is seen at once."""
    vectors = clustered(2000, 16, seed=12)
    query = clustered(1, 16, seed=13)[0]
    async with vk.connect(f"faiss://{store_dir}?index=hnsw&exact_limit=0") as store:
        await store.bulk_create(records(vectors))

        async def top(group: int) -> list[str]:
            return [h.id for h in await store.vector_search(query, k=3, filter={"group": group})]

        before = await top(3)
        assert before == await top(3)
        await store.create(vk.Record({"group": 3, "embedding": vk.VectorField(query)}, id="new"))
        assert await top(3) == ["new", *before[:2]]
        await store.update(vk.Record({"group": 4, "embedding": vk.VectorField(query)}, id="new"))
        assert await top(3) == before
        assert (await top(4))[0] == "new"
        await store.delete("new")
        assert "new" not in await top(4)
        await store.bulk_delete(before)
        assert set(await top(3)).isdisjoint(before)


@pytest.mark.parametrize("config", [
    "index=ivf&nlist=32&nprobe=1", "index=ivf&nlist=16&quantizer=sq8", "index=hnsw&m=4&ef_construction=16&ef_search=10",
    "index=hnsw&quantizer=sq8",
])
async def test_a_batch_answers_each_query_as_its_own_search(store_dir: Path, config: str) -> None:
    """``vector_search_batch`` shares one faiss search and one read of the candidates between its queries;
    each still gets exactly its single search's hits and scores: with ties at the k-th (copies of a vector,
    so the candidates must be widened), with a filter rare enough that the index misses matches (searched
    again exhaustively), and with one small enough to be scored exactly."""
    vectors = clustered(3000, 32, seed=21, clusters=40)
    vectors[3000 - 300:] = np.repeat(vectors[:100], 3, axis=0)  # every one of the first 100 four times
    batch = records(vectors)
    for i, r in enumerate(batch):
        r["rare"], r["n"] = i % 60 == 0, i
    queries = np.vstack([vectors[:12], clustered(12, 32, seed=22, clusters=40)])
    async with vk.connect(f"faiss://{store_dir}?{config}&exact_limit=20") as store:
        await store.bulk_create(batch)
        await store.wait_for_indexes()
        assert store.index_info()["embedding"]["kind"] in ("ivf", "hnsw")
        for where in (None, {"group": 3}, {"rare": True}, {"rare": True, "n": {"$lt": 900}}):
            together = await store.vector_search_batch(queries, k=6, filter=where)
            alone = [await store.vector_search(q, k=6, filter=where) for q in queries]
            assert [[(h.id, h.score) for h in hits] for hits in together] == [
                [(h.id, h.score) for h in hits] for hits in alone]
            assert all(len(hits) == 6 for hits in together)
            bare = await store.vector_search_batch(queries, k=6, filter=where, include_vectors=False)
            assert [[(h.id, h.score, h.source_text) for h in hits] for hits in bare] == [
                [(h.id, h.score, h.source_text) for h in hits] for hits in together]
            assert all(h.record.fields.keys() == {"text", "group", "rare", "n"} for hits in bare for h in hits)
        copies = await store.vector_search_batch(vectors[:3], k=4)
        assert [sorted(h.id for h in hits) for hits in copies] == [
            sorted([f"r{i}", *(f"r{2700 + 3 * i + j}" for j in range(3))]) for i in range(3)]
        assert [h.source_text for h in copies[1]] == [h.record["text"] for h in copies[1]]
