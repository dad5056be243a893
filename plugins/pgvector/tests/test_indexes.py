"""HNSW and IVFFlat indexes: parameters, the automatic choice by size, per-query settings, builds, and
filtered searches that return k rows whenever k rows match."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import numpy as np
import pytest
import vectorknobs as vk
from vectorknobs.config import parse_config
from vectorknobs.testing import with_options
from vectorknobs_pgvector import IndexKind, PgvectorStore

pytestmark = pytest.mark.asyncio
RawConnect = Callable[[str], Awaitable[asyncpg.Connection]]
Records = Callable[..., list[vk.Record]]


async def index_definitions(conn: asyncpg.Connection, url: str) -> list[str]:
    """The table's vector indexes as ``CREATE INDEX ... [operator class]``."""
    params = parse_config(url).params
    rows = await conn.fetch(
        "SELECT pg_get_indexdef(x.indexrelid) || ' [' || o.opcname || ']' FROM pg_index x "
        "JOIN pg_class c ON c.oid = x.indexrelid JOIN pg_am a ON a.oid = c.relam "
        "JOIN pg_opclass o ON o.oid = x.indclass[0] "
        "WHERE x.indrelid = to_regclass($1) AND a.amname IN ('hnsw', 'ivfflat') ORDER BY c.relname",
        f'"{params["schema"]}"."{params["table"]}"')
    return [row[0] for row in rows]


def exact_top(data: list[vk.Record], query: np.ndarray, k: int, where: Callable[[vk.Record], bool],
              metric: str = "cosine") -> list[str]:
    """Ids of the ``k`` records nearest ``query`` among those ``where`` accepts (float64, numpy)."""
    matrix = np.vstack([r.fields["embedding"].value for r in data if where(r)]).astype(np.float64)
    ids = [r.key for r in data if where(r)]
    if metric == "cosine":
        scores = matrix @ query / (np.linalg.norm(matrix, axis=1) * np.linalg.norm(query))
    else:
        scores = -np.linalg.norm(matrix - query, axis=1)
    return [ids[i] for i in np.argsort(-scores, kind="stable")[:k]]


async def test_hnsw_and_ivfflat_with_parameters(
    table_url: str, raw_connect: RawConnect, records: Records
) -> None:
    raw = await raw_connect(table_url)
    async with vk.connect(with_options(table_url, index="none")) as store:
        assert isinstance(store, PgvectorStore)
        await store.bulk_create(records(300, 16))
        assert await index_definitions(raw, table_url) == []  # index=none builds nothing by itself
        hnsw = await store.create_index("embedding", "hnsw", m=8, ef_construction=40)
        ivf = await store.create_index("embedding", "ivfflat", "euclidean", lists=20)
        assert hnsw is not None
        assert ivf is not None
        assert (hnsw.kind, hnsw.params) == (IndexKind.HNSW, {"m": 8, "ef_construction": 40})
        assert (ivf.kind, ivf.params, ivf.metric) == (IndexKind.IVFFLAT, {"lists": 20}, vk.DistanceMetric.EUCLIDEAN)
        definitions = await index_definitions(raw, table_url)
        assert len(definitions) == 2
        built = {"hnsw": next(d for d in definitions if "USING hnsw" in d),
                 "ivfflat": next(d for d in definitions if "USING ivfflat" in d)}
        assert built["hnsw"].endswith("USING hnsw (embedding vector_cosine_ops) WITH (ef_construction='40', m='8') "
                                      "[vector_cosine_ops]")
        # vector_l2_ops is the default operator class, which pg_get_indexdef leaves out
        assert built["ivfflat"].endswith("USING ivfflat (embedding) WITH (lists='20') [vector_l2_ops]")
    async with vk.connect(with_options(table_url, index="none")) as reopened:
        assert isinstance(reopened, PgvectorStore)
        assert [(i.kind, i.metric, i.params) for i in reopened.indexes()] == [
            (IndexKind.HNSW, vk.DistanceMetric.COSINE, {"m": 8, "ef_construction": 40}),
            (IndexKind.IVFFLAT, vk.DistanceMetric.EUCLIDEAN, {"lists": 20}),
        ]
        assert await reopened.drop_index("embedding", "euclidean") is True
        assert await reopened.drop_index("embedding", "euclidean") is False
        assert len(await index_definitions(raw, table_url)) == 1


async def test_half_precision_indexes_cast_the_column(table_url: str, raw_connect: RawConnect,
                                                      records: Records) -> None:
    raw = await raw_connect(table_url)
    async with vk.connect(with_options(table_url, index="none")) as store:
        assert isinstance(store, PgvectorStore)
        await store.bulk_create(records(200, 16))
        index = await store.create_index("embedding", "hnsw", half=True)
        assert index is not None
        assert index.half
        [definition] = await index_definitions(raw, table_url)
        assert "((embedding)::halfvec(16)) halfvec_cosine_ops" in definition
        query = records(200, 16)[42].fields["embedding"].value
        assert (await store.vector_search(query, k=1))[0].id == "r42"


