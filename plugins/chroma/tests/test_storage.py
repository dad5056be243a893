"""What the store keeps in Chroma: hostile values back exactly, one entry per single-vector record, no stale
metadata after an update, batches split at Chroma's limits, one process per embedded directory."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import chromadb
import numpy as np
import pytest
import vectorknobs as vk
from chromadb.config import Settings
from vectorknobs.testing import with_options
from vectorknobs.testing.batches import as_records, batch_columns
from vectorknobs_chroma.layout import CODE, EXTRAS, GUEST, KIND, SIGNATURE, encode_batch, encode_columns

pytestmark = pytest.mark.asyncio
METRICS = [m.value for m in vk.DistanceMetric]

HOSTILE: dict[str, Any] = {
    "markers": {
        "~k:x": "s",
        "~r": "{}",
        "~g": True,
        "~c": "n",
        "~t:when": 1,
        "$datetime": "2024-01-01",
        "$dict": {"$gt": ""},
        "a.b": 1,
        "a": {"b": 2},
        "": None,
        "#document": "d",
    },
    "huge_ints": [2**53 + 1, -(2**63), 2**63, 2**70, -(2**2000), 0],
    "big": 2**64 + 1,
    "huger": -(2**3000),
    "mixed": [1, 1.0, True, "1", None, datetime(2024, 1, 1), [1, [2]], {"k": [None]}],
    "when": datetime(2023, 6, 15, 8, 30, 1, 5, tzinfo=timezone(timedelta(hours=-3, minutes=-30))),
    "floats": [5e-324, -0.0, 1.7976931348623157e308, 0.1],
    "text": "~k:text \x00 ☃ \U0001f469\u200d\U0001f4bb",
    "zero": 0,
    "nothing": None,
}

EXTREME_VECTORS = [
    np.array([1e-45, 0.0, 0.0], np.float32),
    np.array([3.4028234e38, -3.4028234e38, 1.0], np.float32),
    np.array([-0.0, 0.0, 1e-30], np.float32),
    np.zeros(3, np.float32),
    np.array([0.1, -0.2, 0.3], np.float32),
]


def raw_client(path: str) -> Any:
    return chromadb.PersistentClient(path=path, settings=Settings(anonymized_telemetry=False))


@pytest.mark.parametrize("metric", METRICS)
async def test_hostile_values_and_extreme_vectors_round_trip(any_config: str, metric: str) -> None:
    records = [
        vk.Record(
            {**HOSTILE, "embedding": vk.VectorField(v, model_name="m"), "other": vk.VectorField(-v[::-1])},
            id=f"~k:id{i}",
        )
        for i, v in enumerate(EXTREME_VECTORS)
    ]
    async with vk.connect(with_options(any_config, metric=metric)) as store:
        await store.bulk_create(records)
        for record in records:
            got = await store.read(record.key)
            assert got == record
            assert got is not None
            assert got["embedding"].tobytes() == record["embedding"].tobytes()  # -0.0 stays -0.0
            assert got["huger"] == -(2**3000)
        assert await store.count({"big": 2**64 + 1}) == len(records)  # checked in Python: beyond 2**53
        assert await store.count({"big": float(2**64)}) == 0  # the float neighbour of an int is not equal
        assert await store.count({"huge_ints": {"$contains": 2**70}}) == len(records)
        assert await store.count({"markers.a.b": 2}) == len(records)  # not the {"a.b": 1} key
        assert await store.count({"when": datetime(2023, 6, 15, 12, 0, 1, 5, tzinfo=UTC)}) == len(records)


@pytest.mark.parametrize("metric", METRICS)
async def test_cosine_vectors_are_restored_bit_for_bit(any_config: str, metric: str) -> None:
    rng = np.random.default_rng(9)
    vectors = {f"v{i}": (rng.normal(size=384) * 10 ** rng.uniform(-3, 3)).astype(np.float32) for i in range(40)}
    async with vk.connect(with_options(any_config, metric=metric)) as store:
        await store.bulk_create([vk.Record({"embedding": vk.VectorField(v)}, id=i) for i, v in vectors.items()])
        for record in await store.search():
            assert record["embedding"].tobytes() == vectors[record.key].tobytes()
        hits = await store.vector_search(vectors["v3"], k=1)
        assert hits[0].record["embedding"].tobytes() == vectors["v3"].tobytes()


async def test_a_single_vector_record_is_one_entry_and_guests_hold_the_rest(tmp_path: Path) -> None:
    async with vk.connect(f"chroma://{tmp_path}/db") as store:
        await store.bulk_create(
            [
                vk.Record({"text": "one", "embedding": vk.VectorField([1.0, 0.0])}, id="one"),
                vk.Record(
                    {"text": "two", "embedding": vk.VectorField([0.0, 1.0]), "title": vk.VectorField([1.0])}, id="two"
                ),
                vk.Record({"text": "none"}, id="none"),
            ]
        )
    client = raw_client(f"{tmp_path}/db")
    try:
        contents = {c.name: c.get(include=["metadatas"]) for c in client.list_collections()}
    finally:
        client.close()
    assert sorted(contents) == [
        "vectorknobs",
        "vectorknobs.embedding.vectors",
        "vectorknobs.fields",
        "vectorknobs.kinds",
        "vectorknobs.title.vectors",
    ]
    assert contents["vectorknobs.kinds"]["ids"] == ["text:s"]
    assert contents["vectorknobs"]["ids"] == ["none"]
    assert sorted(contents["vectorknobs.embedding.vectors"]["ids"]) == ["one", "two"]
    assert all(EXTRAS in m for m in contents["vectorknobs.embedding.vectors"]["metadatas"])
    # cosine: a home entry keeps its vector's restore code in its extras (one key less), a guest in a key
    assert all(CODE not in m and CODE in json.loads(m[EXTRAS]) for m in contents["vectorknobs.embedding.vectors"][
        "metadatas"])
    guest = contents["vectorknobs.title.vectors"]
    assert guest["ids"] == ["two"]
    assert guest["metadatas"][0][GUEST] is True
    assert EXTRAS not in guest["metadatas"][0]
    assert CODE in guest["metadatas"][0]
    assert guest["metadatas"][0]["text"] == "two"  # filters on a guest field need the metadata too


async def test_updates_leave_no_stale_metadata(tmp_path: Path) -> None:
    """Chroma's upsert merges metadata; keys a record no longer has are removed, in homes and guests."""
    async with vk.connect(f"chroma://{tmp_path}/db") as store:
        await store.create(
            vk.Record(
                {
                    "gone": "x",
                    "meta": {"deep": 1},
                    "a_vec": vk.VectorField([1.0]),
                    "embedding": vk.VectorField([1.0, 2.0]),
                },
                id="r",
            )
        )
        await store.update(vk.Record({"kept": 1, "embedding": vk.VectorField([2.0, 1.0])}, id="r"))
        assert await store.count({"gone": {"$exists": True}}) == 0
        assert await store.count({"meta.deep": 1}) == 0
        assert await store.vector_search([1.0], vector_field="a_vec", k=5) == []
    client = raw_client(f"{tmp_path}/db")
    try:
        entry = client.get_collection("vectorknobs.embedding.vectors").get(ids=["r"], include=["metadatas"])
        assert client.get_collection("vectorknobs.a_vec.vectors").count() == 0
    finally:
        client.close()
    keys = set(entry["metadatas"][0])
    assert not {k for k in keys if "gone" in k or "meta" in k}
    assert entry["metadatas"][0][SIGNATURE] == "kept:n"
    assert GUEST not in keys  # its home moved from a_vec back to embedding


