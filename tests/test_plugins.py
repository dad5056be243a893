"""Plugin discovery and the registry: built-ins, entry points, allow/deny lists, broken plugins, laziness.

Third-party plugins are simulated without installing anything: each test writes a ``*.dist-info``
directory (``METADATA`` + ``entry_points.txt``) and a plugin module to a temporary directory that is
put on ``sys.path``, which is exactly what ``importlib.metadata`` discovers for an installed wheel.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import textwrap
import threading
import uuid
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path

import pytest
import vectorknobs as vk
from vectorknobs import hookspecs, plugins
from vectorknobs.plugins import (
    ALLOW_ENV,
    DENY_ENV,
    ENTRY_POINT_GROUP,
    PluginLoadWarning,
    get_registry,
    reset_registry,
)
from vectorknobs.stores.memory import MemoryStore

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_GUIDE = ROOT / "docs" / "writing-a-store-plugin.md"


def installed() -> list[str]:
    """Entry points really installed here (first-party plugins, possibly installed while the suite runs):
    every test denies them, so results depend only on the plugins the test itself writes."""
    return sorted({ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)
                   if not (ep.dist and ep.dist.name.startswith("vk-test"))})


@pytest.fixture
def clean_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A fresh registry that sees only the built-in plugin plus what the test adds."""
    monkeypatch.delenv(ALLOW_ENV, raising=False)
    monkeypatch.setenv(DENY_ENV, ",".join(installed()))
    before = set(sys.modules)
    reset_registry()
    yield
    reset_registry()
    for name in set(sys.modules) - before:
        if name.startswith("vk_test_plugin_"):
            del sys.modules[name]


PluginFactory = Callable[..., str]


@pytest.fixture
def make_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_registry: None) -> PluginFactory:
    """``make_plugin(source, dist="vk-test-x", entry_point="x") -> module name``: a fake installed plugin."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))

    def make(source: str, *, dist: str | None = None, entry_point: str | None = None, version: str = "1.2.3",
             target: str | None = None, attr: str | None = None) -> str:
        module = f"vk_test_plugin_{uuid.uuid4().hex[:10]}"
        dist = dist or f"vk-test-{module[-6:]}"
        (site / f"{module}.py").write_text(textwrap.dedent(source))
        info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        target = target or (f"{module}:{attr}" if attr else module)
        (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{entry_point or dist} = {target}\n")
        return module

    return make


GOOD_PLUGIN = """
    import vectorknobs
    from vectorknobs.stores.memory import MemoryStore

    CALLS = []

    class ThirdStore(MemoryStore):
        pass

    @vectorknobs.hookimpl
    def register_stores(register):
        CALLS.append("stores")
        register(ThirdStore, name="third", schemes=("third+mem",), aliases=("third3",))

    @vectorknobs.hookimpl
    def register_embedders(register):
        CALLS.append("embedders")
        register(lambda dimensions=8: vectorknobs.HashingEmbedder(dimensions, name="third-hash"),
                 name="third-hash", aliases=("th",))
