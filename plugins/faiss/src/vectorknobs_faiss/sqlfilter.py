"""The canonical filter tree and sort keys as SQLite SQL over the ``records`` table.

Values are read with ``json_type`` / ``json_extract`` on the ``doc`` column (see ``codec``) and every
operand is a bound parameter. Each condition yields exactly 0 or 1, so ``NOT`` keeps the reference
semantics of ``vectorknobs.evaluate``. What SQLite cannot compare exactly (datetimes, integers beyond
64 bits, strings with NUL or lone surrogates) is evaluated by ``vectorknobs.evaluate`` itself, through
a registered SQL function: on rows marked ``pyeval`` always, and for conditions SQL cannot express.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from vectorknobs.evaluate import condition_matches
from vectorknobs.filters import And, Condition, Filter, Kind, Not, Operator, Or, kind_of, normalize
from vectorknobs.query import SortKey
from vectorknobs.record import MISSING

from vectorknobs_faiss.codec import from_doc, to_doc

_NULL = "({t} IS NULL OR {t} = 'null')"
_KIND_TYPES = {Kind.NUMBER: "('integer','real')", Kind.STRING: "('text')"}
_INT64 = (-(2**63), 2**63 - 1)


class Params:
    """Named SQL parameters, collected while SQL text is built."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def __call__(self, value: Any) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f":{name}"


def where_sql(f: Filter | None, params: Params) -> str:
    """A SQL boolean expression over ``records`` equal to ``evaluate.matches`` (``1`` for no filter)."""
    if f is None:
        return "1"
    if isinstance(f, Condition):
        return _condition(f, params)
    if isinstance(f, And):
        return "(" + " AND ".join(where_sql(c, params) for c in f.children) + ")"
    if isinstance(f, Or):
        return "(" + " OR ".join(where_sql(c, params) for c in f.children) + ")"
    assert isinstance(f, Not)
    return f"(NOT {where_sql(f.child, params)})"


def order_sql(keys: Sequence[SortKey], params: Params) -> str:
    """ORDER BY terms equal to ``evaluate.sort_records``: kinds, nulls last, ties by id."""
    terms: list[str] = []
    for key in keys:
        direction = " DESC" if key.descending else ""
        if key.path == "id":
            terms.append(f"id{direction}")
            continue
        path = tuple(key.path.split("."))
        spec = params(json.dumps(path))
        p, pdt = params(json_path(path)), params(json_path((*path, "$datetime")))
        rank = (
            f"(CASE WHEN pyeval THEN vk_rank(doc, {spec}) ELSE CASE json_type(doc, {p}) "
            "WHEN 'true' THEN 0 WHEN 'false' THEN 0 WHEN 'integer' THEN 1 WHEN 'real' THEN 1 WHEN 'text' THEN 2 "
            f"WHEN 'object' THEN CASE WHEN json_type(doc, {pdt}) = 'text' THEN 3 END END END)"
        )
        value = (
            f"(CASE WHEN pyeval THEN vk_sortval(doc, {spec}) ELSE CASE json_type(doc, {p}) "
            f"WHEN 'object' THEN vk_utc(json_extract(doc, {pdt})) WHEN 'array' THEN NULL "
            f"ELSE json_extract(doc, {p}) END END)"
        )
        terms += [f"{rank} IS NULL", f"{rank}{direction}", f"{value}{direction}"]
    return ", ".join([*terms, "id"])


def json_path(path: Sequence[str]) -> str:
    """``("meta", "author")`` as the JSON path ``$."meta"."author"`` (segments are checked names)."""
    return "$" + "".join(f'."{segment}"' for segment in path)


def register_functions(conn: sqlite3.Connection) -> None:
    """The Python helpers the generated SQL calls; every connection that runs it needs them."""
    conn.create_function("vk_cond", 3, _vk_cond, deterministic=True)
    conn.create_function("vk_rank", 2, _vk_rank, deterministic=True)
    conn.create_function("vk_sortval", 2, _vk_sortval, deterministic=True)
    conn.create_function("vk_utc", 1, _utc_key, deterministic=True)


# -- conditions ----------------------------------------------------------------------------------
def _condition(c: Condition, params: Params) -> str:
    if c.path == ("id",):
        native = _native(c, "'text'", "id", None, params)
        return native if native is not None else f"vk_cond(NULL, id, {params(_serialize(c))})"
    fallback = f"vk_cond(doc, id, {params(_serialize(c))})"
    p = params(json_path(c.path))
    native = _native(c, f"json_type(doc, {p})", f"json_extract(doc, {p})", p, params)
    if native is None:
        return fallback
    return f"(CASE WHEN pyeval THEN {fallback} ELSE coalesce({native}, 0) END)"


