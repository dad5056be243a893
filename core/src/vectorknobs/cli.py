"""The ``vectorknobs`` command line.

    vectorknobs stores [NAME] [--json]      installed store plugins, or one store in detail
    vectorknobs embedders [NAME] [--json]   registered embedding functions
    vectorknobs ingest PATH... --store URL [--embedder NAME]   files into a store, chunked and embedded
    vectorknobs search TEXT --store URL     records nearest in meaning, with scores and source text
    vectorknobs migrate --from URL --to URL records and vectors from one store to another (resumable)
    vectorknobs sync --store URL [--embedder NAME]             re-embed records whose text changed
    vectorknobs --version

``--store`` defaults to ``$VECTORKNOBS_STORE``; ``--json`` gives machine-readable output. Exit codes: 0
success, 1 a vectorknobs error or records that failed (the message goes to stderr, without a traceback),
2 a usage error, 130 interrupted (Ctrl-C).

Every subcommand is one small function registered with ``@command``; a command that lives in its own
module is added to ``COMMAND_MODULES`` and registers itself the same way on import.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from vectorknobs.capabilities import Capabilities
from vectorknobs.errors import EmbeddingError, VectorknobsError
from vectorknobs.filters import ALL_OPERATORS
from vectorknobs.plugins import EmbedderInfo, PluginLoadWarning, Registry, StoreInfo, get_registry
from vectorknobs.store import COMMON_OPTIONS

PROG = "vectorknobs"

#: modules that define further commands with ``@command`` (imported when the parser is built)
COMMAND_MODULES: tuple[str, ...] = ()

Configure = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], int]


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    configure: Configure
    run: Run


COMMANDS: dict[str, Command] = {}


class UsageError(Exception):
    """A command-line argument is wrong in a way argparse cannot see: exit code 2."""


def command(name: str, help: str, configure: Configure | None = None) -> Callable[[Run], Run]:  # noqa: A002
    """Register ``run(args) -> exit code`` as the subcommand ``name``; ``configure`` adds its arguments."""

    def decorate(run: Run) -> Run:
        COMMANDS[name] = Command(name, help, configure or (lambda parser: None), run)
        return run

    return decorate


def build_parser() -> argparse.ArgumentParser:
    for module in COMMAND_MODULES:
        importlib.import_module(module)
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="One async API for records that carry text and the vectors made from it, over any store.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version('vectorknobs') or 'unknown'}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for cmd in COMMANDS.values():
        sub = subparsers.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        cmd.configure(sub)
        sub.set_defaults(run=cmd.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script passes it to ``sys.exit``)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, --version (0) and usage errors (2) end here
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 2)
    try:
        run: Run = args.run
        return run(args)
    except UsageError as err:
        print(f"{PROG} {args.command}: error: {err}", file=sys.stderr)
        return 2
    except VectorknobsError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`vectorknobs stores | head -1`); silence the flush at exit
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


# -- shared helpers ---------------------------------------------------------------------------------------


def loaded_registry() -> Registry:
    """The registry with plugins loaded; a broken plugin is reported on stderr as a one-line warning."""
    registry = get_registry()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PluginLoadWarning)
        registry.load()
    for warning in caught:
        if issubclass(warning.category, PluginLoadWarning):
            print(f"{PROG}: warning: {warning.message}", file=sys.stderr)
        else:
            warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
    return registry


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns, two spaces apart; the last column is not padded."""
    widths = [max(len(str(row[i])) for row in (headers, *rows)) for i in range(len(headers) - 1)]
    lines = []
    for row in (headers, *rows):
        cells = [str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, str(row[-1])]).rstrip())
    return "\n".join(lines)


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def _version(distribution: str | None) -> str | None:
    if not distribution:
        return None
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _add_listing_arguments(noun: str) -> Configure:
    def configure(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("name", nargs="?", help=f"show only this {noun} (a name, alias or scheme)")
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    return configure


# -- vectorknobs stores -----------------------------------------------------------------------------------


def compact_capabilities(caps: Capabilities) -> str:
    """One line: ``metrics=cosine,dot_product,euclidean filters=all hybrid persistence ... k<=10000``.

    A store's free-form ``extras`` are left to the detailed view (``vectorknobs stores NAME``) and ``--json``.
    """
    metrics = ",".join(sorted(m.value for m in caps.metrics))
    ops = caps.filter_operators
    parts = [
        f"metrics={metrics}{'' if caps.per_query_metric else '(per-collection)'}",
        "filters=all" if ops == ALL_OPERATORS else f"filters={','.join(sorted(op.value for op in ops)) or 'none'}",
    ]
    flags = {
        "hybrid": caps.hybrid_search,
        "sparse": caps.sparse_vectors,
        "persistence": caps.persistence,
        "transactions": caps.transactions,
        "exact": caps.exact_search,
    }
    parts.extend(flag for flag, on in flags.items() if on)
    parts.append(f"dims<={caps.max_dimensions}")
    parts.append(f"k<={caps.max_k}")
    return " ".join(parts)


def _capabilities(info: StoreInfo) -> Capabilities | None:
    caps = getattr(info.store_class, "capabilities", None)
    return caps if isinstance(caps, Capabilities) else None


def _store_options(info: StoreInfo) -> dict[str, dict[str, Any]]:
    options = {**COMMON_OPTIONS, **getattr(info.store_class, "options", {})}
    return {name: {"default": option.default, "help": option.help} for name, option in sorted(options.items())}


def _store_json(info: StoreInfo) -> dict[str, Any]:
    caps = _capabilities(info)
    return {
        "name": info.name,
        "schemes": list(info.schemes),
        "class": f"{info.store_class.__module__}.{info.store_class.__qualname__}",
        "plugin": info.plugin,
        "distribution": info.distribution,
        "version": info.version,
        "capabilities": caps.describe() if caps else None,
        "options": _store_options(info),
    }


def _store_details(info: StoreInfo) -> str:
    caps = _capabilities(info)
    lines = [
        f"name:          {info.name}",
        f"schemes:       {', '.join(s + '://' for s in info.schemes)}",
        f"class:         {info.store_class.__module__}.{info.store_class.__qualname__}",
        f"distribution:  {info.distribution or '-'} {info.version or ''}".rstrip(),
        f"plugin:        {info.plugin}",
        "capabilities:",
    ]
    if caps is None:
        lines.append("  (not declared)")
    else:
        lines.extend(f"  {key}: {_plain(value)}" for key, value in caps.describe().items())
    lines.append("options:")
    for name, option in _store_options(info).items():
        lines.append(f"  {name} (default {_plain(option['default'])}): {option['help']}")
    return "\n".join(lines)


def _plain(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or "none"
    return str(value)


def stores_command(args: argparse.Namespace) -> int:
    registry = loaded_registry()
    stores = registry.stores()
    if args.name is not None:
        stores = [registry.store_for_scheme(args.name)]  # UnknownBackendError: lists what is installed
    if args.json:
        print_json([_store_json(info) for info in stores])
    elif args.name is not None:
        print(_store_details(stores[0]))
    else:
        rows = [
            [
                info.name,
                ",".join(s + "://" for s in info.schemes),
                info.distribution or "-",
                info.version or "-",
                compact_capabilities(caps) if (caps := _capabilities(info)) else "(not declared)",
            ]
            for info in stores
        ]
        print(render_table(["NAME", "SCHEMES", "DISTRIBUTION", "VERSION", "CAPABILITIES"], rows))
    return 0


command("stores", "list the installed store plugins and what each can do", _add_listing_arguments("store"))(
    stores_command
)


# -- vectorknobs embedders --------------------------------------------------------------------------------


def _embedder_json(info: EmbedderInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "aliases": list(info.aliases),
        "plugin": info.plugin,
        "distribution": info.distribution,
        "version": _version(info.distribution),
    }


def embedders_command(args: argparse.Namespace) -> int:
    embedders = loaded_registry().embedders()
    if args.name is not None:
        embedders = [e for e in embedders if args.name in (e.name, *e.aliases)]
        if not embedders:
            known = ", ".join(e.name for e in loaded_registry().embedders()) or "none"
            raise EmbeddingError(f"no embedder named {args.name!r}; registered: {known}")
    if args.json:
        print_json([_embedder_json(info) for info in embedders])
    else:
        rows = [
            [info.name, ",".join(info.aliases) or "-", info.distribution or "-",
             _version(info.distribution) or "-", info.plugin]
            for info in embedders
        ]
        print(render_table(["NAME", "ALIASES", "DISTRIBUTION", "VERSION", "PLUGIN"], rows))
    return 0


command("embedders", "list the registered embedding functions", _add_listing_arguments("embedder"))(
    embedders_command
)


# -- shared by ingest, search, migrate and sync ------------------------------------------------------------

STORE_ENV = "VECTORKNOBS_STORE"


def _add_store_argument(parser: argparse.ArgumentParser, flag: str = "--store", dest: str = "store",
                        what: str = "the store") -> None:
    default = os.environ.get(STORE_ENV) if flag == "--store" else None
    parser.add_argument(flag, dest=dest, metavar="URL", default=default, required=default is None,
                        help=f"{what}: a config string such as faiss:///data/idx (default: ${STORE_ENV})")


def _add_embedder_arguments(parser: argparse.ArgumentParser, default: str | None) -> None:
    parser.add_argument("--embedder", default=default, metavar="NAME",
                        help="a registered embedding function (vectorknobs embedders)"
                        + (f"; default: {default}" if default else "; default: the one the stored vectors record"))
    parser.add_argument("-o", "--embedder-option", action="append", default=[], metavar="KEY=VALUE",
                        help="an option for the embedder, e.g. -o dimensions=384 (repeatable)")


def _embedder_options(pairs: Sequence[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"embedder option {pair!r} is not KEY=VALUE")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value  # a plain string: -o model=/models/minilm
    return options


def _json_argument(text: str | None, what: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise UsageError(f"{what} must be JSON, e.g. '{{\"lang\": \"en\"}}': {err}") from None


def _progress_bar(label: str, unit: str = "") -> Any:
    from vectorknobs.progress import ProgressBar

    return ProgressBar(label, unit=unit)


def _run_async(coroutine: Any) -> Any:
    import asyncio

    return asyncio.run(coroutine)


# -- vectorknobs ingest ------------------------------------------------------------------------------------


def _configure_ingest(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files or directories (.txt, .md, .jsonl)")
    _add_store_argument(parser)
    _add_embedder_arguments(parser, "hash")
    parser.add_argument("--text-field", default="text", help="field the text goes in (JSONL: the key it is read "
                        "from); default: text")
    parser.add_argument("--vector-field", default="embedding", help="default: embedding")
    parser.add_argument("--chunk-size", type=int, default=1000, help="characters per chunk; default: 1000")
    parser.add_argument("--chunk-overlap", type=int, default=100, help="characters shared by consecutive chunks; "
                        "default: 100")
    parser.add_argument("--batch-size", type=int, default=64, help="chunks embedded per call; default: 64")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def ingest_command(args: argparse.Namespace) -> int:
    from vectorknobs.connect import connect
    from vectorknobs.embedders import resolve_embedder
    from vectorknobs.ingest import ingest

    embedder = resolve_embedder(args.embedder, **_embedder_options(args.embedder_option))

    async def go() -> Any:
        async with connect(args.store) as store:
            with _progress_bar("ingest", "B") as bar:
                return await ingest(store, args.paths, embedder, text_field=args.text_field,
                                    vector_field=args.vector_field, chunk_size=args.chunk_size,
                                    chunk_overlap=args.chunk_overlap, batch_size=args.batch_size,
                                    progress_callback=bar.update)

    result = _run_async(go())
    if args.json:
        print_json({"store": _redacted(args.store), **result.to_dict()})
    else:
        print(f"{result.files} file(s), {result.chunks} chunk(s): {result.embedded} embedded, "
              f"{result.unchanged} unchanged, {result.deleted} stale deleted, in {result.elapsed:.2f}s")
    return 0


command("ingest", "store text, Markdown and JSONL files in a store, chunked and embedded", _configure_ingest)(
    ingest_command
)


# -- vectorknobs search ------------------------------------------------------------------------------------


def _configure_search(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", help="what to search for, in words")
    _add_store_argument(parser)
    _add_embedder_arguments(parser, None)
    parser.add_argument("-k", type=int, default=5, help="how many results; default: 5")
    parser.add_argument("--vector-field", default="embedding", help="default: embedding")
    parser.add_argument("--filter", metavar="JSON", help='a filter in its dict form, e.g. \'{"source": "a.md"}\'')
    parser.add_argument("--min-score", type=float, help="leave out results scoring below this")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def search_command(args: argparse.Namespace) -> int:
    from vectorknobs.connect import connect
    from vectorknobs.query import Query

    where = _json_argument(args.filter, "--filter")
    options = _embedder_options(args.embedder_option)

    async def go() -> tuple[str, list[Any]]:
        async with connect(args.store) as store:
            embedder = await _search_embedder(store, args.vector_field, args.embedder, options)
            query = Query().filter(where) if where is not None else Query()
            query = query.near_text(args.text, embedding_fn=embedder, k=args.k, field=args.vector_field)
            if args.min_score is not None:
                query = query.score_threshold(args.min_score)
            return getattr(embedder, "name", str(embedder)), await store.search(query)

    embedder_name, hits = _run_async(go())
    if args.json:
        print_json({"query": args.text, "store": _redacted(args.store), "embedder": embedder_name, "results": [
            {"id": hit.id, "score": hit.score, "distance": hit.distance, "source_text": hit.source_text,
             "fields": {name: value for name, value in hit.record.values().items() if not hasattr(value, "shape")}}
            for hit in hits]})
        return 0
    if not hits:
        print("no results")
    for hit in hits:
        where_from = hit.record.get_value("source")
        print(f"{hit.score:.4f}  {hit.id}" + (f"  ({where_from})" if where_from and where_from not in hit.id else ""))
        text = " ".join((hit.source_text or "").split())
        print(f"        {text[:300]}{'...' if len(text) > 300 else ''}")
    return 0


async def _search_embedder(store: Any, vector_field: str, name: str | None, options: dict[str, Any]) -> Any:
    """The embedder named, else the one the stored vectors record (made with the same dimensions)."""
    from vectorknobs.embedders import resolve_embedder
    from vectorknobs.fields import VectorField

    if name is not None:
        return resolve_embedder(name, **options)
    async for batch in store.stream(None, 100):
        for record in batch:
            vector = record.fields.get(vector_field)
            if isinstance(vector, VectorField) and vector.model_name:
                embedder = resolve_embedder(vector.model_name, **options)
                if getattr(embedder, "dimensions", vector.dimensions) not in (vector.dimensions, None):
                    embedder = resolve_embedder(vector.model_name, **{"dimensions": vector.dimensions, **options})
                return embedder
        break
    raise UsageError(f"cannot tell which embedder made the vectors in {vector_field!r}; give --embedder NAME")


command("search", "search a store by meaning: the records nearest a text, with scores and source text",
        _configure_search)(search_command)


# -- vectorknobs migrate -----------------------------------------------------------------------------------


def _configure_migrate(parser: argparse.ArgumentParser) -> None:
    _add_store_argument(parser, "--from", "source", "the store to copy from")
    _add_store_argument(parser, "--to", "target", "the store to copy to")
    parser.add_argument("--checkpoint", metavar="PATH",
                        help="progress file: an interrupted run continues from it when run again "
                        "(default: .vectorknobs-migrate-<hash>.json here, removed when done)")
    parser.add_argument("--batch-size", type=int, default=1000, help="records per batch; default: 1000")
    parser.add_argument("--filter", metavar="JSON", help="copy only the records this filter (dict form) matches")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def default_checkpoint(source: str, target: str) -> str:
    import hashlib

    digest = hashlib.sha256(f"{source}\0{target}".encode()).hexdigest()[:12]
    return f".vectorknobs-migrate-{digest}.json"


def migrate_command(args: argparse.Namespace) -> int:
    from vectorknobs.sync.migration import migrate_between_stores

    where = _json_argument(args.filter, "--filter")
    checkpoint = args.checkpoint or default_checkpoint(args.source, args.target)
    try:
        with _progress_bar("migrate") as bar:
            result = _run_async(migrate_between_stores(args.source, args.target, args.batch_size, bar.update,
                                                       query=where, checkpoint=checkpoint))
    except KeyboardInterrupt:
        print(f"{PROG}: progress saved in {checkpoint}; run the same command again to resume", file=sys.stderr)
        raise
    if args.json:
        print_json({"from": _redacted(args.source), "to": _redacted(args.target), **result.to_dict()})
    else:
        resumed = f" (resumed after {result.resumed_after!r})" if result.resumed_after else ""
        print(f"copied {result.written_records} of {result.total_records} records{resumed} in {result.elapsed:.2f}s")
    return _report_failures(result.errors)


command("migrate", "copy records and vectors from one store to another, resumably", _configure_migrate)(
    migrate_command
)


# -- vectorknobs sync --------------------------------------------------------------------------------------


def _configure_sync(parser: argparse.ArgumentParser) -> None:
    _add_store_argument(parser)
    _add_embedder_arguments(parser, "hash")
    parser.add_argument("--text-field", action="append", dest="text_fields", metavar="FIELD",
                        help="a field the vectors are made from (repeatable, in order); default: text")
    parser.add_argument("--vector-field", default="embedding", help="default: embedding")
    parser.add_argument("--batch-size", type=int, default=100, help="records embedded per call; default: 100")
    parser.add_argument("--filter", metavar="JSON", help="sync only the records this filter (dict form) matches")
    parser.add_argument("--force", action="store_true", help="re-embed every record, current or not")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def sync_command(args: argparse.Namespace) -> int:
    from vectorknobs.connect import connect
    from vectorknobs.sync.synchronizer import VectorTextSynchronizer

    where = _json_argument(args.filter, "--filter")
    options = _embedder_options(args.embedder_option)

    async def go() -> Any:
        from vectorknobs.embedders import resolve_embedder

        async with connect(args.store) as store:
            sync = VectorTextSynchronizer(store, resolve_embedder(args.embedder, **options),
                                          args.text_fields or ["text"], args.vector_field, batch_size=args.batch_size)
            with _progress_bar("sync") as bar:
                return await sync.bulk_sync(where, force=args.force, progress_callback=bar.update)

    result = _run_async(go())
    if args.json:
        print_json({"store": _redacted(args.store), **result.to_dict()})
    else:
        print(f"examined {result.examined} records: {result.embedded} re-embedded, {result.current} current, "
              f"{len(result.failed_ids)} failed, in {result.elapsed:.2f}s")
    return _report_failures(result.failures)


command("sync", "re-embed the records whose text changed since their vector was made", _configure_sync)(
    sync_command
)


def _report_failures(failures: Sequence[Any]) -> int:
    for failure in failures[:10]:
        print(f"{PROG}: failed: {', '.join(failure.ids[:3])}{' ...' if len(failure.ids) > 3 else ''}: "
              f"{failure.kind}: {failure.error}", file=sys.stderr)
    if len(failures) > 10:
        print(f"{PROG}: ... and {len(failures) - 10} more failures (see --json)", file=sys.stderr)
    return 1 if failures else 0


def _redacted(url: str) -> str:
    from vectorknobs.config import parse_config

    try:
        return parse_config(url).redacted()
    except VectorknobsError:
        return url


if __name__ == "__main__":
    sys.exit(main())
