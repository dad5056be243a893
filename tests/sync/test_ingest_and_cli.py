"""Ingesting files (chunking, Markdown, JSONL, incremental re-ingest) and the ingest / search / migrate / sync
commands: --help, --json, exit codes, the TTY-only progress bar, and the quickstart."""

from __future__ import annotations

import itertools
import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import vectorknobs as vk
from vectorknobs import cli
from vectorknobs.ingest import chunk_text, file_records, find_files, ingest, markdown_sections
from vectorknobs.progress import ProgressBar

ROOT = Path(__file__).resolve().parents[2]
ESSAY = "\n\n".join(f"Paragraph {i} talks about topic {i}. It has a second sentence here." for i in range(40))


# -- chunking ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "overlap"), [(200, 0), (200, 50), (1000, 100), (60, 30)])
def test_chunks_are_bounded_cover_the_text_and_overlap(size: int, overlap: int) -> None:
    chunks = chunk_text(ESSAY, size, overlap)
    assert all(len(c) <= size for c in chunks)
    words = ESSAY.split()
    found = " ".join(chunks).split()
    assert set(found) == set(words)  # nothing lost
    assert len(found) >= len(words)
    if overlap:
        assert all(a.split()[-1] in b for a, b in itertools.pairwise(chunks))


def test_chunking_breaks_at_paragraphs_then_sentences_then_words() -> None:
    assert chunk_text("one\n\ntwo", 100, 0) == ["one\n\ntwo"]
    assert chunk_text("a" * 30 + "\n\n" + "b" * 30, 40, 0) == ["a" * 30, "b" * 30]
    assert chunk_text("First sentence is here. Second one follows it.", 30, 0) == [
        "First sentence is here.", "Second one follows it."]
    assert chunk_text("x" * 50, 20, 0) == ["x" * 20, "x" * 20, "x" * 10]
    assert chunk_text("   \n\n  ", 100, 0) == []
    with pytest.raises(vk.ValidationError, match="chunk overlap must be"):
        chunk_text("x", 100, 60)
    with pytest.raises(vk.ValidationError, match="chunk size must be an int >= 20"):
        chunk_text("x", 5, 0)


def test_markdown_sections_follow_headings_but_not_code() -> None:
    text = "intro\n# Title\nbody\n```\n# not a heading\n```\n## Sub ##\nmore"
    assert markdown_sections(text) == [
        (None, "intro"), ("Title", "# Title\nbody\n```\n# not a heading\n```"), ("Sub", "## Sub ##\nmore")]


def test_file_records_for_each_format(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# Guide\nStart here.\n## Install\npip install it")
    (tmp_path / "b.txt").write_text("plain text")
    (tmp_path / "c.jsonl").write_text('{"id": 7, "text": "seven", "lang": "en"}\n\n{"text": "no id"}\n')
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "x.md").write_text("skipped")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    files = find_files([tmp_path])
    assert [f.name for f in files] == ["a.md", "b.txt", "c.jsonl"]
    md = file_records(files[0])
    assert [(r.key.split("/")[-1], r["title"], r["chunk"]) for r in md] == [("a.md#0", "Guide", 0),
                                                                           ("a.md#1", "Install", 1)]
    assert md[1]["text"] == "## Install\npip install it"
    assert file_records(files[1])[0].values() == {"text": "plain text", "source": files[1].as_posix(), "chunk": 0,
                                                  "title": "b"}
    seven, no_id = file_records(files[2])
    assert (seven.key, seven["text"], seven["lang"]) == ("7", "seven", "en")
    assert no_id.key == f"{files[2].as_posix()}:3"
    with pytest.raises(vk.ValidationError, match="not a text, Markdown or JSONL file"):
        find_files([tmp_path / "image.png"])
    with pytest.raises(vk.ValidationError, match="no such file"):
        find_files([tmp_path / "nope"])


