"""Filters: parsing (builder and dict form), malformed filters, and the reference semantics in evaluate.py."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from vectorknobs import And, Condition, FilterError, Not, Operator, Or, QueryError, Record, and_, not_, or_, where
from vectorknobs.evaluate import condition_matches, like_regex, matches, sort_records
from vectorknobs.filters import (
    ALL_OPERATORS,
    Kind,
    conditions_in,
    filter_to_dict,
    kind_of,
    normalize,
    operators_in,
    parse_filter,
    parse_operator,
)
from vectorknobs.record import MISSING

PLUS2 = timezone(timedelta(hours=2))

# -- operators ----------------------------------------------------------------------------------

SYMBOLS = {
    "=": Operator.EQ,
    "==": Operator.EQ,
    "!=": Operator.NE,
    ">": Operator.GT,
    ">=": Operator.GTE,
    "<": Operator.LT,
    "<=": Operator.LTE,
    "not in": Operator.NOT_IN,
    "nin": Operator.NOT_IN,
} | {op.value: op for op in Operator}


@pytest.mark.parametrize(("symbol", "op"), sorted(SYMBOLS.items()))
def test_every_operator_symbol_and_name_parses(symbol: str, op: Operator) -> None:
    assert parse_operator(symbol) is op
    assert parse_operator(f"${symbol}") is op
    assert parse_operator(f"  {symbol.upper()} ") is op
    assert parse_operator(op) is op


def test_every_operator_is_covered_by_the_symbol_table() -> None:
    assert set(SYMBOLS.values()) == set(Operator) == ALL_OPERATORS
    assert len(Operator) == 12


@pytest.mark.parametrize("symbol", ["$foo", "foo", "", "=>", "<>", "regex", "$$", "not_equal"])
def test_unknown_operator_names_the_symbol_and_the_choices(symbol: str) -> None:
    with pytest.raises(FilterError, match=re.escape(repr(symbol))) as info:
        parse_operator(symbol)
    assert "eq, ne, gt" in str(info.value)


# -- builder and dict form --------------------------------------------------------------------------

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)

EQUIVALENT = [
    ({"category": "tech"}, where("category", "eq", "tech")),
    ({"category": {"$eq": "tech"}}, where("category", "==", "tech")),
    ({"category": None}, where("category", "eq", None)),
    ({"meta.author": {"$ne": "Ada"}}, where("meta.author", "!=", "Ada")),
    ({"price": {"$gt": 3}}, where("price", ">", 3)),
    ({"price": {"$gte": 3.5}}, where("price", ">=", 3.5)),
    ({"price": {"$lt": 10}}, where("price", "<", 10)),
    ({"price": {"$lte": 10}}, where("price", "<=", 10)),
    ({"tag": {"$in": ["a", "b"]}}, where("tag", "in", ("a", "b"))),
    ({"tag": {"$not_in": ["a"]}}, where("tag", "not in", ["a"])),
    ({"tags": {"$contains": "ai"}}, where("tags", "contains", "ai")),
    ({"tags": {"$exists": False}}, where("tags", "exists", False)),
    ({"tags": {"$exists": True}}, where("tags", "exists")),
    ({"at": {"$between": [NOW - timedelta(days=1), NOW]}}, where("at", "between", (NOW - timedelta(days=1), NOW))),
    ({"title": {"$like": "A%"}}, where("title", "like", "A%")),
    ({"id": {"$in": ["x"]}}, where("id", "in", ["x"])),
    (
        {"price": {"$gte": 3, "$lt": 10}, "category": "tech"},
        and_(where("price", ">=", 3), where("price", "<", 10), where("category", "eq", "tech")),
    ),
    (
        {"$or": [{"a": 1}, {"b": {"$gt": 2}}]},
        or_(where("a", "eq", 1), where("b", ">", 2)),
    ),
    ({"$not": {"a": 1}}, not_(where("a", "eq", 1))),
    (
        {"$and": [{"a": 1}, {"$and": [{"b": 2}, {"c": 3}]}]},
        and_(where("a", "eq", 1), where("b", "eq", 2), where("c", "eq", 3)),
    ),
    (
        {"x": 1, "$or": [{"$not": {"y": {"$in": [1, 2]}}}, {"z": {"$exists": True}}]},
        and_(where("x", "eq", 1), or_(not_(where("y", "in", [1, 2])), where("z", "exists", True))),
    ),
]


@pytest.mark.parametrize(("data", "built"), EQUIVALENT)
def test_dict_form_and_builder_form_are_the_same_tree(data: dict[str, Any], built: Any) -> None:
    assert parse_filter(data) == built


@pytest.mark.parametrize(("data", "built"), EQUIVALENT)
def test_filter_to_dict_round_trips(data: dict[str, Any], built: Any) -> None:
    assert parse_filter(filter_to_dict(built)) == built


def test_parse_filter_passes_trees_through() -> None:
    tree = or_(where("a", "eq", 1), where("b", "eq", 2))
    assert parse_filter(tree) is tree


def test_and_flattens_and_single_filters_stay_single() -> None:
    a, b, c = where("a", "eq", 1), where("b", "eq", 2), where("c", "eq", 3)
    assert and_(a) is a
    assert and_(and_(a, b), c) == And((a, b, c))
    assert or_(a) is a
    assert or_(a, b) == Or((a, b))
    assert not_(a) == Not(a)


def test_operators_and_conditions_in_a_tree() -> None:
    tree = and_(where("a", "eq", 1), or_(not_(where("b", "like", "x%")), where("c", "in", [1])))
    assert operators_in(tree) == {Operator.EQ, Operator.LIKE, Operator.IN}
    assert [c.field for c in conditions_in(tree)] == ["a", "b", "c"]


def test_condition_reports_its_path_and_kind() -> None:
    c = where("meta.author.name", "eq", "Ada")
    assert c.path == ("meta", "author", "name")
    assert c.field == "meta.author.name"
    assert c.kind is Kind.STRING
    assert where("x", "in", [1, "a"]).kind is Kind.NUMBER
    assert where("x", "in", []).kind is None
    assert where("x", "between", [NOW, NOW]).kind is Kind.DATETIME
    assert where("x", "eq", None).kind is None


# -- malformed filters --------------------------------------------------------------------------------

MALFORMED: list[tuple[Any, str]] = [
    ({"a": {"$foo": 1}}, "unknown filter operator '\\$foo'"),
    ({"$foo": [{"a": 1}]}, "unknown logical operator '\\$foo'"),
    ({"$nor": [{"a": 1}]}, "unknown logical operator"),
    ({}, "non-empty dict"),
    (None, "non-empty dict"),
    ([{"a": 1}], "non-empty dict"),
    ("a = 1", "non-empty dict"),
    ({"a": {}}, "empty operator dict"),
    ({1: "x"}, "field paths"),
    ({"a": [1, 2]}, "'eq' expects a str, number"),
    ({"a": {"$eq": [1, 2]}}, "'eq' expects"),
    ({"a": {"$ne": {"b": 1}}}, "'ne' expects"),
    ({"a": {"$gt": True}}, "'gt' expects a number, str or datetime"),
    ({"a": {"$lte": None}}, "'lte' expects"),
    ({"a": {"$lt": [1]}}, "'lt' expects"),
    ({"a": {"$between": [10, 1]}}, "low <= high"),
    ({"a": {"$between": ["b", "a"]}}, "low <= high"),
    ({"a": {"$between": [1, "z"]}}, "same orderable kind"),
    ({"a": {"$between": [NOW, 5]}}, "same orderable kind"),
    ({"a": {"$between": [False, True]}}, "same orderable kind"),
    ({"a": {"$between": [1, 2, 3]}}, "a \\[low, high\\] pair"),
    ({"a": {"$between": 5}}, "a \\[low, high\\] pair"),
    ({"a": {"$between": "ab"}}, "a \\[low, high\\] pair"),
    ({"a": {"$in": "abc"}}, "'in' expects a list of values"),
    ({"a": {"$in": 5}}, "'in' expects a list"),
    ({"a": {"$in": {"x": 1}}}, "'in' expects a list"),
    ({"a": {"$not_in": [None]}}, "use 'eq None'"),
    ({"a": {"$in": [[1]]}}, "'in' expects a list of str"),
    ({"a": {"$like": 5}}, "'like' expects a str pattern"),
    ({"a": {"$like": None}}, "'like' expects"),
    ({"a": {"$contains": [1]}}, "'contains' expects"),
    ({"a": {"$contains": None}}, "'contains' expects"),
    ({"a": {"$exists": "yes"}}, "'exists' expects True or False"),
    ({"a": {"$exists": 1}}, "'exists' expects True or False"),
    ({"a": {"$gt": float("nan")}}, "finite numbers"),
    ({"a": {"$eq": float("inf")}}, "finite numbers"),
    ({"a": {"$in": [1.0, float("nan")]}}, "finite numbers"),
    ({"a": {"$between": [float("-inf"), 0]}}, "finite numbers"),
    ({"$and": []}, "non-empty list"),
    ({"$or": {"a": 1}}, "non-empty list"),
    ({"$or": "a"}, "non-empty list"),
    ({"$not": []}, "non-empty dict"),
    ({"$not": {}}, "non-empty dict"),
    ({"$or": [{"a": {"$bogus": 1}}]}, "bogus"),
    ({"bad name": 1}, "invalid field"),
    ({"a..b": 1}, "invalid field path"),
    ({"_hidden": 1}, "invalid field"),
    ({"id.x": 1}, "record id"),
    ({"a.b;drop": 1}, "segment"),
]


@pytest.mark.parametrize(("data", "match"), MALFORMED)
def test_malformed_filters_name_the_problem(data: Any, match: str) -> None:
    with pytest.raises(FilterError, match=match):
        parse_filter(data)


def test_filter_errors_are_query_errors() -> None:
    with pytest.raises(QueryError):
        parse_filter({"a": {"$foo": 1}})


def test_the_error_names_the_field_and_the_operand() -> None:
    with pytest.raises(FilterError) as info:
        where("meta.price", ">", True)
    assert "'meta.price'" in str(info.value)
    assert "True" in str(info.value)


def test_empty_logical_builders_are_rejected() -> None:
    with pytest.raises(FilterError, match="at least one"):
        and_()
    with pytest.raises(FilterError, match="at least one"):
        or_()


# -- reference semantics: single conditions -------------------------------------------------------------

N = datetime(2024, 1, 1, 12, 0)  # naive: taken as UTC
A = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
A2 = datetime(2024, 1, 1, 12, 0, tzinfo=PLUS2)  # 10:00 UTC

CASES: list[tuple[Any, str, Any, bool]] = [
    # eq / ne, null semantics
    ("x", "eq", "x", True),
    ("x", "eq", "X", False),
    (1, "eq", 1.0, True),
    (1.0, "eq", 1, True),
    (1, "eq", True, False),
    (True, "eq", 1, False),
    (0, "eq", False, False),
    ("1", "eq", 1, False),
    (None, "eq", None, True),
    (MISSING, "eq", None, True),
    ("x", "eq", None, False),
    (MISSING, "eq", "x", False),
    (None, "eq", "x", False),
    ([1], "eq", 1, False),
    ({"a": 1}, "eq", 1, False),
    (MISSING, "ne", "x", True),
    (None, "ne", "x", True),
    ("y", "ne", "x", True),
    ("x", "ne", "x", False),
    (None, "ne", None, False),
    (MISSING, "ne", None, False),
    (0, "ne", None, True),
    # datetimes: naive is UTC
    (N, "eq", A, True),
    (A, "eq", N, True),
    (N, "eq", A2, False),
    (A2, "lt", N, True),
    (N, "gt", A2, True),
    (N, "eq", "2024-01-01T12:00:00", False),
    # ordering: only the operand's kind matches
    (5, "gt", 3, True),
    (3, "gt", 3, False),
    (3, "gte", 3, True),
    (3, "lt", 3.5, True),
    (3, "lte", 3.0, True),
    ("10", "gt", 5, False),
    (10, "gt", "5", False),
    (True, "gt", 0, False),
    (None, "gt", 0, False),
    (MISSING, "lt", 0, False),
    ([5], "gt", 3, False),
    ("b", "gt", "a", True),
    ("B", "gt", "a", False),  # code point order
    ("é", "gt", "z", True),
    ("abc", "gte", "abc", True),
    (N, "gte", A, True),
    (datetime(2024, 1, 2), "lt", A, False),
    # between: inclusive, same kind
    (5, "between", (5, 10), True),
    (10, "between", (5, 10), True),
    (7.5, "between", (5, 10), True),
    (10.0001, "between", (5, 10), False),
    ("m", "between", ("a", "z"), True),
    (7, "between", ("a", "z"), False),
    (None, "between", (5, 10), False),
    (N, "between", (A - timedelta(hours=1), A), True),
    (A2, "between", (N - timedelta(hours=1), N), False),
    # in / not_in
    ("a", "in", ("a", "b"), True),
    ("c", "in", ("a", "b"), False),
    (1, "in", (1.0, "x"), True),
    (True, "in", (1,), False),
    (1, "in", (True,), False),
    (N, "in", (A,), True),
    (MISSING, "in", ("a",), False),
    ("a", "in", (), False),
    ("a", "not_in", ("a", "b"), False),
    ("c", "not_in", ("a", "b"), True),
    (MISSING, "not_in", ("a",), True),
    (None, "not_in", ("a",), True),
    ("a", "not_in", (), True),
    # contains: substring on strings, membership on lists
    ("hello world", "contains", "lo w", True),
    ("hello", "contains", "L", False),
    ("hello", "contains", "", True),
    ("a1", "contains", 1, False),
    (["ai", "ml"], "contains", "ai", True),
    (["aix"], "contains", "ai", False),
    ([1, 2], "contains", 2.0, True),
    ([1, 2], "contains", True, False),
    ([True], "contains", 1, False),
    ([A], "contains", N, True),
    ([["ai"]], "contains", "ai", False),
    ({"ai": 1}, "contains", "ai", False),
    (None, "contains", "a", False),
    (MISSING, "contains", "a", False),
    (5, "contains", 5, False),
    # exists
    (MISSING, "exists", True, False),
    (None, "exists", True, False),
    (0, "exists", True, True),
    ("", "exists", True, True),
    ([], "exists", True, True),
    (False, "exists", True, True),
    (MISSING, "exists", False, True),
    (None, "exists", False, True),
    (0, "exists", False, False),
    # like
    ("Apple pie", "like", "Apple%", True),
    ("apple pie", "like", "Apple%", False),
    ("Apple", "like", "A_ple", True),
    ("Aple", "like", "A_ple", False),
    ("xAppley", "like", "Apple", False),
    ("100%", "like", "100\\%", True),
    ("1000", "like", "100\\%", False),
    ("a_b", "like", "a\\_b", True),
    ("axb", "like", "a\\_b", False),
    ("a\\b", "like", "a\\\\b", True),
    ("a.b", "like", "a.b", True),
    ("axb", "like", "a.b", False),
    ("(x)+[y]*", "like", "(x)+[y]*", True),
    ("line1\nline2", "like", "line1%", True),
    ("a\nb", "like", "a_b", True),
    ("", "like", "%", True),
    (5, "like", "5", False),
    (None, "like", "%", False),
    (MISSING, "like", "%", False),
]


@pytest.mark.parametrize(("value", "op", "operand", "expected"), CASES)
def test_condition_semantics(value: Any, op: str, operand: Any, expected: bool) -> None:
    assert condition_matches(value, where("f", op, operand)) is expected


@pytest.mark.parametrize(("value", "op", "operand", "expected"), CASES)
def test_the_same_semantics_through_a_record(value: Any, op: str, operand: Any, expected: bool) -> None:
    record = Record({} if value is MISSING else {"meta": {"f": value}}, id="r")
    assert matches(record, where("meta.f", op, operand)) is expected


@pytest.mark.parametrize(("value", "op", "operand", "expected"), [c for c in CASES if c[1] in ("eq", "in")])
def test_ne_and_not_in_are_exact_complements(value: Any, op: str, operand: Any, expected: bool) -> None:
    opposite = {"eq": "ne", "in": "not_in"}[op]
    assert condition_matches(value, where("f", opposite, operand)) is (not expected)


@pytest.mark.parametrize(
    ("pattern", "regex"),
    [
        ("abc", "abc"),
        ("a%c", "a.*c"),
        ("a_c", "a.c"),
        ("100\\%", "100%"),
        ("a\\_b", "a_b"),
        ("a.b*", "a\\.b\\*"),
        ("trailing\\", "trailing\\\\"),
        ("\\\\", "\\\\"),
    ],
)
def test_like_regex_translation(pattern: str, regex: str) -> None:
    compiled = like_regex(pattern)
    assert compiled.pattern == regex
    assert compiled.flags & re.DOTALL


def test_like_trailing_backslash_matches_a_literal_backslash() -> None:
    assert like_regex("end\\").fullmatch("end\\")
    assert not like_regex("end\\").fullmatch("end")


def test_kind_and_normalize() -> None:
    assert kind_of(True) is Kind.BOOLEAN
    assert kind_of(1) is Kind.NUMBER
    assert kind_of(1.5) is Kind.NUMBER
    assert kind_of("s") is Kind.STRING
    assert kind_of(N) is Kind.DATETIME
    assert kind_of(None) is None
    assert kind_of([1]) is None
    assert kind_of({"a": 1}) is None
    assert normalize(N) == A
    assert normalize(N).tzinfo is UTC
    assert normalize(A2) is A2
    assert normalize(3) == 3


# -- reference semantics: logic over records ------------------------------------------------------------

RECORDS = [
    Record({"cat": "tech", "price": 5, "tags": ["ai", "ml"], "meta": {"lang": "en"}}, id="a"),
    Record({"cat": "tech", "price": 15, "tags": ["web"], "meta": {"lang": "de"}}, id="b"),
    Record({"cat": "food", "price": 5.0, "tags": [], "meta": {"lang": None}}, id="c"),
    Record({"cat": None, "price": "5"}, id="d"),
    Record({}, id="e"),
]


@pytest.mark.parametrize(
    ("data", "ids"),
    [
        ({"cat": "tech"}, "ab"),
        ({"cat": None}, "de"),
        ({"cat": {"$ne": "tech"}}, "cde"),
        ({"price": 5}, "ac"),
        ({"price": {"$gte": 5, "$lt": 15}}, "ac"),
        ({"price": {"$gt": 4}}, "abc"),
        ({"price": {"$in": [5, "5"]}}, "acd"),
        ({"tags": {"$contains": "ai"}}, "a"),
        ({"tags": {"$exists": True}}, "abc"),
        ({"meta.lang": "en"}, "a"),
        ({"meta.lang": None}, "cde"),
        ({"meta.lang": {"$exists": True}}, "ab"),
        ({"$or": [{"cat": "food"}, {"price": {"$gt": 10}}]}, "bc"),
        ({"$not": {"cat": "tech"}}, "cde"),
        ({"$not": {"price": {"$gt": 10}}}, "acde"),  # NOT of a comparison also keeps nulls and other kinds
        ({"$and": [{"cat": "tech"}, {"$not": {"tags": {"$contains": "web"}}}]}, "a"),
        ({"$or": [{"$and": [{"cat": "tech"}, {"price": 15}]}, {"price": {"$like": "5"}}]}, "bd"),
        ({"id": {"$in": ["a", "e", "zz"]}}, "ae"),
        ({"id": {"$gt": "c"}}, "de"),
    ],
)
def test_matches_over_records(data: dict[str, Any], ids: str) -> None:
    tree = parse_filter(data)
    assert "".join(r.key for r in RECORDS if matches(r, tree)) == ids


def test_condition_on_a_vector_field_never_matches_scalars() -> None:
    from vectorknobs import VectorField

    record = Record({"embedding": VectorField([1.0, 2.0])}, id="v")
    assert not matches(record, where("embedding", "eq", 1.0))
    assert matches(record, where("embedding", "exists", True))


# -- sort -------------------------------------------------------------------------------------------------


def _ids(records: list[Record]) -> list[str]:
    return [r.key for r in records]


def test_sort_nulls_last_both_ways_and_ties_by_id() -> None:
    records = [
        Record({"p": 2}, id="d"),
        Record({"p": None}, id="b"),
        Record({"p": 1}, id="e"),
        Record({}, id="a"),
        Record({"p": 2}, id="c"),
        Record({"p": [1]}, id="f"),  # lists and dicts sort as null
    ]
    assert _ids(sort_records(records, [("p", False)])) == ["e", "c", "d", "a", "b", "f"]
    assert _ids(sort_records(records, [("p", True)])) == ["c", "d", "e", "a", "b", "f"]
    assert _ids(sort_records(records, [])) == ["a", "b", "c", "d", "e", "f"]


def test_sort_by_several_keys() -> None:
    records = [
        Record({"cat": "x", "p": 1}, id="1"),
        Record({"cat": "y", "p": 5}, id="2"),
        Record({"cat": "x", "p": 3}, id="3"),
        Record({"cat": "y", "p": 5}, id="0"),
        Record({"p": 9}, id="4"),
    ]
    assert _ids(sort_records(records, [("cat", False), ("p", True)])) == ["3", "1", "0", "2", "4"]
    assert _ids(sort_records(records, [("cat", True), ("p", False)])) == ["0", "2", "1", "3", "4"]


def test_sort_mixed_kinds_in_a_fixed_order() -> None:
    records = [
        Record({"v": "a"}, id="s"),
        Record({"v": N}, id="t"),
        Record({"v": 2.5}, id="n"),
        Record({"v": True}, id="b"),
        Record({"v": None}, id="z"),
        Record({"v": 1}, id="m"),
    ]
    assert _ids(sort_records(records, [("v", False)])) == ["b", "m", "n", "s", "t", "z"]
    assert _ids(sort_records(records, [("v", True)])) == ["t", "s", "n", "m", "b", "z"]


def test_sort_compares_naive_datetimes_as_utc() -> None:
    records = [
        Record({"at": A}, id="utc-noon"),
        Record({"at": A2}, id="utc-ten"),
        Record({"at": N + timedelta(minutes=1)}, id="naive-noon-01"),
        Record({"at": N - timedelta(hours=1)}, id="naive-eleven"),
    ]
    assert _ids(sort_records(records, [("at", False)])) == ["utc-ten", "naive-eleven", "utc-noon", "naive-noon-01"]


def test_sort_by_dotted_path_and_by_id() -> None:
    records = [Record({"m": {"k": 2}}, id="x"), Record({"m": {"k": 1}}, id="y"), Record({"m": {}}, id="a")]
    assert _ids(sort_records(records, [("m.k", False)])) == ["y", "x", "a"]
    assert _ids(sort_records(records, [("id", True)])) == ["y", "x", "a"]


def test_sort_strings_by_code_point() -> None:
    records = [Record({"s": s}, id=str(i)) for i, s in enumerate(["b", "B", "a", "é", "A"])]
    assert [r["s"] for r in sort_records(records, [("s", False)])] == ["A", "B", "a", "b", "é"]


def test_condition_dataclasses_are_hashable_values() -> None:
    c = where("a", "in", [1, 2])
    assert isinstance(c, Condition)
    assert c.value == (1, 2)
    assert hash(c) == hash(where("a", "in", (1, 2)))
    with pytest.raises(AttributeError):
        c.op = Operator.EQ  # type: ignore[misc]