async def test_bad_index_requests_are_typed_errors(table_url: str, records: Records) -> None:
    async with vk.connect(with_options(table_url, index="none")) as store:
        assert isinstance(store, PgvectorStore)
        await store.bulk_create(records(20, 4))
        with pytest.raises(vk.QueryError, match="ef_construction >= 2 \\* m"):
            await store.create_index("embedding", "hnsw", m=16, ef_construction=8)
        with pytest.raises(vk.QueryError, match="unknown index kind"):
            await store.create_index("embedding", "btree")
        with pytest.raises(vk.UnknownFieldError, match="no vector field"):
            await store.create_index("text", "hnsw")
        assert await store.create_index("embedding", "auto") is None  # 20 rows: exact search is the better choice
        assert store.indexes() == []


async def test_the_automatic_choice_follows_the_table_size(table_url: str, records: Records) -> None:
    url = with_options(table_url, auto_index_rows=200, hnsw_rows=1000, ivfflat_lists=10)
    async with vk.connect(url) as store:
        assert isinstance(store, PgvectorStore)
        kinds: list[list[IndexKind]] = []
        for start in range(0, 1200, 100):
            await store.bulk_create(records(100, 8, start=start, seed=start))
            kinds.append([i.kind for i in store.indexes()])
        # 100 rows: exact search; from 200 (auto_index_rows): IVFFlat; from 1000 (hnsw_rows): HNSW instead
        assert kinds == [[]] + [[IndexKind.IVFFLAT]] * 8 + [[IndexKind.HNSW]] * 3
        assert [i.automatic for i in store.indexes()] == [True]
    async with vk.connect(url) as reopened:
        assert isinstance(reopened, PgvectorStore)
        assert [i.kind for i in reopened.indexes()] == [IndexKind.HNSW]


async def test_per_query_settings_reach_the_server(
    statement_log: Any, records: Records
) -> None:
    url = statement_log.url(index="none", ef_search="77", min_pool_size="1", max_pool_size="1")
    query = records(1, 16, seed=9)[0].fields["embedding"].value
    async with vk.connect(url) as store:
        assert isinstance(store, PgvectorStore)
        await store.bulk_create(records(300, 16))
        await store.create_index("embedding", "hnsw")
        await store.create_index("embedding", "ivfflat", "euclidean", lists=16)
        await store.vector_search(query, k=5)  # the URL's ef_search is the session's: no extra statement
        with store.search_options(ef_search=123):
            await store.vector_search(query, k=5)
        with store.search_options(probes=7):
            await store.vector_search(query, k=5, metric="euclidean")
        await store.vector_search(query, k=5)  # back to the URL's value
        with pytest.raises(vk.QueryError, match="ef_search must be a positive int"):
            store.search_options(ef_search=0)
    settings = [e for e in statement_log.entries(url) if "set_config" in e and "maintenance" not in e]
    assert settings == [
        "SELECT set_config($1, $2, false) | $1 = 'hnsw.ef_search', $2 = '123'",
        "SELECT set_config($1, $2, false) | $1 = 'ivfflat.probes', $2 = '7'",
        "SELECT set_config($1, $2, false) | $1 = 'hnsw.ef_search', $2 = '77'",
    ]
    builds = [e for e in statement_log.entries(url) if "maintenance_work_mem" in e]
    assert len(builds) == 2
    assert all("'512MB'" in e for e in builds)


async def test_the_index_answers_searches_and_ef_search_steers_it(table_url: str, records: Records) -> None:
    data = records(3000, 32)
    queries = [r.fields["embedding"].value for r in records(20, 32, seed=1)]
    async with vk.connect(with_options(table_url, index="none")) as store:
        assert isinstance(store, PgvectorStore)
        await store.bulk_create(data)
        await store.create_index("embedding", "hnsw", m=2, ef_construction=4)  # a deliberately poor graph

        async def recall(**options: Any) -> float:
            found = 0
            with store.search_options(**options):
                for q in queries:
                    hits = await store.vector_search(q, k=10)
                    found += len({h.id for h in hits} & set(exact_top(data, q, 10, lambda r: True)))
            return found / (10 * len(queries))

        approximate, wide, exact = await recall(ef_search=10), await recall(ef_search=1000), await recall(exact=True)
    assert exact == 1.0
    assert approximate < 0.95  # the poor graph answered: the index was used
    assert wide > approximate  # a larger hnsw.ef_search searched more of it