async def test_kinds_are_one_signature_key_and_tags_for_nested_values(tmp_path: Path) -> None:
    """A record's top-level kinds make one ``~s`` key (each key is a row Chroma writes and reads back), values
    nested in dicts keep a ``~k:`` tag each, and every signature is registered in the kinds collection."""
    async with vk.connect(f"chroma://{tmp_path}/db") as store:
        await store.bulk_create([
            vk.Record({"text": "a", "n": 1, "none": None, "meta": {"deep": True, "x": None},
                       "embedding": vk.VectorField([1.0, 0.0])}, id="a"),
            vk.Record({"only": [1, 2]}, id="b"),
            vk.Record({"embedding": vk.VectorField([0.0, 1.0])}, id="c"),
        ])
    client = raw_client(f"{tmp_path}/db")
    try:
        homes = client.get_collection("vectorknobs.embedding.vectors").get(include=["metadatas"])
        plain = client.get_collection("vectorknobs").get(include=["metadatas"])
        registered = client.get_collection("vectorknobs.kinds").get()["ids"]
    finally:
        client.close()
    a = dict(zip(homes["ids"], homes["metadatas"], strict=True))["a"]
    assert a[SIGNATURE] == "meta:x,n:n,text:s"
    assert {key for key in a if key.startswith(KIND)} == {f"{KIND}meta.deep"}
    assert SIGNATURE not in (dict(zip(homes["ids"], homes["metadatas"], strict=True))["c"] or {})
    assert plain["metadatas"][0][SIGNATURE] == "only:x"
    assert sorted(registered) == ["meta:x,n:n,text:s", "only:x"]


