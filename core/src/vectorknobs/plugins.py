"""Plugin discovery and the typed registry. This is the only module that talks to pluggy.

Plugins load lazily, once, from the entry-point group ``vectorknobs``. Two environment variables limit
them (comma-separated entry-point or distribution names):

* ``VECTORKNOBS_PLUGINS`` — load only these (set it empty to load none: a hermetic run);
* ``VECTORKNOBS_DISABLE_PLUGINS`` — never load these.

A plugin that fails to import or to register produces a ``PluginLoadWarning`` naming its
distribution; the core and the other plugins carry on.
"""

from __future__ import annotations

import os
import re
import threading
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

from vectorknobs import hookspecs
from vectorknobs.config import SCHEME_PATTERN
from vectorknobs.errors import EmbeddingError, PluginError, UnknownBackendError

if TYPE_CHECKING:
    from vectorknobs.embedders import EmbeddingFunction
    from vectorknobs.store import VectorStore, WriteEvent

#: what a write listener is: ``listener(event)``, returning None or an awaitable of None
WriteListener = Callable[["WriteEvent"], Any]

ENTRY_POINT_GROUP = "vectorknobs"
ALLOW_ENV = "VECTORKNOBS_PLUGINS"
DENY_ENV = "VECTORKNOBS_DISABLE_PLUGINS"

#: first-party schemes and the extra that installs them (``pip install vectorknobs[<extra>]``)
KNOWN_EXTRAS = {
    "faiss": "faiss",
    "pgvector": "pgvector",
    "pgvector+embedded": "pgvector",
    "postgres": "pgvector",
    "postgresql": "pgvector",
    "chroma": "chroma",
    "chroma+http": "chroma",
}


class PluginLoadWarning(UserWarning):
    """A plugin could not be loaded; the message names its distribution."""


class StoreRegistrar(Protocol):
    def __call__(
        self, store_class: type[VectorStore], *, name: str, schemes: Iterable[str] = (), aliases: Iterable[str] = ()
    ) -> None: ...


class EmbedderRegistrar(Protocol):
    def __call__(
        self, factory: Callable[..., EmbeddingFunction], *, name: str, aliases: Iterable[str] = ()
    ) -> None: ...


class WriteListenerRegistrar(Protocol):
    def __call__(self, listener: WriteListener) -> None: ...


@dataclass(frozen=True)
class StoreInfo:
    name: str
    store_class: type[VectorStore]
    schemes: tuple[str, ...]
    plugin: str
    distribution: str | None
    version: str | None


@dataclass(frozen=True)
class EmbedderInfo:
    name: str
    factory: Callable[..., EmbeddingFunction]
    aliases: tuple[str, ...]
    plugin: str
    distribution: str | None


@dataclass(frozen=True)
class _Source:
    plugin: str
    distribution: str | None
    version: str | None


