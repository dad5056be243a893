#!/usr/bin/env python3
"""The project's two entry points, runnable on a fresh machine with only Python 3.11+.

    python3 tasks.py quickstart   # set up .venv and run the quickstart on the embedded default store
    python3 tasks.py test         # set up .venv with every plugin and embedder, run lint, types and the whole suite

Everything is installed into ./.venv from the project's own files; nothing else is assumed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("VECTORKNOBS_VENV", ROOT / ".venv"))
BIN = VENV / "bin"
PYTHON = BIN / "python"
REQUIREMENTS = ROOT / "requirements-dev.txt"


def plugin_dirs() -> list[Path]:
    """Every first-party plugin (a folder under plugins/ with a pyproject, not the template)."""
    return sorted(p.parent for p in (ROOT / "plugins").glob("*/pyproject.toml") if not p.parent.name.startswith("_"))


def embedder_dirs() -> list[Path]:
    """Every first-party embedder distribution (a folder under embedders/ with a pyproject).

    Only the dev venv gets them: they bring model runtimes (torch), which the quickstart does not need.
    """
    return sorted(p.parent for p in (ROOT / "embedders").glob("*/pyproject.toml"))


def run(*args: str | Path, **env: str) -> None:
    print("+", " ".join(str(a) for a in args), flush=True)
    subprocess.run([str(a) for a in args], check=True, cwd=ROOT, env={**os.environ, **env})


def ensure_venv(*, dev: bool) -> None:
    if not PYTHON.exists():
        print(f"creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = ["-e", str(ROOT / "core") + ("[testing]" if dev else "")]
    projects = plugin_dirs() + (embedder_dirs() if dev else [])
    for project in projects:
        wanted += ["-e", str(project) + ("[test]" if dev and _has_extra(project, "test") else "")]
    if dev:
        wanted += ["-r", str(REQUIREMENTS)]
    stamp = VENV / f".installed-{'dev' if dev else 'run'}"
    digest = hashlib.sha256(" ".join(wanted).encode() + b"".join(
        (p / "pyproject.toml").read_bytes() for p in [ROOT / "core", *projects]
    ) + (b"".join(f.read_bytes() for f in _requirement_files(REQUIREMENTS)) if dev else b"")).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    run(PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--upgrade", "pip")
    run(PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *wanted)
    stamp.write_text(digest)


def _requirement_files(path: Path) -> list[Path]:
    """``path`` and the files its ``-r`` lines include, recursively (all of them decide what is installed)."""
    found = [path]
    for line in path.read_text().splitlines():
        if line.strip().startswith("-r "):
            found += _requirement_files(path.parent / line.strip()[3:].strip())
    return found


def _has_extra(plugin: Path, extra: str) -> bool:
    import tomllib

    data = tomllib.loads((plugin / "pyproject.toml").read_text())
    return extra in data.get("project", {}).get("optional-dependencies", {})


def quickstart(args: list[str]) -> None:
    ensure_venv(dev=False)
    run(PYTHON, ROOT / "examples" / "quickstart.py", *args)


def test(args: list[str]) -> None:
    ensure_venv(dev=True)
    run(BIN / "ruff", "check", ".")
    run(BIN / "mypy")
    run(PYTHON, "-m", "pytest", *args)


COMMANDS = {"quickstart": quickstart, "test": test}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(f"usage: python3 tasks.py {{{'|'.join(COMMANDS)}}} [args...]")
    try:
        COMMANDS[sys.argv[1]](sys.argv[2:])
    except subprocess.CalledProcessError as err:
        sys.exit(err.returncode)
