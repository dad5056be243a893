"""Filters and sorts as SQL over the ``_doc`` column, with every value bound as a parameter.

``_doc`` is a jsonb *projection* of a record's fields made for querying (``project``); the lossless copy
lives in ``_body``. The projection keeps each value's kind visible to ``jsonb_typeof`` and makes SQL
comparisons agree exactly with ``vectorknobs.evaluate``:

* numbers are exact: a float is written as its shortest repr, or as an exact integer from 2**53 on, so
  ``numeric`` comparisons between ints and floats give Python's answers;
* datetimes become ``{"$dt": <microseconds since the epoch, UTC>}`` (naive ones taken as UTC);
* dict keys starting with ``$`` are dropped (no filter path can reach them), so ``$dt`` is unambiguous;
* strings are compared with ``COLLATE "C"`` (code point order); PostgreSQL text cannot hold NUL, so NUL
  and U+0001 are escaped as U+0001 U+0001 and U+0001 U+0002, which keeps equality and order;
* a vector field is ``{}``: present, but equal to nothing, like the numpy array in the reference.

Every condition evaluates to true or false, never NULL, so ``NOT`` is an exact complement.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from vectorknobs.errors import FilterError
from vectorknobs.filters import And, Condition, Filter, Kind, Not, Operator, Or, kind_of
from vectorknobs.query import SortKey

DOC = "_doc"
EXACT_FLOAT = float(2**53)  # from here on every float is an integer: write it exactly
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
# how a stored string is read for substring and LIKE tests: escapes turned back into one character each
# (U+10FFFE and U+10FFFF stand for NUL and U+0001 there)
_DECODED = "replace(replace({}, chr(1) || chr(1), chr(1114110)), chr(1) || chr(2), chr(1114111))"
_DEL = "\x7f"
_COMPARISON = {Operator.GT: ">", Operator.GTE: ">=", Operator.LT: "<", Operator.LTE: "<="}


def quote(name: str) -> str:
    """A (validated) identifier as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


# -- the projection ---------------------------------------------------------------------------------------
def escape_text(text: str) -> str:
    return text.replace("\x01", "\x01\x02").replace("\x00", "\x01\x01") if _has_low(text) else text


def _has_low(text: str) -> bool:
    return "\x00" in text or "\x01" in text


def micros(value: datetime) -> int:
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return (aware - _EPOCH) // _MICROSECOND


def project(value: Any) -> Any:
    """The queryable form of a stored value (see the module docstring)."""
    if isinstance(value, str):
        return escape_text(value)
    if isinstance(value, float):
        return int(value) if abs(value) >= EXACT_FLOAT else value
    if isinstance(value, datetime):
        return {"$dt": micros(value)}
    if isinstance(value, dict):
        return {key: project(item) for key, item in value.items() if not key.startswith("$")}
    if isinstance(value, list):
        return [project(item) for item in value]
    return value  # int, bool, None


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _number(value: int | float) -> Decimal:
    return Decimal(project(value))


# -- parameters ---------------------------------------------------------------------------------------------
class Params:
    """Bound parameter values, numbered in the order they are added."""

    def __init__(self, *initial: Any) -> None:
        self.values: list[Any] = list(initial)
        self._paths: dict[tuple[str, ...], str] = {}

    def add(self, value: Any, cast: str) -> str:
        self.values.append(value)
        return f"${len(self.values)}::{cast}"

    def path(self, segments: tuple[str, ...]) -> str:
        """The jsonb value at ``segments`` (SQL NULL when missing), its path bound once per query."""
        if segments not in self._paths:
            self._paths[segments] = self.add(list(segments), "text[]")
        return f"({DOC} #> {self._paths[segments]})"


# -- filters ------------------------------------------------------------------------------------------------
def where_sql(f: Filter, params: Params) -> str:
    """A boolean SQL expression equivalent to ``vectorknobs.evaluate.matches(record, f)``."""
    if isinstance(f, Condition):
        return _id_condition(f, params) if f.path == ("id",) else _condition(f, params)
    if isinstance(f, And):
        return "(" + " AND ".join(where_sql(c, params) for c in f.children) + ")"
    if isinstance(f, Or):
        return "(" + " OR ".join(where_sql(c, params) for c in f.children) + ")"
    assert isinstance(f, Not)
    return f"(NOT {where_sql(f.child, params)})"


