"""Files into a store: text, Markdown and JSONL, chunked, embedded in batches, re-ingested incrementally.

``await ingest(store, ["docs/"], embedding_fn="hash")`` stores one record per chunk: ``text``, ``source``
(the file), ``chunk`` (its number in the file) and ``title`` (the Markdown heading it sits under, else
the file name), with id ``"<source>#<chunk>"``. A JSONL line is one record: its ``text`` key is the text,
``id`` its id, every other key a field. Ingesting again embeds only chunks whose text changed, and
deletes chunks a shortened file no longer has.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vectorknobs.errors import InvalidRecordError, SourceTextError, ValidationError
from vectorknobs.query import DEFAULT_VECTOR_FIELD, EmbeddingFnRef, Query
from vectorknobs.record import Record
from vectorknobs.store import VectorStore
from vectorknobs.sync._flow import Progress, check_batch_size, run_pipeline
from vectorknobs.sync.synchronizer import VectorTextSynchronizer

TEXT_SUFFIXES = (".txt", ".text")
MARKDOWN_SUFFIXES = (".md", ".markdown")
JSONL_SUFFIXES = (".jsonl", ".ndjson")
SUFFIXES = TEXT_SUFFIXES + MARKDOWN_SUFFIXES + JSONL_SUFFIXES

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass
class IngestResult:
    files: int = 0
    chunks: int = 0  #: records made from the files
    embedded: int = 0  #: chunks whose text was new or changed
    unchanged: int = 0  #: chunks stored before, exactly as now: not embedded or written again
    deleted: int = 0  #: chunks of earlier versions of the files that no longer exist
    embed_seconds: float = 0.0
    elapsed: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"files": self.files, "chunks": self.chunks, "embedded": self.embedded, "unchanged": self.unchanged,
                "deleted": self.deleted, "embed_seconds": round(self.embed_seconds, 6),
                "elapsed": round(self.elapsed, 6)}


# -- finding and reading files ---------------------------------------------------------------------------


def find_files(paths: Sequence[str | Path]) -> list[Path]:
    """The files to ingest: each file given, and every text, Markdown or JSONL file under each directory
    (hidden ones skipped), sorted."""
    found: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES
                                and not any(part.startswith(".") for part in p.relative_to(path).parts)))
        elif path.is_file():
            if path.suffix.lower() not in SUFFIXES:
                raise ValidationError(f"cannot ingest {path}: not a text, Markdown or JSONL file "
                                      f"({', '.join(SUFFIXES)})")
            found.append(path)
        else:
            raise ValidationError(f"cannot ingest {path}: no such file or directory")
    return list(dict.fromkeys(found))


def chunk_text(text: str, size: int = 1000, overlap: int = 100) -> list[str]:
    """``text`` in chunks of at most ``size`` characters, broken at paragraphs, then sentences, then words;
    each chunk starts with up to ``overlap`` characters of the one before it (whole words)."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 20:
        raise ValidationError(f"chunk size must be an int >= 20, got {size!r}")
    if isinstance(overlap, bool) or not isinstance(overlap, int) or not 0 <= overlap <= size // 2:
        raise ValidationError(f"chunk overlap must be an int from 0 to half the chunk size, got {overlap!r}")
    chunks: list[str] = []
    current = ""
    for piece, separator in _pieces(text.strip(), size - overlap):
        joined = f"{current}{separator}{piece}" if current else piece
        if len(joined) <= size:
            current = joined
            continue
        chunks.append(current)
        tail = _tail(current, overlap)
        current = f"{tail} {piece}" if tail and len(tail) + 1 + len(piece) <= size else piece
    if current.strip():
        chunks.append(current)
    return chunks


def _pieces(text: str, limit: int) -> Iterator[tuple[str, str]]:
    """Paragraphs (with the separator that goes before them), split further when longer than ``limit``."""
    for raw in re.split(r"\n\s*\n", text):
        paragraph = raw.strip()
        if not paragraph:
            continue
        if len(paragraph) <= limit:
            yield paragraph, "\n\n"
            continue
        first = True
        for sentence in _SENTENCE_END.split(paragraph):
            for part in _split_long(sentence, limit):
                yield part, "\n\n" if first else " "
                first = False


def _split_long(sentence: str, limit: int) -> Iterator[str]:
    if len(sentence) <= limit:
        yield sentence
        return
    line = ""
    for whole in sentence.split():
        word = whole
        while len(word) > limit:  # a "word" longer than a chunk: cut it
            if line:
                yield line
                line = ""
            yield word[:limit]
            word = word[limit:]
        if line and len(line) + 1 + len(word) > limit:
            yield line
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        yield line


def _tail(text: str, overlap: int) -> str:
    if overlap <= 0 or len(text) <= overlap:
        return "" if overlap <= 0 else text
    cut = text[-overlap:]
    space = cut.find(" ")
    return cut[space + 1:] if 0 <= space < len(cut) - 1 else cut


def markdown_sections(text: str) -> list[tuple[str | None, str]]:
    """``(heading, text)`` for each section of a Markdown document (the text includes its heading line);
    a ``#`` inside a fenced code block is not a heading."""
    sections: list[tuple[str | None, list[str]]] = [(None, [])]
    fenced = False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        heading = None if fenced else _HEADING.match(line)
        if heading:
            sections.append((heading.group(2), [line]))
        else:
            sections[-1][1].append(line)
    return [(title, "\n".join(lines)) for title, lines in sections if "\n".join(lines).strip()]


