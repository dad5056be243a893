"""Filters, sorting, paging, count and stream, each checked against expectations computed here in Python."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

import vectorknobs as vk
from vectorknobs.testing._support import ConfigLike, ConformanceBase, ids_of

_PLUS2 = timezone(timedelta(hours=2))
_MINUS5 = timezone(timedelta(hours=-5))

#: The filter data set: one dict per record (absent key = missing field). Each field holds one kind
#: of value (plus None), so any store can load it; mixed kinds have their own test.
ROWS: list[dict[str, Any]] = [
    {"id": "f01", "name": "apple", "category": "fruit", "price": 1.5, "qty": 10, "active": True,
     "tags": ["red", "sweet"], "created": datetime(2024, 1, 1, 12, 0, tzinfo=UTC),
     "meta": {"rank": 3, "author": {"name": "ann"}}},
    {"id": "f02", "name": "Apple pie", "category": "food", "price": 10, "qty": 2, "active": False,
     "tags": ["sweet"], "created": datetime(2024, 1, 2, 0, 0), "meta": {"rank": 1}},
    {"id": "f03", "name": "banana", "category": "fruit", "price": 10.0, "qty": None, "active": None,
     "tags": [], "created": datetime(2024, 1, 2, 2, 0, tzinfo=_PLUS2),
     "meta": {"rank": 2, "author": {"name": "bob"}}},
    {"id": "f04", "name": "100% juice", "category": "drink", "price": 12, "qty": 5, "tags": ["red"],
     "meta": {"author": {}}},
    {"id": "f05", "name": "a_b", "category": "misc", "price": None, "qty": 7, "active": True, "tags": ["blue"],
     "created": datetime(2023, 12, 31, 23, 59, 59, tzinfo=UTC)},
    {"id": "f06", "name": "a.b", "category": "misc", "qty": 3, "active": True, "meta": {"rank": None}},
    {"id": "f07", "name": "axb", "category": "misc", "price": -3, "qty": 0, "active": False, "tags": ["Red"],
     "created": datetime(2025, 6, 1)},
    {"id": "f08", "name": "it's", "category": "tools", "price": 2.5, "qty": 10,
     "created": datetime(2024, 1, 1, 7, 0, tzinfo=_MINUS5), "meta": {"rank": 3, "author": {"name": "ann"}}},
    {"id": "f09", "name": "x' OR '1'='1", "category": "'; DROP TABLE records; --", "price": 0, "active": True,
     "tags": ["1"]},
    {"id": "f10", "name": "Ünïcode ☃", "category": "tools", "price": 1e3, "qty": 1,
     "created": datetime(2024, 1, 1, 12, 0)},
    {"id": "f11", "name": "back\\slash", "category": None, "price": 2.5, "qty": 4, "active": False,
     "tags": ["sweet", "red"]},
    {"id": "f12", "name": "", "price": 7, "qty": 10, "meta": {"author": {"name": "Ann"}}},
    {"id": "f13", "qty": -1},
    {"id": "f14", "name": '{"$gt": ""}', "category": "json", "price": 3, "tags": ["$ne"]},
    {"id": "f15", "name": "x.y*z?", "category": "misc", "price": 0.5, "qty": None,
     "created": datetime(1999, 12, 31, 23, 59, 59)},
]

_MISSING: Any = object()


def rows_to_records(rows: Sequence[dict[str, Any]]) -> list[vk.Record]:
    return [vk.Record({k: v for k, v in row.items() if k != "id"}, id=row["id"]) for row in rows]


def at(row: dict[str, Any], path: str) -> Any:
    """The value at a dotted path of a row, or ``_MISSING``."""
    if path == "id":
        return row["id"]
    value: Any = row
    for segment in path.split("."):
        if not isinstance(value, dict) or segment not in value:
            return _MISSING
        value = value[segment]
    return value


def is_null(value: Any) -> bool:
    return value is _MISSING or value is None


def is_num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_str(value: Any) -> bool:
    return isinstance(value, str)


def is_dt(value: Any) -> bool:
    return isinstance(value, datetime)


def utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def num(row: dict[str, Any], path: str, test: Callable[[float], bool]) -> bool:
    value = at(row, path)
    return is_num(value) and test(value)


def text(row: dict[str, Any], path: str, test: Callable[[str], bool]) -> bool:
    value = at(row, path)
    return is_str(value) and test(value)


def when(row: dict[str, Any], path: str, test: Callable[[datetime], bool]) -> bool:
    value = at(row, path)
    return is_dt(value) and test(utc(value))


def has_tag(row: dict[str, Any], tag: str) -> bool:
    tags = at(row, "tags")
    return isinstance(tags, list) and any(is_str(t) and t == tag for t in tags)


@dataclass(frozen=True)
class FilterCase:
    """A filter in dict form and the predicate (over a row of ``ROWS``) that says which records match."""

    name: str
    filter: dict[str, Any]
    expect: Callable[[dict[str, Any]], bool]

    def expected_ids(self, rows: Sequence[dict[str, Any]] = ROWS) -> list[str]:
        return sorted(row["id"] for row in rows if self.expect(row))


_D = datetime
FILTER_CASES: list[FilterCase] = [
    FilterCase("eq_string", {"category": "fruit"}, lambda r: text(r, "category", lambda v: v == "fruit")),
    FilterCase("eq_int_matches_float", {"price": 10}, lambda r: num(r, "price", lambda v: v == 10)),
    FilterCase("eq_float", {"price": 2.5}, lambda r: num(r, "price", lambda v: v == 2.5)),
    FilterCase("eq_true", {"active": True}, lambda r: at(r, "active") is True),
    FilterCase("eq_false", {"active": False}, lambda r: at(r, "active") is False),
    FilterCase("eq_none_matches_missing_and_none", {"price": None}, lambda r: is_null(at(r, "price"))),
    FilterCase("eq_datetime_naive_is_utc", {"created": _D(2024, 1, 2, tzinfo=UTC)},
               lambda r: when(r, "created", lambda v: v == _D(2024, 1, 2, tzinfo=UTC))),
    FilterCase("eq_datetime_other_offset", {"created": _D(2024, 1, 1, 14, 0, tzinfo=_PLUS2)},
               lambda r: when(r, "created", lambda v: v == _D(2024, 1, 1, 12, 0, tzinfo=UTC))),
    FilterCase("eq_empty_string", {"name": ""}, lambda r: at(r, "name") == ""),
    FilterCase("eq_unicode", {"name": "Ünïcode ☃"}, lambda r: at(r, "name") == "Ünïcode ☃"),
    FilterCase("eq_operator_form", {"qty": {"$eq": 10}}, lambda r: num(r, "qty", lambda v: v == 10)),
    FilterCase("ne_string_matches_null", {"category": {"$ne": "fruit"}},
               lambda r: not text(r, "category", lambda v: v == "fruit")),
    FilterCase("ne_none_is_exists", {"price": {"$ne": None}}, lambda r: not is_null(at(r, "price"))),
    FilterCase("ne_true", {"active": {"$ne": True}}, lambda r: at(r, "active") is not True),
    FilterCase("gt_number", {"price": {"$gt": 2.5}}, lambda r: num(r, "price", lambda v: v > 2.5)),
    FilterCase("gte_number", {"price": {"$gte": 2.5}}, lambda r: num(r, "price", lambda v: v >= 2.5)),
    FilterCase("lt_number", {"price": {"$lt": 2}}, lambda r: num(r, "price", lambda v: v < 2)),
    FilterCase("lte_zero", {"price": {"$lte": 0}}, lambda r: num(r, "price", lambda v: v <= 0)),
    FilterCase("gt_negative_int", {"qty": {"$gt": -1}}, lambda r: num(r, "qty", lambda v: v > -1)),
    FilterCase("gt_string_by_code_point", {"name": {"$gt": "a"}}, lambda r: text(r, "name", lambda v: v > "a")),
    FilterCase("lt_string_by_code_point", {"name": {"$lt": "B"}}, lambda r: text(r, "name", lambda v: v < "B")),
    FilterCase("gte_string_unicode", {"name": {"$gte": "Ü"}}, lambda r: text(r, "name", lambda v: v >= "Ü")),
    FilterCase("gt_naive_datetime", {"created": {"$gt": _D(2024, 1, 1, 12, 0)}},
               lambda r: when(r, "created", lambda v: v > _D(2024, 1, 1, 12, 0, tzinfo=UTC))),
    FilterCase("lte_aware_datetime", {"created": {"$lte": _D(2024, 1, 2, 0, 0, tzinfo=UTC)}},
               lambda r: when(r, "created", lambda v: v <= _D(2024, 1, 2, 0, 0, tzinfo=UTC))),
    FilterCase("lt_datetime_with_offset", {"created": {"$lt": _D(2024, 1, 1, 7, 0, tzinfo=_MINUS5)}},
               lambda r: when(r, "created", lambda v: v < _D(2024, 1, 1, 12, 0, tzinfo=UTC))),
    FilterCase("in_strings", {"category": {"$in": ["fruit", "tools", "nope"]}},
               lambda r: text(r, "category", lambda v: v in ("fruit", "tools"))),
    FilterCase("in_numbers_int_float", {"qty": {"$in": [10, 2.0]}}, lambda r: num(r, "qty", lambda v: v in (10, 2))),
    FilterCase("in_booleans", {"active": {"$in": [False]}}, lambda r: at(r, "active") is False),
    FilterCase("in_empty_matches_nothing", {"qty": {"$in": []}}, lambda r: False),
    FilterCase("not_in_matches_null", {"category": {"$not_in": ["fruit", "tools"]}},
               lambda r: not text(r, "category", lambda v: v in ("fruit", "tools"))),
    FilterCase("not_in_empty_matches_all", {"qty": {"$not_in": []}}, lambda r: True),
    FilterCase("contains_substring", {"name": {"$contains": "an"}}, lambda r: text(r, "name", lambda v: "an" in v)),
    FilterCase("contains_is_case_sensitive", {"name": {"$contains": "Apple"}},
               lambda r: text(r, "name", lambda v: "Apple" in v)),
    FilterCase("contains_special_characters", {"name": {"$contains": "%"}},
               lambda r: text(r, "name", lambda v: "%" in v)),
    FilterCase("contains_list_element", {"tags": {"$contains": "red"}}, lambda r: has_tag(r, "red")),
    FilterCase("contains_list_element_exactly", {"tags": {"$contains": "re"}}, lambda r: has_tag(r, "re")),
    FilterCase("exists_true", {"price": {"$exists": True}}, lambda r: not is_null(at(r, "price"))),
    FilterCase("exists_false", {"active": {"$exists": False}}, lambda r: is_null(at(r, "active"))),
    FilterCase("exists_nested", {"meta.rank": {"$exists": True}}, lambda r: not is_null(at(r, "meta.rank"))),
    FilterCase("exists_on_list_field", {"tags": {"$exists": True}}, lambda r: not is_null(at(r, "tags"))),
    FilterCase("between_numbers_inclusive", {"price": {"$between": [1.5, 10]}},
               lambda r: num(r, "price", lambda v: 1.5 <= v <= 10)),
    FilterCase("between_strings", {"name": {"$between": ["a", "b"]}},
               lambda r: text(r, "name", lambda v: "a" <= v <= "b")),
    FilterCase("between_datetimes", {"created": {"$between": [_D(2024, 1, 1, tzinfo=UTC), _D(2024, 1, 2)]}},
               lambda r: when(r, "created", lambda v: _D(2024, 1, 1, tzinfo=UTC) <= v <= _D(2024, 1, 2, tzinfo=UTC))),
    FilterCase("like_prefix", {"name": {"$like": "a%"}}, lambda r: text(r, "name", lambda v: v.startswith("a"))),
    FilterCase("like_is_case_sensitive", {"name": {"$like": "A%"}},
               lambda r: text(r, "name", lambda v: v.startswith("A"))),
    FilterCase("like_matches_whole_string", {"name": {"$like": "%pple"}},
               lambda r: text(r, "name", lambda v: v.endswith("pple"))),
    FilterCase("like_underscore_is_one_char", {"name": {"$like": "a_b"}},
               lambda r: text(r, "name", lambda v: len(v) == 3 and v[0] == "a" and v[2] == "b")),
    FilterCase("like_escaped_underscore", {"name": {"$like": "a\\_b"}}, lambda r: at(r, "name") == "a_b"),
    FilterCase("like_escaped_percent", {"name": {"$like": "100\\%%"}},
               lambda r: text(r, "name", lambda v: v.startswith("100%"))),
    FilterCase("like_escaped_backslash", {"name": {"$like": "back\\\\slash"}},
               lambda r: at(r, "name") == "back\\slash"),
    FilterCase("like_regex_characters_are_literal", {"name": {"$like": "x.y*z?"}}, lambda r: at(r, "name") == "x.y*z?"),
    FilterCase("like_dot_is_literal", {"name": {"$like": "a.b"}}, lambda r: at(r, "name") == "a.b"),
    FilterCase("like_percent_matches_every_string", {"name": {"$like": "%"}}, lambda r: is_str(at(r, "name"))),
    FilterCase("like_unicode", {"name": {"$like": "Ü%☃"}},
               lambda r: text(r, "name", lambda v: v.startswith("Ü") and v.endswith("☃"))),
    FilterCase("dotted_eq", {"meta.author.name": "ann"}, lambda r: at(r, "meta.author.name") == "ann"),
    FilterCase("dotted_gte", {"meta.rank": {"$gte": 2}}, lambda r: num(r, "meta.rank", lambda v: v >= 2)),
    FilterCase("dotted_null", {"meta.rank": None}, lambda r: is_null(at(r, "meta.rank"))),
    FilterCase("dotted_missing_leaf", {"meta.author.name": {"$exists": False}},
               lambda r: is_null(at(r, "meta.author.name"))),
    FilterCase("id_eq", {"id": "f03"}, lambda r: r["id"] == "f03"),
    FilterCase("id_in", {"id": {"$in": ["f01", "f05", "nope"]}}, lambda r: r["id"] in ("f01", "f05")),
    FilterCase("id_gt", {"id": {"$gt": "f10"}}, lambda r: r["id"] > "f10"),
    FilterCase("id_like", {"id": {"$like": "f1_"}}, lambda r: r["id"].startswith("f1")),
    FilterCase("id_ne", {"id": {"$ne": "f01"}}, lambda r: r["id"] != "f01"),
    FilterCase("and_implicit", {"category": "fruit", "price": {"$lt": 5}},
               lambda r: text(r, "category", lambda v: v == "fruit") and num(r, "price", lambda v: v < 5)),
    FilterCase("range_on_one_field", {"price": {"$gte": 1.5, "$lt": 10}},
               lambda r: num(r, "price", lambda v: 1.5 <= v < 10)),
    FilterCase("and_explicit", {"$and": [{"qty": {"$gte": 2}}, {"qty": {"$lte": 7}}]},
               lambda r: num(r, "qty", lambda v: 2 <= v <= 7)),
    FilterCase("or", {"$or": [{"category": "tools"}, {"qty": {"$gte": 10}}]},
               lambda r: text(r, "category", lambda v: v == "tools") or num(r, "qty", lambda v: v >= 10)),
    FilterCase("not_includes_nulls", {"$not": {"price": {"$gt": 2.5}}},
               lambda r: not num(r, "price", lambda v: v > 2.5)),
    FilterCase("not_not", {"$not": {"$not": {"active": True}}}, lambda r: at(r, "active") is True),
    FilterCase(
        "nested_logic",
        {"$or": [
            {"$and": [{"category": "misc"}, {"$not": {"active": True}}]},
            {"$and": [{"tags": {"$contains": "sweet"}},
                      {"$not": {"$or": [{"price": {"$gte": 10}}, {"meta.rank": {"$exists": False}}]}}]},
        ]},
        lambda r: (text(r, "category", lambda v: v == "misc") and at(r, "active") is not True) or (
            has_tag(r, "sweet") and not (num(r, "price", lambda v: v >= 10) or is_null(at(r, "meta.rank")))),
    ),
    FilterCase("hostile_sql_value", {"name": "x' OR '1'='1"}, lambda r: at(r, "name") == "x' OR '1'='1"),
    FilterCase("hostile_sql_in", {"category": {"$in": ["'; DROP TABLE records; --"]}},
               lambda r: at(r, "category") == "'; DROP TABLE records; --"),
    FilterCase("hostile_sql_ne", {"name": {"$ne": "' OR 1=1 --"}}, lambda r: at(r, "name") != "' OR 1=1 --"),
    FilterCase("hostile_json_value", {"name": '{"$gt": ""}'}, lambda r: at(r, "name") == '{"$gt": ""}'),
    FilterCase("hostile_like", {"name": {"$like": "%' OR '1'='1"}},
               lambda r: text(r, "name", lambda v: v.endswith("' OR '1'='1"))),
    FilterCase("hostile_operator_as_data", {"tags": {"$contains": "$ne"}}, lambda r: has_tag(r, "$ne")),
    FilterCase("quote_in_value", {"name": "it's"}, lambda r: at(r, "name") == "it's"),
    FilterCase("unknown_field_eq", {"nofield": "x"}, lambda r: False),
    FilterCase("unknown_field_ne", {"nofield": {"$ne": "x"}}, lambda r: True),
    FilterCase("unknown_field_not_exists", {"nofield": {"$exists": False}}, lambda r: True),
]

#: Sort cases: (name, [(path, descending), ...]), on single-kind fields of ``ROWS``
SORT_CASES: list[tuple[str, list[tuple[str, bool]]]] = [
    ("qty_asc", [("qty", False)]),
    ("qty_desc", [("qty", True)]),
    ("price_asc_int_and_float", [("price", False)]),
    ("price_desc", [("price", True)]),
    ("name_asc_code_point", [("name", False)]),
    ("name_desc", [("name", True)]),
    ("created_asc_naive_and_aware", [("created", False)]),
    ("created_desc", [("created", True)]),
    ("active_asc_false_first", [("active", False)]),
    ("nested_desc", [("meta.rank", True)]),
    ("id_desc", [("id", True)]),
    ("two_keys", [("category", False), ("qty", True)]),
    ("three_keys", [("active", True), ("meta.rank", False), ("price", True)]),
    ("nested_then_id_desc", [("meta.author.name", False), ("id", True)]),
]


def sort_value(value: Any) -> Any:
    return utc(value) if is_dt(value) else value


def expected_order(rows: Sequence[dict[str, Any]], keys: Sequence[tuple[str, bool]]) -> list[str]:
    """Ids sorted by ``keys`` (single-kind fields): nulls last both ways, ties by id ascending."""
    order = sorted(rows, key=lambda r: r["id"])
    for path, descending in reversed(keys):  # stable sorts, least significant key first
        present = [r for r in order if not is_null(at(r, path))]
        nulls = [r for r in order if is_null(at(r, path))]
        present.sort(key=lambda r, p=path: sort_value(at(r, p)), reverse=descending)
        order = present + nulls
    return [r["id"] for r in order]


def sorted_query(keys: Sequence[tuple[str, bool]]) -> vk.Query:
    query = vk.Query()
    for path, descending in keys:
        query = query.sort(path, "desc" if descending else "asc")
    return query


#: A field holding every kind, for the "kinds never mix" semantics.
KIND_VALUES: dict[str, Any] = {
    "k01": 1, "k02": 1.0, "k03": True, "k04": "1", "k05": datetime(2024, 1, 1), "k06": None,
    "k07": [1, True, "1"], "k08": {"a": 1}, "k09": _MISSING, "k10": 0, "k11": False, "k12": "a",
    "k13": 2.5, "k14": datetime(2020, 1, 1, tzinfo=UTC),
}


class FilterTests(ConformanceBase):
    """Every filter operator, nested logic, null semantics, sorting, paging, count and stream."""

    @staticmethod
    async def _load(store: vk.VectorStore) -> None:
        await store.bulk_create(rows_to_records(ROWS))

    @pytest.mark.parametrize("case", FILTER_CASES, ids=[c.name for c in FILTER_CASES])
    async def test_filter(self, store_config: ConfigLike, case: FilterCase) -> None:
        """search() with the filter returns exactly the expected records, in id order; its dict-query form and
        count() agree.

        Troubleshooting: read the semantics in ``vectorknobs.filters`` — null = missing or None, ``ne`` and
        ``not_in`` match nulls, comparisons only match values of the operand's kind, strings compare by code
        point, naive datetimes are UTC, ``like`` matches the whole string and is case-sensitive.
        """
        expected = case.expected_ids()
        async with vk.connect(store_config) as store:
            await self._load(store)
            found = await store.search(vk.Query().filter(case.filter))
            assert ids_of(found) == expected, f"filter {case.filter!r}"
            assert found == [r for r in rows_to_records(ROWS) if r.id in expected], "records are not read back whole"
            assert ids_of(await store.search({"filter": case.filter})) == expected
            assert await store.count(case.filter) == len(expected)

    async def test_builder_and_dict_forms_agree(self, store_config: ConfigLike) -> None:
        """where/and_/or_/not_, chained Query.filter() calls, operator symbols and the dict form all select the
        same records."""
        def expect(r: dict[str, Any]) -> bool:
            return text(r, "category", lambda v: v in ("fruit", "misc")) and (
                num(r, "price", lambda v: v < 2) or at(r, "active") is not True)

        expected = sorted(r["id"] for r in ROWS if expect(r))
        dict_form = {"category": {"$in": ["fruit", "misc"]}, "$or": [{"price": {"$lt": 2}}, {"$not": {"active": True}}]}
        built = vk.and_(
            vk.where("category", "in", ["fruit", "misc"]),
            vk.or_(vk.where("price", "<", 2), vk.not_(vk.where("active", "==", True))),
        )
        chained = vk.Query().filter("category", "in", ("fruit", "misc")).filter(
            vk.or_(vk.where("price", "lt", 2), vk.where("active", "!=", True))
        )
        async with vk.connect(store_config) as store:
            await self._load(store)
            assert ids_of(await store.search(vk.Query(where=built))) == expected
            assert ids_of(await store.search(vk.Query().filter(dict_form))) == expected
            assert ids_of(await store.search(chained)) == expected
            assert ids_of(await store.search({"filter": dict_form})) == expected
            assert await store.count(built) == await store.count(dict_form) == len(expected)

    @pytest.mark.parametrize(
        ("symbol", "name"),
        [("=", "eq"), ("==", "eq"), ("!=", "ne"), (">", "gt"), (">=", "gte"), ("<", "lt"), ("<=", "lte")],
    )
    async def test_operator_symbols(self, store_config: ConfigLike, symbol: str, name: str) -> None:
        """An operator symbol selects the same records as its name."""
        async with vk.connect(store_config) as store:
            await self._load(store)
            by_symbol = await store.search(vk.Query().filter("qty", symbol, 4))
            by_name = await store.search(vk.Query().filter({"qty": {f"${name}": 4}}))
            assert ids_of(by_symbol) == ids_of(by_name)
            assert by_name, "each of these operators matches some record of the data set"

    @pytest.mark.parametrize(
        ("operand", "op", "expected"),
        [
            (1, "eq", ["k01", "k02"]),
            (True, "eq", ["k03"]),
            (False, "eq", ["k11"]),
            (0, "eq", ["k10"]),
            ("1", "eq", ["k04"]),
            (1, "ne", ["k03", "k04", "k05", "k06", "k07", "k08", "k09", "k10", "k11", "k12", "k13", "k14"]),
            (0, "gt", ["k01", "k02", "k13"]),
            (0, "gte", ["k01", "k02", "k10", "k13"]),
            ("", "gte", ["k04", "k12"]),
            (datetime(2030, 1, 1), "lt", ["k05", "k14"]),
            ([True, "1"], "in", ["k03", "k04"]),
            ([1], "in", ["k01", "k02"]),
            ([1], "not_in", ["k03", "k04", "k05", "k06", "k07", "k08", "k09", "k10", "k11", "k12", "k13", "k14"]),
            (1, "contains", ["k07"]),
            (True, "contains", ["k07"]),
            ("1", "contains", ["k04", "k07"]),
            ("a", "contains", ["k12"]),
            ([0, 1], "between", ["k01", "k02", "k10"]),
            (True, "exists", ["k01", "k02", "k03", "k04", "k05", "k07", "k08", "k10", "k11", "k12", "k13", "k14"]),
            (False, "exists", ["k06", "k09"]),
            ("%", "like", ["k04", "k12"]),
        ],
        ids=repr,
    )
    async def test_kinds_never_mix(self, store_config: ConfigLike, operand: Any, op: str, expected: list[str]) -> None:
        """On a field holding every kind of value: numbers, strings, booleans and datetimes are separate
        kinds (``1 == 1.0``, ``1 != True``, ``1 != "1"``); lists and dicts only match ``contains``/``exists``.

        Troubleshooting: a store whose engine coerces types (SQL casts, JSON number/bool mixing) must add a
        type check to each comparison.
        """
        async with vk.connect(store_config) as store:
            await store.bulk_create(
                [vk.Record({} if value is _MISSING else {"v": value}, id=key) for key, value in KIND_VALUES.items()]
            )
            assert ids_of(await store.search(vk.Query().filter("v", op, operand))) == expected
            assert await store.count({"v": {f"${op}": operand}}) == len(expected)

    async def test_dotted_path_into_non_dict(self, store_config: ConfigLike) -> None:
        """A dotted path through a value that is not a dict (or is missing) is null."""
        async with vk.connect(store_config) as store:
            await store.bulk_create(
                [vk.Record({} if value is _MISSING else {"v": value}, id=key) for key, value in KIND_VALUES.items()]
            )
            assert ids_of(await store.search(vk.Query().filter("v.a", "eq", 1))) == ["k08"]
            assert ids_of(await store.search(vk.Query().filter("v.a", "exists", False))) == [
                k for k in KIND_VALUES if k != "k08"
            ]

    @pytest.mark.parametrize(("name", "keys"), SORT_CASES, ids=[name for name, _ in SORT_CASES])
    async def test_sort(self, store_config: ConfigLike, name: str, keys: list[tuple[str, bool]]) -> None:
        """Sorting follows the keys in order; nulls come last in both directions; ties go by id ascending.

        Troubleshooting: engines put NULLs first in one direction (PostgreSQL: DESC) — add NULLS LAST; and
        add the id as the final sort key.
        """
        expected = expected_order(ROWS, keys)
        async with vk.connect(store_config) as store:
            await self._load(store)
            assert ids_of(await store.search(sorted_query(keys))) == expected
            dict_sort = [f"-{path}" if desc else path for path, desc in keys]
            assert ids_of(await store.search({"sort": dict_sort})) == expected

    async def test_sort_with_filter_and_paging(self, store_config: ConfigLike) -> None:
        """A filtered, sorted query pages with limit/offset over the sorted matches."""
        keys = [("price", True)]
        matching = [r for r in ROWS if not text(r, "category", lambda v: v == "misc")]
        expected = expected_order(matching, keys)
        async with vk.connect(store_config) as store:
            await self._load(store)
            base = sorted_query(keys).filter({"category": {"$ne": "misc"}})
            assert ids_of(await store.search(base)) == expected
            assert ids_of(await store.search(base.limit(3))) == expected[:3]
            assert ids_of(await store.search(base.offset(3).limit(4))) == expected[3:7]
            assert ids_of(await store.search(base.offset(len(expected) - 1))) == expected[-1:]

    async def test_sort_mixed_kinds(self, store_config: ConfigLike) -> None:
        """Values of different kinds sort by kind: booleans, numbers, strings, datetimes; then nulls, lists and
        dicts (by id), in both directions."""
        async with vk.connect(store_config) as store:
            await store.bulk_create(
                [vk.Record({} if value is _MISSING else {"v": value}, id=key) for key, value in KIND_VALUES.items()]
            )
            tail = ["k06", "k07", "k08", "k09"]
            ascending = ["k11", "k03", "k10", "k01", "k02", "k13", "k04", "k12", "k14", "k05", *tail]
            descending = ["k05", "k14", "k12", "k04", "k13", "k01", "k02", "k10", "k03", "k11", *tail]
            assert ids_of(await store.search(vk.Query().sort("v"))) == ascending
            assert ids_of(await store.search(vk.Query().sort("v", "desc"))) == descending

    async def test_pages_cover_the_sorted_result(self, store_config: ConfigLike) -> None:
        """limit/offset pages of a sorted query, concatenated, are the whole sorted result; an offset past the
        end gives an empty page."""
        keys = [("qty", False)]
        expected = expected_order(ROWS, keys)
        async with vk.connect(store_config) as store:
            await self._load(store)
            pages = [ids_of(await store.search(sorted_query(keys).offset(o).limit(4))) for o in range(0, 16, 4)]
            assert [i for page in pages for i in page] == expected
            assert [len(p) for p in pages] == [4, 4, 4, 3]
            assert await store.search(sorted_query(keys).offset(len(ROWS))) == []
            assert ids_of(await store.search({"sort": ["qty"], "limit": 2, "offset": 1})) == expected[1:3]

    async def test_unsorted_results_are_in_id_order(self, store_config: ConfigLike) -> None:
        """Without a sort, results come in id order (ties of an empty sort go by id), so paging is stable."""
        ids = sorted(r["id"] for r in ROWS)
        async with vk.connect(store_config) as store:
            await store.bulk_create(list(reversed(rows_to_records(ROWS))))
            assert ids_of(await store.search()) == ids
            assert ids_of(await store.search(vk.Query().offset(5).limit(5))) == ids[5:10]

    async def test_count(self, store_config: ConfigLike) -> None:
        """count() counts all records, or those matching a filter, a Query or a dict; sort and paging are
        ignored."""
        async with vk.connect(store_config) as store:
            assert await store.count() == 0
            await self._load(store)
            assert await store.count() == len(ROWS)
            fruit_or_tools = sum(1 for r in ROWS if text(r, "category", lambda v: v in ("fruit", "tools")))
            query = vk.Query().filter("category", "in", ["fruit", "tools"]).sort("qty").limit(1)
            assert await store.count(query) == fruit_or_tools
            assert await store.count(vk.where("category", "in", ["fruit", "tools"])) == fruit_or_tools

    @pytest.mark.parametrize("batch_size", [1, 4, 1000])
    async def test_stream_yields_every_match_once(self, store_config: ConfigLike, batch_size: int) -> None:
        """stream() yields every matching record exactly once, whole, in id order, in non-empty batches of at
        most batch_size."""
        case = next(c for c in FILTER_CASES if c.name == "ne_string_matches_null")
        async with vk.connect(store_config) as store:
            await self._load(store)
            for where_, expected in ((None, sorted(r["id"] for r in ROWS)), (case.filter, case.expected_ids())):
                batches = [batch async for batch in store.stream(where_, batch_size=batch_size)]
                assert all(0 < len(b) <= batch_size for b in batches), [len(b) for b in batches]
                streamed = [r for batch in batches for r in batch]
                assert ids_of(streamed) == expected
                assert streamed == [r for r in rows_to_records(ROWS) if r.id in expected]
