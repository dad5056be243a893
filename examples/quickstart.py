"""Quickstart: records with text and vectors in the embedded default store, searched by meaning.

    python3 tasks.py quickstart                 # sets up .venv, then runs this file
    python examples/quickstart.py --store memory://

The default store is Faiss in ./.quickstart/ when vectorknobs-faiss is installed, else the built-in
memory store. Vectors come from the dependency-free 'hash' embedder, so this runs offline.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import shutil
from pathlib import Path

import vectorknobs as vk

DOCS = [
    ("pg", "PostgreSQL with pgvector stores vectors in the same row as the text they came from."),
    ("faiss", "Faiss searches millions of dense vectors quickly with HNSW or IVF indexes."),
    ("chroma", "Chroma is an embedded vector database that many Python users already run."),
    ("sync", "When a document's text changes, its embedding must be computed again."),
    ("filter", "A filtered search returns k results whenever k records match the filter."),
    ("cosine", "Cosine similarity compares the direction of two vectors, ignoring their length."),
]
QUESTIONS = ["which database keeps vectors next to text", "what happens when text changes"]


def default_store() -> str:
    here = Path.cwd() / ".quickstart"
    if importlib.util.find_spec("vectorknobs_faiss") is not None:
        shutil.rmtree(here / "faiss", ignore_errors=True)
        return f"faiss://{here / 'faiss'}"
    return "memory://"


async def main(store_url: str) -> None:
    print(f"store: {store_url}")
    async with vk.connect(store_url) as store:
        records = [vk.Record({"text": text, "topic": topic}, id=topic) for topic, text in DOCS]
        await store.bulk_embed_and_store(records, text_field="text", embedding_fn="hash")
        print(f"stored {await store.count()} records with {store.vector_dimensions()} vectors\n")
        for question in QUESTIONS:
            print(f"? {question}")
            hits = await store.search(vk.Query().near_text(question, embedding_fn="hash", k=2))
            for hit in hits:
                print(f"  {hit.score:.3f}  [{hit.id}] {hit.source_text}")
        only_pg = await store.search(vk.Query().filter("topic", "in", ["pg", "chroma"]).near_text(
            QUESTIONS[0], embedding_fn="hash", k=5))
        print("\nfiltered to topic in (pg, chroma):", [h.id for h in only_pg])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", help="store URL (default: faiss in ./.quickstart, else memory://)")
    args = parser.parse_args()
    asyncio.run(main(args.store or default_store()))