"""


def store_names() -> list[str]:
    return [s.name for s in get_registry().stores()]


# -- the built-in plugin -------------------------------------------------------------------------


def test_builtin_memory_store_and_hash_embedder_are_registered(clean_registry: None) -> None:
    registry = get_registry()
    memory = registry.store_for_scheme("memory")
    assert memory.store_class is MemoryStore
    assert memory.schemes == ("memory", "mem")
    assert registry.store_for_scheme("mem") is memory
    assert memory.plugin == "vectorknobs"
    assert memory.distribution == "vectorknobs"
    assert memory.version == metadata.version("vectorknobs")
    assert store_names() == ["memory"]
    hashing = registry.embedder("hash", dimensions=16)
    assert isinstance(hashing, vk.HashingEmbedder)
    assert hashing.dimensions == 16
    assert isinstance(registry.embedder("hashing"), vk.HashingEmbedder)
    [info] = registry.embedders()
    assert (info.name, info.aliases, info.distribution) == ("hash", ("hashing",), "vectorknobs")


def test_hermetic_run_still_has_the_builtins(make_plugin: PluginFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    module = make_plugin(GOOD_PLUGIN)
    monkeypatch.setenv(ALLOW_ENV, "")
    assert store_names() == ["memory"]
    assert module not in sys.modules


def test_unknown_embedder_lists_the_registered_ones(clean_registry: None) -> None:
    with pytest.raises(vk.EmbeddingError, match="no embedder named 'nope'; registered: hash, hashing"):
        get_registry().embedder("nope")


# -- unknown schemes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scheme", "extra"),
    [("faiss", "faiss"), ("pgvector", "pgvector"), ("pgvector+embedded", "pgvector"), ("postgresql", "pgvector"),
     ("chroma", "chroma"), ("chroma+http", "chroma")],
)
def test_unknown_first_party_scheme_says_which_extra_to_install(clean_registry: None, scheme: str, extra: str) -> None:
    with pytest.raises(vk.UnknownBackendError) as info:
        get_registry().store_for_scheme(scheme)
    message = str(info.value)
    assert f"no store plugin answers {scheme}://" in message
    assert "installed: memory (memory://, mem://)" in message
    assert f"pip install 'vectorknobs[{extra}]'" in message


def test_unknown_third_party_scheme(clean_registry: None) -> None:
    with pytest.raises(vk.UnknownBackendError, match="no first-party plugin provides it"):
        get_registry().store_for_scheme("qdrant")


@pytest.mark.asyncio
async def test_connect_with_an_unknown_scheme(clean_registry: None) -> None:
    with pytest.raises(vk.UnknownBackendError, match=r"pip install 'vectorknobs\[faiss\]'"):
        await vk.connect("faiss:///tmp/nowhere")
    with pytest.raises(vk.ConfigError):  # UnknownBackendError is a ConfigError
        async with vk.connect({"backend": "nosuchstore"}):
            pass


# -- third-party plugins through entry points --------------------------------------------------------------


def test_hook_register_stores(make_plugin: PluginFactory) -> None:
    module = make_plugin(GOOD_PLUGIN, dist="vk-test-good", entry_point="good", version="4.5.6")
    registry = get_registry()
    info = registry.store_for_scheme("third")
    assert info.store_class.__module__ == module
    assert info.schemes == ("third", "third+mem", "third3")
    assert registry.store_for_scheme("third3") is info
    assert registry.store_for_scheme("third+mem") is info
    assert (info.plugin, info.distribution, info.version) == ("good", "vk-test-good", "4.5.6")
    assert store_names() == ["memory", "third"]


def test_hook_register_embedders(make_plugin: PluginFactory) -> None:
    make_plugin(GOOD_PLUGIN, dist="vk-test-good", entry_point="good")
    registry = get_registry()
    embedder = registry.embedder("third-hash", dimensions=12)
    assert embedder.name == "third-hash"
    assert embedder.dimensions == 12
    assert registry.embedder("th").dimensions == 8
    assert [(e.name, e.plugin, e.distribution) for e in registry.embedders()] == [
        ("hash", "vectorknobs", "vectorknobs"), ("third-hash", "good", "vk-test-good")
    ]


LISTENER_PLUGIN = """
    import vectorknobs

    EVENTS = []

    async def audit(event):
        EVENTS.append((type(event.store).__name__, event.mode.value, [r.id for r in event.records]))

    def refuse_secrets(event):
        if any("secret" in r.fields for r in event.records):
            raise RuntimeError("secrets must not be stored")

    @vectorknobs.hookimpl
    def register_write_listeners(register):
        register(audit)
        register(refuse_secrets)
"""


@pytest.mark.asyncio
async def test_hook_register_write_listeners(make_plugin: PluginFactory) -> None:
    """A plugin's listeners run after every successful write batch of any store; the store does nothing."""
    module = make_plugin(LISTENER_PLUGIN, dist="vk-test-audit", entry_point="audit")
    make_plugin(GOOD_PLUGIN)
    async with vk.connect("memory://") as memory, vk.connect("third://") as third:
        await memory.bulk_create([vk.Record({"t": "x"}, id="a"), vk.Record({"t": "y"}, id="b")])
        await third.upsert(vk.Record({"t": "z"}, id="c"))
        await memory.update(vk.Record({"t": "x2"}, id="a"))
        await memory.bulk_upsert(vk.RecordBatch({"t": ["p", "q"]}, ids=["p", "q"]))  # columns: told as records
        with pytest.raises(vk.DuplicateIdError):  # a write that fails is not reported
            await memory.create(vk.Record({"t": "again"}, id="a"))
        await memory.bulk_upsert([])  # nor is an empty batch
        assert sys.modules[module].EVENTS == [
            ("MemoryStore", "create", ["a", "b"]), ("ThirdStore", "upsert", ["c"]), ("MemoryStore", "update", ["a"]),
            ("MemoryStore", "upsert", ["p", "q"]),
        ]
        # a failing listener: the write stays applied, the error says so and names the plugin, the rest still run
        with pytest.raises(vk.WriteListenerError, match=r"was stored, but write listener of plugin 'audit'") as info:
            await memory.create(vk.Record({"secret": "s"}, id="s"))
        assert isinstance(info.value.__cause__, RuntimeError)
        assert await memory.exists("s")
        assert sys.modules[module].EVENTS[-1] == ("MemoryStore", "create", ["s"])