@pytest.mark.parametrize(("line", "error", "message"), [
    ("[1, 2]", vk.ValidationError, r"c.jsonl:1: expected a JSON object per line, got list"),
    ("{oops", vk.ValidationError, r"c.jsonl:1: not a JSON object"),
    ('{"body": "x"}', vk.SourceTextError, r"c.jsonl:1: needs a text field 'text'"),
    ('{"text": "x", "bad name": 1}', vk.InvalidNameError, r"c.jsonl:1: invalid field name 'bad name'"),
])
def test_bad_jsonl_lines_are_typed_errors_naming_the_line(tmp_path: Path, line: str, error: type[Exception],
                                                          message: str) -> None:
    (tmp_path / "c.jsonl").write_text(line + "\n")
    with pytest.raises(error, match=message):
        file_records(tmp_path / "c.jsonl")


@pytest.mark.asyncio
async def test_ingest_is_incremental(store: vk.VectorStore, tmp_path: Path, kit: Any) -> None:
    doc = tmp_path / "essay.txt"
    doc.write_text(ESSAY)
    embedder = kit.Counting()
    progress: list[tuple[int, int]] = []
    first = await ingest(store, [tmp_path], embedder, chunk_size=300, chunk_overlap=0, batch_size=4,
                         progress_callback=lambda done, total: progress.append((done, total)))
    assert first.chunks == first.embedded == len(embedder.texts) > 8
    assert progress[-1] == (doc.stat().st_size, doc.stat().st_size)
    again = await ingest(store, [tmp_path], embedder, chunk_size=300, chunk_overlap=0, batch_size=4)
    assert (again.embedded, again.unchanged) == (0, first.chunks)
    doc.write_text(ESSAY.replace("Paragraph 3 ", "Section three ").split("Paragraph 20")[0])
    shorter = await ingest(store, [tmp_path], embedder, chunk_size=300, chunk_overlap=0, batch_size=4)
    assert shorter.embedded == 1
    assert shorter.deleted == first.chunks - shorter.chunks > 0
    assert await store.count() == shorter.chunks
    hits = await store.search(vk.Query().near_text("section three", embedding_fn=embedder, k=1))
    assert "Section three" in (hits[0].source_text or "")


# -- the commands -------------------------------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("name", ["ingest", "search", "migrate", "sync"])
def test_every_command_has_help(capsys: pytest.CaptureFixture[str], name: str) -> None:
    code, out, _ = run(capsys, name, "--help")
    assert code == 0
    assert out.startswith(f"usage: vectorknobs {name}")
    assert "--json" in out


LIBRARY = {
    "cats.md": "# Cats\nCats sleep most of the day and purr when content.\n\n## Food\nCats eat fish and meat.",
    "databases.md": "# Databases\nPostgreSQL stores rows in tables and answers SQL queries.",
    "gardens.txt": "Tomatoes grow best in full sun with regular watering.",
}


