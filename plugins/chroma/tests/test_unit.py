"""Cosine collections store unit vectors plus a code; the code restores every float32 vector exactly."""

from __future__ import annotations

import numpy as np
from vectorknobs_chroma.unit import from_unit, to_unit


def test_unit_codes_restore_any_float32_rows() -> None:
    rng = np.random.default_rng(2)
    rows = np.concatenate(
        [
            rng.normal(size=(200, 16)).astype(np.float32),
            (rng.normal(size=(20, 16)) * 1e36).astype(np.float32),
            (rng.normal(size=(20, 16)) * 1e-40).astype(np.float32),  # subnormal
            np.zeros((2, 16), np.float32),
            np.full((1, 16), -0.0, np.float32),
        ]
    )
    units, codes = to_unit(rows)
    norms = np.linalg.norm(units.astype(np.float64), axis=1)
    assert np.allclose(norms[np.any(rows != 0, axis=1)], 1.0, atol=1e-6)
    assert from_unit(units.astype(np.float64), codes).tobytes() == rows.tobytes()
    assert sum(c.startswith("n") for c in codes) >= 200  # the compact code for ordinary vectors
    assert max(len(c) for c in codes[:200]) < 30
