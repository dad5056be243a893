"""``pip install vectorknobs[<extra>]`` brings the core and exactly that one store plugin.

Wheels of the core and of every first-party plugin are built into a local wheel house; pip then resolves
each extra against it (``--dry-run --report``: nothing is installed) and must pick our local plugin wheel
and none of the other plugins.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from vectorknobs.plugins import KNOWN_EXTRAS

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = sorted(p.parent.name for p in (ROOT / "plugins").glob("*/pyproject.toml") if p.parent.name[0] != "_")
CORE_EXTRAS = tomllib.loads((ROOT / "core" / "pyproject.toml").read_text())["project"]["optional-dependencies"]


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    house = tmp_path_factory.mktemp("wheels")
    projects = [ROOT / "core", *(ROOT / "plugins" / name for name in PLUGINS)]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(house),
                    *map(str, projects)], check=True, timeout=600)
    return house


def resolve(wheelhouse: Path, requirement: str, tmp_path: Path) -> dict[str, str]:
    """What pip would install for ``requirement``: name -> where it comes from."""
    report = tmp_path / "report.json"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--dry-run", "--ignore-installed",
         "--find-links", str(wheelhouse), "--report", str(report), requirement],
        check=True, timeout=600,
    )
    return {item["metadata"]["name"].lower(): item["download_info"]["url"]
            for item in json.loads(report.read_text())["install"]}


def test_every_plugin_has_an_extra_and_all_has_them_all() -> None:
    for name in PLUGINS:
        assert CORE_EXTRAS[name] == [f"vectorknobs-{name}"]
    assert sorted(CORE_EXTRAS["all"]) == sorted(f"vectorknobs-{name}" for name in PLUGINS)


def test_every_install_hint_names_a_real_extra() -> None:
    """The unknown-scheme error says ``pip install 'vectorknobs[x]'``: x must exist."""
    assert set(KNOWN_EXTRAS.values()) <= set(CORE_EXTRAS)


@pytest.mark.slow
@pytest.mark.parametrize("extra", PLUGINS)
def test_an_extra_installs_only_its_plugin(wheelhouse: Path, tmp_path: Path, extra: str) -> None:
    plan = resolve(wheelhouse, f"vectorknobs[{extra}]", tmp_path)
    ours = {name for name in plan if name.startswith("vectorknobs")}
    assert ours == {"vectorknobs", f"vectorknobs-{extra}"}
    assert plan[f"vectorknobs-{extra}"].startswith(wheelhouse.as_uri())  # the local wheel, not an index
