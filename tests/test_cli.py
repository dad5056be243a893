"""The ``vectorknobs`` command line, in process (``main([...])``) and as the installed console script."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from vectorknobs import Capabilities, DistanceMetric, Operator, StoreError, cli
from vectorknobs.plugins import ALLOW_ENV, DENY_ENV, ENTRY_POINT_GROUP, reset_registry
from vectorknobs.stores.memory import MemoryStore

SCRIPT = Path(sys.executable).parent / "vectorknobs"
VERSION = cli._version("vectorknobs")

MEMORY_CAPS = ("metrics=cosine,dot_product,euclidean filters=all hybrid sparse persistence transactions exact "
               "dims<=65536 k<=10000")


@pytest.fixture(autouse=True)
def hermetic(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Only the built-in plugin unless a test installs one of its own."""
    monkeypatch.setenv(ALLOW_ENV, "")
    monkeypatch.delenv(DENY_ENV, raising=False)
    reset_registry()
    yield
    reset_registry()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write_plugin(site: Path, dist: str, version: str, source: str) -> None:
    module = dist.replace("-", "_")
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{module}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{dist} = {module}\n")


THIRD_PARTY = """
    import vectorknobs
    from vectorknobs import Capabilities, DistanceMetric, Operator
    from vectorknobs.config import Option
    from vectorknobs.stores.memory import MemoryStore

    class LimitedStore(MemoryStore):
        capabilities = Capabilities(
            filter_operators=frozenset({Operator.EQ, Operator.IN}),
            metrics=frozenset({DistanceMetric.COSINE}),
            per_query_metric=False,
            max_dimensions=2000,
            max_k=100,
            extras={"engine": "in-process, for tests"},
        )
        options = {**MemoryStore.options, "shards": Option(int, 1, "number of shards")}

    @vectorknobs.hookimpl
    def register_stores(register):
        register(LimitedStore, name="limited", schemes=("limited+http",))

    @vectorknobs.hookimpl
    def register_embedders(register):
        register(vectorknobs.HashingEmbedder, name="limited-hash", aliases=("lh",))
"""


@pytest.fixture
def third_party(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    write_plugin(site, "vk-cli-limited", "2.0.1", THIRD_PARTY)
    write_plugin(site, "vk-cli-broken", "0.3", "raise ImportError('libmissing.so not found')")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv(ALLOW_ENV, "vk-cli-limited,vk-cli-broken")
    yield site
    for name in ("vk_cli_limited", "vk_cli_broken"):
        sys.modules.pop(name, None)


# -- vectorknobs stores -----------------------------------------------------------------------------------


def test_stores_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "stores")
    assert code == 0
    assert err == ""
    header, row = out.splitlines()
    assert header.split() == ["NAME", "SCHEMES", "DISTRIBUTION", "VERSION", "CAPABILITIES"]
    assert row.split(maxsplit=4) == ["memory", "memory://,mem://", "vectorknobs", VERSION, MEMORY_CAPS]
    # columns line up
    assert header.index("SCHEMES") == row.index("memory://")
    assert header.index("CAPABILITIES") == row.index("metrics=")


def test_stores_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "stores", "--json")
    assert code == 0
    [memory] = json.loads(out)
    assert memory["name"] == "memory"
    assert memory["schemes"] == ["memory", "mem"]
    assert memory["class"] == "vectorknobs.stores.memory.MemoryStore"
    assert (memory["plugin"], memory["distribution"], memory["version"]) == ("vectorknobs", "vectorknobs", VERSION)
    assert memory["capabilities"] == json.loads(json.dumps(MemoryStore.capabilities.describe()))
    assert memory["options"]["autosave"] == {"default": True, "help": MemoryStore.options["autosave"].help}
    assert memory["options"]["metric"]["default"] == "cosine"
    assert set(memory["options"]) == {"autosave", "max_records", "metric", "path"}


@pytest.mark.parametrize("name", ["memory", "mem"])
def test_one_store_in_detail(capsys: pytest.CaptureFixture[str], name: str) -> None:
    code, out, _ = run(capsys, "stores", name)
    assert code == 0
    assert "name:          memory" in out
    assert "schemes:       memory://, mem://" in out
    assert f"distribution:  vectorknobs {VERSION}" in out
    assert "  hybrid_search: True" in out
    assert "  filter_operators: between, contains, eq" in out
    assert "  autosave (default True): save after every write" in out


def test_one_store_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "stores", "mem", "--json")
    assert code == 0
    assert [s["name"] for s in json.loads(out)] == ["memory"]


