"""The reference semantics of filters and sorts, evaluated in Python.

The memory store uses this directly; other stores use it for the few operators their engine cannot
express, so every store answers a filter exactly the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from vectorknobs.filters import And, Condition, Filter, Kind, Operator, Or, kind_of, normalize
from vectorknobs.record import MISSING, Record


def matches(record: Record, f: Filter) -> bool:
    """Does ``record`` satisfy filter ``f``?"""
    if isinstance(f, Condition):
        return condition_matches(record.lookup(f.path), f)
    if isinstance(f, And):
        return all(matches(record, c) for c in f.children)
    if isinstance(f, Or):
        return any(matches(record, c) for c in f.children)
    return not matches(record, f.child)


def condition_matches(value: Any, c: Condition) -> bool:
    """Does one stored value (or ``MISSING``) satisfy condition ``c``?"""
    null = value is MISSING or value is None
    op = c.op
    if op is Operator.EXISTS:
        return (not null) is c.value
    if op is Operator.EQ:
        return null if c.value is None else _equal(value, c.value)
    if op is Operator.NE:
        return not null if c.value is None else not _equal(value, c.value)
    if op is Operator.IN:
        return any(_equal(value, item) for item in c.value)
    if op is Operator.NOT_IN:
        return not any(_equal(value, item) for item in c.value)
    if op is Operator.CONTAINS:
        if isinstance(value, str):
            return isinstance(c.value, str) and c.value in value
        return isinstance(value, list) and any(_equal(item, c.value) for item in value)
    if op is Operator.LIKE:
        return isinstance(value, str) and like_regex(c.value).fullmatch(value) is not None
    if kind_of(value) is not c.kind:
        return False
    v = normalize(value)
    if op is Operator.BETWEEN:
        low, high = (normalize(b) for b in c.value)
        return bool(low <= v <= high)
    bound = normalize(c.value)
    if op is Operator.GT:
        return bool(v > bound)
    if op is Operator.GTE:
        return bool(v >= bound)
    if op is Operator.LT:
        return bool(v < bound)
    return bool(v <= bound)


def _equal(value: Any, operand: Any) -> bool:
    kind = kind_of(operand)
    return kind is not None and kind_of(value) is kind and normalize(value) == normalize(operand)


@lru_cache(maxsize=256)
def like_regex(pattern: str) -> re.Pattern[str]:
    """Compile a SQL ``LIKE`` pattern (``%``, ``_``, backslash escapes) to a regex."""
    out: list[str] = []
    chars = iter(pattern)
    for ch in chars:
        if ch == "\\":
            out.append(re.escape(next(chars, "\\")))
        elif ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.DOTALL)


# Mixed kinds sort in this order; null and lists/dicts always come last.
_KIND_RANK = {Kind.BOOLEAN: 0, Kind.NUMBER: 1, Kind.STRING: 2, Kind.DATETIME: 3}


def sort_records(records: Sequence[Record], keys: Sequence[tuple[str, bool]]) -> list[Record]:
    """Sort by ``(path, descending)`` keys; nulls last either way; ties by id ascending."""
    ordered = sorted(records, key=lambda r: r.id or "")
    for path, descending in reversed(keys):
        segments = tuple(path.split("."))
        present = [r for r in ordered if kind_of(r.lookup(segments)) is not None]
        absent = [r for r in ordered if kind_of(r.lookup(segments)) is None]
        present.sort(key=_sort_key(segments), reverse=descending)
        ordered = present + absent
    return ordered


def _sort_key(segments: tuple[str, ...]) -> Callable[[Record], tuple[int, Any]]:
    def key(record: Record) -> tuple[int, Any]:
        value = record.lookup(segments)
        return (_KIND_RANK[kind_of(value)], normalize(value))  # type: ignore[index]

    return key
