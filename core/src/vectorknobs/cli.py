"""The ``vectorknobs`` command line.

    vectorknobs stores [NAME] [--json]      installed store plugins, or one store in detail
    vectorknobs embedders [NAME] [--json]   registered embedding functions
    vectorknobs --version

Exit codes: 0 success, 1 a vectorknobs error (the message goes to stderr, without a traceback),
2 a usage error. Every subcommand is one small function registered with ``@command``; a command that
lives in its own module is added to ``COMMAND_MODULES`` and registers itself the same way on import.
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


if __name__ == "__main__":
    sys.exit(main())
