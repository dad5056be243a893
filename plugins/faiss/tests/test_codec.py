"""The SQLite layout of a record: a RecordBatch encodes to exactly the rows of its records."""

from __future__ import annotations

import vectorknobs as vk
from vectorknobs.testing.batches import batch_columns
from vectorknobs_faiss.codec import decode_batch, decode_record, encode_batch, encode_record


def test_batch_rows_are_the_rows_of_its_records() -> None:
    ids, columns, matrix = batch_columns(rows=30)
    columns["text"][1] = "nul \x00 and a lone surrogate \ud800"  # both make the document need Python filters
    columns["n"][2] = 2**70
    batch = vk.RecordBatch({**columns, "a": vk.VectorColumn(matrix, source_field="text", model_name="m",
                                                            content_hashes=[f"h{i}" for i in range(30)]),
                            "b": matrix[:, :2]}, ids=ids)
    got, expected = encode_batch(batch), [encode_record(r) for r in batch.records()]
    assert [(r.id, r.names, r.doc, r.pyeval) for r in got] == [(r.id, r.names, r.doc, r.pyeval) for r in expected]
    assert [r.pyeval for r in got[:4]] == [False, True, True, False]
    for row, want in zip(got, expected, strict=True):
        assert {k: v.tolist() for k, v in row.vectors.items()} == {k: v.tolist() for k, v in want.vectors.items()}
    vectors = {name: v.tobytes() for name, v in got[1].vectors.items()}
    assert decode_record(got[1].id, got[1].doc, vectors) == batch.records()[1]


def test_a_page_decodes_to_the_batch_it_was_written_from() -> None:
    ids, columns, matrix = batch_columns(rows=30)
    columns["text"][1] = "nul \x00 inside"
    batch = vk.RecordBatch({**columns, "a": vk.VectorColumn(matrix, source_field="text", model_name="m",
                                                            content_hashes=[f"h{i}" for i in range(30)])}, ids=ids)
    rows = encode_batch(batch)
    blobs = {"a": [r.vectors["a"].tobytes() for r in rows], "gone": [None] * 30}
    decoded = decode_batch(ids, [r.doc for r in rows], blobs)
    assert decoded is not None
    assert decoded.records() == batch.records()
    typed = encode_record(vk.Record({**batch.records()[0].fields, "n": vk.Field("n", None, vk.FieldType.STRING)},
                                    id=ids[0]))
    assert decode_batch(ids[:2], [typed.doc, rows[1].doc], {"a": blobs["a"][:2]}) is None
    assert decode_batch(ids[:2], [rows[0].doc, typed.doc], {"a": blobs["a"][:2]}) is None  # not only the first row
    assert decode_batch(ids[:2], [rows[0].doc, rows[1].doc], {"a": [blobs["a"][0], None]}) is None
