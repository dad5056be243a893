"""vectorknobs-faiss: the ``faiss://`` store, records in SQLite and vectors in faiss, in one directory.

>>> import vectorknobs as vk
>>> async def main():
...     async with vk.connect("faiss:///var/data/docs?metric=cosine") as store:
...         await store.create(vk.Record({"text": "hi", "embedding": vk.VectorField([1.0, 0.0])}))
"""

from vectorknobs import hookimpl
from vectorknobs.plugins import StoreRegistrar

from vectorknobs_faiss.store import FaissStore

__all__ = ["FaissStore", "register_stores"]


@hookimpl
def register_stores(register: StoreRegistrar) -> None:
    register(FaissStore, name="faiss")