@pytest.mark.asyncio
async def test_a_plugin_added_at_run_time_listens_until_removed(clean_registry: None) -> None:
    seen: list[str] = []

    class Recorder:
        @vk.hookimpl
        def register_write_listeners(self, register: plugins.WriteListenerRegistrar) -> None:
            register(lambda event: seen.extend(r.key for r in event.records))

    async with vk.connect("memory://") as store:
        get_registry().add_plugin(Recorder(), name="recorder")
        await store.create(vk.Record({"t": 1}, id="one"))
        get_registry().remove_plugin("recorder")
        await store.create(vk.Record({"t": 2}, id="two"))
    assert seen == ["one"]
    assert "recorder" not in [name for name, _ in get_registry().write_listeners()]


def test_a_write_listener_must_be_callable(make_plugin: PluginFactory) -> None:
    make_plugin("""
        import vectorknobs
        @vectorknobs.hookimpl
        def register_write_listeners(register):
            register("not a function")
    """, dist="vk-test-badlistener")
    with pytest.warns(PluginLoadWarning, match=r"vk-test-badlistener.*not callable"):
        assert get_registry().write_listeners() == ()


@pytest.mark.asyncio
async def test_a_plugin_store_is_reachable_through_connect(make_plugin: PluginFactory) -> None:
    make_plugin(GOOD_PLUGIN)
    async with vk.connect("third3://") as store:
        assert type(store).__name__ == "ThirdStore"
        await store.create(vk.Record({"t": "x"}, id="a"))
        assert await store.count() == 1


def test_a_plugin_may_implement_only_one_hook(make_plugin: PluginFactory) -> None:
    make_plugin("""
        import vectorknobs
        @vectorknobs.hookimpl
        def register_embedders(register):
            register(vectorknobs.HashingEmbedder, name="only-embedder")
    """)
    with _no_plugin_warnings():
        assert isinstance(get_registry().embedder("only-embedder"), vk.HashingEmbedder)
        assert store_names() == ["memory"]


def test_a_plugin_may_register_several_stores(make_plugin: PluginFactory) -> None:
    make_plugin("""
        import vectorknobs
        from vectorknobs.stores.memory import MemoryStore
        class One(MemoryStore): pass
        class Two(MemoryStore): pass
        @vectorknobs.hookimpl
        def register_stores(register):
            register(One, name="one")
            register(Two, name="two", schemes=("two+x",))
    """)
    assert store_names() == ["memory", "one", "two"]
    assert get_registry().store_for_scheme("two+x").store_class.__name__ == "Two"


# -- allow and deny lists ----------------------------------------------------------------------------------


@pytest.fixture
def two_plugins(make_plugin: PluginFactory) -> tuple[str, str]:
    first = make_plugin(_store_plugin("alpha"), dist="vk-test-alpha", entry_point="alpha")
    second = make_plugin(_store_plugin("beta"), dist="vk-test-beta", entry_point="beta")
    return first, second


def _store_plugin(name: str) -> str:
    return f"""
        import vectorknobs
        from vectorknobs.stores.memory import MemoryStore
        class Store(MemoryStore): pass
        @vectorknobs.hookimpl
        def register_stores(register):
            register(Store, name="{name}")
    """


def test_all_plugins_load_by_default(two_plugins: tuple[str, str]) -> None:
    assert store_names() == ["alpha", "beta", "memory"]


