"""vectorknobs-example-plugin: the ``jsondir://`` store, a complete third-party vectorknobs plugin.

The entry point ``[project.entry-points.vectorknobs] example = "vectorknobs_example"`` names this
module; vectorknobs imports it on first use and calls its hook implementations::

    store = await vectorknobs.connect("jsondir:///var/data/notes")
"""

from __future__ import annotations

import vectorknobs
from vectorknobs.plugins import StoreRegistrar

from vectorknobs_example.store import JsonDirStore

__all__ = ["JsonDirStore", "register_stores"]


@vectorknobs.hookimpl
def register_stores(register: StoreRegistrar) -> None:
    register(JsonDirStore, name="jsondir")
