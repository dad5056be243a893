"""Record: names, ids, dotted lookups, copies, and the lossless dict / JSON form."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest
from vectorknobs import (
    Field,
    FieldType,
    InvalidNameError,
    InvalidRecordError,
    Record,
    SparseVectorField,
    ValidationError,
    VectorField,
)
from vectorknobs.codec import decode, encode
from vectorknobs.names import MAX_ID_LENGTH, MAX_NAME_LENGTH, check_field_name, is_path_segment, split_path
from vectorknobs.record import MISSING

PARIS_SUMMER = timezone(timedelta(hours=2))


def strictly_equal(a: Any, b: Any) -> bool:
    """Deep equality that also compares types (1 != 1.0 != True) and datetime tzinfo offsets."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(strictly_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(strictly_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, datetime):
        return a == b and a.utcoffset() == b.utcoffset()
    return bool(a == b)


RICH_VALUES: dict[str, Any] = {
    "title": "Héllo \u2603 \"quoted\" \n newline",
    "count": 3,
    "big": 2**63 + 1,
    "ratio": 3.0,
    "tiny": 5e-324,
    "negzero": -0.0,
    "flag": False,
    "nothing": None,
    "naive": datetime(2024, 2, 29, 23, 59, 59, 999999),
    "aware": datetime(2024, 6, 1, 12, 0, tzinfo=PARIS_SUMMER),
    "utc": datetime(2024, 6, 1, 10, 0, tzinfo=UTC),
    "meta": {
        "author": {"name": "Ada", "born": datetime(1815, 12, 10)},
        "when": [datetime(2020, 1, 1, tzinfo=UTC), datetime(2020, 1, 1), {"deep": datetime(1999, 12, 31)}],
        "$dollar": {"$datetime": "2020-01-01T00:00:00"},
        "$dict": {"a": 1},
        "ints_and_floats": [1, 1.0, True, 0, 0.0, False],
        "empty": {},
        "empty_list": [],
    },
    "dollar_top": {"$datetime": "not a date"},
    "dollar_nested": [{"$dict": {"$datetime": 1}}],
    "tags": ["a", "b", ["nested", {"x": None}]],
}


def rich_record() -> Record:
    rng = np.random.default_rng(11)
    record = Record(RICH_VALUES, id="doc/ü-1 with spaces")
    record["embedding"] = VectorField(
        rng.standard_normal(384).astype(np.float32),
        source_field="title",
        model_name="minilm",
        model_version="v2",
        content_hash="deadbeef",
        metadata={"normalized": True, "at": datetime(2024, 1, 1)},
    )
    record["sparse"] = SparseVectorField({5: 0.25, 1: 1.5}, dimensions=30)
    record["price"] = Field("price", 4, FieldType.FLOAT, metadata={"currency": "EUR"})
    return record


# -- round trips --------------------------------------------------------------------------------


@pytest.mark.parametrize("via", ["dict", "json", "json-of-dict"])
def test_round_trip_is_lossless(via: str) -> None:
    record = rich_record()
    if via == "dict":
        again = Record.from_dict(record.to_dict())
    elif via == "json":
        again = Record.from_json(record.to_json())
    else:
        again = Record.from_dict(json.loads(json.dumps(record.to_dict())))
    assert again == record
    assert again.id == "doc/ü-1 with spaces"
    for name, value in RICH_VALUES.items():
        assert strictly_equal(again[name], value), name
        assert again.fields[name].type is record.fields[name].type
    assert again.fields["price"].type is FieldType.FLOAT
    assert again["price"] == 4.0
    assert type(again["price"]) is float
    assert again.fields["price"].metadata == {"currency": "EUR"}


def test_round_trip_keeps_vectors_bit_exact_and_their_metadata() -> None:
    record = rich_record()
    again = Record.from_json(record.to_json().encode())
    vector = again.fields["embedding"]
    assert isinstance(vector, VectorField)
    assert vector.value.dtype == np.float32
    assert vector.value.tobytes() == record["embedding"].tobytes()
    assert (vector.source_field, vector.model_name, vector.model_version, vector.content_hash) == (
        "title", "minilm", "v2", "deadbeef"
    )
    assert strictly_equal(vector.metadata, {"normalized": True, "at": datetime(2024, 1, 1)})
    sparse = again.fields["sparse"]
    assert isinstance(sparse, SparseVectorField)
    assert sparse.as_dict() == {1: 1.5, 5: 0.25}
    assert sparse.dimensions == 30