@pytest.mark.parametrize("allow", ["alpha", "vk-test-alpha", " alpha , nothing-else ", "VK_Test.Alpha"])
def test_allowlist_loads_only_the_named_plugins(two_plugins: tuple[str, str], monkeypatch: pytest.MonkeyPatch,
                                                allow: str) -> None:
    monkeypatch.setenv(ALLOW_ENV, allow)
    assert store_names() == ["alpha", "memory"]
    assert two_plugins[1] not in sys.modules  # a plugin left out is never even imported


@pytest.mark.parametrize("allow", ["", " ", ","])
def test_empty_allowlist_loads_no_plugins(two_plugins: tuple[str, str], monkeypatch: pytest.MonkeyPatch,
                                          allow: str) -> None:
    monkeypatch.setenv(ALLOW_ENV, allow)
    assert store_names() == ["memory"]


@pytest.mark.parametrize("deny", ["beta", "vk-test-beta", "vk_test_beta", "beta,unrelated"])
def test_denylist_skips_the_named_plugins(two_plugins: tuple[str, str], monkeypatch: pytest.MonkeyPatch,
                                          deny: str) -> None:
    monkeypatch.setenv(DENY_ENV, ",".join([*installed(), deny]))
    assert store_names() == ["alpha", "memory"]
    assert two_plugins[1] not in sys.modules


def test_deny_wins_over_allow(two_plugins: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ALLOW_ENV, "alpha,beta")
    monkeypatch.setenv(DENY_ENV, ",".join([*installed(), "alpha"]))
    assert store_names() == ["beta", "memory"]


def test_the_builtin_plugin_cannot_be_denied_away(clean_registry: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DENY_ENV, "vectorknobs")
    monkeypatch.setenv(ALLOW_ENV, "")
    assert store_names() == ["memory"]


# -- broken plugins --------------------------------------------------------------------------------------


def _assert_core_still_works() -> None:
    registry = get_registry()
    assert registry.store_for_scheme("memory").store_class is MemoryStore
    assert isinstance(registry.embedder("hash"), vk.HashingEmbedder)


def test_plugin_that_fails_to_import_warns_and_is_skipped(make_plugin: PluginFactory) -> None:
    make_plugin(GOOD_PLUGIN, dist="vk-test-good", entry_point="good")
    make_plugin("raise ImportError('needs libfoo.so')", dist="vk-test-broken", entry_point="broken", version="0.0.1")
    with pytest.warns(PluginLoadWarning) as caught:
        names = store_names()
    assert names == ["memory", "third"]  # the good plugin is unaffected
    [warning] = caught
    message = str(warning.message)
    assert "'broken'" in message
    assert "distribution vk-test-broken" in message
    assert "failed to load" in message
    assert "ImportError: needs libfoo.so" in message
    assert DENY_ENV in message  # says how to silence it
    _assert_core_still_works()


@pytest.mark.parametrize(
    "source",
    ["1 / 0", "import vectorknobs_no_such_dependency", "syntax error here", "raise SystemExit(3)"],
)
def test_any_import_failure_is_a_warning(make_plugin: PluginFactory, source: str) -> None:
    make_plugin(source, dist="vk-test-broken")
    if "SystemExit" in source:
        # SystemExit is not an Exception: a plugin that exits on import is allowed to end the program
        with pytest.raises(SystemExit):
            store_names()
        return
    with pytest.warns(PluginLoadWarning, match="vk-test-broken"):
        assert store_names() == ["memory"]
    _assert_core_still_works()


def test_entry_point_naming_a_missing_module(make_plugin: PluginFactory) -> None:
    make_plugin("", dist="vk-test-missing", target="vk_test_plugin_does_not_exist")
    with pytest.warns(PluginLoadWarning, match="distribution vk-test-missing.*ModuleNotFoundError"):
        assert store_names() == ["memory"]


def test_entry_point_naming_a_missing_attribute(make_plugin: PluginFactory) -> None:
    make_plugin("x = 1", dist="vk-test-attr", attr="nothing_here")
    with pytest.warns(PluginLoadWarning, match="distribution vk-test-attr.*AttributeError"):
        assert store_names() == ["memory"]