async def test_index_builds_use_maintenance_work_mem(
    table_url: str, records: Records, caplog: pytest.LogCaptureFixture
) -> None:
    data = records(1200, 128)
    for memory, warned in (("1MB", True), ("512MB", False)):
        url = with_options(table_url, table=f"t_mwm_{memory.lower()}", index="none", maintenance_work_mem=memory)
        async with vk.connect(url) as store:
            assert isinstance(store, PgvectorStore)
            await store.bulk_create(data)
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger="vectorknobs_pgvector"):
                await store.create_index("embedding", "hnsw")
            messages = [r.getMessage() for r in caplog.records]
            assert any("maintenance_work_mem" in m and memory in m for m in messages) is warned, messages
            await store.drop()


async def test_filtered_search_returns_k_whenever_k_rows_match(statement_log: Any, records: Records) -> None:
    # 10 rows per category: a filter keeps 0.1% of the table. Without the GIN index on the fields
    # (doc_index=false) PostgreSQL filters the rows the vector index yields, which then finds too few.
    data = records(10_000, 8, categories=1000)
    query = records(1, 8, seed=5)[0].fields["embedding"].value
    url = statement_log.url(index="none", doc_index="false", max_pool_size="1")
    async with vk.connect(url) as store:
        assert isinstance(store, PgvectorStore)
        await store.bulk_create(data)
        await store.create_index("embedding", "hnsw", "cosine", m=4, ef_construction=16)
        await store.create_index("embedding", "ivfflat", "euclidean", lists=100)
    for iterative in (True, False):
        searching = with_options(url, iterative_scan=str(iterative).lower())
        async with vk.connect(searching) as store:
            for metric in ("cosine", "euclidean"):
                before = len([e for e in statement_log.entries(url) if "ORDER BY _d" in e])
                hits = await store.vector_search(query, k=10, metric=metric, filter={"category": "c7"})
                assert [h.id for h in hits] == exact_top(data, query, 10, lambda r: r["category"] == "c7", metric)
                # iterative index scans find all ten in one query; without them the search is repeated exactly
                searches = len([e for e in statement_log.entries(url) if "ORDER BY _d" in e]) - before
                assert searches == (1 if iterative else 2), (metric, iterative)
                few = await store.vector_search(query, k=10, metric=metric, filter={"rank": {"$lt": 3}})
                assert sorted(h.id for h in few) == ["r0", "r1", "r2"]  # fewer match than k: all of them
                assert await store.vector_search(query, k=10, metric=metric, filter={"category": "none"}) == []


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "dot_product"])
async def test_index_searches_report_the_exact_scores(table_url: str, records: Records, metric: str) -> None:
    data = records(400, 16)
    query = records(1, 16, seed=3)[0].fields["embedding"].value.astype(np.float64)
    url = with_options(table_url, index="none", metric=metric)
    async with vk.connect(url) as store:
        assert isinstance(store, PgvectorStore)
        await store.bulk_create(data)
        await store.create_index("embedding", "hnsw")
        with store.search_options(ef_search=400):
            hits = await store.vector_search(query, k=20)
    vectors = {r.key: r.fields["embedding"].value.astype(np.float64) for r in data}
    for hit in hits:
        v = vectors[hit.id]
        exact = {"cosine": v @ query / (np.linalg.norm(v) * np.linalg.norm(query)), "dot_product": v @ query,
                 "euclidean": 1 / (1 + np.linalg.norm(v - query))}[metric]
        assert hit.score == pytest.approx(exact, rel=1e-5, abs=1e-6)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "dot_product"])
async def test_index_searches_order_equal_scores_by_id(table_url: str, records: Records, metric: str) -> None:
    """Copies of one vector score the same through an index; they come back in id order (written in reverse,
    so pgvector's own order need not be theirs), and a zero vector scores 0 under cosine."""
    data = records(300, 8)
    target = data[7].fields["embedding"].value
    copies = [vk.Record({"text": f"copy {i}", "embedding": vk.VectorField(target)}, id=f"copy{i}")
              for i in reversed(range(5))]
    zero = vk.Record({"embedding": vk.VectorField(np.zeros(8, dtype=np.float32))}, id="zero")
    async with vk.connect(with_options(table_url, index="none", metric=metric)) as store:
        await store.bulk_create([*data, *copies, zero])
        await store.create_index("embedding", "hnsw")
        with store.search_options(ef_search=400):
            hits = await store.vector_search(target, k=20, include_vectors=False)
            far = await store.vector_search(-target, k=400, metric=metric)
    tied = sorted(["r7", *(f"copy{i}" for i in range(5))])
    ids = [h.id for h in hits]
    first = ids.index(tied[0])  # dot_product: longer vectors may rank before them; the tied ones stay together
    assert ids[first:first + 6] == tied
    assert len({h.score for h in hits[first:first + 6]}) == 1
    if metric == "cosine":
        assert next(h.score for h in far if h.id == "zero") == 0.0
    assert [h.score for h in far] == sorted((h.score for h in far), reverse=True)