def _condition(c: Condition, params: Params) -> str:
    op = c.op
    if op in (Operator.EQ, Operator.NE) and c.value is not None:
        equal = f"({DOC} @> {params.add(_json(_nest(c.path, project(_text_ok(c.value)))), 'jsonb')})"
        return equal if op is Operator.EQ else f"(NOT {equal})"
    if op is Operator.CONTAINS:
        in_list = f"({DOC} @> {params.add(_json(_nest(c.path, [project(_text_ok(c.value))])), 'jsonb')})"
        if not isinstance(c.value, str):
            return in_list
    x = params.path(c.path)  # bound only where used: PostgreSQL rejects a parameter it never sees
    present = f"COALESCE(jsonb_typeof({x}) <> 'null', false)"
    if op in (Operator.EXISTS, Operator.EQ, Operator.NE):  # exists, or (not) equal to None
        return present if (op is Operator.NE) or (op is Operator.EXISTS and c.value) else f"(NOT {present})"
    if op in (Operator.IN, Operator.NOT_IN):
        items = [_json(project(_text_ok(item))) for item in c.value]
        member = f"COALESCE({x} = ANY({params.add(items, 'jsonb[]')}), false)"
        return member if op is Operator.IN else f"(NOT {member})"
    if op is Operator.CONTAINS:
        needle = params.add(_placeholders(c.value), "text")
        text = _DECODED.format(f"({x} #>> '{{}}')")
        return f"({in_list} OR COALESCE(jsonb_typeof({x}) = 'string' AND strpos({text}, {needle}) > 0, false))"
    if op is Operator.LIKE:
        pattern = params.add(like_pattern(_text_ok(c.value), _placeholders), "text")
        text = _DECODED.format(f"({x} #>> '{{}}')")
        return f"COALESCE(jsonb_typeof({x}) = 'string' AND {text} COLLATE \"C\" LIKE {pattern}, false)"
    return _range(c, x, params)


def _range(c: Condition, x: str, params: Params) -> str:
    kind = c.kind
    bind: Callable[[Any], Any]
    if kind is Kind.NUMBER:
        test, value, cast, bind = f"jsonb_typeof({x}) = 'number'", f"({x})::numeric", "numeric", _number
    elif kind is Kind.STRING:
        test, value, cast = f"jsonb_typeof({x}) = 'string'", f"({x} #>> '{{}}') COLLATE \"C\"", "text"
        bind = _bound_text
    elif kind is Kind.DATETIME:
        test, value, cast = f"jsonb_typeof({x}) = 'object' AND {x} ? '$dt'", f"({x} -> '$dt')::numeric", "numeric"
        bind = _bound_micros
    else:  # the core never sends ranges over booleans
        raise FilterError(f"cannot compare {c.field!r} with {c.value!r}")
    if c.op is Operator.BETWEEN:
        low, high = c.value
        check = f"{value} BETWEEN {params.add(bind(low), cast)} AND {params.add(bind(high), cast)}"
    else:
        check = f"{value} {_COMPARISON[c.op]} {params.add(bind(c.value), cast)}"
    return f"(CASE WHEN {test} THEN {check} ELSE false END)"


def _bound_text(value: Any) -> str:
    return escape_text(_text_ok(value))


def _bound_micros(value: datetime) -> Decimal:
    return Decimal(micros(value))


def _id_condition(c: Condition, params: Params) -> str:
    """Conditions on the record id: a non-null string without control characters."""
    op, value = c.op, c.value
    if op is Operator.EXISTS:
        return "true" if value else "false"
    if op in (Operator.EQ, Operator.NE):
        equal = f"(id = {params.add(value, 'text')})" if isinstance(value, str) and _plain(value) else "false"
        return equal if op is Operator.EQ else f"(NOT {equal})"
    if op in (Operator.IN, Operator.NOT_IN):
        ids = [item for item in value if isinstance(item, str) and _plain(item)]
        member = f"(id = ANY({params.add(ids, 'text[]')}))" if ids else "false"
        return member if op is Operator.IN else f"(NOT {member})"
    if op is Operator.CONTAINS:
        if not isinstance(value, str) or not _plain(value):
            return "false"
        return f"(strpos(id, {params.add(value, 'text')}) > 0)"
    if op is Operator.LIKE:
        pattern = like_pattern(_text_ok(value), lambda s: s)
        return f"(id LIKE {params.add(pattern, 'text')})" if "\x00" not in pattern else "false"
    if c.kind is not Kind.STRING:
        return "false"
    if op is Operator.BETWEEN:
        low, high = value
        return f"({_id_compare('>=', low, params)} AND {_id_compare('<=', high, params)})"
    return _id_compare(_COMPARISON[op], value, params)


