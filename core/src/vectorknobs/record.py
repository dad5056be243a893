"""``Record``: an id plus named fields, with a lossless dict / JSON form."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from vectorknobs.errors import InvalidRecordError
from vectorknobs.fields import Field, VectorField
from vectorknobs.names import check_field_name, check_record_id, is_field_name, split_path

FORMAT_VERSION = 1
_MISSING = object()


class Record:
    """An id plus named fields.

    >>> r = Record({"title": "Hello", "views": 3}, id="doc-1")
    >>> r["title"], r.get_value("meta.author", "n/a")
    ('Hello', 'n/a')
    """

    __slots__ = ("fields", "id")

    def __init__(self, data: Mapping[str, Any] | None = None, *, id: str | None = None) -> None:  # noqa: A002
        self.id = None if id is None else check_record_id(id)
        self.fields: dict[str, Field] = {}
        for name, value in (data or {}).items():
            self[name] = value

    @classmethod
    def restore(cls, record_id: str, fields: dict[str, Field]) -> Record:
        """A record rebuilt from a store's own data (see ``Field.restore``): the id and ``fields`` (each
        stored under its own name) are kept as they are, unchecked."""
        restored = object.__new__(cls)
        restored.id = record_id
        restored.fields = fields
        return restored

    @property
    def key(self) -> str:
        """The id of a record that has one (every record a store returns or writes does)."""
        if self.id is None:
            raise InvalidRecordError("this record has no id yet")
        return self.id

    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex

    def __setitem__(self, name: str, value: Any) -> None:
        check_field_name(name)
        if isinstance(value, Field):
            if value.name is not None and value.name != name:
                raise InvalidRecordError(f"field named {value.name!r} cannot be stored under {name!r}")
            value = value.copy(name)
        else:
            value = Field(name, value)
        self.fields[name] = value

    def __getitem__(self, name: str) -> Any:
        return self.fields[name].value

    def __delitem__(self, name: str) -> None:
        del self.fields[name]

    def __contains__(self, name: object) -> bool:
        return name in self.fields

    def __iter__(self) -> Iterator[str]:
        return iter(self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    def get_value(self, path: str, default: Any = None) -> Any:
        """The value at a dotted path (``"meta.author"``), or ``default`` if any part is missing."""
        found = self.lookup(path)
        return default if found is _MISSING else found

    def lookup(self, path: str | tuple[str, ...]) -> Any:
        """Like ``get_value`` but returns the module sentinel ``MISSING`` for absent paths."""
        if path.__class__ is str and path in self.fields and is_field_name(path):  # a top-level field
            return self.fields[path].value
        segments = path if isinstance(path, tuple) else split_path(path)
        if segments == ("id",):
            return self.id
        field = self.fields.get(segments[0])
        if field is None:
            return _MISSING
        value: Any = field.value
        for segment in segments[1:]:
            if not isinstance(value, dict) or segment not in value:
                return _MISSING
            value = value[segment]
        return value

    def vector_fields(self) -> dict[str, VectorField]:
        return {name: f for name, f in self.fields.items() if isinstance(f, VectorField)}

    def values(self) -> dict[str, Any]:
        """Plain ``{name: value}``; vectors stay numpy arrays."""
        return {name: field.value for name, field in self.fields.items()}

    def copy(self) -> Record:
        clone = object.__new__(Record)  # the id was checked when it was set
        clone.id = self.id
        clone.fields = {name: field.copy() for name, field in self.fields.items()}
        return clone

    def with_id(self, record_id: str) -> Record:
        clone = self.copy()
        clone.id = check_record_id(record_id)
        return clone

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, lossless form: ids, nested values, datetimes and vectors come back exactly."""
        return {"id": self.id, "fields": {name: field.to_dict() for name, field in self.fields.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Record:
        if not isinstance(data, Mapping) or not isinstance(data.get("fields", {}), Mapping):
            raise InvalidRecordError("expected {'id': ..., 'fields': {name: {'type': ..., 'value': ...}}}")
        record = cls(id=data.get("id"))
        for name, field_data in data.get("fields", {}).items():
            check_field_name(name)
            if not isinstance(field_data, Mapping):
                raise InvalidRecordError(f"field {name!r}: expected a dict with 'type' and 'value'")
            record.fields[name] = Field.from_dict(name, field_data)
        return record

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Record:
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as err:
            raise InvalidRecordError(f"not a JSON record: {err}") from None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record):
            return NotImplemented
        return self.id == other.id and self.fields == other.fields

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={field.value!r}" if not isinstance(field, VectorField) else
                          f"{name}=<vector {field.dimensions}>" for name, field in self.fields.items())
        return f"Record(id={self.id!r}, {inner})"


MISSING: Any = _MISSING
