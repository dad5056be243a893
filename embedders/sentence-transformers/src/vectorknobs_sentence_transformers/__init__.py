"""vectorknobs-sentence-transformers: real embedding models, chosen by name.

>>> import vectorknobs as vk
>>> async def main():
...     async with vk.connect("memory://") as store:
...         await store.bulk_embed_and_store([vk.Record({"text": "hi"})], "text", embedding_fn="minilm")
"""

from vectorknobs import hookimpl
from vectorknobs.plugins import EmbedderRegistrar

from vectorknobs_sentence_transformers.embedder import SentenceTransformerEmbedder, minilm

__all__ = ["SentenceTransformerEmbedder", "minilm", "register_embedders"]


@hookimpl
def register_embedders(register: EmbedderRegistrar) -> None:
    register(SentenceTransformerEmbedder, name="sentence-transformers", aliases=("st",))
    register(minilm, name="all-MiniLM-L6-v2", aliases=("minilm",))
