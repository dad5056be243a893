"""SQL injection: hostile field names, paths, values, ids, table and schema names never reach SQL as code.

Every attempt either fails with a typed error before any SQL runs, or is stored and found as plain data;
afterwards the store's table and a canary table beside it are intact.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import numpy as np
import pytest
import pytest_asyncio
import vectorknobs as vk
from vectorknobs.config import parse_config
from vectorknobs.testing import with_options

pytestmark = pytest.mark.asyncio
RawConnect = Callable[[str], Awaitable[asyncpg.Connection]]

HOSTILE = [
    "x'); DROP TABLE canary; --",
    'x"; DROP TABLE canary; --',
    "x$1; DELETE FROM canary",
    "$$; DROP TABLE canary; $$",
    "\\'; DROP TABLE canary; --",
    "' OR '1'='1",
    "%' OR 1=1 --",
    "x\x00y",
    "e'\\x27",
    "::text); DROP TABLE canary; --",
    "}]\"'); SELECT pg_sleep(10); --",
]


class Canary:
    """The store under attack, a canary table in its schema, and a check that both are intact."""

    def __init__(self, store: vk.VectorStore, raw: asyncpg.Connection, schema: str, table: str) -> None:
        self.store, self.raw, self.schema, self.table = store, raw, schema, table

    async def intact(self, records: int) -> None:
        assert await self.raw.fetchval(f'SELECT count(*) FROM "{self.schema}".canary') == 1
        assert await self.raw.fetchval(f'SELECT count(*) FROM "{self.schema}"."{self.table}"') == records
        assert await self.store.count() == records


async def ids(store: vk.VectorStore, where: dict[str, object]) -> list[str | None]:
    """Ids of the records matching a filter, in the store's order."""
    return [r.id for r in await store.search(vk.Query().filter(where))]


@pytest.fixture
def attacked_url(table_url: str) -> str:
    """A fresh table in a schema of its own (which will also hold the canary table)."""
    return str(with_options(table_url, schema=f"vkinj_{uuid.uuid4().hex[:8]}"))


@pytest_asyncio.fixture
async def canary(attacked_url: str, raw_connect: RawConnect) -> AsyncIterator[Canary]:
    params = parse_config(attacked_url).params
    raw = await raw_connect(attacked_url)
    async with vk.connect(attacked_url) as store:
        await store.bulk_create([
            vk.Record({"text": "safe", "meta": {"tag": "a"}, "embedding": vk.VectorField([1.0, 0.0, 0.0])}, id="safe"),
        ])
        await raw.execute(f'CREATE TABLE "{params["schema"]}".canary (alive boolean); '
                          f'INSERT INTO "{params["schema"]}".canary VALUES (true)')
        yield Canary(store, raw, params["schema"], params["table"])
    await raw.execute(f'DROP SCHEMA "{params["schema"]}" CASCADE')


@pytest.mark.parametrize("name", [*HOSTILE, "_body", "_doc", "9lives", "a-b", "", "x" * 64])
async def test_hostile_field_names_are_refused(canary: Canary, name: str) -> None:
    store = canary.store
    with pytest.raises(vk.InvalidNameError):
        await store.create(vk.Record({name: 1}, id="new"))
    sneaked = vk.Record({"text": "t"}, id="new")
    sneaked.fields[name] = vk.Field(name, 1)  # past Record's own check: the store checks again
    with pytest.raises(vk.InvalidNameError):
        await store.create(sneaked)
    with pytest.raises(vk.FilterError, match="invalid field"):
        await store.search(vk.Query().filter(name, "eq", 1))
    with pytest.raises(vk.FilterError, match=r"invalid field|unknown logical operator"):
        await store.count({name: {"$exists": True}})
    with pytest.raises(vk.QueryError, match="cannot sort"):
        await store.search(vk.Query().sort(name))
    with pytest.raises(vk.QueryError, match="vector field"):
        await store.vector_search([1.0, 0.0, 0.0], vector_field=name)
    await canary.intact(1)