@pytest.mark.parametrize("hook", ["register_stores", "register_embedders"])
def test_plugin_whose_register_hook_raises(make_plugin: PluginFactory, hook: str) -> None:
    make_plugin(f"""
        import vectorknobs
        from vectorknobs.stores.memory import MemoryStore
        class Fine(MemoryStore): pass
        @vectorknobs.hookimpl
        def {hook}(register):
            raise RuntimeError("misconfigured")
        @vectorknobs.hookimpl
        def {"register_embedders" if hook == "register_stores" else "register_stores"}(register):
            {"register(vectorknobs.HashingEmbedder, name='fine')" if hook == "register_stores"
             else "register(Fine, name='fine')"}
    """, dist="vk-test-raiser", entry_point="raiser", version="9.9")
    registry = get_registry()
    with pytest.warns(PluginLoadWarning) as caught:
        registry.load()
    stores, embedders = store_names(), [e.name for e in registry.embedders()]
    [warning] = caught
    message = str(warning.message)
    assert f"'raiser' (distribution vk-test-raiser) failed in {hook}: RuntimeError: misconfigured" in message
    # the plugin's other hook still counts
    if hook == "register_stores":
        assert stores == ["memory"]
        assert embedders == ["fine", "hash"]
    else:
        assert stores == ["fine", "memory"]
        assert embedders == ["hash"]
    _assert_core_still_works()


def test_hook_with_a_wrong_signature_is_a_warning(make_plugin: PluginFactory) -> None:
    make_plugin("""
        import vectorknobs
        @vectorknobs.hookimpl
        def register_stores(registrar, extra):
            pass
    """, dist="vk-test-signature")
    with pytest.warns(PluginLoadWarning, match="vk-test-signature"):
        assert store_names() == ["memory"]


def test_registering_a_class_that_is_not_a_store(make_plugin: PluginFactory) -> None:
    make_plugin("""
        import vectorknobs
        class NotAStore: pass
        @vectorknobs.hookimpl
        def register_stores(register):
            register(NotAStore, name="fake")
    """, dist="vk-test-fake")
    with pytest.warns(PluginLoadWarning, match="registered <class .*NotAStore'>, not a VectorStore subclass"):
        assert store_names() == ["memory"]
    with pytest.raises(vk.UnknownBackendError):
        get_registry().store_for_scheme("fake")


@pytest.mark.parametrize("thing", ["object()", "'memory'", "None", "vectorknobs.Record", "vectorknobs.VectorStore()"])
def test_registering_non_classes_or_instances(make_plugin: PluginFactory, thing: str) -> None:
    if "VectorStore()" in thing:
        thing = "object.__new__(MemoryStore)"  # an instance, not the class
    make_plugin(f"""
        import vectorknobs
        from vectorknobs.stores.memory import MemoryStore
        @vectorknobs.hookimpl
        def register_stores(register):
            register({thing}, name="bad")
    """, dist="vk-test-nonclass")
    with pytest.warns(PluginLoadWarning, match="not a VectorStore subclass"):
        assert store_names() == ["memory"]


@pytest.mark.parametrize(
    ("registration", "match"),
    [
        ("name='Upper'", "scheme 'Upper'"),
        ("name='ok', schemes=('3rd',)", "scheme '3rd'"),
        ("name='ok', schemes=('my_store',)", "scheme 'my_store'"),
        ("name='ok', aliases=('has space',)", "scheme 'has space'"),
        ("name='ok', schemes=(5,)", "scheme 5"),
        ("name='ok', schemes='faiss'", "schemes must be a tuple of names, not the str 'faiss'"),
        ("name='ok', aliases='x'", "aliases must be a tuple"),
    ],
)
def test_registering_unreachable_schemes(make_plugin: PluginFactory, registration: str, match: str) -> None:
    make_plugin(f"""
        import vectorknobs
        from vectorknobs.stores.memory import MemoryStore
        @vectorknobs.hookimpl
        def register_stores(register):
            register(MemoryStore, {registration})
    """, dist="vk-test-schemes")
    with pytest.warns(PluginLoadWarning, match=match):
        assert store_names() == ["memory"]


def test_registering_a_non_callable_embedder(make_plugin: PluginFactory) -> None:
    make_plugin("""
        import vectorknobs
        @vectorknobs.hookimpl
        def register_embedders(register):
            register("not callable", name="bad")
    """, dist="vk-test-badembed")
    with pytest.warns(PluginLoadWarning, match="not callable"):
        assert [e.name for e in get_registry().embedders()] == ["hash"]