def test_vector_field_without_its_value_comes_back_with_the_value_given_back() -> None:
    vector = rich_record().fields["embedding"]
    assert isinstance(vector, VectorField)
    data = vector.to_dict(with_value=False)
    assert "value" not in data
    assert data["dimensions"] == vector.dimensions
    assert Field.from_dict("embedding", {**data, "value": vector.value}) == vector


def test_json_form_is_plain_json() -> None:
    text = rich_record().to_json()
    data = json.loads(text)
    assert data["id"] == "doc/ü-1 with spaces"
    assert data["fields"]["naive"] == {"type": "datetime", "value": {"$datetime": "2024-02-29T23:59:59.999999"}}
    assert data["fields"]["aware"]["value"] == {"$datetime": "2024-06-01T12:00:00+02:00"}
    assert data["fields"]["dollar_top"]["value"] == {"$dict": {"$datetime": "not a date"}}
    assert "\u2603" in text  # not escaped: the file stays readable


def test_record_without_id_round_trips() -> None:
    record = Record({"a": 1})
    assert record.id is None
    assert Record.from_dict(record.to_dict()) == record
    assert Record.from_json(Record().to_json()) == Record()


@pytest.mark.parametrize(
    "value",
    [
        {"$datetime": "2020-01-01T00:00:00"},
        {"$dict": {}},
        {"$dict": {"$dict": {"$datetime": "x"}}},
        {"$datetime": "2020-01-01", "other": 1},
        [{"$datetime": 5}],
        {"a": {"$b": [datetime(2021, 3, 4, 5, 6, tzinfo=UTC)]}},
        {"$": None},
        datetime(1, 1, 1),
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-11, minutes=-30))),
    ],
)
def test_codec_never_mistakes_user_data_for_tags(value: Any) -> None:
    assert strictly_equal(decode(json.loads(json.dumps(encode(value)))), value)


def test_tags_only_apply_to_single_key_dicts() -> None:
    assert decode({"$datetime": "2020-01-01", "x": 1}) == {"$datetime": "2020-01-01", "x": 1}
    assert decode({"$datetime": "2020-01-01T10:00:00+00:00"}) == datetime(2020, 1, 1, 10, tzinfo=UTC)


# -- from_dict / from_json errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [
        ([], InvalidRecordError, "expected"),
        ({"id": "a", "fields": []}, InvalidRecordError, "expected"),
        ({"id": 5, "fields": {}}, InvalidRecordError, "must be a str"),
        ({"id": "a", "fields": {"bad name": {"type": "string", "value": "x"}}}, InvalidNameError, "bad name"),
        ({"id": "a", "fields": {"id": {"type": "string", "value": "x"}}}, InvalidNameError, "record id"),
        ({"id": "a", "fields": {"f": "x"}}, InvalidRecordError, "'type' and 'value'"),
        ({"id": "a", "fields": {"f": {"type": "string", "value": 3}}}, InvalidRecordError, "declared string"),
        ({"id": "a", "fields": {"f": {"type": "nope", "value": 3}}}, InvalidRecordError, "unknown 'type'"),
    ],
)
def test_from_dict_rejects_malformed_data(data: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        Record.from_dict(data)


def test_from_json_rejects_non_json() -> None:
    with pytest.raises(InvalidRecordError, match="not a JSON record"):
        Record.from_json("{not json")


# -- names and ids --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "id",
        "_private",
        "1abc",
        "",
        "a" * (MAX_NAME_LENGTH + 1),
        "has space",
        "semi;colon",
        "quote'",
        'dq"',
        "drop table x; --",
        "a.b",
        "a-b",
        "ümlaut",
        "tab\t",
        "nul\x00",
        "new\nline",
        "$where",
        "../etc",
        "🙂",
        5,
        None,
    ],
)
def test_invalid_field_names_are_rejected(name: Any) -> None:
    with pytest.raises(InvalidNameError):
        Record({name: 1})
    with pytest.raises(InvalidNameError):
        check_field_name(name)


