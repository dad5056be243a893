"""The canonical filter tree every store translates, and its plain-dict form.

A filter is a ``Condition`` (path, operator, operand) or ``And`` / ``Or`` / ``Not`` of filters.
Semantics (the same on every store; ``docs/query.md`` has the full table):

* a missing field and a field holding ``None`` are both *null*; ``eq None`` matches null,
  ``exists True`` matches non-null;
* ``ne`` and ``not_in`` are the exact complements of ``eq`` and ``in`` (they match null);
* comparisons only match values of the operand's kind (numbers with numbers, strings with strings by
  code point, datetimes with datetimes; booleans only ``eq``/``ne``/``in``); other values never match;
* ``contains`` is substring on strings and membership on lists; ``like`` is SQL ``LIKE`` with ``%`` and
  ``_`` (backslash escapes them), case-sensitive, matching the whole string;
* ``between [lo, hi]`` is inclusive at both ends.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeAlias

from vectorknobs.errors import FilterError, InvalidNameError
from vectorknobs.names import split_path


class Operator(StrEnum):
    EQ = "eq"
    NE = "ne"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    IN = "in"
    NOT_IN = "not_in"
    CONTAINS = "contains"
    EXISTS = "exists"
    BETWEEN = "between"
    LIKE = "like"


ALL_OPERATORS = frozenset(Operator)
RANGE_OPERATORS = frozenset({Operator.GT, Operator.GTE, Operator.LT, Operator.LTE, Operator.BETWEEN})

_SYMBOLS: dict[str, Operator] = {op.value: op for op in Operator} | {
    "=": Operator.EQ,
    "==": Operator.EQ,
    "!=": Operator.NE,
    ">": Operator.GT,
    ">=": Operator.GTE,
    "<": Operator.LT,
    "<=": Operator.LTE,
    "not in": Operator.NOT_IN,
    "nin": Operator.NOT_IN,
}


def parse_operator(symbol: Operator | str) -> Operator:
    if isinstance(symbol, Operator):
        return symbol
    op = _SYMBOLS.get(str(symbol).strip().lower().lstrip("$"))
    if op is None:
        raise FilterError(f"unknown filter operator {symbol!r}; use one of {', '.join(o.value for o in Operator)}")
    return op


class Kind(StrEnum):
    """What a comparison compares; values of another kind never match."""

    BOOLEAN = "boolean"
    NUMBER = "number"
    STRING = "string"
    DATETIME = "datetime"


def kind_of(value: Any) -> Kind | None:
    """The comparable kind of a stored or operand value, or None for null, lists and dicts."""
    if isinstance(value, bool):
        return Kind.BOOLEAN
    if isinstance(value, (int, float)):
        return Kind.NUMBER
    if isinstance(value, str):
        return Kind.STRING
    if isinstance(value, datetime):
        return Kind.DATETIME
    return None


def normalize(value: Any) -> Any:
    """Make values of one kind comparable: naive datetimes are taken as UTC."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


@dataclass(frozen=True)
class Condition:
    path: tuple[str, ...]
    op: Operator
    value: Any

    @property
    def field(self) -> str:
        return ".".join(self.path)

    @property
    def kind(self) -> Kind | None:
        """The kind the operand compares against (for ``in``/``between``: of its items)."""
        if self.op in (Operator.IN, Operator.NOT_IN, Operator.BETWEEN):
            return kind_of(self.value[0]) if self.value else None
        return kind_of(self.value)


@dataclass(frozen=True)
class And:
    children: tuple[Filter, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Filter, ...]


@dataclass(frozen=True)
class Not:
    child: Filter


Filter: TypeAlias = Condition | And | Or | Not


def where(path: str, op: Operator | str, value: Any = True) -> Condition:
    """Build a checked condition: ``where("price", ">", 3)``, ``where("tags", "contains", "ai")``."""
    try:
        segments = split_path(path)
    except InvalidNameError as err:
        raise FilterError(str(err)) from None
    operator = parse_operator(op)
    return Condition(segments, operator, _check_operand(".".join(segments), operator, value))


def and_(*filters: Filter) -> Filter:
    if not filters:
        raise FilterError("and_() needs at least one filter")
    flat: list[Filter] = []
    for f in filters:
        flat.extend(f.children if isinstance(f, And) else (f,))
    return flat[0] if len(flat) == 1 else And(tuple(flat))


def or_(*filters: Filter) -> Filter:
    if not filters:
        raise FilterError("or_() needs at least one filter")
    return filters[0] if len(filters) == 1 else Or(tuple(filters))