async def test_a_kind_filter_sees_signatures_another_store_registered(any_config: str) -> None:
    """Two stores on one collection (two clients of a server, or two stores on a directory in one process):
    records the other one writes after this one opened, with signatures this one has never seen, are found by
    ``exists`` / ``None`` / complement filters, in searches, counts and vector searches."""
    async with vk.connect(any_config) as first:
        await first.create(vk.Record({"text": "x", "embedding": vk.VectorField([1.0, 0.0])}, id="old"))
        async with vk.connect(any_config) as second:  # it knows the fields and signatures written so far
            assert await second.count({"label": {"$exists": True}}) == 0
            await first.bulk_create([
                vk.Record({"label": "new", "embedding": vk.VectorField([0.0, 1.0])}, id="new"),
                vk.Record({"label": 3, "text": "y"}, id="number"),
            ])
            assert await second.count({"label": {"$exists": True}}) == 2
            assert [r.id for r in await second.search({"filter": {"text": None}})] == ["new"]
            assert [r.id for r in await second.search({"filter": {"$not": {"label": {"$gt": 1}}}})] == ["new", "old"]
            hits = await second.vector_search([0.0, 1.0], k=5, filter={"label": {"$exists": True}})
            assert [h.id for h in hits] == ["new"]


async def test_a_store_written_in_the_earlier_layout_is_refused_with_what_to_do(tmp_path: Path) -> None:
    """Collections written before signatures (per-field kind tags) would answer kind filters wrongly: opening
    them is a typed error that says what to do; an empty collection of that time is simply taken over."""
    async with vk.connect(f"chroma://{tmp_path}/db") as store:
        await store.create(vk.Record({"text": "a"}, id="a"))
    async with vk.connect(f"chroma://{tmp_path}/db?collection=empty"):
        pass
    client = raw_client(f"{tmp_path}/db")
    try:
        for name in ("vectorknobs.fields", "empty.fields"):
            client.get_collection(name).modify(metadata={"made_by": "an earlier version"})
    finally:
        client.close()
    with pytest.raises(vk.CorruptStoreError, match=r"earlier development version.*write its records again"):
        await vk.connect(f"chroma://{tmp_path}/db")
    async with vk.connect(f"chroma://{tmp_path}/db?collection=empty") as empty:
        await empty.create(vk.Record({"text": "b"}, id="b"))
        assert await empty.count({"text": {"$exists": True}}) == 1