class Registry:
    """Stores and embedders offered by the loaded plugins."""

    def __init__(self) -> None:
        self._manager = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self._manager.add_hookspecs(hookspecs)
        self._sources: dict[str, _Source] = {}
        self._loaded = False
        self._lock = threading.Lock()
        self._stores: dict[str, StoreInfo] = {}
        self._embedders: dict[str, EmbedderInfo] = {}
        self._listeners: tuple[tuple[str, WriteListener], ...] = ()  # replaced whole: writers read it unlocked

    # -- loading ------------------------------------------------------------------------------
    def add_plugin(self, module: ModuleType | object, name: str, distribution: str | None = None,
                   version: str | None = None) -> None:
        """Register a plugin object by hand (tests, applications embedding their own store)."""
        with self._lock:
            self._manager.register(module, name=name)
            self._sources[name] = _Source(name, distribution, version)
            if self._loaded:
                self._collect_from(name)

    def remove_plugin(self, name: str) -> None:
        """Unregister a plugin added with ``add_plugin``, with every store, embedder and listener it registered."""
        with self._lock:
            self._manager.unregister(name=name)
            self._sources.pop(name, None)
            self._stores = {k: v for k, v in self._stores.items() if v.plugin != name}
            self._embedders = {k: v for k, v in self._embedders.items() if v.plugin != name}
            self._listeners = tuple(item for item in self._listeners if item[0] != name)

    @property
    def is_loaded(self) -> bool:
        """Have the entry points been discovered (by ``load`` or a first lookup)?"""
        return self._loaded

    def load(self) -> None:
        """Discover entry points once; later calls do nothing."""
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            from vectorknobs import builtin_plugin

            self._manager.register(builtin_plugin, name="vectorknobs")
            self._sources["vectorknobs"] = _Source("vectorknobs", "vectorknobs", _version("vectorknobs"))
            for entry_point in _selected_entry_points():
                dist = entry_point.dist.name if entry_point.dist else None
                try:
                    plugin = entry_point.load()
                    self._manager.register(plugin, name=entry_point.name)
                except Exception as err:  # noqa: BLE001 - a broken plugin must not break the core
                    _warn(entry_point.name, dist, "failed to load", err)
                    continue
                self._sources[entry_point.name] = _Source(
                    entry_point.name, dist, entry_point.dist.version if entry_point.dist else None
                )
            for name in list(self._sources):
                self._collect_from(name)
            self._loaded = True

    def _collect_from(self, plugin_name: str) -> None:
        plugin = self._manager.get_plugin(plugin_name)
        source = self._sources[plugin_name]
        for hook_name, collect in (("register_stores", self._store_registrar),
                                   ("register_embedders", self._embedder_registrar),
                                   ("register_write_listeners", self._listener_registrar)):
            for impl in getattr(self._manager.hook, hook_name).get_hookimpls():
                if impl.plugin is not plugin:
                    continue
                try:
                    impl.function(register=collect(source))
                except Exception as err:  # noqa: BLE001
                    _warn(plugin_name, source.distribution, f"failed in {hook_name}", err)

    def _store_registrar(self, source: _Source) -> StoreRegistrar:
        def register(store_class: type[VectorStore], *, name: str, schemes: Iterable[str] = (),
                     aliases: Iterable[str] = ()) -> None:
            from vectorknobs.store import VectorStore

            if not (isinstance(store_class, type) and issubclass(store_class, VectorStore)):
                what = repr(store_class) if isinstance(store_class, type) else f"a {type(store_class).__name__}"
                raise PluginError(f"plugin {source.plugin!r} registered {what}, not a VectorStore subclass")
            all_schemes = tuple(dict.fromkeys([name, *_names(schemes, "schemes"), *_names(aliases, "aliases")]))
            for scheme in all_schemes:  # a scheme parse_config cannot produce could never be connected to
                if not isinstance(scheme, str) or not SCHEME_PATTERN.fullmatch(scheme):
                    raise PluginError(
                        f"plugin {source.plugin!r} registered scheme {scheme!r}: schemes are lower-case, start with "
                        "a letter and hold only letters, digits, '+', '-' and '.'"
                    )
            info = StoreInfo(name, store_class, all_schemes, source.plugin, source.distribution, source.version)
            for scheme in all_schemes:  # check them all first: a conflict registers none of them
                taken = self._stores.get(scheme)
                if taken is not None and taken.store_class is not store_class:
                    raise PluginError(
                        f"scheme {scheme!r} of plugin {source.plugin!r} is already taken by {taken.plugin!r}"
                    )
            for scheme in all_schemes:
                self._stores[scheme] = info

        return register

    def _embedder_registrar(self, source: _Source) -> EmbedderRegistrar:
        def register(factory: Callable[..., EmbeddingFunction], *, name: str, aliases: Iterable[str] = ()) -> None:
            if not callable(factory):
                raise PluginError(f"plugin {source.plugin!r} registered embedder {name!r} as {factory!r}: not callable")
            info = EmbedderInfo(name, factory, _names(aliases, "aliases"), source.plugin, source.distribution)
            keys = tuple(dict.fromkeys((name, *info.aliases)))
            for key in keys:  # like schemes: a second plugin never silently replaces an embedder
                taken = self._embedders.get(key)
                if taken is not None and taken.factory is not factory:
                    raise PluginError(
                        f"embedder name {key!r} of plugin {source.plugin!r} is already taken by {taken.plugin!r}"
                    )
            for key in keys:
                self._embedders[key] = info

        return register

    def _listener_registrar(self, source: _Source) -> WriteListenerRegistrar:
        def register(listener: WriteListener) -> None:
            if not callable(listener):
                raise PluginError(f"plugin {source.plugin!r} registered write listener {listener!r}: not callable")
            self._listeners = (*self._listeners, (source.plugin, listener))

        return register

    # -- lookups ------------------------------------------------------------------------------
    def store_for_scheme(self, scheme: str) -> StoreInfo:
        self.load()
        info = self._stores.get(scheme)
        if info is not None:
            return info
        installed = ", ".join(f"{s.name} ({', '.join(x + '://' for x in s.schemes)})" for s in self.stores())
        extra = KNOWN_EXTRAS.get(scheme)
        hint = (f"install it with: pip install 'vectorknobs[{extra}]'" if extra
                else "no first-party plugin provides it; install the third-party plugin that does")
        raise UnknownBackendError(f"no store plugin answers {scheme}://; installed: {installed}; {hint}")

    def stores(self) -> list[StoreInfo]:
        self.load()
        return sorted({id(s): s for s in self._stores.values()}.values(), key=lambda s: s.name)

    def embedder(self, name: str, **options: Any) -> EmbeddingFunction:
        self.load()
        info = self._embedders.get(name)
        if info is None:
            known = ", ".join(sorted(self._embedders)) or "none"
            raise EmbeddingError(f"no embedder named {name!r}; registered: {known}")
        return info.factory(**options)

    def embedders(self) -> list[EmbedderInfo]:
        self.load()
        return sorted({id(e): e for e in self._embedders.values()}.values(), key=lambda e: e.name)

    def write_listeners(self) -> tuple[tuple[str, WriteListener], ...]:
        """``(plugin name, listener)`` for every registered write listener, in registration order."""
        self.load()
        return self._listeners