def not_(f: Filter) -> Filter:
    return Not(f)


def _check_operand(field: str, op: Operator, value: Any) -> Any:
    def fail(expected: str) -> FilterError:
        return FilterError(f"filter on {field!r}: operator {op.value!r} expects {expected}, got {value!r}")

    # stored numbers are always finite; a NaN bound would match differently on every engine
    operands = value if isinstance(value, (list, tuple, set, frozenset)) else (value,)
    if any(isinstance(item, float) and not math.isfinite(item) for item in operands):
        raise fail("finite numbers (NaN and inf are never stored)")
    if op in (Operator.EQ, Operator.NE):
        if value is not None and kind_of(value) is None:
            raise fail("a str, number, bool, datetime or None (use 'contains' or a dotted path for lists/dicts)")
        return value
    if op in (Operator.GT, Operator.GTE, Operator.LT, Operator.LTE):
        if kind_of(value) in (None, Kind.BOOLEAN):
            raise fail("a number, str or datetime it can be ordered by")
        return value
    if op in (Operator.IN, Operator.NOT_IN):
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (Sequence, set, frozenset)):
            raise fail("a list of values")
        items = tuple(value)
        if any(kind_of(item) is None for item in items):
            raise fail("a list of str, number, bool or datetime values (use 'eq None' to match null)")
        return items
    if op is Operator.CONTAINS:
        if kind_of(value) is None:
            raise fail("a str, number, bool or datetime to look for")
        return value
    if op is Operator.EXISTS:
        if not isinstance(value, bool):
            raise fail("True or False")
        return value
    if op is Operator.BETWEEN:
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence) or len(value) != 2:
            raise fail("a [low, high] pair")
        low, high = value
        kind = kind_of(low)
        if kind in (None, Kind.BOOLEAN) or kind_of(high) is not kind:
            raise fail("two bounds of the same orderable kind")
        if normalize(low) > normalize(high):
            raise fail("low <= high")
        return (low, high)
    if not isinstance(value, str):
        raise fail("a str pattern with % and _")
    return value


def parse_filter(data: Any) -> Filter:
    """Compile the plain-dict form into the canonical tree.

    ``{"category": "tech", "price": {"$gte": 3, "$lt": 10}, "$or": [{...}, {...}], "$not": {...}}``
    """
    if isinstance(data, (Condition, And, Or, Not)):
        return data
    if not isinstance(data, Mapping) or not data:
        raise FilterError(f"a filter must be a non-empty dict like {{'category': 'tech'}}, got {data!r}")
    parts: list[Filter] = []
    for key, value in data.items():
        if not isinstance(key, str):
            raise FilterError(f"filter keys must be field paths or $and/$or/$not, got {key!r}")
        if key in ("$and", "$or"):
            if not isinstance(value, Sequence) or isinstance(value, (str, bytes)) or not value:
                raise FilterError(f"{key} expects a non-empty list of filters, got {value!r}")
            children = [parse_filter(item) for item in value]
            parts.append(and_(*children) if key == "$and" else or_(*children))
        elif key == "$not":
            parts.append(Not(parse_filter(value)))
        elif key.startswith("$"):
            raise FilterError(f"unknown logical operator {key!r}; use $and, $or or $not")
        elif isinstance(value, Mapping):
            if not value:
                raise FilterError(f"filter on {key!r}: empty operator dict")
            parts.extend(where(key, op, operand) for op, operand in value.items())
        else:
            parts.append(where(key, Operator.EQ, value))
    return and_(*parts)


def filter_to_dict(f: Filter) -> dict[str, Any]:
    """Inverse of :func:`parse_filter`."""
    if isinstance(f, Condition):
        value = list(f.value) if isinstance(f.value, tuple) else f.value
        return {f.field: {f"${f.op.value}": value}}
    if isinstance(f, And):
        return {"$and": [filter_to_dict(c) for c in f.children]}
    if isinstance(f, Or):
        return {"$or": [filter_to_dict(c) for c in f.children]}
    return {"$not": filter_to_dict(f.child)}


def operators_in(f: Filter) -> set[Operator]:
    if isinstance(f, Condition):
        return {f.op}
    if isinstance(f, Not):
        return operators_in(f.child)
    return set().union(*(operators_in(c) for c in f.children))


def conditions_in(f: Filter) -> list[Condition]:
    if isinstance(f, Condition):
        return [f]
    if isinstance(f, Not):
        return conditions_in(f.child)
    return [c for child in f.children for c in conditions_in(child)]