@pytest.mark.parametrize("unit_vectors", [True, False], ids=["cosine", "as-written"])
@pytest.mark.parametrize("hashes", [True, False], ids=["content-hashes", "no-hashes"])
@pytest.mark.parametrize("kinds", ["every-kind", "plain"])
async def test_a_batch_is_encoded_as_its_records_are(unit_vectors: bool, hashes: bool, kinds: str) -> None:
    """The column path (``RecordBatch`` writes) gives every row the entries the record path gives it: the
    same metadata (filters see the same keys), extras, codes and embeddings. Rows of plain values share one
    extras text, made once."""
    ids, columns, matrix = batch_columns()
    if kinds == "plain":
        columns = {name: columns[name] for name in ("text", "price", "flag")}
    vectors = {
        "embedding": vk.VectorColumn(matrix, source_field="text", model_name="m",
                                     content_hashes=[f"h{i}" for i in ids] if hashes else None),
        "a_first": vk.VectorColumn(matrix[:, :2] * 3, model_version="2"),
    }
    batch = vk.RecordBatch({**columns, **vectors}, ids=ids)
    by_columns = encode_columns(batch, unit_vectors)
    by_records = encode_batch(as_records(ids, columns, vectors), unit_vectors)
    for got, want in zip(by_columns, by_records, strict=True):
        assert (got.id, got.home, got.dims, got.names) == (want.id, want.home, want.dims, want.names)
        assert got.entries.keys() == want.entries.keys()
        for field, (embedding, metadata) in want.entries.items():
            mine = got.entries[field][1]
            assert mine is not None
            assert metadata is not None
            assert json.loads(mine.pop(EXTRAS, "null")) == json.loads(metadata.pop(EXTRAS, "null"))  # key order aside
            assert mine == metadata
            assert got.entries[field][0].tobytes() == embedding.tobytes()


async def test_strings_chroma_cannot_store_are_refused_before_anything_is_written(any_config: str) -> None:
    async with vk.connect(any_config) as store:
        good = vk.Record({"text": "fine"}, id="good")
        for bad in (
            vk.Record({"text": "lone \ud800 surrogate"}, id="bad"),
            vk.Record({"meta": {"k": ["\udfff"]}}, id="bad"),
            vk.Record({"t": "x"}, id="bad\udc80"),
        ):
            with pytest.raises(vk.InvalidRecordError, match="surrogate"):
                await store.bulk_create([good, bad])
        assert await store.count() == 0


@pytest.mark.parametrize("write_batch_size", [7, 100_000])
async def test_bulk_writes_are_split_at_the_batch_limits(any_config: str, write_batch_size: int) -> None:
    """A small write_batch_size splits writes; a huge one is capped at Chroma's own maximum batch size
    (Chroma refuses bigger calls), both without the caller noticing."""
    async with vk.connect(with_options(any_config, write_batch_size=write_batch_size)) as store:
        limit = store._chroma.max_batch  # type: ignore[attr-defined]
        n = 50 if write_batch_size < 100 else limit + 17
        records = [vk.Record({"n": i, "embedding": vk.VectorField([float(i), 1.0])}, id=f"r{i:05d}") for i in range(n)]
        assert await store.bulk_create(records) == [r.key for r in records]
        assert store._chroma.write_batch == min(write_batch_size, limit)  # type: ignore[attr-defined]
        assert await store.count() == n
        assert await store.bulk_read([r.key for r in records[::9]]) == records[::9]
        assert await store.bulk_delete([r.key for r in records]) == n
        assert await store.count() == 0


async def test_another_process_cannot_open_an_embedded_store(tmp_path: Path) -> None:
    config = f"chroma://{tmp_path}/db"
    async with vk.connect(config) as store, vk.connect(with_options(config, collection="second")) as second:
        await store.create(vk.Record({"n": 1}, id="a"))
        await second.create(vk.Record({"n": 2}, id="a"))  # a second store in this process shares the client
        script = textwrap.dedent(f"""
            import asyncio, vectorknobs as vk
            async def main():
                try:
                    await vk.connect({config!r})
                except vk.StoreLockedError as err:
                    print("locked:", err)
            asyncio.run(main())
        """)
        out = await run_python(script)
        assert out.startswith("locked:")
    reader = (
        f"import asyncio, vectorknobs as vk\nasync def m():\n"
        f"    async with vk.connect({config!r}) as s: print(await s.count())\nasyncio.run(m())"
    )
    assert (await run_python(reader)).strip() == "1"  # released once both stores closed


async def run_python(code: str) -> str:
    """Run ``code`` in another Python process (in a thread: the event loop keeps going); its stdout."""
    out = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    return out.stdout
