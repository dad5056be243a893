"""RecordBatch and VectorColumn: checked once when built, immutable, and the same rows as Records."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest
import vectorknobs as vk


def test_rows_equal_the_records_built_one_at_a_time() -> None:
    matrix = np.arange(6, dtype=np.float64).reshape(3, 2) + 1
    batch = vk.RecordBatch(
        {"text": ["a", "b", "c"], "n": np.array([1, 2, 3]), "price": np.array([0.5, 1.0, 2.0]),
         "when": [datetime(2024, 1, 1), None, {"x": [1]}],
         "embedding": vk.VectorColumn(matrix, source_field="text", model_name="m", content_hashes=["h1", "h2", "h3"])},
        ids=["r1", "r2", "r3"],
    )
    assert len(batch) == 3
    assert batch.names() == ("text", "n", "price", "when", "embedding")
    assert batch.vector_names() == ("embedding",)
    expected = [
        vk.Record({"text": t, "n": n, "price": p, "when": w,
                   "embedding": vk.VectorField(v, source_field="text", model_name="m", content_hash=h)}, id=i)
        for i, t, n, p, w, v, h in zip(["r1", "r2", "r3"], "abc", [1, 2, 3], [0.5, 1.0, 2.0],
                                       [datetime(2024, 1, 1), None, {"x": [1]}], matrix, ["h1", "h2", "h3"],
                                       strict=True)
    ]
    assert batch.records() == expected
    assert type(batch.records()[0]["n"]) is int  # numpy columns become Python values
    assert batch.records()[0].fields["embedding"].value.dtype == np.float32


def test_the_batch_keeps_private_copies() -> None:
    matrix = np.ones((2, 3), dtype=np.float32)
    texts = ["a", "b"]
    meta = [{"k": [1]}, {"k": [2]}]
    batch = vk.RecordBatch({"text": texts, "meta": meta, "v": matrix}, ids=["1", "2"])
    matrix[0, 0] = 99.0
    texts[0] = "changed"
    meta[1]["k"].append(3)
    row = batch.records()[0]
    assert row["text"] == "a"
    assert row["v"][0] == 1.0
    assert batch.records()[1]["meta"] == {"k": [2]}
    assert not batch.vectors["v"].matrix.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        batch.vectors["v"].matrix[0, 0] = 5.0


def test_with_ids_shares_the_columns() -> None:
    batch = vk.RecordBatch({"text": ["a", "b"]})
    assert batch.ids is None
    with pytest.raises(vk.InvalidRecordError, match="no ids"):
        batch.records()
    named = batch.with_ids(["x", "y"])
    assert named.columns is batch.columns
    assert [r.id for r in named.records()] == ["x", "y"]


@pytest.mark.parametrize(
    ("columns", "ids", "error", "match"),
    [
        ({}, None, vk.InvalidRecordError, "at least one column"),
        ({"text": []}, None, vk.InvalidRecordError, "at least one row"),
        ({"text": ["a", "b"], "n": [1]}, None, vk.InvalidRecordError, "text: 2, n: 1"),
        ({"text": ["a"], "v": np.ones((2, 3))}, None, vk.InvalidRecordError, "one value per row"),
        ({"text": ["a", "b"]}, ["1", "1"], vk.InvalidRecordError, "'1' appears twice"),
        ({"text": ["a", "b"]}, ["1"], vk.InvalidRecordError, "1 ids for 2 rows"),
        ({"text": ["a"]}, "1", vk.InvalidRecordError, "sequence of str"),
        ({"text": ["a"]}, [7], vk.InvalidRecordError, "id"),
        ({"text": ["a", "b"]}, ["ok", "bad\x07"], vk.InvalidRecordError, "control characters"),
        ({"text": ["a"]}, [""], vk.InvalidRecordError, "1 to"),
        ({"bad name": ["a"]}, None, vk.InvalidNameError, "invalid field name"),
        ({"id": ["a"]}, None, vk.InvalidNameError, "record id"),
        ({"x; DROP TABLE t": ["a"]}, None, vk.InvalidNameError, "invalid field name"),
        ({"price": [1.0, float("nan")]}, None, vk.InvalidRecordError, "row 1.*not a finite number"),
        ({"price": np.array([1.0, np.inf])}, None, vk.InvalidRecordError, "NaN or inf"),
        ({"obj": [object()]}, None, vk.InvalidRecordError, "cannot store a object"),
        ({"text": "abc"}, None, vk.InvalidRecordError, "sequence with one value per row"),
        ({"grid": np.ones((2, 2, 2))}, None, vk.InvalidRecordError, "must be 1-D"),
        ({"v": np.array([[1.0, np.nan]])}, None, vk.VectorValueError, "NaN"),
        ({"v": np.array([["a", "b"]])}, None, vk.VectorValueError, "dtype"),
        ({"v": np.zeros((0, 3))}, None, vk.VectorValueError, "at least one row"),
    ],
)
def test_bad_batches_are_typed_errors(columns: dict[str, object], ids: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        vk.RecordBatch(columns, ids=ids)  # type: ignore[arg-type]


def test_vector_column_checks_its_provenance() -> None:
    with pytest.raises(vk.VectorValueError, match="2-D"):
        vk.VectorColumn(np.ones(3))
    with pytest.raises(vk.InvalidRecordError, match="model_name must be a str"):
        vk.VectorColumn(np.ones((1, 3)), model_name=3)  # type: ignore[arg-type]
    with pytest.raises(vk.InvalidRecordError, match="2 strings, one per row"):
        vk.VectorColumn(np.ones((2, 3)), content_hashes=["only one"])


def uniform(n: int) -> list[vk.Record]:
    return [vk.Record({"text": f"t{i}", "meta": {"k": [i]}, "price": i / 2,
                       "v": vk.VectorField([i, 1.0], source_field="text", content_hash=f"h{i}")}, id=f"r{i}")
            for i in range(n)]


def test_from_records_gives_the_same_rows() -> None:
    records = uniform(5)
    batch = vk.RecordBatch.from_records(records)
    assert batch is not None
    assert batch.records() == records
    assert batch.vectors["v"].content_hashes == tuple(f"h{i}" for i in range(5))
    records[0]["meta"]["k"].append(99)  # the batch copied the containers
    assert batch.records()[0]["meta"] == {"k": [0]}


@pytest.mark.parametrize("spoil", [
    lambda rs: setattr(rs[1], "id", None),
    lambda rs: rs[2].fields.pop("price"),
    lambda rs: rs[2].__setitem__("extra", 1),
    lambda rs: rs[3].__setitem__("price", vk.Field("price", None, vk.FieldType.STRING)),
    lambda rs: rs[3].__setitem__("text", vk.Field("text", "x", metadata={"lang": "en"})),
    lambda rs: rs[4].__setitem__("v", vk.VectorField([1.0, 2.0], source_field="other")),
    lambda rs: rs[4].__setitem__("v", vk.VectorField([1.0, 2.0], source_field="text")),  # no content hash
    lambda rs: rs[0].__setitem__("v", vk.SparseVectorField({1: 0.5})),
])
def test_from_records_refuses_rows_a_batch_cannot_hold(spoil: object) -> None:
    records = uniform(5)
    spoil(records)  # type: ignore[operator]
    assert vk.RecordBatch.from_records(records) is None
    assert vk.RecordBatch.from_records([]) is None


def test_from_records_without_ids_gives_a_batch_without_ids() -> None:
    records = [vk.Record({"text": f"t{i}"}) for i in range(3)]
    batch = vk.RecordBatch.from_records(records)
    assert batch is not None
    assert batch.ids is None
    assert batch.columns == {"text": ("t0", "t1", "t2")}


def test_from_records_checks_what_can_be_set_past_record_checks() -> None:
    records = uniform(3)
    records[2].id = records[0].id
    with pytest.raises(vk.InvalidRecordError, match="twice"):
        vk.RecordBatch.from_records(records)
    records = uniform(3)
    for record in records:
        record.fields["bad name"] = record.fields.pop("text")
    with pytest.raises(vk.InvalidNameError):
        vk.RecordBatch.from_records(records)
