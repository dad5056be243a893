"""Third-party store plugins are first class.

The slow tests install the core and ``examples/vectorknobs-example-plugin`` with pip into a fresh venv,
both built as wheels from their folders (not editable), so they prove the packaging too: the entry point,
the package contents, the dependencies. The core itself knows nothing of ``jsondir://``.

The fast ones keep the plugin author's material honest: the guide names every hook and primitive and
its snippets match the example's source; the first-party template and plugins share one layout.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from vectorknobs import hookspecs
from vectorknobs.plugins import ALLOW_ENV, DENY_ENV
from vectorknobs.store import VectorStore

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "core"
EXAMPLE = ROOT / "examples" / "vectorknobs-example-plugin"
TEMPLATE = ROOT / "plugins" / "_template"
GUIDE = ROOT / "docs" / "writing-a-store-plugin.md"
DISTRIBUTION = "vectorknobs-example-plugin"


@dataclass(frozen=True)
class Venv:
    path: Path

    def bin(self, name: str) -> Path:
        return self.path / "bin" / name

    def run(self, *args: str | Path, cwd: Path | None = None, timeout: float = 300,
            **env: str) -> subprocess.CompletedProcess[str]:
        """Run a command of this venv; fail with its output when it fails."""
        result = subprocess.run(
            [str(a) for a in args], cwd=cwd, env={**clean_environment(), **env},
            capture_output=True, text=True, timeout=timeout, check=False,
        )
        if result.returncode != 0:
            pytest.fail(f"{' '.join(map(str, args))} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
        return result

    def python(self, code: str, **env: str) -> str:
        return self.run(self.bin("python"), "-c", textwrap.dedent(code), **env).stdout


def clean_environment() -> dict[str, str]:
    """This process's environment without what would leak the development tree or its plugin choices."""
    leaks = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
    env = {k: v for k, v in os.environ.items() if k not in leaks and not k.startswith("VECTORKNOBS_")}
    return {**env, "PYTHONDONTWRITEBYTECODE": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """One fresh venv for the module: pip installs the core (with its testing extra) and the example."""
    env = Venv(tmp_path_factory.mktemp("third-party") / "venv")
    subprocess.run([sys.executable, "-m", "venv", str(env.path)], check=True, timeout=120)
    # one resolver run, so the example's "vectorknobs" requirement is satisfied by the local core
    env.run(env.bin("python"), "-m", "pip", "install", "--quiet", "--prefer-binary",
            f"{CORE}[testing]", str(EXAMPLE), timeout=600)
    return env


def test_the_core_knows_nothing_of_the_example() -> None:
    core_sources = (CORE / "src").rglob("*.py")
    assert not [p for p in core_sources if "jsondir" in p.read_text() or "vectorknobs_example" in p.read_text()]


@pytest.mark.slow
def test_installed_from_a_wheel_not_the_source_tree(venv: Venv) -> None:
    out = json.loads(venv.python("""
        import json, importlib.metadata as md, importlib.resources as res, vectorknobs, vectorknobs_example
        dist = md.distribution("vectorknobs-example-plugin")
        print(json.dumps({
            "core": vectorknobs.__file__, "plugin": vectorknobs_example.__file__,
            "typed": res.files("vectorknobs_example").joinpath("py.typed").is_file(),
            "entry_points": [[e.group, e.name, e.value] for e in dist.entry_points],
            "requires": dist.requires,
        }))
    """))
    site = str(venv.path)
    assert out["core"].startswith(site), out
    assert out["plugin"].startswith(site), out
    assert out["typed"]
    assert out["entry_points"] == [["vectorknobs", "example", "vectorknobs_example"]]
    assert any(r.startswith("vectorknobs") for r in out["requires"])


CONNECT = """
    import asyncio, json, sys
    import vectorknobs as vk
    from vectorknobs.plugins import get_registry

    async def main(directory):
        async with vk.connect(f"jsondir://{directory}") as store:
            await store.bulk_create([
                vk.Record({"text": "red apple", "embedding": vk.VectorField([1.0, 0.0], source_field="text")}, id="a"),
                vk.Record({"text": "green pear", "embedding": vk.VectorField([0.0, 1.0], source_field="text")}, id="b"),
            ])
        async with vk.connect(f"jsondir://{directory}") as store:  # a new connection reads the files back
            hits = await store.vector_search([0.9, 0.1], k=1)
        info = get_registry().store_for_scheme("jsondir")
        print(json.dumps({
            "class": f"{type(store).__module__}.{type(store).__qualname__}",
            "plugin": info.plugin, "distribution": info.distribution, "version": info.version,
            "hit": hits[0].id, "source_text": hits[0].source_text, "score": hits[0].score,
        }))

    asyncio.run(main(sys.argv[1]))
"""


@pytest.mark.slow
def test_connect_finds_the_store_by_its_scheme(venv: Venv, tmp_path: Path) -> None:
    out = json.loads(venv.run(venv.bin("python"), "-c", textwrap.dedent(CONNECT), tmp_path / "store").stdout)
    assert out["class"] == "vectorknobs_example.store.JsonDirStore"
    assert (out["plugin"], out["distribution"], out["version"]) == ("example", DISTRIBUTION, "0.1.0")
    assert (out["hit"], out["source_text"]) == ("a", "red apple")
    assert out["score"] == pytest.approx(0.9 / (0.81 + 0.01) ** 0.5)


UNKNOWN = """
    import asyncio, vectorknobs as vk

    async def main():
        await vk.connect("jsondir:///nowhere")

    try:
        asyncio.run(main())
    except vk.UnknownBackendError as err:
        print(err)
"""


@pytest.mark.slow
@pytest.mark.parametrize(("variable", "value"), [
    ("VECTORKNOBS_DISABLE_PLUGINS", DISTRIBUTION),
    ("VECTORKNOBS_DISABLE_PLUGINS", "example"),
    ("VECTORKNOBS_PLUGINS", ""),
    ("VECTORKNOBS_PLUGINS", "some-other-plugin"),
])
def test_the_environment_can_leave_it_out(venv: Venv, variable: str, value: str) -> None:
    message = venv.python(UNKNOWN, **{variable: value})
    assert "no store plugin answers jsondir://" in message
    assert "memory" in message  # the built-in store is always there


@pytest.mark.slow
def test_the_environment_can_allow_it_by_name(venv: Venv) -> None:
    out = venv.python("""
        from vectorknobs.plugins import get_registry
        print(get_registry().store_for_scheme("jsondir").distribution)
    """, VECTORKNOBS_PLUGINS=DISTRIBUTION)
    assert out.strip() == DISTRIBUTION


@pytest.mark.slow
def test_the_cli_lists_it_with_its_distribution(venv: Venv) -> None:
    stores = json.loads(venv.run(venv.bin("vectorknobs"), "stores", "--json").stdout)
    entries = stores["stores"] if isinstance(stores, dict) else stores
    found = [s for s in entries if s["name"] == "jsondir"]
    assert found, entries
    assert found[0]["distribution"] == DISTRIBUTION
    assert "jsondir" in found[0]["schemes"]


@pytest.mark.slow
def test_it_passes_its_conformance_suite(venv: Venv) -> None:
    result = venv.run(venv.bin("python"), "-m", "pytest", "-p", "no:cacheprovider", "-q", "tests",
                      cwd=EXAMPLE, timeout=900)
    assert " passed" in result.stdout, result.stdout


# -- the plugin author's guide ------------------------------------------------------------------------
def guide_blocks() -> list[tuple[str, str]]:
    """``(marker, code)`` for each fenced block of the guide; marker is the HTML comment before it."""
    pattern = re.compile(r"(?:<!-- (?P<marker>[^>]*) -->\n)?```[a-z]*\n(?P<code>.*?)```", re.DOTALL)
    return [(m["marker"] or "", m["code"]) for m in pattern.finditer(GUIDE.read_text())]


def test_the_guide_names_every_hook_and_primitive() -> None:
    text = GUIDE.read_text()
    specs = [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(fn, "vectorknobs_spec")]
    assert specs
    optional = ["_open", "_close", "_stream", "_stream_pages", "_hybrid_search", "_write_batch",
                "_vector_search_batch"]  # with defaults in VectorStore
    assert all(callable(getattr(VectorStore, name)) for name in optional)
    primitives = [*sorted(VectorStore.__abstractmethods__), *optional]
    names = [*specs, *primitives, "duplicate_ids", "missing_ids", "Hit", "WriteMode", "Option", "StoreConfig",
             "Capabilities", "asyncio.to_thread", ALLOW_ENV, DENY_ENV, "vectorknobs.evaluate", "StoreConformance"]
    assert [n for n in names if not re.search(rf"(?<![\w.]){re.escape(n)}\b", text)] == []


def test_the_guide_quotes_the_example_exactly() -> None:
    quoted = [(marker.removeprefix("from "), code) for marker, code in guide_blocks() if marker.startswith("from ")]
    assert len(quoted) >= 5
    for path, code in quoted:
        source = (ROOT / path).read_text()
        for chunk in re.split(r"^\s*# \.\.\.\n", code, flags=re.MULTILINE):  # "# ..." elides lines
            assert chunk in source, f"the guide quotes {path} but it no longer holds:\n{chunk}"


def test_the_guides_runnable_snippets_run() -> None:
    runnable = [code for marker, code in guide_blocks() if marker == "runnable"]
    assert runnable
    for code in runnable:
        exec(compile(code, str(GUIDE), "exec"), {})


# -- the first-party layout -----------------------------------------------------------------------------
LAYOUT = ("pyproject.toml", "README.md", "src/vectorknobs_NAME/__init__.py", "src/vectorknobs_NAME/store.py",
          "src/vectorknobs_NAME/py.typed", "tests/test_conformance.py")
README_SECTIONS = ("Install", "Configuration", "Capabilities", "Engine used in tests", "Development")


def readme_sections(readme: Path) -> list[str]:
    return re.findall(r"^## (.+?)\s*$", readme.read_text(), flags=re.MULTILINE)


def test_the_template_has_the_uniform_layout() -> None:
    assert [f for f in LAYOUT if not (TEMPLATE / f).is_file()] == []
    assert readme_sections(TEMPLATE / "README.md") == list(README_SECTIONS)
    pyproject = tomllib.loads((TEMPLATE / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == "vectorknobs-NAME"
    assert pyproject["project"]["entry-points"]["vectorknobs"] == {"NAME": "vectorknobs_NAME"}
    assert "test" in pyproject["project"]["optional-dependencies"]


def test_the_template_becomes_a_plugin(tmp_path: Path) -> None:
    """Copied and renamed as its README says, the template compiles and registers its store."""
    plugin = tmp_path / "foo"
    shutil.copytree(TEMPLATE, plugin)
    (plugin / "src" / "vectorknobs_NAME").rename(plugin / "src" / "vectorknobs_foo")
    for path in plugin.rglob("*"):
        if path.is_file() and path.suffix in (".py", ".toml", ".md"):
            text = path.read_text()
            path.write_text(text.replace("CLASSNAME", "Foo").replace("NAME", "foo").replace("ENGINE", "FooDB"))
    out = subprocess.run(
        [sys.executable, "-c", "import vectorknobs_foo; from vectorknobs.plugins import Registry; r = Registry(); "
         "r.add_plugin(vectorknobs_foo, name='foo'); print(r.store_for_scheme('foo').store_class.__name__)"],
        env={**clean_environment(), "PYTHONPATH": str(plugin / "src"), ALLOW_ENV: ""},  # hermetic registry
        capture_output=True, text=True, check=False, timeout=60,
    )
    assert out.stdout.strip() == "FooStore", out.stderr
    compile((plugin / "tests" / "test_conformance.py").read_text(), "test_conformance.py", "exec")


def first_party_plugins() -> list[Path]:
    return sorted(p.parent for p in (ROOT / "plugins").glob("*/pyproject.toml") if not p.parent.name.startswith("_"))


@pytest.mark.parametrize("plugin", first_party_plugins(), ids=lambda p: p.name)
def test_first_party_plugins_follow_the_template(plugin: Path) -> None:
    name = plugin.name
    expected = [f.replace("NAME", name) for f in LAYOUT]
    assert [f for f in expected if not (plugin / f).is_file()] == []
    assert [s for s in README_SECTIONS if s not in readme_sections(plugin / "README.md")] == []
    project = tomllib.loads((plugin / "pyproject.toml").read_text())["project"]
    assert project["name"] == f"vectorknobs-{name}"
    assert project["entry-points"]["vectorknobs"] == {name: f"vectorknobs_{name}"}
    assert "test" in project.get("optional-dependencies", {})
