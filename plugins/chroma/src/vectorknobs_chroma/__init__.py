"""vectorknobs-chroma: the ``chroma://`` store (embedded) and ``chroma+http://`` (a Chroma server).

>>> import vectorknobs as vk
>>> async def main():
...     async with vk.connect("chroma:///var/data/chroma?collection=docs") as store:
...         await store.create(vk.Record({"text": "hi", "embedding": vk.VectorField([1.0, 0.0])}))
"""

from vectorknobs import hookimpl
from vectorknobs.plugins import StoreRegistrar

from vectorknobs_chroma.store import HTTP_SCHEME, ChromaStore

__all__ = ["ChromaStore", "register_stores"]


@hookimpl
def register_stores(register: StoreRegistrar) -> None:
    register(ChromaStore, name="chroma", schemes=(HTTP_SCHEME,))
