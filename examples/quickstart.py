"""Quickstart: ingest this project's own docs/ into the embedded default store and search them by meaning.

    python3 tasks.py quickstart                 # sets up .venv, then runs this file
    python examples/quickstart.py --store memory://

The default store is Faiss in ./.quickstart/ when vectorknobs-faiss is installed, else the built-in memory
store. Vectors come from the dependency-free 'hash' embedder, so this runs offline; pass
``--embedder minilm`` with vectorknobs-sentence-transformers installed for a real model.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import shutil
from pathlib import Path

import vectorknobs as vk
from vectorknobs.ingest import ingest

DOCS = Path(__file__).resolve().parents[1] / "docs"
QUESTIONS = [
    "how do I keep vectors in step when the text changes",
    "how does a plugin register a new store",
    "copy records from faiss to postgres and resume after a crash",
]


def default_store() -> str:
    here = Path.cwd() / ".quickstart"
    if importlib.util.find_spec("vectorknobs_faiss") is not None:
        shutil.rmtree(here / "faiss", ignore_errors=True)
        return f"faiss://{here / 'faiss'}"
    return "memory://"


async def main(store_url: str, embedder: str) -> None:
    print(f"store: {store_url}")
    async with vk.connect(store_url) as store:
        result = await ingest(store, [DOCS], embedder, chunk_size=800)
        print(f"ingested {result.files} files of {DOCS.name}/ as {result.chunks} chunks "
              f"({result.embedded} embedded) in {result.elapsed:.2f}s\n")
        for question in QUESTIONS:
            print(f"? {question}")
            for hit in await store.search(vk.Query().near_text(question, embedding_fn=embedder, k=2)):
                text = " ".join((hit.source_text or "").split())
                print(f"  {hit.score:.3f}  {Path(hit.id).name}  ({hit.record['title']})")
                print(f"         {text[:160]}{'...' if len(text) > 160 else ''}")
            print()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", help="store URL (default: faiss in ./.quickstart, else memory://)")
    parser.add_argument("--embedder", default="hash", help="a registered embedder (default: hash)")
    args = parser.parse_args()
    asyncio.run(main(args.store or default_store(), args.embedder))