def test_unknown_store_is_an_error_with_the_install_hint(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "stores", "faiss")
    assert code == 1
    assert out == ""
    assert err.startswith("vectorknobs: error: no store plugin answers faiss://")
    assert "installed: memory (memory://, mem://)" in err
    assert "pip install 'vectorknobs[faiss]'" in err
    assert "Traceback" not in err


def test_third_party_plugins_are_listed_with_their_distribution(
    capsys: pytest.CaptureFixture[str], third_party: Path
) -> None:
    code, out, err = run(capsys, "stores")
    assert code == 0
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == ["NAME", "limited", "memory"]
    assert lines[1].split(maxsplit=4) == [
        "limited", "limited://,limited+http://", "vk-cli-limited", "2.0.1",
        "metrics=cosine(per-collection) filters=eq,in exact dims<=2000 k<=100",
    ]
    # the broken plugin is a one-line warning on stderr, not a crash
    assert err.startswith("vectorknobs: warning: vectorknobs plugin 'vk-cli-broken' (distribution vk-cli-broken)")
    assert "ImportError: libmissing.so not found" in err
    assert len(err.strip().splitlines()) == 1


def test_third_party_store_options_in_json(capsys: pytest.CaptureFixture[str], third_party: Path) -> None:
    code, out, _ = run(capsys, "stores", "limited+http", "--json")
    assert code == 0
    [limited] = json.loads(out)
    assert limited["version"] == "2.0.1"
    assert limited["options"]["shards"] == {"default": 1, "help": "number of shards"}
    assert limited["capabilities"]["filter_operators"] == ["eq", "in"]
    assert limited["capabilities"]["per_query_metric"] is False
    assert limited["capabilities"]["engine"] == "in-process, for tests"


def test_third_party_store_in_detail(capsys: pytest.CaptureFixture[str], third_party: Path) -> None:
    code, out, _ = run(capsys, "stores", "limited")
    assert code == 0
    assert "distribution:  vk-cli-limited 2.0.1" in out
    assert "  filter_operators: eq, in" in out
    assert "  engine: in-process, for tests" in out  # extras are shown here, not in the table
    assert "  shards (default 1): number of shards" in out


def test_compact_capabilities() -> None:
    caps = Capabilities(
        filter_operators=frozenset(),
        metrics=frozenset({DistanceMetric.EUCLIDEAN, DistanceMetric.COSINE}),
        exact_search=False,
        transactions=True,
        extras={"index": "hnsw", "gpu": "no"},
    )
    assert cli.compact_capabilities(caps) == (
        "metrics=cosine,euclidean filters=none transactions dims<=65536 k<=10000"  # extras: details and --json
    )
    assert cli.compact_capabilities(replace(caps, filter_operators=frozenset({Operator.LIKE, Operator.EQ}))
                                    ).startswith("metrics=cosine,euclidean filters=eq,like ")


# -- vectorknobs embedders --------------------------------------------------------------------------------


def test_embedders_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "embedders")
    assert code == 0
    assert err == ""
    assert [line.split() for line in out.splitlines()] == [
        ["NAME", "ALIASES", "DISTRIBUTION", "VERSION", "PLUGIN"],
        ["hash", "hashing", "vectorknobs", VERSION, "vectorknobs"],
    ]


def test_embedders_json(capsys: pytest.CaptureFixture[str], third_party: Path) -> None:
    code, out, _ = run(capsys, "embedders", "--json")
    assert code == 0
    assert json.loads(out) == [
        {"name": "hash", "aliases": ["hashing"], "plugin": "vectorknobs", "distribution": "vectorknobs",
         "version": VERSION},
        {"name": "limited-hash", "aliases": ["lh"], "plugin": "vk-cli-limited", "distribution": "vk-cli-limited",
         "version": "2.0.1"},
    ]


def test_one_embedder_by_alias(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "embedders", "hashing", "--json")
    assert code == 0
    assert [e["name"] for e in json.loads(out)] == ["hash"]


def test_unknown_embedder_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "embedders", "minilm")
    assert code == 1
    assert out == ""
    assert err == "vectorknobs: error: no embedder named 'minilm'; registered: hash\n"


