"""nox sessions: each in its own virtualenv, built from the project's files.

    nox -l                       # list sessions
    nox -s plugin-faiss          # a venv holding ONLY the core and vectorknobs-faiss (+ its test extra)
    nox -s example_plugin lint   # the third-party example plugin; ruff

A ``plugin-<name>`` session exists for every ``plugins/<name>/pyproject.toml`` (not ``plugins/_template``), and an
``embedder-<name>`` session for every ``embedders/<name>/pyproject.toml``.
Each installs the core and that one plugin from their folders, not editable, so a plugin that imports
another plugin or leans on an undeclared dependency fails here. Arguments after ``--`` go to pytest.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
CORE = ROOT / "core"
EXAMPLE = ROOT / "examples" / "vectorknobs-example-plugin"
DEV_REQUIREMENTS = ROOT / "requirements-dev.txt"


def plugin_dirs() -> list[Path]:
    """Every first-party plugin: a folder under plugins/ with a pyproject, not starting with ``_``."""
    return sorted(p.parent for p in (ROOT / "plugins").glob("*/pyproject.toml") if not p.parent.name.startswith("_"))


def embedder_dirs() -> list[Path]:
    """Every first-party embedder distribution: a folder under embedders/ with a pyproject."""
    return sorted(p.parent for p in (ROOT / "embedders").glob("*/pyproject.toml"))


def with_test_extra(project: Path) -> str:
    """``project[test]`` when it declares a ``test`` extra, else ``project``."""
    extras = tomllib.loads((project / "pyproject.toml").read_text()).get("project", {}).get("optional-dependencies", {})
    return f"{project}[test]" if "test" in extras else str(project)


def dev_requirement(name: str) -> str:
    """The line of requirements-dev.txt naming ``name`` (so nox pins tools like ``tasks.py test`` does)."""
    for line in DEV_REQUIREMENTS.read_text().splitlines():
        requirement = line.split("#")[0].strip()
        if re.match(rf"{re.escape(name)}\b(?![-_.])", requirement, re.IGNORECASE):
            return requirement
    return name


def run_pytest(session: nox.Session, *paths: Path) -> None:
    session.run("python", "-m", "pytest", *(str(p) for p in paths), *session.posargs)


def _plugin_session(plugin: Path) -> None:
    @nox.session(name=f"plugin-{plugin.name}")
    def session_for_plugin(session: nox.Session) -> None:
        # core and this plugin only, in one pip call: the plugin's "vectorknobs" requirement is the local core
        session.install(str(CORE), with_test_extra(plugin), dev_requirement("pytest-timeout"))
        session.chdir(plugin)
        run_pytest(session, plugin / "tests")

    session_for_plugin.__doc__ = f"Tests of vectorknobs-{plugin.name}, in a venv with only the core and it."


for _plugin in plugin_dirs():
    _plugin_session(_plugin)


def _embedder_session(embedder: Path) -> None:
    @nox.session(name=f"embedder-{embedder.name}")
    def session_for_embedder(session: nox.Session) -> None:
        session.install(str(CORE), with_test_extra(embedder), dev_requirement("pytest-timeout"))
        session.chdir(embedder)
        run_pytest(session, embedder / "tests")

    session_for_embedder.__doc__ = f"Tests of vectorknobs-{embedder.name}, in a venv with only the core and it."


for _embedder in embedder_dirs():
    _embedder_session(_embedder)


@nox.session
def example_plugin(session: nox.Session) -> None:
    """The third-party example plugin, installed like any user would, passes its conformance tests."""
    session.install(f"{CORE}[testing]", with_test_extra(EXAMPLE))
    session.chdir(EXAMPLE)
    run_pytest(session, EXAMPLE / "tests")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the whole repository (config: root pyproject.toml)."""
    session.install(dev_requirement("ruff"))
    session.run("ruff", "check", str(ROOT), *session.posargs)


@nox.session
def types(session: nox.Session) -> None:
    """mypy --strict over the core (config: root pyproject.toml)."""
    session.install(dev_requirement("mypy"), f"{CORE}[testing]")
    session.chdir(ROOT)
    session.run("mypy", *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """The repository's test suite with the core and every first-party plugin installed."""
    session.install(f"{CORE}[testing]", *(with_test_extra(p) for p in [*plugin_dirs(), *embedder_dirs()]),
                    dev_requirement("pytest-timeout"))
    session.chdir(ROOT)
    run_pytest(session)
