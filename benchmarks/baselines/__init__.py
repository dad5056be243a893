"""Raw baselines: the same work as the store under test, done directly with the store's own client.

A baseline is a module ``benchmarks.baselines.<name>`` (``--raw <name>``), or any importable module
given by dotted path (``--raw mypkg.mybaseline``), that defines::

    NAME = "faiss"                           # how results name it
    REQUIRES = ("faiss",)                    # modules it imports (a clear error when missing)
    SCHEMES = ("faiss",)                     # store schemes it is the raw client of: the store/raw
                                             # targets apply only to runs against those stores
    TARGETS = (("insert", "bulk insert store/raw", "insert_records_per_second", ">=", 0.85),)
                                             # optional: (id, what, ratio key, op, threshold) replacing
                                             # the default targets (see runner.targets)

    def create(ctx: benchmarks.sides.SideContext) -> benchmarks.sides.Side:
        ...

The returned object implements ``benchmarks.sides.Side`` (all async):

* ``open()``; ``insert(batch)`` for each ``Batch`` (ids, float32 vectors, field columns) and
  ``finish_insert()``: write vectors *and* the record fields, as plainly as that client allows
  (faiss: ``index.add`` + the fields as JSON lines; pgvector: binary ``COPY``; chroma: ``collection.add``).
* ``search(vector, k)``, ``search_batch(vectors, k)`` (the client's batch API when it has one) and
  ``search_filtered(vector, k, {"category": value})`` (the client's own pre-filter), each returning
  the record ids best first, and looking up the hits' text the way an application would.
* ``describe()``: JSON-safe facts (index type and parameters, library version) for the result file.
* ``close()``.

Mirror the store URL: ``ctx.store_url`` / ``ctx.store_settings`` say which index and parameters the store
was asked for (defaults resolved by the store's own option table), so both sides build the same index.
``ctx.options`` holds ``--raw-option key=value`` overrides; ``ctx.workdir`` is an empty directory.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from benchmarks.sides import Side, SideContext

BUILTIN = ("faiss", "pgvector", "langchain_postgres", "chroma")


class BaselineError(RuntimeError):
    """A baseline cannot be found, or what it needs is not installed."""


def load(name: str) -> ModuleType:
    """The baseline module for ``--raw name``."""
    module_name = name if "." in name else f"{__name__}.{name}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name in (module_name, __name__ + "." + name):
            raise BaselineError(
                f"no raw baseline {name!r}; built in: {', '.join(BUILTIN)} (or give a module path)"
            ) from None
        raise BaselineError(f"raw baseline {name!r} needs {err.name!r}: pip install it") from None
    if not callable(getattr(module, "create", None)):
        raise BaselineError(f"{module_name} defines no create(ctx) function")
    return module


def create(name: str, ctx: SideContext) -> Side:
    side = load(name).create(ctx)
    if not isinstance(side, Side):
        raise BaselineError(f"raw baseline {name!r} returned {side!r}, which does not implement benchmarks.sides.Side")
    return side
