"""Fields: a named, typed value. ``VectorField`` carries a float32 vector and where it came from."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Any

import numpy as np
import numpy.typing as npt

from vectorknobs.codec import check_value, decode, encode
from vectorknobs.errors import DimensionMismatchError, InvalidRecordError, VectorValueError

MAX_DIMENSIONS = 65_536

FloatArray = npt.NDArray[np.float32]

#: what a ``VectorField`` records about where its vector came from, beside the vector
PROVENANCE = ("source_field", "model_name", "model_version", "content_hash")


class FieldType(Enum):
    """What a field holds."""

    STRING = "string"
    INTEGER = "integer"
    FLOAT = "float"
    BOOLEAN = "boolean"
    DATETIME = "datetime"
    JSON = "json"  # lists, dicts and None
    VECTOR = "vector"
    SPARSE_VECTOR = "sparse_vector"


#: the type inferred for a value of exactly this class (None is JSON, as ``infer_type`` says)
PLAIN_TYPES: dict[type, FieldType] = {
    str: FieldType.STRING, int: FieldType.INTEGER, float: FieldType.FLOAT, bool: FieldType.BOOLEAN,
    type(None): FieldType.JSON,
}

_SCALAR_TYPES: dict[FieldType, tuple[type, ...]] = {
    FieldType.STRING: (str,),
    FieldType.INTEGER: (int,),
    FieldType.FLOAT: (float, int),
    FieldType.BOOLEAN: (bool,),
    FieldType.DATETIME: (datetime,),
}


def infer_type(value: Any) -> FieldType:
    """The ``FieldType`` a plain value gets when none is given."""
    if isinstance(value, bool):
        return FieldType.BOOLEAN
    if isinstance(value, int):
        return FieldType.INTEGER
    if isinstance(value, float):
        return FieldType.FLOAT
    if isinstance(value, str):
        return FieldType.STRING
    if isinstance(value, datetime):
        return FieldType.DATETIME
    return FieldType.JSON


def inferred_type(value: Any) -> FieldType:
    """``infer_type``, quick for the plain scalars of ``PLAIN_TYPES``."""
    return PLAIN_TYPES.get(value.__class__) or infer_type(value)


class Field:
    """A named value. ``Field("price", 9.5)`` infers ``FieldType.FLOAT``."""

    __slots__ = ("metadata", "name", "type", "value")

    def __init__(
        self,
        name: str | None,
        value: Any,
        type: FieldType | None = None,  # noqa: A002 - the design's name
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.metadata: dict[str, Any] = check_value(dict(metadata), f"field {name!r} metadata") if metadata else {}
        plain = PLAIN_TYPES.get(value.__class__)
        if plain is not None and (plain is not FieldType.FLOAT or math.isfinite(value)):
            self.value = value  # an immutable plain scalar: nothing to check or copy
        else:
            self.value = check_value(value, f"field {name!r}")
        if type is None:  # an inferred type always fits its value
            self.type = plain or infer_type(self.value)
            return
        if not isinstance(type, FieldType):
            try:
                type = FieldType(type)  # noqa: A001 - "float" means FieldType.FLOAT, as in the dict form
            except ValueError:
                raise InvalidRecordError(
                    f"field {name!r}: unknown type {type!r}; use one of {', '.join(t.value for t in FieldType)}"
                ) from None
        self.type = type
        self._check_type()

    @classmethod
    def restore(
        cls, name: str, value: Any, type: FieldType | None = None, metadata: dict[str, Any] | None = None,  # noqa: A002
    ) -> Field:
        """A field rebuilt from a store's own data, which was checked when it was written: no checks and no
        copies (``value`` and ``metadata`` are taken as they are). Stores use it to return what they read;
        build fields of your own with ``Field(...)``."""
        restored = object.__new__(Field)
        restored.name = name
        restored.value = value
        restored.type = type or PLAIN_TYPES.get(value.__class__) or infer_type(value)
        restored.metadata = metadata or {}
        return restored

    def _check_type(self) -> None:
        if self.type in (FieldType.VECTOR, FieldType.SPARSE_VECTOR):
            raise InvalidRecordError(
                f"field {self.name!r}: build vectors with VectorField or SparseVectorField, not Field"
            )
        allowed = _SCALAR_TYPES.get(self.type)
        if self.value is None or allowed is None:
            return
        if isinstance(self.value, bool) and self.type is not FieldType.BOOLEAN:
            allowed = ()
        if not isinstance(self.value, allowed):
            raise InvalidRecordError(
                f"field {self.name!r} is declared {self.type.value} but holds {type(self.value).__name__}"
            )
        if self.type is FieldType.FLOAT:
            self.value = float(self.value)  # type: ignore[arg-type]  # checked int or float above

    def copy(self, name: str | None = None) -> Field:
        cls = type(self)
        clone = object.__new__(cls)
        if cls is not Field:  # a subclass's own slots (VectorField copies itself without this loop)
            for slot in _all_slots(cls):
                setattr(clone, slot, getattr(self, slot))
        clone.name = self.name if name is None else name
        clone.type = self.type
        value = self.value
        clone.value = copy_value(value) if value.__class__ in CONTAINERS else value
        clone.metadata = copy_value(self.metadata) if self.metadata else {}
        return clone

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form; ``Field.from_dict`` restores it exactly."""
        data: dict[str, Any] = {"type": self.type.value, "value": encode(self.value)}
        if self.metadata:
            data["metadata"] = encode(self.metadata)
        return data

    @staticmethod
    def from_dict(name: str, data: Mapping[str, Any], *, checked: bool = True) -> Field:
        """The field of a ``to_dict`` form. ``checked=False``: a store's own data, rebuilt without checks or
        copies (see ``restore``); vectors must then be 1-D float32 arrays."""
        if not checked and data.get("type") == "vector":  # the common case of a store's read path, first
            metadata = data.get("metadata")
            return VectorField.restore(name, data["value"], metadata=decode(metadata) if metadata else None,
                                       source_field=data.get("source_field"), model_name=data.get("model_name"),
                                       model_version=data.get("model_version"), content_hash=data.get("content_hash"))
        try:
            field_type = FieldType(data["type"])
        except (KeyError, ValueError, TypeError):
            raise InvalidRecordError(f"field {name!r}: missing or unknown 'type' in {dict(data)!r}") from None
        metadata = decode(data["metadata"]) if data.get("metadata") else {}
        if not checked and field_type is not FieldType.SPARSE_VECTOR:
            return Field.restore(name, decode(data.get("value")), field_type, metadata)
        if field_type is FieldType.VECTOR:
            return VectorField(
                data["value"],
                data.get("dimensions"),
                name=name,
                source_field=data.get("source_field"),
                model_name=data.get("model_name"),
                model_version=data.get("model_version"),
                content_hash=data.get("content_hash"),
                metadata=metadata,
            )
        if field_type is FieldType.SPARSE_VECTOR:
            return SparseVectorField(
                dict(zip(data["indices"], data["values"], strict=True)),
                data.get("dimensions"),
                name=name,
                metadata=metadata,
            )
        return Field(name, decode(data.get("value")), field_type, metadata)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Field):
            return NotImplemented
        return (
            type(self) is type(other)
            and all(_values_equal(getattr(self, s), getattr(other, s)) for s in _all_slots(type(self)))
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.value!r}, {self.type})"


