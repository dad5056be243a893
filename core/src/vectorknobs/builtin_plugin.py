"""The core's own plugin: the ``memory`` store and the ``hash`` embedder, registered like any other."""

from __future__ import annotations

from vectorknobs.embedders import HashingEmbedder
from vectorknobs.hookspecs import hookimpl
from vectorknobs.plugins import EmbedderRegistrar, StoreRegistrar
from vectorknobs.stores.memory import MemoryStore


@hookimpl
def register_stores(register: StoreRegistrar) -> None:
    register(MemoryStore, name="memory", schemes=("mem",))


@hookimpl
def register_embedders(register: EmbedderRegistrar) -> None:
    register(HashingEmbedder, name="hash", aliases=("hashing",))