def test_scheme_conflict_between_two_plugins(make_plugin: PluginFactory) -> None:
    make_plugin("""
        import vectorknobs
        from vectorknobs.stores.memory import MemoryStore
        class First(MemoryStore): pass
        @vectorknobs.hookimpl
        def register_stores(register):
            register(First, name="shared", schemes=("first-only",))
    """, dist="vk-test-first", entry_point="first")
    make_plugin("""
        import vectorknobs
        from vectorknobs.stores.memory import MemoryStore
        class Second(MemoryStore): pass
        @vectorknobs.hookimpl
        def register_stores(register):
            register(Second, name="second", schemes=("second-only", "shared"))
    """, dist="vk-test-second", entry_point="second")
    registry = get_registry()
    with pytest.warns(PluginLoadWarning) as caught:
        registry.load()
    [warning] = caught
    message = str(warning.message)
    # entry points load in discovery order, so either may be the one refused
    assert "scheme 'shared' of plugin" in message
    assert "is already taken by" in message
    winner = registry.store_for_scheme("shared")
    loser_only = "second-only" if winner.store_class.__name__ == "First" else "first-only"
    # a refused registration registers none of its schemes
    with pytest.raises(vk.UnknownBackendError):
        registry.store_for_scheme(loser_only)
    assert registry.store_for_scheme("memory").store_class is MemoryStore


def test_a_plugin_cannot_take_over_the_memory_scheme(make_plugin: PluginFactory) -> None:
    make_plugin("""
        import vectorknobs
        from vectorknobs.stores.memory import MemoryStore
        class Impostor(MemoryStore): pass
        @vectorknobs.hookimpl
        def register_stores(register):
            register(Impostor, name="impostor", schemes=("mem",))
    """, dist="vk-test-impostor")
    with pytest.warns(PluginLoadWarning, match="scheme 'mem' .* already taken by 'vectorknobs'"):
        assert get_registry().store_for_scheme("mem").store_class is MemoryStore
    with pytest.raises(vk.UnknownBackendError):
        get_registry().store_for_scheme("impostor")


def test_embedder_name_conflict(make_plugin: PluginFactory) -> None:
    make_plugin("""
        import vectorknobs
        @vectorknobs.hookimpl
        def register_embedders(register):
            register(lambda: None, name="other", aliases=("hash",))
    """, dist="vk-test-embedclash")
    with pytest.warns(PluginLoadWarning, match="embedder name 'hash' .* already taken by 'vectorknobs'"):
        assert isinstance(get_registry().embedder("hash"), vk.HashingEmbedder)
    with pytest.raises(vk.EmbeddingError):
        get_registry().embedder("other")


def test_registering_the_same_class_twice_is_not_a_conflict(clean_registry: None) -> None:
    class Twice:
        @vk.hookimpl
        def register_stores(self, register: plugins.StoreRegistrar) -> None:
            register(MemoryStore, name="memory", schemes=("mem",))

    registry = get_registry()
    with _no_plugin_warnings():
        registry.add_plugin(Twice(), name="twice")
        registry.load()
    assert registry.store_for_scheme("memory").store_class is MemoryStore


# -- laziness and add_plugin -------------------------------------------------------------------------------