# -- version, help, usage errors --------------------------------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert out == f"vectorknobs {VERSION}\n"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ((), "the following arguments are required: COMMAND"),
        (("bogus",), "invalid choice: 'bogus'"),
        (("stores", "--bogus"), "unrecognized arguments: --bogus"),
        (("stores", "a", "b"), "unrecognized arguments: b"),
        (("--json", "stores"), "unrecognized arguments: --json"),
    ],
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], expected: str) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.startswith("usage: vectorknobs")
    assert expected in err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (("--help",), ["usage: vectorknobs", "stores", "embedders", "--version"]),
        (("stores", "--help"), ["usage: vectorknobs stores [-h] [--json] [name]",
                                "list the installed store plugins", "--json"]),
        (("embedders", "-h"), ["usage: vectorknobs embedders", "list the registered embedding functions"]),
    ],
)
def test_help(capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], expected: list[str]) -> None:
    code, out, _ = run(capsys, *argv)
    assert code == 0
    for text in expected:
        assert text in out


def test_new_commands_plug_in_with_the_decorator(capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "COMMANDS", dict(cli.COMMANDS))

    def configure(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--fail", action="store_true")

    @cli.command("hello", "say hello", configure)
    def hello(args: argparse.Namespace) -> int:
        if args.fail:
            raise StoreError("the store went away")
        print("hello")
        return 0

    assert run(capsys, "hello") == (0, "hello\n", "")
    # a VectorknobsError is a message and exit code 1, never a traceback
    assert run(capsys, "hello", "--fail") == (1, "", "vectorknobs: error: the store went away\n")
    _code, out, _ = run(capsys, "--help")
    assert "say hello" in out


def test_other_exceptions_are_not_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "COMMANDS", dict(cli.COMMANDS))

    @cli.command("crash", "a bug")
    def crash(args: argparse.Namespace) -> int:
        raise RuntimeError("a real bug")

    with pytest.raises(RuntimeError, match="a real bug"):
        cli.main(["crash"])


def test_render_table() -> None:
    assert cli.render_table(["A", "LONGER", "LAST"], [["xxxx", "y", "z z"], ["q", "", ""]]) == (
        "A     LONGER  LAST\nxxxx  y       z z\nq"  # no trailing blanks
    )


# -- the installed console script ---------------------------------------------------------------------------


def script(*argv: str, env: dict[str, str] | None = None, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *argv], capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, ALLOW_ENV: "", **(env or {})}, **kwargs,  # type: ignore[call-overload]
    )


def test_script_is_installed() -> None:
    assert SCRIPT.is_file()
    assert os.access(SCRIPT, os.X_OK)


def test_script_stores_and_json() -> None:
    done = script("stores")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1].split(maxsplit=4)[-1] == MEMORY_CAPS
    done = script("stores", "--json")
    assert done.returncode == 0
    assert [s["name"] for s in json.loads(done.stdout)] == ["memory"]
    done = script("embedders", "--json")
    assert [e["name"] for e in json.loads(done.stdout)] == ["hash"]


def test_script_exit_codes() -> None:
    assert script("--version").stdout == f"vectorknobs {VERSION}\n"
    assert script("--version").returncode == 0
    assert script("stores", "--help").returncode == 0
    usage = script("nope")
    assert usage.returncode == 2
    assert "invalid choice" in usage.stderr
    error = script("stores", "pgvector+embedded")
    assert error.returncode == 1
    assert error.stdout == ""
    assert error.stderr.startswith("vectorknobs: error: no store plugin answers pgvector+embedded://")
    assert "pip install 'vectorknobs[pgvector]'" in error.stderr
    assert "Traceback" not in error.stderr


def test_script_sees_third_party_plugins_and_survives_broken_ones(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    write_plugin(site, "vk-cli-limited", "2.0.1", THIRD_PARTY)
    write_plugin(site, "vk-cli-broken", "0.3", "raise ImportError('libmissing.so not found')")
    env = {"PYTHONPATH": str(site), ALLOW_ENV: "vk-cli-limited,vk-cli-broken"}
    done = script("stores", env=env)
    assert done.returncode == 0
    assert "vk-cli-limited  2.0.1" in done.stdout
    assert "vectorknobs: warning: vectorknobs plugin 'vk-cli-broken'" in done.stderr
    assert "Traceback" not in done.stderr
    # the deny list silences it
    done = script("stores", env={**env, DENY_ENV: "vk-cli-broken"})
    assert done.returncode == 0
    assert done.stderr == ""


def test_script_with_a_closed_stdout_pipe() -> None:
    process = subprocess.Popen(
        [str(SCRIPT), "stores", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, ALLOW_ENV: ""},
    )
    assert process.stdout is not None
    assert process.stderr is not None
    process.stdout.close()  # the reader goes away before the script writes (`| head -0`)
    err = process.stderr.read().decode()
    process.stderr.close()
    assert process.wait(timeout=120) == 1
    assert "Traceback" not in err
    assert "BrokenPipeError" not in err