class VectorField(Field):
    """A dense float32 vector, with the text field(s) and model it was made from.

    ``VectorField([0.1, 0.2, 0.3], source_field="body", model_name="minilm")``
    """

    __slots__ = ("content_hash", "dimensions", "model_name", "model_version", "source_field")

    value: FloatArray

    def __init__(
        self,
        value: npt.ArrayLike,
        dimensions: int | None = None,
        *,
        name: str | None = None,
        source_field: str | None = None,
        model_name: str | None = None,
        model_version: str | None = None,
        content_hash: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.metadata = check_value(dict(metadata), f"field {name!r} metadata") if metadata else {}
        self.value = as_vector(value, "vector field", dimensions, name=name)
        self.dimensions = int(self.value.shape[0])
        self.type = FieldType.VECTOR
        for label, text in (
            ("source_field", source_field),
            ("model_name", model_name),
            ("model_version", model_version),
            ("content_hash", content_hash),
        ):
            if text is not None and not isinstance(text, str):
                raise InvalidRecordError(f"vector field {name!r}: {label} must be a str, got {text!r}")
        self.source_field = source_field
        self.model_name = model_name
        self.model_version = model_version
        self.content_hash = content_hash

    @classmethod
    def restore(  # type: ignore[override]  # a vector field's own provenance arguments
        cls,
        name: str,
        value: FloatArray,
        *,
        source_field: str | None = None,
        model_name: str | None = None,
        model_version: str | None = None,
        content_hash: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> VectorField:
        """A vector field rebuilt from a store's own data (see ``Field.restore``): ``value``, a 1-D float32
        array, is made read-only and kept, not copied or checked for NaN; any other array is checked."""
        if type(value) is not np.ndarray or value.dtype != np.float32 or value.ndim != 1:
            value = as_vector(value, "stored vector field", name=name)
        elif value.flags.writeable:
            value.flags.writeable = False
        restored = object.__new__(VectorField)
        restored.name = name
        restored.value = value
        restored.type = FieldType.VECTOR
        restored.metadata = metadata or {}
        restored.dimensions = value.shape[0]
        restored.source_field = source_field
        restored.model_name = model_name
        restored.model_version = model_version
        restored.content_hash = content_hash
        return restored

    @property
    def source_fields(self) -> tuple[str, ...]:
        """The source text fields; ``source_field`` may name several, comma-separated."""
        return split_source_field(self.source_field)

    def copy(self, name: str | None = None) -> VectorField:
        if type(self) is not VectorField:  # a subclass: copied slot by slot
            clone = super().copy(name)
            assert isinstance(clone, VectorField)
            return clone
        clone = object.__new__(VectorField)  # slot by slot, as restore: this is on every write's path
        clone.name = self.name if name is None else name
        clone.value = self.value  # read-only
        clone.type = FieldType.VECTOR
        clone.metadata = copy_value(self.metadata) if self.metadata else {}
        clone.dimensions = self.dimensions
        clone.source_field = self.source_field
        clone.model_name = self.model_name
        clone.model_version = self.model_version
        clone.content_hash = self.content_hash
        return clone

    def to_dict(self, *, with_value: bool = True) -> dict[str, Any]:
        """The JSON-safe form; ``with_value=False`` leaves out the vector (a store that keeps vectors in its
        engine stores the rest beside them and passes the vector back as ``value`` to ``from_dict``)."""
        data = super().to_dict()
        if with_value:
            data["value"] = self.value.tolist()  # float32 -> float64 -> float32 is exact
        else:
            del data["value"]
        data["dimensions"] = self.dimensions
        for key in PROVENANCE:
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        return data

    def __repr__(self) -> str:
        return (
            f"VectorField(name={self.name!r}, dimensions={self.dimensions}, "
            f"source_field={self.source_field!r}, model_name={self.model_name!r})"
        )


class SparseVectorField(Field):
    """A sparse vector: ``SparseVectorField({3: 0.5, 17: 1.2})``, indices are non-negative ints."""

    __slots__ = ("dimensions", "indices")

    value: FloatArray

    def __init__(
        self,
        value: Mapping[int, float],
        dimensions: int | None = None,
        *,
        name: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        where = f"sparse vector field {name!r}"
        if not isinstance(value, Mapping):
            raise VectorValueError(f"{where}: expected a mapping of index -> weight, got {type(value).__name__}")
        if any(isinstance(i, bool) or not isinstance(i, (int, np.integer)) or i < 0 for i in value):
            raise VectorValueError(f"{where}: indices must be non-negative ints")
        order = sorted(value)
        self.name = name
        self.metadata = check_value(dict(metadata or {}), f"field {name!r} metadata")
        self.indices = np.asarray(order, dtype=np.int64)
        self.value = as_vector([value[i] for i in order], where, allow_empty=True)
        self.type = FieldType.SPARSE_VECTOR
        if dimensions is not None and order and order[-1] >= dimensions:
            raise VectorValueError(f"{where}: index {order[-1]} is out of range for {dimensions} dimensions")
        self.dimensions = dimensions

    def as_dict(self) -> dict[int, float]:
        return dict(zip(self.indices.tolist(), self.value.tolist(), strict=True))

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        del data["value"]
        data["indices"] = self.indices.tolist()
        data["values"] = self.value.tolist()
        if self.dimensions is not None:
            data["dimensions"] = self.dimensions
        return data


def split_source_field(source_field: str | None) -> tuple[str, ...]:
    """The field names a ``source_field`` names (comma-separated)."""
    if not source_field:
        return ()
    return tuple(part.strip() for part in source_field.split(",") if part.strip())


def as_vector(
    value: npt.ArrayLike, where: str, dimensions: int | None = None, *, allow_empty: bool = False,
    name: str | None = None,
) -> FloatArray:
    """Check ``value`` and return it as a read-only, contiguous 1-D float32 array (``where`` and ``name``
    say what it is in error messages)."""
    if (  # the common case, checked quickly: a row of an embedding matrix
        type(value) is np.ndarray and value.dtype == np.float32 and value.ndim == 1
        and (dimensions is None or value.shape[0] == dimensions) and 0 < value.shape[0] <= MAX_DIMENSIONS
    ):
        vector: FloatArray = value.copy()
        if not math.isfinite(vector.sum(dtype=np.float64)):  # NaN and inf survive the sum; finite floats cannot
            raise VectorValueError(f"{_where(where, name)}: vector holds NaN or inf")
        vector.flags.writeable = False
        return vector
    where = _where(where, name)
    if isinstance(value, (str, bytes, Mapping)):
        raise VectorValueError(f"{where}: expected a sequence of numbers, got {type(value).__name__}")
    try:
        raw = np.asarray(value)
    except (ValueError, TypeError) as err:
        raise VectorValueError(f"{where}: not a numeric vector ({err})") from None
    if raw.dtype.kind not in "fiu":
        raise VectorValueError(
            f"{where}: vector must hold numbers, got dtype {raw.dtype}; convert with np.asarray(v, np.float32)"
        )
    if raw.ndim != 1:
        raise VectorValueError(f"{where}: vector must be 1-D, got shape {raw.shape}")
    if not allow_empty and raw.shape[0] == 0:
        raise VectorValueError(f"{where}: vector is empty")
    if raw.shape[0] > MAX_DIMENSIONS:
        raise VectorValueError(f"{where}: {raw.shape[0]} dimensions is above the limit of {MAX_DIMENSIONS}")
    if dimensions is not None and raw.shape[0] != dimensions:
        raise DimensionMismatchError(f"{where}: expected {dimensions} dimensions, got {raw.shape[0]}")
    with np.errstate(over="ignore"):
        vector = np.array(raw, dtype=np.float32, order="C", copy=True)
    if not np.isfinite(vector).all():
        raise VectorValueError(f"{where}: vector holds NaN or inf (or values beyond float32 range)")
    vector.flags.writeable = False
    return vector


def as_matrix(value: npt.ArrayLike, where: str) -> npt.NDArray[np.float32]:
    """Check ``value`` and return it as a C-contiguous 2-D float32 array, one vector per row; no rows
    (``[]`` or a ``0 x d`` array) gives a ``0 x 0`` array."""
    if isinstance(value, (str, bytes, Mapping)):
        raise VectorValueError(f"{where}: expected a matrix of numbers, got {type(value).__name__}")
    try:
        raw = np.asarray(value)
    except (ValueError, TypeError) as err:
        raise VectorValueError(f"{where}: not a numeric matrix ({err})") from None
    if raw.shape in ((0,), (0, *raw.shape[1:2])):
        return np.zeros((0, 0), dtype=np.float32)
    if raw.dtype.kind not in "fiu":
        raise VectorValueError(
            f"{where}: must hold numbers, got dtype {raw.dtype}; convert with np.asarray(m, np.float32)"
        )
    if raw.ndim != 2:
        raise VectorValueError(
            f"{where}: expected a 2-D array with one vector per row, got shape {raw.shape} (one vector: "
            "use vector_search, or reshape it to (1, d))"
        )
    if raw.shape[1] == 0:
        raise VectorValueError(f"{where}: the vectors are empty (shape {raw.shape})")
    if raw.shape[1] > MAX_DIMENSIONS:
        raise VectorValueError(f"{where}: {raw.shape[1]} dimensions is above the limit of {MAX_DIMENSIONS}")
    with np.errstate(over="ignore"):
        matrix = np.ascontiguousarray(raw, dtype=np.float32)
    if not np.isfinite(matrix).all():
        rows = np.flatnonzero(~np.isfinite(matrix).all(axis=1))
        raise VectorValueError(f"{where}: row(s) {rows[:5].tolist()} hold NaN or inf (or values beyond float32)")
    return matrix


def _where(where: str, name: str | None) -> str:
    return where if name is None else f"{where} {name!r}"


_SLOTS: dict[type, tuple[str, ...]] = {}


def _all_slots(cls: type) -> tuple[str, ...]:
    """Every slot of ``cls`` and its bases (cached: every record copy and comparison asks)."""
    slots = _SLOTS.get(cls)
    if slots is None:
        slots = _SLOTS[cls] = tuple(slot for klass in cls.__mro__ for slot in getattr(klass, "__slots__", ()))
    return slots


#: the only mutable values a field holds (all else is immutable; vectors are read-only arrays)
CONTAINERS = (dict, list)


def copy_value(value: Any) -> Any:
    """A deep copy of a checked value's dicts and lists (all else a field holds is immutable)."""
    if isinstance(value, dict):
        return {k: copy_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_value(v) for v in value]
    return value  # scalars and read-only arrays are immutable


def _values_equal(a: Any, b: Any) -> bool:
    """Equality that sees what a lossy store would change, at any depth: 1 vs 1.0 vs True."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.array_equal(a, b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_values_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_values_equal(x, y) for x, y in zip(a, b, strict=True))
    if _scalar_class(a) is not _scalar_class(b):
        return False
    return bool(a == b)


def _scalar_class(value: Any) -> type:
    for cls in (bool, int, float, str, datetime):
        if isinstance(value, cls):
            return cls
    return type(value)
