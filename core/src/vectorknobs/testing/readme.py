"""Check that a plugin's README documents every option it accepts, with the default it really uses.

The README's ``## Configuration`` section holds a table whose rows start ``| `name` | default | ...``;
a default is written in backticks (``| `ef_search` | `64` | ...``), or ``—`` for none::

    from vectorknobs.testing import assert_readme_documents_options

    def test_the_readme_documents_every_option() -> None:
        assert_readme_documents_options(Path(__file__).parents[1] / "README.md", OPTIONS)
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vectorknobs.config import Option
from vectorknobs.store import COMMON_OPTIONS

_ROW = re.compile(r"^\| `([a-z_]+)` \| ([^|]*) \|", re.MULTILINE)


def documented_options(readme: Path) -> dict[str, str]:
    """``{option: default as written}`` from the README's ``## Configuration`` table."""
    text = readme.read_text()
    if "## Configuration" not in text:
        raise AssertionError(f"{readme} has no '## Configuration' section")
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return {m[1]: m[2].strip() for m in _ROW.finditer(section)}


def rendered_default(default: Any) -> str:
    """How the table writes ``default``: ``—`` for None, enums by value, booleans in lower case."""
    if default is None:
        return "—"
    if isinstance(default, enum.Enum):
        default = default.value
    if isinstance(default, bool):
        default = "true" if default else "false"
    elif isinstance(default, float) and default.is_integer():
        default = int(default)
    return f"`{default}`"


def assert_readme_documents_options(readme: Path, options: Mapping[str, Option]) -> None:
    """The table names exactly the store's options plus the common ones, each with its real default."""
    table = documented_options(readme)
    declared = {**COMMON_OPTIONS, **options}
    missing, unknown = sorted(set(declared) - set(table)), sorted(set(table) - set(declared))
    assert (missing, unknown) == ([], []), f"{readme}: undocumented options {missing}, unknown ones {unknown}"
    wrong = {name: (table[name], rendered_default(o.default)) for name, o in declared.items()
             if table[name] != rendered_default(o.default)}
    assert not wrong, f"{readme}: defaults written (README, real): {wrong}"