def file_records(path: Path, *, text_field: str = "text", chunk_size: int = 1000,
                 chunk_overlap: int = 100) -> list[Record]:
    """The records one file makes (blocking: reads the file)."""
    source = path.as_posix()
    try:
        content = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValidationError(f"cannot ingest {source}: it is not UTF-8 text ({err})") from None
    except OSError as err:
        raise ValidationError(f"cannot ingest {source}: {err}") from None
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return _jsonl_records(content, source, text_field, chunk_size, chunk_overlap)
    if suffix in MARKDOWN_SUFFIXES:
        sections = markdown_sections(content)
        document_title = next((title for title, _ in sections if title), path.stem)
    else:
        sections, document_title = [(None, content)], path.stem
    records: list[Record] = []
    for title, body in sections:
        for text in chunk_text(body, chunk_size, chunk_overlap):
            n = len(records)
            records.append(Record({text_field: text, "source": source, "chunk": n, "title": title or document_title},
                                  id=f"{source}#{n}"))
    return records


def _jsonl_records(content: str, source: str, text_field: str, size: int, overlap: int) -> list[Record]:
    records: list[Record] = []
    for number, line in enumerate(content.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{source}:{number}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValidationError(f"{where}: not a JSON object ({err.msg})") from None
        if not isinstance(data, dict):
            raise ValidationError(f"{where}: expected a JSON object per line, got {type(data).__name__}")
        text = data.pop(text_field, None)
        if not isinstance(text, str):
            raise SourceTextError(f"{where}: needs a text field {text_field!r} holding a string")
        raw_id = data.pop("id", None)
        if raw_id is not None and not isinstance(raw_id, (str, int)):
            raise InvalidRecordError(f"{where}: 'id' must be a string or an integer, got {raw_id!r}")
        record_id = str(raw_id) if raw_id is not None else where
        data.setdefault("source", source)
        parts = chunk_text(text, size, overlap) or [text]
        try:
            for n, part in enumerate(parts):
                extra = {"chunk": n, "parent": record_id} if len(parts) > 1 else {}
                records.append(Record({**data, **extra, text_field: part},
                                      id=f"{record_id}#{n}" if len(parts) > 1 else record_id))
        except ValidationError as err:  # a bad field name or value: say which line
            raise type(err)(f"{where}: {err}") from None
    return records


# -- storing ---------------------------------------------------------------------------------------------


@dataclass
class _Batch:
    records: list[Record]
    bytes_done: int
    finished: list[tuple[str, int]] = field(default_factory=list)  # (source, chunks) of files now complete


async def ingest(
    store: VectorStore,
    paths: Sequence[str | Path],
    embedding_fn: EmbeddingFnRef = "hash",
    *,
    text_field: str = "text",
    vector_field: str = DEFAULT_VECTOR_FIELD,
    chunk_size: int = 1000,
    chunk_overlap: int = 100,
    batch_size: int = 64,
    progress_callback: Progress | None = None,
) -> IngestResult:
    """Store the chunks of every file under ``paths``, embedded ``batch_size`` at a time (see the module doc).

    ``progress_callback(bytes_done, bytes_total)`` after each stored batch.
    """
    check_batch_size(batch_size)
    chunk_text("x" * 20, chunk_size, chunk_overlap)  # check the sizes before reading anything
    started = time.monotonic()
    files = find_files(paths)
    sizes = {f: f.stat().st_size for f in files}
    total = sum(sizes.values())
    sync = VectorTextSynchronizer(store, embedding_fn, [text_field], vector_field, batch_size=batch_size)
    result = IngestResult(files=len(files))

    async def batches() -> AsyncIterator[_Batch]:
        pending: list[Record] = []
        done = 0
        finished: list[tuple[str, int]] = []
        for path in files:
            records = await asyncio.to_thread(file_records, path, text_field=text_field, chunk_size=chunk_size,
                                              chunk_overlap=chunk_overlap)
            result.chunks += len(records)
            for record in records:
                pending.append(record)
                if len(pending) == batch_size:
                    yield _Batch(pending, done, finished)
                    pending, finished = [], []
            done += sizes[path]
            if path.suffix.lower() not in JSONL_SUFFIXES:
                finished.append((path.as_posix(), len(records)))
        yield _Batch(pending, done, finished)

    async def embed(batch: _Batch) -> _Batch:
        stored = await store.bulk_read([r.key for r in batch.records]) if batch.records else []
        changed = []
        for record, before in zip(batch.records, stored, strict=True):
            if before is not None and vector_field in before.fields:
                record[vector_field] = before.fields[vector_field]  # kept if the text is the same
                if record == before and sync.is_current(record):
                    result.unchanged += 1
                    continue
            changed.append(record)
        result.embedded += sum(1 for record in changed if not sync.is_current(record))
        started_embedding = time.perf_counter()
        batch.records = await sync.sync_records(changed)
        result.embed_seconds += time.perf_counter() - started_embedding
        return batch

    async def write(batch: _Batch) -> None:
        if batch.records:
            await store.bulk_upsert(batch.records)
        for source, count in batch.finished:
            stale = await store.search(Query().filter("source", "eq", source).filter("chunk", "gte", count))
            result.deleted += await store.bulk_delete([r.key for r in stale])
        if progress_callback is not None:
            progress_callback(batch.bytes_done, total)

    await run_pipeline(batches(), [embed, write])
    result.elapsed = time.monotonic() - started
    return result
