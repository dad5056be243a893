"""The core's canonical filter tree as a Chroma ``where``: exact where Chroma's semantics are the core's,
a superset (checked afterwards with ``vectorknobs.evaluate.matches``) where they are not.

Against the metadata layout of ``layout.py``, Chroma answers exactly: ``eq``/``ne``/``in``/``not_in`` on
strings, numbers, bools and datetimes (numbers stored and compared as floats: Chroma truncates a float
operand compared with a stored int); ``gt``/``gte``/``lt``/``lte``/``between`` on numbers and
datetimes; ``contains`` of a number, bool or datetime in a list; ``exists`` and ``None`` (through the
signatures and kind tags: a top-level field of a kind is ``~s`` in the registered signatures that have it);
``like`` without wildcards (equality) or of only ``%`` (any string); ``and``, ``or``, and ``not``
(pushed down to the conditions, each of which has an exact complement: ``ne`` matches what has no value,
and ``not (price > 3)`` is ``price <= 3 or price is not a number``); the record id through Chroma's ``ids``
argument when the filter is ``id == x``, ``id in [...]`` (or such a condition and-ed with the rest).

What Chroma cannot say exactly it narrows, and ``Translation.exact`` is False: string ranges, ``like``
with wildcards and substring ``contains`` (Chroma compares no strings by order and has no substring test
on metadata; ``where_document`` searches the document, which is not one field's value) select the records
with a string there; numbers at or beyond 2**53 in magnitude select the records with a number there (as
floats they could equal a neighbouring integer); other conditions on the id, and the presence of a
vector field, select everything. (Any other condition on a vector field is decided exactly: a vector
equals nothing.) The store then checks each candidate with ``matches``, so no filter is
ever ignored and a vector search still returns k results whenever k records match.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

from vectorknobs.filters import And, Condition, Filter, Kind, Not, Operator, Or

from vectorknobs_chroma.layout import (
    DATETIME,
    KIND,
    LIST_BOOL,
    LIST_DATETIME,
    LIST_NUMBER,
    LIST_STR,
    NEVER,
    NUMBER,
    OTHER,
    SIGNATURE,
    STRING,
    TAGS,
    TIME,
    micros,
    signature_kinds,
)

Where: TypeAlias = dict[str, Any]
#: a clause, or None for "every record"
Clause: TypeAlias = Where | None

#: numbers compared exactly with every stored one: below 2**53 in magnitude a float64 holds every int, so
#: comparing as floats agrees with Python (a stored integer beyond it rounds to a float beyond it)
EXACT_NUMBER = 2**53
NOTHING: Where = {NEVER: True}
#: a kind test over more signatures than this (records with very varied fields) selects every record, and the
#: store checks each in Python: Chroma binds each item of an ``$in`` list as one SQLite parameter
MAX_SIGNATURES = 2000

_COMPLEMENT = {"$gt": "$lte", "$gte": "$lt", "$lt": "$gte", "$lte": "$gt"}
_RANGE = {Operator.GT: "$gt", Operator.GTE: "$gte", Operator.LT: "$lt", Operator.LTE: "$lte"}


@dataclass(frozen=True)
class Translation:
    """``where`` (None: no condition) and ``ids`` (None: any id) select the matches, or a superset of them
    when ``exact`` is False."""

    where: Clause
    ids: frozenset[str] | None
    exact: bool
    kinds_used: bool = False  # ``where`` tests the kinds of top-level fields: it depends on the signatures


class Signatures:
    """The signatures registered in a store (``layout.signature``), indexed by field and kind."""

    def __init__(self, texts: Iterable[str] = ()) -> None:
        self.known: set[str] = set()
        self._having: dict[tuple[str, str], list[str]] = {}
        self.add(texts)

    def add(self, texts: Iterable[str]) -> None:
        for text in texts:
            if text not in self.known:
                self.known.add(text)
                for name, tag in signature_kinds(text).items():
                    self._having.setdefault((name, tag), []).append(text)

    def having(self, name: str, tags: Sequence[str]) -> list[str]:
        """The signatures in which field ``name`` has one of the kinds ``tags``."""
        return sorted(text for tag in tags for text in self._having.get((name, tag), ()))


def translate(f: Filter | None, vector_fields: Collection[str], signatures: Signatures) -> Translation:
    """Chroma's form of ``f``; ``vector_fields`` are the store's vector field names, ``signatures`` those
    registered (``Translation.kinds_used`` says whether the result depends on them)."""
    if f is None:
        return Translation(None, None, True)
    ids: frozenset[str] | None = None
    rest: list[Filter] = []
    for part in f.children if isinstance(f, And) else (f,):
        allowed = _id_set(part)
        if allowed is None:
            rest.append(part)
        else:
            ids = allowed if ids is None else ids & allowed
    translator = _Translator(frozenset(vector_fields), signatures)
    where = _all([translator.clause(part, False) for part in rest])
    return Translation(where, ids, translator.exact, translator.kinds_used)


def and_where(*clauses: Clause) -> Clause:
    return _all(list(clauses))


def _id_set(f: Filter) -> frozenset[str] | None:
    """The ids an ``id == x`` / ``id in [...]`` condition allows, or None for any other filter."""
    if not isinstance(f, Condition) or f.path != ("id",):
        return None
    if f.op is Operator.EQ and f.value is not None:
        return frozenset([f.value] if isinstance(f.value, str) else [])
    if f.op is Operator.IN:
        return frozenset(v for v in f.value if isinstance(v, str))
    return None


def _all(clauses: Sequence[Clause]) -> Clause:
    parts = [c for c in clauses if c is not None]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"$and": parts}


def _any(clauses: Sequence[Clause]) -> Clause:
    if not clauses or any(c is None for c in clauses):
        return None if clauses else NOTHING
    parts = [c for c in clauses if c is not None]
    return parts[0] if len(parts) == 1 else {"$or": parts}


class _Translator:
    def __init__(self, vector_fields: frozenset[str], signatures: Signatures) -> None:
        self.vector_fields = vector_fields
        self.signatures = signatures
        self.exact = True
        self.kinds_used = False

    def kind(self, path: str, tags: Sequence[str], positive: bool) -> Clause:
        """The entries whose value at ``path`` is of one of the kinds ``tags`` (not ``positive``: is not, or
        there is none)."""
        if "." in path:  # a value nested in a dict: tagged in the entry itself
            key, having = KIND + path, list(tags)
        else:
            self.kinds_used = True
            key, having = SIGNATURE, self.signatures.having(path, tags)
            if not having:
                return NOTHING if positive else None
            if len(having) > MAX_SIGNATURES:  # too long a list for one query: checked in Python
                return self.superset(None)
        if len(having) == 1:
            return {key: having[0] if positive else {"$ne": having[0]}}
        return {key: {"$in" if positive else "$nin": having}}

    def superset(self, clause: Clause) -> Clause:
        """``clause`` selects more than the condition: candidates must be checked in Python."""
        self.exact = False
        return clause

    def clause(self, f: Filter, negate: bool) -> Clause:
        if isinstance(f, Not):
            return self.clause(f.child, not negate)
        if isinstance(f, (And, Or)):
            conjunction = isinstance(f, And) != negate  # De Morgan
            parts = [self.clause(child, negate) for child in f.children]
            return _all(parts) if conjunction else _any(parts)
        return self.condition(f, negate)

    def condition(self, c: Condition, negate: bool) -> Clause:
        op = c.op
        if op is Operator.EXISTS or (op in (Operator.EQ, Operator.NE) and c.value is None):
            present = c.value if op is Operator.EXISTS else op is Operator.NE
            return self.presence(c, present != negate)
        if c.path == ("id",):
            return self.superset(None)  # the id is not in the metadata (id == x and id in [...] go to ``ids``)
        if len(c.path) == 1 and c.path[0] in self.vector_fields:
            # a vector equals, contains or is ordered against nothing: only ne / not_in match
            return NOTHING if (op not in (Operator.NE, Operator.NOT_IN)) != negate else None
        path = ".".join(c.path)
        if op in (Operator.EQ, Operator.NE):
            return self.equal(path, c.value, (op is Operator.EQ) != negate)
        if op in (Operator.IN, Operator.NOT_IN):
            return self.member(path, c.value, (op is Operator.IN) != negate)
        if op in _RANGE:
            return self.ranges(path, c.kind, [(_RANGE[op], c.value)], negate)
        if op is Operator.BETWEEN:
            low, high = c.value
            return self.ranges(path, c.kind, [("$gte", low), ("$lte", high)], negate)
        if op is Operator.CONTAINS:
            return self.contains(path, c.value, negate)
        return self.like(path, c.value, negate)

    def presence(self, c: Condition, present: bool) -> Clause:
        if c.path == ("id",):
            return None if present else NOTHING  # every record has an id
        if len(c.path) == 1 and c.path[0] in self.vector_fields:
            return self.superset(None)
        return self.kind(".".join(c.path), TAGS, present)

    def equal(self, path: str, value: Any, equal: bool) -> Clause:
        if not _native(value):
            return self.superset(self.kind(path, [NUMBER], True) if equal else None)
        key, operand = _key(path, value)
        return {key: operand if equal else {"$ne": operand}}

    def member(self, path: str, values: tuple[Any, ...], member: bool) -> Clause:
        groups: dict[tuple[str, type], list[Any]] = {}
        wide = False
        for value in values:
            if not _native(value):
                wide = True
                continue
            key, operand = _key(path, value)
            groups.setdefault((key, type(operand)), []).append(operand)
        if member:
            clauses: list[Clause] = [{key: {"$in": items}} for (key, _), items in groups.items()]
            if wide:
                clauses.append(self.superset(self.kind(path, [NUMBER], True)))
            return _any(clauses)
        if wide:
            self.superset(None)  # what the wide numbers exclude is decided in Python
        return _all([{key: {"$nin": items}} for (key, _), items in groups.items()])

    def ranges(self, path: str, kind: Kind | None, bounds: list[tuple[str, Any]], negate: bool) -> Clause:
        if kind is Kind.DATETIME:
            key, tag = DATETIME + path, TIME
            bounds = [(op, micros(bound)) for op, bound in bounds]
        elif kind is Kind.NUMBER and all(_native(bound) for _, bound in bounds):
            key, tag = path, NUMBER
            bounds = [(op, float(bound)) for op, bound in bounds]
        else:  # strings, wide numbers: the records holding that kind there, checked in Python
            tag = STRING if kind is Kind.STRING else NUMBER
            return self.superset(None if negate else self.kind(path, [tag], True))
        if not negate:
            return _all([{key: {op: bound}} for op, bound in bounds])
        return _any([{key: {_COMPLEMENT[op]: bound}} for op, bound in bounds] + [self.kind(path, [tag], False)])

    def contains(self, path: str, value: Any, negate: bool) -> Clause:
        if negate:
            # Never "$not_contains": a busy chromadb 1.5.9 server answered it without records it had just
            # written (http). Checked in Python.
            return self.superset(None)
        if isinstance(value, str):  # a substring of a string (checked in Python), or an item of a list
            return self.superset(_any([self.kind(path, [STRING], True), {LIST_STR + path: {"$contains": value}}]))
        item: Any
        if isinstance(value, bool):
            prefix, item = LIST_BOOL, value
        elif isinstance(value, datetime):
            prefix, item = LIST_DATETIME, micros(value)
        elif not _native(value):
            return self.superset(self.kind(path, [OTHER], True))
        else:
            prefix, item = LIST_NUMBER, float(value)
        return {prefix + path: {"$contains": item}}

    def like(self, path: str, pattern: str, negate: bool) -> Clause:
        literal = _like_literal(pattern)
        if literal is not None:
            return self.equal(path, literal, not negate)
        if pattern and set(pattern) == {"%"}:  # every string
            return self.kind(path, [STRING], not negate)
        return self.superset(None if negate else self.kind(path, [STRING], True))


def _native(value: Any) -> bool:
    """Can Chroma compare ``value`` exactly? Every str, bool and datetime; numbers below 2**53."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return -EXACT_NUMBER < value < EXACT_NUMBER
    return True


def _key(path: str, value: Any) -> tuple[str, Any]:
    """The metadata key and operand comparing ``path`` with ``value`` (a str, bool, number or datetime);
    numbers are compared as floats, as they are stored."""
    if isinstance(value, datetime):
        return DATETIME + path, micros(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return path, float(value)
    return path, value


def _like_literal(pattern: str) -> str | None:
    """The string a ``like`` pattern without wildcards matches, or None if it has ``%`` or ``_``
    (escapes as in ``vectorknobs.evaluate.like_regex``: a backslash makes the next character literal)."""
    out: list[str] = []
    chars = iter(pattern)
    for ch in chars:
        if ch == "\\":
            out.append(next(chars, "\\"))
        elif ch in "%_":
            return None
        else:
            out.append(ch)
    return "".join(out)
