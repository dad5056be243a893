"""Cosine collections hold unit vectors, and a short code that gives back each original vector exactly.

Chroma's own ``cosine`` space normalizes every vector it stores and keeps no copy of the original, so a
record would not come back as written. A cosine field's collection is therefore Chroma's ``ip`` space
over vectors normalized here (``u = v / |v|`` in float64, rounded to float32; inner products of unit
vectors are cosine similarities, so HNSW ranks exactly as in Chroma's cosine space), and each entry
keeps a code in its metadata: the float64 norm and, per component, whether ``float32(u * |v|)`` must move
one unit in the last place to be ``v`` again (2 bits each). That is about 140 characters for 384
dimensions. When the rounding is off by more than one unit somewhere (zero vectors, extreme values),
the code is the raw float32 bytes instead.

    >>> units, codes = to_unit(matrix)          # what Chroma stores
    >>> assert (from_unit(units, codes) == matrix).all()
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from vectorknobs.fields import FloatArray

_NORMED, _RAW = "n", "r"


def to_unit(matrix: FloatArray) -> tuple[FloatArray, list[str]]:
    """Rows scaled to unit length (zero rows stay zero), and the code of each row."""
    rows = np.ascontiguousarray(matrix, dtype=np.float32)
    wide = rows.astype(np.float64)
    norms = np.sqrt(np.einsum("ij,ij->i", wide, wide))
    scale = np.where(norms > 0, norms, 1.0)[:, None]
    with np.errstate(over="ignore", invalid="ignore"):
        units = (wide / scale).astype(np.float32)
        again = (units.astype(np.float64) * scale).astype(np.float32)
    steps = rows.view(np.int32).astype(np.int64) - again.view(np.int32).astype(np.int64)
    exact = (np.abs(steps) <= 1).all(axis=1) & (norms > 0)
    width = -(-rows.shape[1] // 4) * 4
    packed = np.zeros((rows.shape[0], width), dtype=np.uint8)
    packed[:, : rows.shape[1]] = np.clip(steps + 1, 0, 2)  # 0, 1, 2 for -1, 0, +1 (other rows: raw)
    packed = packed[:, 0::4] | packed[:, 1::4] << 2 | packed[:, 2::4] << 4 | packed[:, 3::4] << 6
    codes = [
        _NORMED + base64.b64encode(norms[i : i + 1].tobytes() + packed[i].tobytes()).decode()
        if exact[i]
        else _RAW + base64.b64encode(rows[i].tobytes()).decode()
        for i in range(rows.shape[0])
    ]
    return units, codes


def from_unit(units: npt.ArrayLike, codes: Sequence[str]) -> FloatArray:
    """The original rows from the stored unit rows (as Chroma returns them) and their codes."""
    out = np.array(units, dtype=np.float32).reshape(len(codes), -1)
    dims = out.shape[1]
    normed = [i for i, code in enumerate(codes) if code[0] == _NORMED]
    for i, code in enumerate(codes):
        if code[0] == _RAW:
            out[i] = np.frombuffer(base64.b64decode(code[1:]), dtype=np.float32)
    if normed:
        width = 8 + -(-dims // 4)
        data = np.frombuffer(b"".join(base64.b64decode(codes[i][1:]) for i in normed), dtype=np.uint8)
        data = data.reshape(len(normed), width)
        norms = data[:, :8].copy().view(np.float64)
        packed = data[:, 8:]
        steps = np.stack([packed & 3, packed >> 2 & 3, packed >> 4 & 3, packed >> 6 & 3], axis=2)
        steps = steps.reshape(len(normed), -1)[:, :dims].astype(np.int32) - 1
        again = (out[normed].astype(np.float64) * norms).astype(np.float32)
        out[normed] = (again.view(np.int32) + steps).view(np.float32)
    return out