def test_ingest_search_sync_migrate(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    library = tmp_path / "library"
    library.mkdir()
    for name, text in LIBRARY.items():
        (library / name).write_text(text)
    store = f"faiss://{tmp_path / 'index'}"
    code, out, err = run(capsys, "ingest", str(library), "--store", store, "--json")
    assert code == 0, err
    ingested = json.loads(out)
    assert (ingested["files"], ingested["chunks"], ingested["embedded"]) == (3, 4, 4)
    assert err == ""  # no progress bar on a pipe
    code, out, _ = run(capsys, "ingest", str(library), "--store", store)
    assert code == 0
    assert "4 chunk(s): 0 embedded, 4 unchanged" in out
    code, out, _ = run(capsys, "search", "which tables answer SQL queries", "--store", store, "-k", "3", "--json")
    results = json.loads(out)["results"]
    assert code == 0
    assert len(results) == 3
    assert results[0]["id"] == f"{(library / 'databases.md').as_posix()}#0"
    assert results[0]["source_text"] == LIBRARY["databases.md"]
    assert results[0]["fields"]["title"] == "Databases"
    assert results[0]["score"] >= results[1]["score"] >= results[2]["score"]
    code, out, _ = run(capsys, "search", "what do cats eat", "--store", store, "-k", "1")
    assert code == 0
    score, record_id = out.splitlines()[0].split()[:2]
    assert 0 < float(score) <= 1
    assert record_id.endswith("cats.md#1")
    assert out.splitlines()[1].strip() == "## Food Cats eat fish and meat."
    code, out, _ = run(capsys, "sync", "--store", store, "--json")
    assert code == 0
    assert json.loads(out)["embedded"] == 0
    target = f"memory://{tmp_path / 'copy'}"
    code, out, _ = run(capsys, "migrate", "--from", store, "--to", target, "--json")
    assert code == 0
    assert json.loads(out)["written_records"] == 4
    assert not list(Path.cwd().glob(".vectorknobs-migrate-*.json"))  # the default checkpoint is gone when done
    code, out, _ = run(capsys, "search", "cats", "--store", target, "--json", "--filter", json.dumps({"title": "Cats"}))
    assert code == 0
    assert {r["id"].split("/")[-1] for r in json.loads(out)["results"]} == {"cats.md#0"}


def test_exit_codes(capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cli.STORE_ENV, raising=False)
    code, _, err = run(capsys, "search", "x")
    assert code == 2
    assert "--store" in err
    code, _, err = run(capsys, "search", "x", "--store", "memory://", "--filter", "{")
    assert code == 2
    assert "--filter must be JSON" in err
    code, _, err = run(capsys, "ingest", str(tmp_path / "missing"), "--store", "memory://")
    assert code == 1
    assert "no such file or directory" in err
    code, _, err = run(capsys, "ingest", str(ROOT / "docs"), "--store", "memory://", "--embedder", "nope")
    assert code == 1
    assert "no embedder named 'nope'" in err
    code, _, err = run(capsys, "search", "x", "--store", "memory://")
    assert code == 2
    assert "cannot tell which embedder made the vectors in 'embedding'; give --embedder" in err
    code, _, err = run(capsys, "search", "x", "--store", "memory://", "--embedder", "hash")
    assert code == 1
    assert "no vector field 'embedding' in this store" in err
    code, _, err = run(capsys, "ingest", str(ROOT / "docs"), "--store", "memory://", "-o", "dimensions")
    assert code == 2
    assert "is not KEY=VALUE" in err
    records = tmp_path / "r.jsonl"
    records.write_text('{"id": "a", "text": "fine"}\n{"id": "b", "body": "no text"}\n')
    store = f"memory://{tmp_path / 'm'}"
    monkeypatch.setenv(cli.STORE_ENV, store)
    code, _, err = run(capsys, "ingest", str(records))
    assert code == 1
    assert "r.jsonl:2: needs a text field 'text'" in err
    records.write_text('{"id": "a", "text": "fine"}\n{"id": "b", "text": "also fine", "n": 1}\n')
    assert run(capsys, "ingest", str(records))[0] == 0
    code, out, err = run(capsys, "sync", "--text-field", "n", "--json")  # n is not text: reported, exit 1
    assert code == 1
    assert json.loads(out)["failures"][0]["kind"] == "SourceTextError"


def test_progress_bar_draws_only_on_a_terminal() -> None:
    leader, follower = pty.openpty()
    with os.fdopen(follower, "w") as terminal:
        with ProgressBar("ingest", 200, stream=terminal, interval=0) as bar:
            bar.update(50)
            bar.update(200)
        drawn = ""
        while not drawn.endswith("\n") and select.select([leader], [], [], 5)[0]:  # a pty may split the lines
            drawn += os.read(leader, 4096).decode()
    os.close(leader)
    assert "\ringest [" in drawn
    assert " 25% 50/200" in drawn
    assert "100% 200/200" in drawn
    assert drawn.endswith("\n")
    bar = ProgressBar("x", 10, stream=sys.stdout)  # captured by pytest: not a terminal
    assert not bar.enabled
    assert ProgressBar("copy", None).line().startswith("copy 0 ")


def test_the_console_script_and_python_m(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "vectorknobs"
    done = subprocess.run([str(script), "ingest", str(ROOT / "docs" / "guide.md"), "--store",
                           f"memory://{tmp_path / 'm'}", "--json"], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["files"] == 1


def test_the_quickstart_ingests_the_docs_and_searches_them(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py"), "--store", "memory://"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr
    assert "ingested" in done.stdout
    assert "chunks" in done.stdout
    scores = [line.split()[0] for line in done.stdout.splitlines() if line.startswith("  0.")]
    assert len(scores) >= 4
    assert all(0 < float(s) <= 1 for s in scores)
