"""Validation of field names, dotted paths and record ids.

Every store may turn a name into an SQL identifier, an index mapping key or a metadata key, so the
core accepts only names that are safe everywhere: a letter first, then letters, digits and ``_``, at
most 63 characters (PostgreSQL's identifier limit). Names starting with ``_`` are left to plugins for
their own bookkeeping. ``id`` is the record id, never a field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from vectorknobs.errors import InvalidNameError, InvalidRecordError

ID_FIELD = "id"
MAX_NAME_LENGTH = 63
MAX_ID_LENGTH = 512

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,62}")
# Keys inside nested values are looser than top-level names, but still plain.
_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-]{0,62}")


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_VALID_NAMES: set[str] = set()  # names that passed (a program uses few field names, each very often)
_MAX_REMEMBERED = 10_000


def check_field_name(name: object) -> str:
    """Return ``name`` if it is a valid top-level field name, else raise ``InvalidNameError``."""
    if name.__class__ is str and name in _VALID_NAMES:
        return name
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidNameError(
            f"invalid field name {name!r}: use a letter followed by letters, digits or '_' "
            f"(at most {MAX_NAME_LENGTH} characters)"
        )
    if name == ID_FIELD:
        raise InvalidNameError("'id' is the record id, not a field: set Record(id=...) instead")
    if type(name) is str and len(_VALID_NAMES) < _MAX_REMEMBERED:  # not a str subclass with its own __eq__
        _VALID_NAMES.add(name)
    return name


def is_field_name(name: str) -> bool:
    """Whether ``check_field_name`` accepts ``name`` (without raising)."""
    return name in _VALID_NAMES or (_NAME.fullmatch(name) is not None and name != ID_FIELD)


def split_path(path: object) -> tuple[str, ...]:
    """Split a dotted path (``"meta.author.name"``) into checked segments.

    ``"id"`` alone is allowed and means the record id.
    """
    if path == ID_FIELD:
        return (ID_FIELD,)
    if not isinstance(path, str) or not path:
        raise InvalidNameError(f"invalid field path {path!r}: expected a dotted name like 'meta.author'")
    head, *rest = path.split(".")
    try:
        check_field_name(head)
    except InvalidNameError as err:
        raise InvalidNameError(f"invalid field path {path!r}: {err}") from None
    for segment in rest:
        if not _SEGMENT.fullmatch(segment):
            raise InvalidNameError(
                f"invalid field path {path!r}: segment {segment!r} may only hold letters, digits, '_' "
                "and '-'"
            )
    return (head, *rest)


def is_path_segment(key: str) -> bool:
    """Can ``key`` (a key inside a nested dict value) be a segment of a filter path?

    A store that flattens nested values for its engine's filters indexes only such keys: a filter can
    name no other key, and one with a dot could collide with a deeper path.
    """
    return _SEGMENT.fullmatch(key) is not None


def check_record_id(record_id: object) -> str:
    """Return ``record_id`` if it is a usable id: a non-empty string without control characters."""
    if not isinstance(record_id, str):
        raise InvalidRecordError(f"record id must be a str, got {type(record_id).__name__}: {record_id!r}")
    if not record_id or len(record_id) > MAX_ID_LENGTH:
        raise InvalidRecordError(f"record id must be 1 to {MAX_ID_LENGTH} characters, got {len(record_id)}")
    if _CONTROL.search(record_id):
        raise InvalidRecordError(f"record id {record_id!r} contains control characters")
    return record_id


def check_record_ids(ids: Iterable[object]) -> tuple[str, ...]:
    """``check_record_id`` of every id, quicker for many (one scan for control characters); the first bad
    id raises its own error."""
    given = tuple(ids)
    texts = [i for i in given if i.__class__ is str]
    if (given and len(texts) == len(given) and min(map(len, texts)) >= 1 and max(map(len, texts)) <= MAX_ID_LENGTH
            and not _CONTROL.search("".join(texts))):
        return tuple(texts)
    return tuple(check_record_id(i) for i in given)
