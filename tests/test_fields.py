"""Field, VectorField and SparseVectorField: inference, type checks, vector validation, dict form."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pytest
from vectorknobs import (
    DimensionMismatchError,
    Field,
    FieldType,
    InvalidRecordError,
    SparseVectorField,
    ValidationError,
    VectorField,
    VectorValueError,
)
from vectorknobs.fields import MAX_DIMENSIONS, as_vector, infer_type

# -- type inference and checks ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("text", FieldType.STRING),
        ("", FieldType.STRING),
        (3, FieldType.INTEGER),
        (-(2**70), FieldType.INTEGER),
        (3.5, FieldType.FLOAT),
        (True, FieldType.BOOLEAN),
        (False, FieldType.BOOLEAN),
        (datetime(2024, 1, 2, 3, 4, 5), FieldType.DATETIME),
        (datetime(2024, 1, 2, tzinfo=UTC), FieldType.DATETIME),
        (None, FieldType.JSON),
        ([1, "a"], FieldType.JSON),
        ({"a": 1}, FieldType.JSON),
    ],
)
def test_type_is_inferred_from_the_value(value: object, expected: FieldType) -> None:
    assert infer_type(value) is expected
    assert Field("f", value).type is expected


def test_bool_is_not_inferred_as_integer() -> None:
    # bool is an int subclass; inference must look at bool first
    assert Field("f", True).type is FieldType.BOOLEAN
    assert Field("f", 1).type is FieldType.INTEGER


@pytest.mark.parametrize(
    ("value", "declared"),
    [
        ("3", FieldType.INTEGER),
        (3.5, FieldType.INTEGER),
        (True, FieldType.INTEGER),
        (True, FieldType.FLOAT),
        (1, FieldType.BOOLEAN),
        (3, FieldType.STRING),
        ("2024-01-01", FieldType.DATETIME),
        ([1], FieldType.STRING),
        ({"a": 1}, FieldType.FLOAT),
    ],
)
def test_declared_type_must_match_the_value(value: object, declared: FieldType) -> None:
    with pytest.raises(InvalidRecordError, match="declared"):
        Field("f", value, declared)


def test_int_declared_float_is_stored_as_float() -> None:
    f = Field("price", 3, FieldType.FLOAT)
    assert f.value == 3.0
    assert type(f.value) is float


def test_none_is_allowed_under_any_scalar_type() -> None:
    for declared in (FieldType.STRING, FieldType.INTEGER, FieldType.FLOAT, FieldType.BOOLEAN, FieldType.DATETIME):
        assert Field("f", None, declared).value is None


def test_type_may_be_given_by_its_name() -> None:
    assert Field("f", 2, "float").type is FieldType.FLOAT  # type: ignore[arg-type]
    assert Field("f", 2, "float").to_dict() == {"type": "float", "value": 2.0}  # type: ignore[arg-type]
    with pytest.raises(InvalidRecordError, match="unknown type 'decimal'"):
        Field("f", 2, "decimal")  # type: ignore[arg-type]


@pytest.mark.parametrize("declared", [FieldType.VECTOR, FieldType.SPARSE_VECTOR])
def test_plain_field_cannot_hold_vectors(declared: FieldType) -> None:
    with pytest.raises(InvalidRecordError, match="VectorField or SparseVectorField"):
        Field("v", [1.0, 2.0], declared)


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (float("nan"), "not a finite number"),
        (float("inf"), "not a finite number"),
        ({"a": [1.0, float("-inf")]}, r"'f'\.a\[1\]"),
        ({1: "a"}, "dict keys must be str"),
        (b"bytes", "cannot store a bytes"),
        ({1, 2}, "cannot store a set"),
        (object(), "cannot store a object"),
        (np.array([1.0, 2.0]), "VectorField"),
        (complex(1, 2), "cannot store a complex"),
    ],
)
def test_unstorable_values_are_rejected_with_their_location(value: object, match: str) -> None:
    with pytest.raises(InvalidRecordError, match=match):
        Field("f", value)


def test_numpy_scalars_are_stored_as_python_values() -> None:
    assert Field("f", np.int64(7)).value == 7
    assert type(Field("f", np.int64(7)).value) is int
    assert type(Field("f", np.float32(0.5)).value) is float
    assert Field("f", np.bool_(True)).type is FieldType.BOOLEAN
    assert Field("f", {"n": [np.int32(1)]}).value == {"n": [1]}
    with pytest.raises(InvalidRecordError, match="finite"):
        Field("f", np.float64("nan"))


def test_field_keeps_a_private_copy_of_its_value() -> None:
    nested = {"a": [1, {"b": 2}]}
    f = Field("f", nested)
    nested["a"][1]["b"] = 99  # type: ignore[index]
    nested["c"] = 3  # type: ignore[assignment]
    assert f.value == {"a": [1, {"b": 2}]}


def test_tuples_are_stored_as_lists() -> None:
    assert Field("f", (1, (2, 3))).value == [1, [2, 3]]


def test_metadata_is_checked_and_round_trips() -> None:
    f = Field("f", "x", metadata={"lang": "en", "at": datetime(2024, 5, 1)})
    again = Field.from_dict("f", json.loads(json.dumps(f.to_dict())))
    assert again == f
    assert again.metadata["at"] == datetime(2024, 5, 1)
    with pytest.raises(InvalidRecordError, match="metadata"):
        Field("f", "x", metadata={"bad": float("nan")})


def test_from_dict_rejects_unknown_or_missing_type() -> None:
    with pytest.raises(InvalidRecordError, match="unknown 'type'"):
        Field.from_dict("f", {"type": "decimal", "value": 1})
    with pytest.raises(InvalidRecordError, match="missing or unknown 'type'"):
        Field.from_dict("f", {"value": 1})


def test_equality_sees_int_float_and_bool_apart_at_any_depth() -> None:
    assert Field("f", 1) != Field("f", 1.0)
    assert Field("f", {"a": 1}) != Field("f", {"a": 1.0})
    assert Field("f", [1]) != Field("f", [True])
    assert Field("f", {"a": [1.5]}) == Field("f", {"a": [1.5]})
    naive, aware = datetime(2024, 1, 1), datetime(2024, 1, 1, tzinfo=UTC)
    assert Field("f", {"t": naive}) != Field("f", {"t": aware})
    assert Field("f", 1) != Field("g", 1)
    assert Field("f", 1) != VectorField([1.0], name="f")


# -- vectors ------------------------------------------------------------------------------------


def test_vector_field_is_a_read_only_float32_copy() -> None:
    source = np.array([1.0, 2.0, 3.0], dtype=np.float64)
    v = VectorField(source)
    assert v.value.dtype == np.float32
    assert v.value.flags.c_contiguous
    assert v.dimensions == 3
    assert v.type is FieldType.VECTOR
    source[0] = 42.0
    assert v.value[0] == 1.0
    with pytest.raises(ValueError, match="read-only"):
        v.value[0] = 5.0


@pytest.mark.parametrize("value", [[1, 2, 3], np.arange(3, dtype=np.int8), np.arange(3, dtype=np.uint64), (1.0, 2.0)])
def test_integer_and_sequence_vectors_are_accepted(value: object) -> None:
    v = VectorField(value)  # type: ignore[arg-type]
    assert v.value.dtype == np.float32
    assert v.value.tolist() == [0.0 + float(x) for x in np.asarray(value)]


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ([1.0, float("nan")], "NaN or inf"),
        ([float("inf"), 1.0], "NaN or inf"),
        ([1e39, 1.0], "beyond float32"),
        (["a", "b"], "must hold numbers"),
        ("abc", "sequence of numbers"),
        (b"abc", "sequence of numbers"),
        ({"a": 1.0}, "sequence of numbers"),
        ([True, False], "must hold numbers"),
        ([1 + 2j], "must hold numbers"),
        ([[1.0, 2.0], [3.0, 4.0]], "1-D"),
        (5.0, "1-D"),
        ([], "empty"),
        ([[1.0], [2.0, 3.0]], "not a numeric vector"),
        ([None, 1.0], "must hold numbers"),
    ],
)
def test_bad_vectors_are_rejected(value: object, match: str) -> None:
    with pytest.raises(VectorValueError, match=match):
        VectorField(value)  # type: ignore[arg-type]


def test_vector_errors_are_validation_errors() -> None:
    with pytest.raises(ValidationError):
        VectorField([float("nan")])
    with pytest.raises(ValueError):
        VectorField([])


def test_vector_above_the_dimension_limit_is_rejected() -> None:
    with pytest.raises(VectorValueError, match="above the limit"):
        VectorField(np.ones(MAX_DIMENSIONS + 1, dtype=np.float32))
    assert VectorField(np.ones(MAX_DIMENSIONS, dtype=np.float32)).dimensions == MAX_DIMENSIONS


def test_declared_dimensions_must_match() -> None:
    assert VectorField([1.0, 2.0], dimensions=2).dimensions == 2
    with pytest.raises(DimensionMismatchError, match="expected 3 dimensions, got 2"):
        VectorField([1.0, 2.0], dimensions=3)
    with pytest.raises(DimensionMismatchError):
        as_vector([1.0], "q", 4)


@pytest.mark.parametrize("label", ["source_field", "model_name", "model_version", "content_hash"])
def test_vector_provenance_must_be_text(label: str) -> None:
    with pytest.raises(InvalidRecordError, match=label):
        VectorField([1.0], **{label: 3})  # type: ignore[arg-type]


def test_source_fields_split_on_commas() -> None:
    assert VectorField([1.0], source_field="title, body,").source_fields == ("title", "body")
    assert VectorField([1.0], source_field="body").source_fields == ("body",)
    assert VectorField([1.0]).source_fields == ()


def test_vector_field_round_trip_is_bit_exact_and_keeps_provenance() -> None:
    rng = np.random.default_rng(7)
    raw = rng.standard_normal(257).astype(np.float32)
    raw[:4] = [np.float32(1e-38), np.float32(-3.4e38), np.float32(0.1), np.nextafter(np.float32(1), np.float32(2))]
    v = VectorField(
        raw,
        name="embedding",
        source_field="body",
        model_name="minilm",
        model_version="2",
        content_hash="abc",
        metadata={"norm": 1.0, "tags": ["x"], "$weird": {"$datetime": "not a date"}},
    )
    data = json.loads(json.dumps(v.to_dict()))
    assert data["dimensions"] == 257
    again = Field.from_dict("embedding", data)
    assert isinstance(again, VectorField)
    assert again == v
    assert again.value.tobytes() == raw.tobytes()
    assert (again.source_field, again.model_name, again.model_version, again.content_hash) == (
        "body", "minilm", "2", "abc"
    )
    assert again.metadata == {"norm": 1.0, "tags": ["x"], "$weird": {"$datetime": "not a date"}}
    assert not again.value.flags.writeable


def test_vector_from_dict_with_wrong_dimensions_is_rejected() -> None:
    data = VectorField([1.0, 2.0]).to_dict()
    data["dimensions"] = 3
    with pytest.raises(DimensionMismatchError):
        Field.from_dict("v", data)


def test_vector_field_copy_is_independent_and_renamable() -> None:
    v = VectorField([1.0, 2.0], name="a", metadata={"m": {"n": 1}})
    c = v.copy("b")
    assert isinstance(c, VectorField)
    assert c.name == "b"
    assert v.name == "a"
    c.metadata["m"]["n"] = 2
    assert v.metadata == {"m": {"n": 1}}
    assert np.array_equal(c.value, v.value)


def test_vector_fields_with_different_values_or_provenance_differ() -> None:
    assert VectorField([1.0, 2.0]) == VectorField(np.array([1.0, 2.0], dtype=np.float32))
    assert VectorField([1.0, 2.0]) != VectorField([1.0, 2.5])
    assert VectorField([1.0, 2.0], model_name="a") != VectorField([1.0, 2.0], model_name="b")


# -- sparse vectors -----------------------------------------------------------------------------


def test_sparse_vector_sorts_indices_and_round_trips() -> None:
    s = SparseVectorField({17: 1.25, 3: 0.5, 0: -2.0}, dimensions=100, name="sp", metadata={"k": "v"})
    assert s.indices.tolist() == [0, 3, 17]
    assert s.value.dtype == np.float32
    assert s.as_dict() == {0: -2.0, 3: 0.5, 17: 1.25}
    assert s.type is FieldType.SPARSE_VECTOR
    data = json.loads(json.dumps(s.to_dict()))
    assert data == {
        "type": "sparse_vector", "indices": [0, 3, 17], "values": [-2.0, 0.5, 1.25], "dimensions": 100,
        "metadata": {"k": "v"},
    }
    again = Field.from_dict("sp", data)
    assert isinstance(again, SparseVectorField)
    assert again == s
    assert again.dimensions == 100


def test_sparse_vector_may_be_empty_and_without_dimensions() -> None:
    s = SparseVectorField({}, name="s")
    assert s.as_dict() == {}
    assert s.dimensions is None
    assert Field.from_dict("s", s.to_dict()) == s


def test_sparse_vector_values_are_bit_exact() -> None:
    weights = {i: float(np.float32(1 / (i + 3))) for i in range(50)}
    s = SparseVectorField(weights)
    again = Field.from_dict("s", json.loads(json.dumps(s.to_dict())))
    assert isinstance(again, SparseVectorField)
    assert again.value.tobytes() == s.value.tobytes()


@pytest.mark.parametrize(
    ("value", "dims", "match"),
    [
        ([0.5, 1.0], None, "mapping of index"),
        ({-1: 1.0}, None, "non-negative"),
        ({"3": 1.0}, None, "non-negative ints"),
        ({True: 1.0}, None, "non-negative ints"),
        ({1: float("nan")}, None, "NaN or inf"),
        ({1: "x"}, None, "must hold numbers"),
        ({10: 1.0}, 10, "out of range"),
    ],
)
def test_bad_sparse_vectors_are_rejected(value: object, dims: int | None, match: str) -> None:
    with pytest.raises(VectorValueError, match=match):
        SparseVectorField(value, dims)  # type: ignore[arg-type]


def test_sparse_vector_from_dict_with_mismatched_lengths_is_rejected() -> None:
    with pytest.raises(ValueError):
        Field.from_dict("s", {"type": "sparse_vector", "indices": [1, 2], "values": [1.0]})


def test_repr_does_not_dump_vectors() -> None:
    assert "dimensions=1000" in repr(VectorField(np.ones(1000), name="e"))
    assert repr(Field("f", 1)) == "Field('f', 1, FieldType.INTEGER)"


# -- restoring a store's own data -----------------------------------------------------------------


@pytest.mark.parametrize(
    "field",
    [
        Field("price", 3, FieldType.FLOAT),
        Field("when", datetime(2024, 5, 1, 12, tzinfo=UTC), metadata={"tz": "utc"}),
        Field("tags", {"a": [1, 2.5, None, {"$datetime": "not a date"}]}),
        Field("flag", True),
        Field("note", None, FieldType.STRING),
        VectorField([0.5, -1.0, 2.0], name="embedding", source_field="body", model_name="m", content_hash="h",
                    metadata={"norm": 1.0}),
        VectorField([1.0], name="stamped", model_version="2", metadata={"made": datetime(2024, 5, 1, tzinfo=UTC)}),
    ],
    ids=lambda f: f.name,
)
def test_unchecked_from_dict_restores_what_the_checked_one_does(field: Field) -> None:
    data = json.loads(json.dumps(field.to_dict()))
    if isinstance(field, VectorField):
        data["value"] = np.asarray(data["value"], dtype=np.float32)  # stores hand back their own arrays
    restored = Field.from_dict(field.name or "", data, checked=False)
    assert type(restored) is type(field)
    assert restored == field == Field.from_dict(field.name or "", data)


def test_restored_vectors_are_kept_read_only_and_others_are_checked() -> None:
    row = np.arange(4, dtype=np.float32)
    restored = VectorField.restore("embedding", row, source_field="body")
    assert restored.value is row
    assert not row.flags.writeable
    assert (restored.dimensions, restored.source_fields) == (4, ("body",))
    assert VectorField.restore("embedding", [1, 2]).value.dtype == np.float32  # not float32: the checked path
    with pytest.raises(VectorValueError, match="NaN"):
        VectorField.restore("embedding", np.array([np.nan], dtype=np.float64))


def test_restored_fields_infer_their_type() -> None:
    assert Field.restore("n", 3).type is FieldType.INTEGER
    assert Field.restore("t", datetime(2024, 1, 1, tzinfo=UTC)).type is FieldType.DATETIME
    assert Field.restore("j", [1]).type is FieldType.JSON