def _native(c: Condition, t: str, x: str, path: str | None, params: Params) -> str | None:
    """SQL for ``c`` given the value's JSON type ``t`` and SQL value ``x``; None if SQL can't be exact."""
    op, value = c.op, c.value
    items = value if op in (Operator.IN, Operator.NOT_IN, Operator.BETWEEN) else (value,)
    if not all(value is None or _sql_exact(v) for v in items):
        return None
    if op is Operator.EXISTS:
        return f"NOT {_NULL.format(t=t)}" if value else _NULL.format(t=t)
    if op in (Operator.EQ, Operator.NE):
        sql = _NULL.format(t=t) if value is None else _equal(t, x, [value], params)
        return sql if op is Operator.EQ else f"NOT coalesce({sql}, 0)"
    if op in (Operator.IN, Operator.NOT_IN):
        sql = _equal(t, x, list(value), params)
        return sql if op is Operator.IN else f"NOT coalesce({sql}, 0)"
    if op is Operator.CONTAINS:
        parts = [f"({t} = 'text' AND instr({x}, {params(value)}) > 0)"] if isinstance(value, str) else []
        if path is not None:
            member = _equal("j.type", "j.value", [value], params)
            parts.append(f"({t} = 'array' AND EXISTS (SELECT 1 FROM json_each(doc, {path}) AS j WHERE {member}))")
        return "(" + " OR ".join(parts) + ")" if parts else "0"
    if op is Operator.LIKE:
        return f"({t} = 'text' AND {x} GLOB {params(like_to_glob(value))})"
    types = _KIND_TYPES[c.kind]  # type: ignore[index]  # operands are numbers or strings here
    if op is Operator.BETWEEN:
        return f"({t} IN {types} AND {x} BETWEEN {params(value[0])} AND {params(value[1])})"
    symbol = {Operator.GT: ">", Operator.GTE: ">=", Operator.LT: "<", Operator.LTE: "<="}[op]
    return f"({t} IN {types} AND {x} {symbol} {params(value)})"


def _equal(t: str, x: str, operands: list[Any], params: Params) -> str:
    """Is the value equal to any of ``operands`` (same kind, same value)?"""
    parts: list[str] = []
    for flag in (True, False):
        if any(v is flag for v in operands):
            parts.append(f"{t} = '{'true' if flag else 'false'}'")
    for kind, types in _KIND_TYPES.items():
        same = [v for v in operands if kind_of(v) is kind]
        if len(same) == 1:
            parts.append(f"({t} IN {types} AND {x} = {params(same[0])})")
        elif same:
            listed = params(json.dumps(same, ensure_ascii=False))
            parts.append(f"({t} IN {types} AND {x} IN (SELECT value FROM json_each({listed})))")
    return "(" + " OR ".join(parts) + ")" if parts else "0"


def _sql_exact(value: Any) -> bool:
    """Can SQLite compare this operand exactly?"""
    if isinstance(value, (bool, float)):
        return True
    if isinstance(value, int):
        return _INT64[0] <= value <= _INT64[1]
    if isinstance(value, str):
        return "\x00" not in value and _utf8(value)
    return False  # datetimes: compared in Python


def _utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def like_to_glob(pattern: str) -> str:
    """A ``like`` pattern (``%``, ``_``, backslash escapes; case-sensitive) as an equivalent GLOB."""
    out: list[str] = []
    chars = iter(pattern)
    for ch in chars:
        if ch == "\\":
            out.append(_glob_literal(next(chars, "\\")))
        elif ch == "%":
            out.append("*")
        elif ch == "_":
            out.append("?")
        else:
            out.append(_glob_literal(ch))
    return "".join(out)


def _glob_literal(ch: str) -> str:
    return f"[{ch}]" if ch in "*?[" else ch


# -- Python-evaluated parts ------------------------------------------------------------------------
def _serialize(c: Condition) -> str:
    return json.dumps({"path": c.path, "op": c.op.value, "value": to_doc(c.value)})


@lru_cache(maxsize=1024)
def _deserialize(text: str) -> Condition:
    data = json.loads(text)
    op = Operator(data["op"])
    value = from_doc(data["value"])
    if op in (Operator.IN, Operator.NOT_IN, Operator.BETWEEN):
        value = tuple(value)
    return Condition(tuple(data["path"]), op, value)


def _lookup(doc: str, path: Sequence[str]) -> Any:
    value: Any = from_doc(json.loads(doc))
    for segment in path:
        if not isinstance(value, dict) or segment not in value:
            return MISSING
        value = value[segment]
    return value


def _vk_cond(doc: str | None, record_id: str, condition: str) -> int:
    c = _deserialize(condition)
    value = record_id if c.path == ("id",) or doc is None else _lookup(doc, c.path)
    return int(condition_matches(value, c))


_RANKS = {Kind.BOOLEAN: 0, Kind.NUMBER: 1, Kind.STRING: 2, Kind.DATETIME: 3}


def _vk_rank(doc: str, path: str) -> int | None:
    kind = kind_of(_lookup(doc, json.loads(path)))
    return None if kind is None else _RANKS[kind]


def _vk_sortval(doc: str, path: str) -> Any:
    value = _lookup(doc, json.loads(path))
    if isinstance(value, datetime):
        return _sortable(value)
    if isinstance(value, int) and not isinstance(value, bool) and not _INT64[0] <= value <= _INT64[1]:
        return float(value)  # SQLite holds 64-bit integers; order is kept up to float precision
    return value if kind_of(value) is not None else None


def _utc_key(iso: str | None) -> str | None:
    return None if iso is None else _sortable(datetime.fromisoformat(iso))


def _sortable(value: datetime) -> str:
    """A datetime as a UTC string that sorts like ``filters.normalize`` compares."""
    aware: datetime = normalize(value)
    return aware.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")