async def test_id_is_the_record_id_never_a_column(canary: Canary) -> None:
    sneaked = vk.Record({"text": "t"}, id="new")
    sneaked.fields["id"] = vk.Field("id", "other")
    with pytest.raises(vk.InvalidNameError, match="'id' is the record id"):
        await canary.store.create(sneaked)
    assert await ids(canary.store, {"id": "safe"}) == ["safe"]
    await canary.intact(1)


@pytest.mark.parametrize("path", [f"meta.{h}" for h in HOSTILE] + ["meta..tag", "meta.", "meta.tag.*"])
async def test_hostile_dotted_paths_are_refused(canary: Canary, path: str) -> None:
    with pytest.raises(vk.FilterError, match="invalid field path"):
        await canary.store.search(vk.Query().filter({path: "a"}))
    with pytest.raises(vk.FilterError, match="invalid field path"):
        await canary.store.vector_search([1.0, 0.0, 0.0], filter={"$or": [{"text": "safe"}, {path: {"$gt": 1}}]})
    await canary.intact(1)


async def test_paths_with_dashes_are_bound_not_spliced(canary: Canary) -> None:
    await canary.store.create(vk.Record({"meta": {"a-b": "dash", "tag": "b"}}, id="dashed"))
    assert await ids(canary.store, {"meta.a-b": "dash"}) == ["dashed"]
    await canary.intact(2)


async def test_hostile_values_and_ids_are_data(canary: Canary) -> None:
    store = canary.store
    records = [vk.Record({"text": value, "meta": {"tag": value, value[:1] or "k": value}, "n": i},
                         id=value.replace("\x00", "0")) for i, value in enumerate(HOSTILE)]
    await store.bulk_create(records)
    await canary.intact(1 + len(HOSTILE))
    for record in records:
        value = record["text"]
        assert await store.read(record.key) == record
        assert await ids(store, {"text": value}) == [record.id]
        assert await ids(store, {"meta.tag": {"$in": [value, "zzz"]}}) == [record.id]
        assert record.id in await ids(store, {"text": {"$contains": value}})
        assert await ids(store, {"text": {"$gte": value, "$lte": value}}) == [record.id]
        assert await store.count({"$not": {"text": value}}) == len(HOSTILE)
        assert await ids(store, {"id": record.id}) == [record.id]
    assert await ids(store, {"text": {"$like": "%DROP TABLE%"}}) == sorted(
        r.key for r in records if "DROP TABLE" in r["text"])
    hits = await store.vector_search(np.array([1.0, 0.0, 0.0]), filter={"text": {"$in": HOSTILE}})
    assert hits == []  # the hostile records have no vectors
    assert await store.bulk_delete([r.key for r in records]) == len(records)
    await canary.intact(1)


@pytest.mark.parametrize("option", ["table", "schema"])
@pytest.mark.parametrize("value", [*HOSTILE, "canary; --", "a.b", "pg_catalog.pg_class", "x" * 64])
async def test_hostile_table_and_schema_names_are_config_errors(
    canary: Canary, attacked_url: str, option: str, value: str
) -> None:
    with pytest.raises(vk.ConfigError, match=f"option {option}=.*invalid SQL identifier"):
        await vk.connect(with_options(attacked_url, **{option: value}))
    await canary.intact(1)


async def test_identifiers_are_quoted_so_case_is_kept(canary: Canary, attacked_url: str) -> None:
    url = with_options(attacked_url, table="Canary")
    async with vk.connect(url) as upper:  # "Canary" is not the existing canary table
        await upper.create(vk.Record({"text": "upper"}, id="u"))
        assert await upper.count() == 1
    assert await canary.raw.fetchval(f'SELECT count(*) FROM "{canary.schema}"."Canary"') == 1
    await canary.intact(1)


async def test_a_foreign_table_of_the_same_name_is_refused_untouched(canary: Canary, attacked_url: str) -> None:
    with pytest.raises(vk.ConfigError, match="not made by vectorknobs"):
        await vk.connect(with_options(attacked_url, table="canary"))
    await canary.intact(1)