def test_loading_is_lazy_and_happens_once(make_plugin: PluginFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    module = make_plugin(GOOD_PLUGIN)
    scans = []
    real = metadata.entry_points

    def counting(**kwargs: object) -> metadata.EntryPoints:
        scans.append(kwargs)
        return real(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(plugins.metadata, "entry_points", counting)
    registry = get_registry()
    assert get_registry() is registry
    assert module not in sys.modules
    assert scans == []
    registry.stores()
    registry.store_for_scheme("third")
    registry.embedder("hash")
    registry.embedders()
    with pytest.raises(vk.UnknownBackendError):
        registry.store_for_scheme("nope")
    assert len(scans) == 1
    assert sys.modules[module].CALLS == ["stores", "embedders"]


def test_concurrent_first_lookups_load_once(make_plugin: PluginFactory) -> None:
    module = make_plugin(GOOD_PLUGIN)
    registry = get_registry()
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def lookup() -> None:
        try:
            barrier.wait()
            registry.store_for_scheme("third")
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=lookup) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sys.modules[module].CALLS == ["stores", "embedders"]


def test_reset_registry_discovers_again(make_plugin: PluginFactory) -> None:
    first = get_registry()
    first.load()
    reset_registry()
    assert get_registry() is not first
    make_plugin(GOOD_PLUGIN)
    assert "third" in store_names()


def test_add_plugin_before_and_after_loading(clean_registry: None) -> None:
    class Early(MemoryStore):
        pass

    class Late(MemoryStore):
        pass

    class EarlyPlugin:
        @vk.hookimpl
        def register_stores(self, register: plugins.StoreRegistrar) -> None:
            register(Early, name="early")

    class LatePlugin:
        @vk.hookimpl
        def register_stores(self, register: plugins.StoreRegistrar) -> None:
            register(Late, name="late")

        @vk.hookimpl
        def register_embedders(self, register: plugins.EmbedderRegistrar) -> None:
            register(vk.HashingEmbedder, name="late-hash")

    registry = get_registry()
    registry.add_plugin(EarlyPlugin(), name="early", distribution="my-app", version="0.1")
    assert store_names() == ["early", "memory"]
    registry.add_plugin(LatePlugin(), name="late")
    assert store_names() == ["early", "late", "memory"]
    early = registry.store_for_scheme("early")
    assert (early.plugin, early.distribution, early.version) == ("early", "my-app", "0.1")
    assert registry.store_for_scheme("late").distribution is None
    assert isinstance(registry.embedder("late-hash"), vk.HashingEmbedder)


def test_add_plugin_with_an_invalid_registration_raises_nothing_but_warns(clean_registry: None) -> None:
    class Bad:
        @vk.hookimpl
        def register_stores(self, register: plugins.StoreRegistrar) -> None:
            register(int, name="int")  # type: ignore[arg-type]

    registry = get_registry()
    registry.load()
    with pytest.warns(PluginLoadWarning, match="'bad' \\(distribution unknown\\)"):
        registry.add_plugin(Bad(), name="bad")


# -- the hook specs: documented and tested (datasette's discipline) -----------------------------------------


def hookspec_names() -> list[str]:
    return sorted(
        name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if getattr(fn, f"{ENTRY_POINT_GROUP}_spec", None) is not None
    )


def test_the_hookspecs_are_found() -> None:
    assert {"register_stores", "register_embedders"} <= set(hookspec_names())


@pytest.mark.parametrize("hook", hookspec_names())
def test_every_hookspec_has_a_test(hook: str) -> None:
    assert callable(globals().get(f"test_hook_{hook}")), f"write test_hook_{hook} in {__file__}"


@pytest.mark.parametrize("hook", hookspec_names())
def test_every_hookspec_is_documented(hook: str) -> None:
    assert PLUGIN_GUIDE.is_file(), f"{PLUGIN_GUIDE} is missing: the plugin author's guide documents every hook"
    assert hook in PLUGIN_GUIDE.read_text(), f"hook {hook!r} is not documented in {PLUGIN_GUIDE.name}"


@pytest.mark.parametrize("hook", hookspec_names())
def test_every_hookspec_takes_a_register_callback_and_says_when_it_runs(hook: str) -> None:
    spec = getattr(hookspecs, hook)
    assert list(inspect.signature(spec).parameters) == ["register"]
    assert "Called once" in (spec.__doc__ or "")


# -- helpers ---------------------------------------------------------------------------------------------


class _no_plugin_warnings:
    def __enter__(self) -> None:
        import warnings

        self._catcher = warnings.catch_warnings(record=True)
        self._caught = self._catcher.__enter__()
        warnings.simplefilter("always")

    def __exit__(self, *exc: object) -> None:
        self._catcher.__exit__(*exc)
        bad = [w for w in self._caught if issubclass(w.category, PluginLoadWarning)]
        assert not bad, [str(w.message) for w in bad]


@pytest.mark.asyncio
async def test_plugins_are_imported_off_the_event_loop(make_plugin: PluginFactory) -> None:
    """A plugin whose import takes a while (a big client library) does not stall the event loop."""
    make_plugin("""
        import time
        import vectorknobs
        time.sleep(0.6)
        @vectorknobs.hookimpl
        def register_embedders(register):
            register(vectorknobs.HashingEmbedder, name="slow-import")
    """)
    ticks = 0

    async def heartbeat() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            ticks += 1

    beat = asyncio.create_task(heartbeat())
    async with vk.connect("memory://") as store:
        assert await store.count() == 0
    beat.cancel()
    assert get_registry().is_loaded
    assert ticks >= 10  # the 0.6 s import ran while the loop kept ticking (about 30 ticks)
