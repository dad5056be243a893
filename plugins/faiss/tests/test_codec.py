"""The SQLite layout of a record: a RecordBatch encodes to exactly the rows of its records."""

from __future__ import annotations

import vectorknobs as vk
from vectorknobs.testing.batches import batch_columns
from vectorknobs_faiss.codec import decode_record, encode_batch, encode_record


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
