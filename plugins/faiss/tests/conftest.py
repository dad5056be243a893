"""Fixtures of the faiss plugin's tests; puts this directory on sys.path so the test modules can import
``faiss_helpers`` and ``store_child`` under any pytest import mode (the repository root uses importlib)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"
