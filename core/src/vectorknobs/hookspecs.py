"""The plugin contract: what a vectorknobs plugin may implement.

A plugin is a module (named by an entry point in group ``vectorknobs``) with functions marked
``@vectorknobs.hookimpl`` whose names match these specs::

    @vectorknobs.hookimpl
    def register_stores(register):
        register(MyStore, name="mystore", schemes=("mystore", "mystore+http"))
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from vectorknobs.plugins import EmbedderRegistrar, StoreRegistrar, WriteListenerRegistrar

hookspec = pluggy.HookspecMarker("vectorknobs")
hookimpl = pluggy.HookimplMarker("vectorknobs")


@hookspec
def register_stores(register: StoreRegistrar) -> None:
    """Called once, at the first ``connect``: call ``register(store_class, name=..., schemes=...,
    aliases=...)`` for each ``VectorStore`` subclass the plugin offers."""


@hookspec
def register_embedders(register: EmbedderRegistrar) -> None:
    """Called once, when an embedder is first looked up by name: call ``register(factory, name=...,
    aliases=...)``; ``factory(**options)`` returns an ``EmbeddingFunction``."""


@hookspec
def register_write_listeners(register: WriteListenerRegistrar) -> None:
    """Called once, when plugins load (or when the plugin is added later with ``Registry.add_plugin``): call
    ``register(listener)`` for each callable to run after every successful write batch on any store. The
    core's ``VectorStore`` calls ``listener(event)`` (sync or async) with a read-only ``WriteEvent`` (store,
    mode, records) once the batch is stored; the store itself does nothing."""
