"""Bad input: typed errors from ``vectorknobs.errors``, and nothing stored changes after a rejected call."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

import vectorknobs as vk
from vectorknobs.query import MAX_K
from vectorknobs.testing._support import ConfigLike, ConformanceBase, with_options
from vectorknobs.testing.crud import simple

HOSTILE_NAMES = [
    "name; DROP TABLE x", "a'b", 'a"b', "__proto__", "x.y", "", "id", "1abc", "a b", "a-b", "naïve", "a\x00b",
    "$where", "_private", "a" * 64, "embedding)--", "a/*b*/", "`x`",
]

#: hostile field names that are nevertheless valid filter paths: the record id, and a dotted path
VALID_AS_PATH = {"id", "x.y"}

BAD_VECTORS: list[Any] = [
    [1.0, math.nan, 0.0], [math.inf, 1.0, 0.0], [-math.inf, 0.0, 0.0], [1e39, 0.0, 0.0], ["a", "b", "c"],
    ["1", "2", "3"], [1, "2", 3], [[1.0, 2.0], [3.0, 4.0]], [], "abc", b"abc", {"a": 1.0}, [None, 1.0, 2.0],
    [True, False, True], [1 + 2j, 0, 0], np.array(["x", "y", "z"]), np.zeros((3, 1)), object(),
]

BAD_FILTERS: list[Any] = [
    {"price": {"$gt": [1, 2]}}, {"price": {"$gt": {"a": 1}}}, {"price": [1, 2]}, {"price": {"$eq": {"a": 1}}},
    {"price": {"$between": [1, 2, 3]}}, {"price": {"$between": [2, 1]}}, {"price": {"$between": [1, "a"]}},
    {"price": {"$between": 5}}, {"name": {"$like": 5}}, {"name": {"$in": "abc"}}, {"name": {"$in": [None]}},
    {"name": {"$in": [[1]]}}, {"name": {"$exists": "yes"}}, {"tags": {"$contains": [1]}},
    {"tags": {"$contains": None}}, {"flag": {"$gt": True}}, {"price": {"$lt": None}}, {"price": {}}, {},
    {"$or": []}, {"$and": {"a": 1}}, {"$not": "x"}, [("price", 1)], "price = 1",
]

UNKNOWN_OPERATORS: list[Any] = [
    {"price": {"$regex": "a"}}, {"price": {"$where": "1"}}, {"price": {"~": 1}}, {"$xor": [{"a": 1}]},
    {"$nor": [{"a": 1}]}, {"price": {"$ilike": "a"}},
]

BAD_PATHS = ["meta.a'b", "x;y", "a..b", "a.", ".a", "meta.a b", "id.x", "a.b c"]


def scalar_record(record_id: str, price: float) -> vk.Record:
    return vk.Record({"price": price, "name": f"n{price}", "embedding": vk.VectorField([price, 1.0, 0.0])},
                     id=record_id)


class BadInputTests(ConformanceBase):
    """Malformed records, vectors, filters and queries raise typed errors and change nothing."""

    @staticmethod
    async def seeded(store: vk.VectorStore) -> dict[str, vk.Record]:
        records = [scalar_record(f"s{i}", float(i)) for i in range(5)]
        await store.bulk_create(records)
        return {r.key: r for r in records}

    async def test_wrong_dimension_is_rejected(self, store_config: ConfigLike) -> None:
        """A vector whose dimension differs from the field's stored one raises DimensionMismatchError on
        create, upsert, update and search, and nothing is written.

        Troubleshooting: the core checks dimensions against ``_load_schema``; report every vector field's
        dimension there, including fields of an existing collection opened later.
        """
        async with vk.connect(store_config) as store:
            before = await self.seeded(store)
            wrong = vk.Record({"price": 9.0, "embedding": vk.VectorField([1.0, 2.0, 3.0, 4.0])}, id="s0")
            for write in (store.create, store.upsert, store.update):
                with pytest.raises(vk.DimensionMismatchError):
                    await write(wrong.with_id("s0" if write is store.update else "new"))
            with pytest.raises(vk.DimensionMismatchError):
                await store.vector_search([1.0, 2.0])
            with pytest.raises(vk.DimensionMismatchError):
                await store.search(vk.Query().similar_to(np.ones(4), k=2))
            assert await self.contents(store) == before

    @pytest.mark.parametrize("vector", BAD_VECTORS, ids=lambda v: type(v).__name__ + ":" + repr(v)[:24])
    async def test_invalid_vectors_are_rejected(self, store_config: ConfigLike, vector: Any) -> None:
        """NaN, inf, values beyond float32, strings, bools, complex numbers, 2-D, empty and non-sequence
        vectors raise VectorValueError, both as a stored VectorField and as a query vector."""
        async with vk.connect(store_config) as store:
            before = await self.seeded(store)
            with pytest.raises(vk.VectorValueError):
                vk.VectorField(vector)
            with pytest.raises(vk.VectorValueError):
                await store.vector_search(vector, k=3)
            with pytest.raises(vk.VectorValueError):
                vk.Query().similar_to(vector)
            assert await self.contents(store) == before

    async def test_zero_query_vector_with_cosine(self, store_config: ConfigLike) -> None:
        """A zero query vector has no cosine similarity: VectorValueError (other metrics accept it)."""
        async with self.connect_with_metric(store_config, vk.DistanceMetric.COSINE) as store:
            await self.seeded(store)
            with pytest.raises(vk.VectorValueError):
                await store.vector_search([0.0, 0.0, 0.0], k=3, metric="cosine")

    @pytest.mark.parametrize("name", HOSTILE_NAMES, ids=repr)
    async def test_hostile_field_names_are_rejected(self, store_config: ConfigLike, name: str) -> None:
        """Field names that could inject into SQL, JSON paths or mappings raise InvalidNameError when a record
        is built, QueryError as a vector field, FilterError in a filter and QueryError in a sort (unless it is a
        valid path: ``id``, ``x.y``); a record smuggling one
        past the constructor (``record.fields[name] = ...``) is rejected by the store, which stays unchanged.
        """
        with pytest.raises(vk.InvalidNameError):
            vk.Record({name: 1})
        with pytest.raises(vk.InvalidNameError):
            vk.Record.from_dict({"id": "x", "fields": {name: {"type": "integer", "value": 1}}})
        with pytest.raises(vk.QueryError):
            vk.Query().similar_to([1.0, 0.0, 0.0], field=name)
        if name not in VALID_AS_PATH:
            with pytest.raises(vk.FilterError):
                vk.where(name, "eq", 1)
            with pytest.raises(vk.QueryError):
                vk.Query().sort(name)
        async with vk.connect(store_config) as store:
            before = await self.seeded(store)
            if name not in VALID_AS_PATH:
                with pytest.raises(vk.FilterError):
                    await store.search({"filter": {name: 1}})
            smuggled = scalar_record("evil", 7.0)
            smuggled.fields[name] = vk.Field(name, 1)
            with pytest.raises(vk.InvalidNameError):
                await store.bulk_upsert([scalar_record("ok", 8.0), smuggled])
            assert await self.contents(store) == before

    @pytest.mark.parametrize("path", BAD_PATHS, ids=repr)
    async def test_bad_filter_paths(self, store_config: ConfigLike, path: str) -> None:
        """Malformed dotted paths raise FilterError."""
        async with vk.connect(store_config) as store:
            await self.seeded(store)
            with pytest.raises(vk.FilterError):
                await store.count({path: 1})
            with pytest.raises(vk.FilterError):
                vk.where(path, "eq", 1)

    async def test_hostile_nested_keys_round_trip(self, store_config: ConfigLike) -> None:
        """Keys inside dict values are data, whatever they hold: quotes, dots, SQL, ``$`` operators, prototype
        names, empty strings. They come back exactly.

        Troubleshooting: never build JSON paths or queries from nested keys; store the encoded value whole.
        """
        nested = {
            "a'b": 1, "x.y": {"z": 2}, "__proto__": {"polluted": True}, "constructor": "prototype",
            "name; DROP TABLE x": 3, "$where": "1 == 1", "$datetime": "not a date", "$dict": {"$gt": ""},
            "": "empty key", " ": "space", "ü": [{"$ne": None}],
        }
        async with vk.connect(store_config) as store:
            await store.create(vk.Record({"meta": nested, "name": "n"}, id="nested"))
            got = await store.read("nested")
            assert got == vk.Record({"meta": nested, "name": "n"}, id="nested")
            assert got is not None
            assert got["meta"] == nested

    async def test_reserved_words_as_field_names(self, store_config: ConfigLike) -> None:
        """Valid names that are reserved words elsewhere (SQL, JSON, JS) are ordinary fields: stored, read back,
        filtered and sorted; names differing only in case are different fields.

        Troubleshooting: quote identifiers (``psycopg.sql.Identifier``); do not lower-case names.
        """
        names = ["select", "from", "where", "order", "group", "table", "limit", "offset", "null", "true",
                 "desc", "user", "key", "value", "type", "index", "constructor", "Name", "name", "NAME",
                 "a" * 63]
        records = [vk.Record({n: f"{n}-{i}" for n in names} | {"rank": i}, id=f"r{i}") for i in range(3)]
        async with vk.connect(store_config) as store:
            await store.bulk_create(records)
            assert await self.contents(store) == {r.key: r for r in records}
            for n in names:
                found = await store.search(vk.Query().filter(n, "eq", f"{n}-1"))
                assert [r.id for r in found] == ["r1"], n
            assert [r.id for r in await store.search(vk.Query().sort("order", "desc"))] == ["r2", "r1", "r0"]

    async def test_hostile_filter_values_are_data(self, store_config: ConfigLike) -> None:
        """Injection strings in filter operands are compared as data: they match only equal values and break
        nothing."""
        hostile = ["Robert'); DROP TABLE students;--", "' OR '1'='1", '"}; db.dropDatabase(); {"', "%", "_",
                   "\\", "*", "$gt", "1; DELETE FROM x", "${jndi:ldap://x}", "<script>", "\x00"]
        async with vk.connect(store_config) as store:
            records = [vk.Record({"name": h, "n": i}, id=f"h{i}") for i, h in enumerate(hostile)]
            await store.bulk_create(records)
            for i, value in enumerate(hostile):
                assert [r.id for r in await store.search(vk.Query().filter("name", "eq", value))] == [f"h{i}"]
                assert await store.count({"name": {"$in": [value, "zzz"]}}) == 1
                assert await store.count({"name": {"$ne": value}}) == len(hostile) - 1
                assert await store.count({"id": value}) == 0
            assert await self.contents(store) == {r.key: r for r in records}

    @pytest.mark.parametrize("k", [MAX_K + 1, 10**9, 0, -1, True, 2.5, "5", None])
    async def test_bad_k(self, store_config: ConfigLike, k: Any) -> None:
        """k must be an int from 1 to MAX_K: anything else is a QueryError."""
        async with vk.connect(store_config) as store:
            await self.seeded(store)
            with pytest.raises(vk.QueryError):
                await store.vector_search([1.0, 0.0, 0.0], k=k)

    async def test_k_above_the_store_limit(self, store_config: ConfigLike) -> None:
        """k above the store's declared max_k is a QueryError (k = max_k is accepted)."""
        async with vk.connect(store_config) as store:
            await self.seeded(store)
            limit = store.capabilities.max_k
            assert len(await store.vector_search([1.0, 0.0, 0.0], k=min(limit, MAX_K))) == 5
            with pytest.raises(vk.QueryError):
                await store.vector_search([1.0, 0.0, 0.0], k=limit + 1)

    async def test_bad_sorts(self, store_config: ConfigLike) -> None:
        """Sorting by an unknown field is an UnknownFieldError, by a vector field or in an unknown direction a
        QueryError."""
        async with vk.connect(store_config) as store:
            await self.seeded(store)
            with pytest.raises(vk.UnknownFieldError, match="nope"):
                await store.search(vk.Query().sort("nope"))
            with pytest.raises(vk.UnknownFieldError):
                await store.search({"sort": ["-nope"]})
            with pytest.raises(vk.UnknownFieldError):
                await store.search(vk.Query().similar_to([1.0, 0.0, 0.0], k=2).sort("nope"))
            with pytest.raises(vk.QueryError):
                await store.search(vk.Query().sort("embedding"))
            with pytest.raises(vk.QueryError):
                vk.Query().sort("price", "up")

    @pytest.mark.parametrize("bad", UNKNOWN_OPERATORS, ids=repr)
    async def test_unknown_operator(self, store_config: ConfigLike, bad: Any) -> None:
        """An unknown operator is a FilterError, never ignored."""
        async with vk.connect(store_config) as store:
            await self.seeded(store)
            with pytest.raises(vk.FilterError):
                await store.search({"filter": bad})
            with pytest.raises(vk.FilterError):
                await store.count(bad)
            with pytest.raises(vk.FilterError):
                await store.vector_search([1.0, 0.0, 0.0], filter=bad)

    @pytest.mark.parametrize("bad", BAD_FILTERS, ids=repr)
    async def test_bad_operands(self, store_config: ConfigLike, bad: Any) -> None:
        """Operands of the wrong shape (a list to compare with, a dict to equal, an unordered between, a
        non-str like pattern...) and malformed filter trees are FilterErrors."""
        async with vk.connect(store_config) as store:
            await self.seeded(store)
            with pytest.raises(vk.FilterError):
                await store.count(bad)
            with pytest.raises(vk.FilterError):
                await store.vector_search([1.0, 0.0, 0.0], filter=bad)

    @pytest.mark.parametrize(
        ("method", "corrupt"),
        [(method, corrupt) for method in ("bulk_create", "bulk_upsert") for corrupt in (
            "wrong_dimension", "not_a_record", "scalar_in_vector_field", "vector_in_scalar_field", "smuggled_name",
            "smuggled_id", "same_batch_scalar_then_vector", "same_batch_vector_then_scalar",
        )] + [("bulk_create", "taken_id")],
    )
    async def test_one_bad_record_rejects_the_whole_batch(
        self, store_config: ConfigLike, corrupt: str, method: str
    ) -> None:
        """A batch of good records with one bad record in the middle raises a typed error and writes nothing,
        not even the good records before it."""
        def bad_record() -> Any:
            if corrupt == "wrong_dimension":
                return vk.Record({"embedding": vk.VectorField([1.0, 2.0])}, id="bad")
            if corrupt == "not_a_record":
                return {"id": "bad", "price": 1.0}
            if corrupt == "scalar_in_vector_field":
                return vk.Record({"embedding": "not a vector"}, id="bad")
            if corrupt == "vector_in_scalar_field":
                return vk.Record({"price": vk.VectorField([1.0, 2.0, 3.0])}, id="bad")
            if corrupt == "taken_id":
                return scalar_record("s1", 99.0)
            if corrupt == "smuggled_name":
                record = scalar_record("bad", 1.0)
                record.fields["x'; --"] = vk.Field("x'; --", 1)
                return record
            if corrupt == "smuggled_id":
                record = scalar_record("bad", 1.0)
                record.id = "bad\x00id"
                return record
            if corrupt == "same_batch_scalar_then_vector":
                return [vk.Record({"fresh": "text"}, id="bad1"), vk.Record({"fresh": vk.VectorField([1.0])}, id="bad2")]
            return [vk.Record({"fresh2": vk.VectorField([1.0])}, id="bad1"), vk.Record({"fresh2": "text"}, id="bad2")]

        errors: dict[str, type[Exception]] = {
            "wrong_dimension": vk.DimensionMismatchError, "taken_id": vk.DuplicateIdError,
            "smuggled_name": vk.InvalidNameError,
        }
        async with vk.connect(store_config) as store:
            before = await self.seeded(store)
            bad = bad_record()
            batch = [scalar_record("g1", 10.0), *(bad if isinstance(bad, list) else [bad]), scalar_record("g2", 11.0)]
            with pytest.raises(errors.get(corrupt, vk.InvalidRecordError)):
                await getattr(store, method)(batch)
            assert await self.contents(store) == before
            assert store.vector_dimensions() == {"embedding": 3}

    async def test_bad_call_arguments(self, store_config: ConfigLike) -> None:
        """Non-list batches, non-Record items, non-str ids and bad paging arguments are ValidationErrors of the
        matching kind."""
        async with vk.connect(store_config) as store:
            before = await self.seeded(store)
            checks: list[tuple[type[Exception], Callable[[], Any]]] = [
                (vk.ValidationError, lambda: store.bulk_create(scalar_record("x", 1.0))),
                (vk.ValidationError, lambda: store.bulk_create("abc")),
                (vk.InvalidRecordError, lambda: store.create({"price": 1.0})),
                (vk.ValidationError, lambda: store.bulk_read("s1")),
                (vk.InvalidRecordError, lambda: store.bulk_read([1])),
                (vk.InvalidRecordError, lambda: store.read(None)),
                (vk.InvalidRecordError, lambda: store.read("")),
                (vk.InvalidRecordError, lambda: store.delete(5)),
                (vk.ValidationError, lambda: store.bulk_delete("s1")),
                (vk.QueryError, lambda: store.search("price > 1")),
                (vk.QueryError, lambda: store.search({"bogus": 1})),
                (vk.QueryError, lambda: store.search({"score_threshold": 0.5})),
                (vk.QueryError, lambda: store.search({"sort": [5]})),
                (vk.QueryError, lambda: store.search({"similar_to": {"vector": [1, 0]}, "near_text": {"text": "x"}})),
                (vk.QueryError, lambda: store.search({"similar_to": {"vectr": [1, 0, 0]}})),
                (vk.QueryError, lambda: store.vector_search([1.0, 0.0, 0.0], metric="manhattan")),
                (vk.ValidationError, lambda: store.bulk_embed_and_store([simple("e", 1)], "text", batch_size=0)),
                (vk.InvalidRecordError, lambda: store.bulk_embed_and_store([simple("e", 1)], "n", embedding_fn="hash")),
            ]
            for error, call in checks:
                with pytest.raises(error):
                    await call()
            for make in (lambda: vk.Query().limit(0), lambda: vk.Query().limit(-1), lambda: vk.Query().offset(-1),
                         lambda: vk.Query().limit(True), lambda: vk.Query().similar_to([1, 0, 0]).limit(3),
                         lambda: vk.Query().similar_to([1, 0, 0]).score_threshold(math.nan),
                         lambda: vk.Query().similar_to([1, 0, 0]).score_threshold("0.5")):
                with pytest.raises(vk.QueryError):
                    make()
            with pytest.raises(vk.QueryError):
                async for _ in store.stream(None, batch_size=0):
                    pass
            assert await self.contents(store) == before

    async def test_bad_near_text(self, store_config: ConfigLike) -> None:
        """near_text with empty text (QueryError), no or an unknown embedder (QueryError / EmbeddingError), or an
        embedder returning NaN (EmbeddingError) or the wrong dimension (DimensionMismatchError) fails cleanly.
        """
        def wrong_dims(texts: list[str]) -> npt.NDArray[np.float32]:
            return np.ones((len(texts), 5), np.float32)

        def nan(texts: list[str]) -> npt.NDArray[np.float32]:
            return np.full((len(texts), 3), np.nan, np.float32)

        async with vk.connect(store_config) as store:
            before = await self.seeded(store)
            with pytest.raises(vk.QueryError):
                vk.Query().near_text("   ", "hash")
            with pytest.raises(vk.QueryError):
                await store.search(vk.Query().near_text("hello", k=2))
            with pytest.raises(vk.EmbeddingError):
                await store.search(vk.Query().near_text("hello", "no-such-embedder", k=2))
            with pytest.raises(vk.EmbeddingError):
                await store.search(vk.Query().near_text("hello", nan, k=2))
            with pytest.raises(vk.DimensionMismatchError):
                await store.search(vk.Query().near_text("hello", wrong_dims, k=2))
            assert await self.contents(store) == before

    async def test_bad_config(self, store_config: ConfigLike) -> None:
        """An unknown option or an unknown metric in the config is a ConfigError at connect."""
        with pytest.raises(vk.ConfigError):
            await vk.connect(with_options(store_config, no_such_option="1"))
        with pytest.raises(vk.ConfigError):
            await vk.connect(with_options(store_config, metric="manhattan"))

    async def test_use_after_close(self, store_config: ConfigLike) -> None:
        """Every operation on a closed store raises StoreClosedError; close() twice is fine."""
        store = await vk.connect(store_config)
        await store.create(simple("a", 1))
        await store.close()
        await store.close()
        calls: list[Callable[[], Any]] = [
            lambda: store.create(simple("b", 2)), lambda: store.bulk_create([simple("b", 2)]),
            lambda: store.upsert(simple("b", 2)), lambda: store.update(simple("a", 2)),
            lambda: store.read("a"), lambda: store.bulk_read(["a"]), lambda: store.exists("a"),
            lambda: store.delete("a"), lambda: store.bulk_delete(["a"]), lambda: store.search(vk.Query()),
            lambda: store.count(None), lambda: store.vector_search([1.0, 0.0, 0.0]), store.drop,
            lambda: store.hybrid_search("x", [1.0, 0.0, 0.0]),
            lambda: store.bulk_embed_and_store([simple("c", 3)], "text", embedding_fn="hash"),
        ]
        for call in calls:
            with pytest.raises(vk.StoreClosedError):
                await call()
        with pytest.raises(vk.StoreClosedError):
            async for _ in store.stream():
                pass
        async with vk.connect(store_config) as reopened:
            assert reopened is not store
        with pytest.raises(vk.StoreClosedError):
            await reopened.read("a")