def _selected_entry_points() -> list[metadata.EntryPoint]:
    allow = os.environ.get(ALLOW_ENV)
    deny = {_canonical(n) for n in os.environ.get(DENY_ENV, "").split(",") if n.strip()}
    allowed = None if allow is None else {_canonical(n) for n in allow.split(",") if n.strip()}
    chosen = []
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        names = {_canonical(entry_point.name), _canonical(entry_point.dist.name) if entry_point.dist else ""}
        if names & deny or (allowed is not None and not names & allowed):
            continue
        chosen.append(entry_point)
    return chosen


def _names(names: Iterable[str], what: str) -> tuple[str, ...]:
    if isinstance(names, str):  # iterating "faiss" would register the schemes f, a, i, s
        raise PluginError(f"{what} must be a tuple of names, not the str {names!r}")
    return tuple(names)


def _canonical(name: str) -> str:
    """Distribution names compare like pip compares them: ``vectorknobs_FAISS`` is ``vectorknobs-faiss``."""
    return re.sub(r"[-_.]+", "-", name.strip()).lower()


def _warn(plugin: str, distribution: str | None, what: str, err: BaseException) -> None:
    warnings.warn(
        f"vectorknobs plugin {plugin!r} (distribution {distribution or 'unknown'}) {what}: "
        f"{type(err).__name__}: {err}; it is skipped (reinstall or upgrade it, or add it to {DENY_ENV})",
        PluginLoadWarning,
        stacklevel=3,
    )


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


_registry: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry (created on first use; plugins load on first lookup)."""
    global _registry  # noqa: PLW0603
    if _registry is None:
        _registry = Registry()
    return _registry


def reset_registry() -> None:
    """Forget loaded plugins so the next lookup discovers them again (tests use this)."""
    global _registry  # noqa: PLW0603
    _registry = None
