"""vectorknobs.testing.assert_readme_documents_options catches a missing option and a wrong default."""

from __future__ import annotations

from pathlib import Path

import pytest
from vectorknobs.config import Option, parse_bool
from vectorknobs.store import COMMON_OPTIONS
from vectorknobs.testing import assert_readme_documents_options

OPTIONS = {"fsync": Option(parse_bool, True, "flush"), "timeout": Option(float, 2.0, "seconds"),
           "host": Option(str, None, "server")}


def readme(tmp_path: Path, rows: dict[str, str]) -> Path:
    common = {name: "`cosine`" for name in COMMON_OPTIONS}
    table = "\n".join(f"| `{name}` | {default} | help |" for name, default in {**common, **rows}.items())
    path = tmp_path / "README.md"
    path.write_text(f"# x\n\n## Configuration\n\n| option | default | meaning |\n|---|---|---|\n{table}\n\n## Next\n")
    return path


def test_a_complete_table_passes(tmp_path: Path) -> None:
    assert_readme_documents_options(readme(tmp_path, {"fsync": "`true`", "timeout": "`2`", "host": "—"}), OPTIONS)


def test_a_missing_option_is_named(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="undocumented options \\['host'\\]"):
        assert_readme_documents_options(readme(tmp_path, {"fsync": "`true`", "timeout": "`2`"}), OPTIONS)


def test_a_wrong_default_is_named(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="'fsync': \\('`false`', '`true`'\\)"):
        assert_readme_documents_options(readme(tmp_path, {"fsync": "`false`", "timeout": "`2`", "host": "—"}), OPTIONS)
