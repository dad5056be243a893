"""vectorknobs-NAME: the ``NAME://`` store, over ENGINE.

    store = await vectorknobs.connect("NAME://...")
"""

from __future__ import annotations

import vectorknobs
from vectorknobs.plugins import StoreRegistrar

from vectorknobs_NAME.store import CLASSNAMEStore

__all__ = ["CLASSNAMEStore", "register_stores"]


@vectorknobs.hookimpl
def register_stores(register: StoreRegistrar) -> None:
    # schemes: every config-string scheme this store answers (e.g. "NAME+http"); name is one already
    register(CLASSNAMEStore, name="NAME", schemes=())