def test_id_as_field_name_says_how_to_set_the_id() -> None:
    with pytest.raises(InvalidNameError, match=r"Record\(id=\.\.\.\)"):
        Record({"id": "x"})


def test_longest_valid_name_and_odd_but_valid_names() -> None:
    longest = "a" + "b" * (MAX_NAME_LENGTH - 1)
    record = Record({longest: 1, "A_1": 2, "x": 3, "ID": 4, "id_": 5})
    assert record[longest] == 1
    assert record["ID"] == 4


@pytest.mark.parametrize(("key", "segment"), [
    ("rank", True), ("0", True), ("a-b_c", True), ("x" * 63, True), ("x" * 64, False), ("a.b", False), ("", False),
    ("-a", False), ("a b", False), ("$ne", False), ("a:b", False), ("ü", False),
])
def test_is_path_segment_agrees_with_split_path(key: str, segment: bool) -> None:
    assert is_path_segment(key) is segment
    try:
        parsed: tuple[str, ...] | None = split_path(f"meta.{key}")
    except InvalidNameError:
        parsed = None
    assert (parsed == ("meta", key)) is segment  # "a.b" parses, but as two segments


def test_invalid_name_is_a_validation_error() -> None:
    with pytest.raises(ValidationError):
        Record({"bad name": 1})


@pytest.mark.parametrize(
    "record_id",
    ["", "x" * (MAX_ID_LENGTH + 1), "tab\there", "nl\n", "nul\x00", "del\x7f", 5, 1.5, b"bytes", ["a"]],
)
def test_invalid_ids_are_rejected(record_id: Any) -> None:
    with pytest.raises(InvalidRecordError):
        Record(id=record_id)
    with pytest.raises(InvalidRecordError):
        Record().with_id(record_id)


@pytest.mark.parametrize("record_id", ["x", "x" * MAX_ID_LENGTH, "with space", "ü/🙂?&=#%", "'; DROP TABLE t; --"])
def test_unusual_but_valid_ids_are_kept(record_id: str) -> None:
    record = Record({"a": 1}, id=record_id)
    assert Record.from_json(record.to_json()).id == record_id


def test_key_requires_an_id_and_new_ids_are_unique() -> None:
    with pytest.raises(InvalidRecordError, match="no id"):
        _ = Record().key
    assert Record(id="a").key == "a"
    ids = {Record.new_id() for _ in range(100)}
    assert len(ids) == 100


# -- fields and lookups ---------------------------------------------------------------------------


def test_mapping_behaviour() -> None:
    record = Record({"a": 1, "b": "x"}, id="r")
    assert len(record) == 2
    assert list(record) == ["a", "b"]
    assert "a" in record
    assert "zz" not in record
    del record["a"]
    assert "a" not in record
    with pytest.raises(KeyError):
        record["a"]
    assert record.values() == {"b": "x"}


def test_setting_a_field_object_copies_it_and_checks_its_name() -> None:
    field = Field("title", {"a": 1})
    record = Record()
    record["title"] = field
    field.value["a"] = 2
    assert record["title"] == {"a": 1}
    unnamed = VectorField([1.0, 2.0])
    record["embedding"] = unnamed
    assert record.fields["embedding"].name == "embedding"
    assert unnamed.name is None
    with pytest.raises(InvalidRecordError, match="cannot be stored under"):
        record["other"] = Field("title", "x")


