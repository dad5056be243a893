"""The README documents every option, with the default the store really uses."""

from __future__ import annotations

import enum
import re
from pathlib import Path
from typing import Any

from vectorknobs.store import COMMON_OPTIONS
from vectorknobs_faiss.options import OPTIONS

README = Path(__file__).resolve().parents[1] / "README.md"


def option_rows() -> dict[str, str]:
    """``{option: default}`` from the rows of the README's option table that name one option in backticks."""
    section = README.read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return {m[1]: m[2] for m in re.finditer(r"^\| `([a-z_]+)` \| (.+?) \| .+ \|$", section, flags=re.MULTILINE)}


def rendered(default: Any) -> str:
    if default is None:
        return "—"
    if isinstance(default, enum.Enum):
        default = default.value
    return f"`{default}`"


def test_every_option_is_in_the_readme_with_its_default() -> None:
    rows = option_rows()
    declared = {**COMMON_OPTIONS, **OPTIONS}
    assert sorted(rows) == sorted(declared)
    assert {name: rows[name] for name in declared} == {name: rendered(o.default) for name, o in declared.items()}
