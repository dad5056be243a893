"""The README documents every option, with the default the store really uses."""

from __future__ import annotations

from pathlib import Path

from vectorknobs.testing import assert_readme_documents_options
from vectorknobs_faiss.options import OPTIONS


def test_every_option_is_in_the_readme_with_its_default() -> None:
    assert_readme_documents_options(Path(__file__).resolve().parents[1] / "README.md", OPTIONS)