def test_vector_fields_lists_only_dense_vectors() -> None:
    record = rich_record()
    assert list(record.vector_fields()) == ["embedding"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("meta.author.name", "Ada"),
        ("meta.author", {"name": "Ada", "born": datetime(1815, 12, 10)}),
        ("meta.author.missing", "DEFAULT"),
        ("meta.author.name.deeper", "DEFAULT"),
        ("meta.when.0", "DEFAULT"),  # paths go into dicts, not lists
        ("missing", "DEFAULT"),
        ("missing.x", "DEFAULT"),
        ("nothing", None),  # a stored None is not missing
        ("count", 3),
        ("id", "doc/ü-1 with spaces"),
        ("meta.ints_and_floats", [1, 1.0, True, 0, 0.0, False]),
    ],
)
def test_get_value_follows_dotted_paths(path: str, expected: Any) -> None:
    assert strictly_equal(rich_record().get_value(path, "DEFAULT"), expected)


def test_get_value_segments_may_hold_digits_and_dashes() -> None:
    record = Record({"meta": {"x-y": {"2": "deep"}}})
    assert record.get_value("meta.x-y.2") == "deep"


def test_lookup_distinguishes_missing_from_none() -> None:
    record = Record({"n": None, "d": {"k": None}})
    assert record.lookup("n") is None
    assert record.lookup("d.k") is None
    assert record.lookup("x") is MISSING
    assert record.lookup("d.x") is MISSING
    assert record.lookup(("d", "k")) is None
    assert record.get_value("x") is None


@pytest.mark.parametrize("path", ["", "a..b", ".a", "a.", "bad name.x", "a.b c", "a.$x", "_a.b", "id.x", 5])
def test_invalid_paths_are_rejected(path: Any) -> None:
    with pytest.raises(InvalidNameError):
        Record({"a": 1}).get_value(path)
    with pytest.raises(InvalidNameError):
        split_path(path)


# -- copies ---------------------------------------------------------------------------------------


def test_copy_is_deep_for_nested_values() -> None:
    original = rich_record()
    clone = original.copy()
    assert clone == original
    clone["meta"]["author"]["name"] = "Grace"
    clone["tags"][2][1]["x"] = "changed"
    clone.fields["embedding"].metadata["normalized"] = False
    clone["count"] = 4
    assert original["meta"]["author"]["name"] == "Ada"
    assert original["tags"][2][1] == {"x": None}
    assert original.fields["embedding"].metadata["normalized"] is True
    assert original["count"] == 3
    assert clone != original


def test_with_id_returns_an_independent_copy() -> None:
    original = Record({"m": {"a": 1}}, id="one")
    other = original.with_id("two")
    other["m"]["a"] = 2
    assert (original.id, original["m"]) == ("one", {"a": 1})
    assert other.id == "two"


def test_vectors_are_shared_read_only_never_copied_writable() -> None:
    original = rich_record()
    clone = original.copy()
    for record in (original, clone, Record.from_dict(original.to_dict())):
        with pytest.raises(ValueError, match="read-only"):
            record["embedding"][0] = 1.0
        with pytest.raises(ValueError, match="read-only"):
            record["sparse"][0] = 1.0


def test_equality() -> None:
    assert Record({"a": 1}, id="x") == Record({"a": 1}, id="x")
    assert Record({"a": 1}, id="x") != Record({"a": 1}, id="y")
    assert Record({"a": 1}, id="x") != Record({"a": 1.0}, id="x")
    assert Record({"a": {"b": 1}}) != Record({"a": {"b": 1.0}})
    assert Record({"a": [True]}) != Record({"a": [1]})
    assert Record({"a": 1}) != {"a": 1}
    with pytest.raises(TypeError):
        hash(Record())


def test_repr_is_short() -> None:
    text = repr(rich_record())
    assert "<vector 384>" in text
    assert "doc/ü-1 with spaces" in text


def test_restore_keeps_the_id_and_fields_given() -> None:
    fields = {"title": Field.restore("title", "Hello"), "views": Field.restore("views", 3)}
    restored = Record.restore("doc-1", fields)
    assert restored == Record({"title": "Hello", "views": 3}, id="doc-1")
    assert restored.fields is fields


def test_lookup_of_a_top_level_field_is_checked_like_a_path() -> None:
    record = Record({"title": "x"}, id="r")
    assert record.get_value("title") == "x"
    record.fields["bad name"] = record.fields["title"]  # past Record's checks
    with pytest.raises(InvalidNameError, match="invalid field path"):
        record.get_value("bad name")