def _id_compare(symbol: str, bound: str, params: Params) -> str:
    cut = next((i for i, ch in enumerate(_text_ok(bound)) if not _plain(ch)), None)
    if cut is None:
        return f"(id {symbol} {params.add(bound, 'text')})"
    # Ids hold no control characters, so an id is never equal to this bound, and compares with it as with a
    # shorter one: DEL (127) sorts above the ASCII an id may hold and below the rest; others below all.
    if bound[cut] == _DEL:
        return f"(id {symbol} {params.add(bound[:cut] + _DEL, 'text')})"
    strict = {">": ">", ">=": ">", "<": "<=", "<=": "<="}[symbol]
    return f"(id {strict} {params.add(bound[:cut], 'text')})"


def like_pattern(pattern: str, convert: Any) -> str:
    """``pattern`` (``%``, ``_``, backslash escapes as ``evaluate.like_regex`` reads them) for SQL LIKE."""
    out: list[str] = []
    chars = iter(pattern)
    for ch in chars:
        if ch == "\\":
            literal = next(chars, "\\")
            out.append("\\" + literal if literal in "%_\\" else convert(literal))
        elif ch in "%_":
            out.append(ch)
        else:
            out.append(convert(ch))
    return "".join(out)


def _placeholders(text: str) -> str:
    return text.replace("\x00", "\U0010fffe").replace("\x01", "\U0010ffff") if _has_low(text) else text


def _nest(path: Sequence[str], leaf: Any) -> Any:
    for segment in reversed(path):
        leaf = {segment: leaf}
    return leaf


def _plain(text: str) -> bool:
    return not any(ord(ch) < 32 or ord(ch) == 127 for ch in text)


def _text_ok(value: Any) -> Any:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise FilterError(
                f"filter operand {value!r} holds a lone surrogate; it cannot be sent to PostgreSQL"
            ) from None
    return value


# -- sorting ------------------------------------------------------------------------------------------------
def order_sql(keys: Sequence[SortKey], params: Params) -> str:
    """``ORDER BY`` terms matching ``vectorknobs.evaluate.sort_records``: by kind rank, then value; values of
    no comparable kind (null, lists, dicts) last either way; ties by id."""
    terms: list[str] = []
    for key in keys:
        direction = "DESC" if key.descending else "ASC"
        if key.path == "id":
            terms.append(f"id {direction}")
            continue
        x = params.path(tuple(key.path.split(".")))
        t = f"jsonb_typeof({x})"
        terms += [
            f"(CASE {t} WHEN 'boolean' THEN 0 WHEN 'number' THEN 1 WHEN 'string' THEN 2 "
            f"WHEN 'object' THEN CASE WHEN {x} ? '$dt' THEN 3 END END) {direction} NULLS LAST",
            f"(CASE WHEN {t} = 'boolean' THEN ({x})::boolean END) {direction} NULLS LAST",
            f"(CASE WHEN {t} = 'number' THEN ({x})::numeric END) {direction} NULLS LAST",
            f"(CASE WHEN {t} = 'string' THEN {x} #>> '{{}}' END) COLLATE \"C\" {direction} NULLS LAST",
            f"(CASE WHEN {t} = 'object' THEN ({x} -> '$dt')::numeric END) {direction} NULLS LAST",
        ]
    terms.append("id ASC")
    return ", ".join(terms)


def kind_rank(value: Any) -> int | None:
    """The sort rank of a value's kind (for tests): booleans, numbers, strings, datetimes."""
    kind = kind_of(value)
    return None if kind is None else [Kind.BOOLEAN, Kind.NUMBER, Kind.STRING, Kind.DATETIME].index(kind)
