"""Command line: ``python -m benchmarks run|plot|table``. See docs/benchmarks.md."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks import datasets

QUICK = {"n": 5000, "dim": 64, "queries": 100, "filtered_queries": 50, "repeats": 1, "warmup": 5,
         "search_batch": 50}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="benchmark a store URL against a raw baseline")
    run.add_argument("--store", required=True,
                     help="store URL; {tmp} in it becomes a fresh temporary directory, e.g. 'faiss://{tmp}?index=hnsw'")
    run.add_argument("--raw", default="faiss", help="raw baseline: a module of benchmarks.baselines or a dotted path")
    run.add_argument("--raw-option", action="append", default=[], metavar="KEY=VALUE",
                     help="baseline option override (faiss: index, m, ef_construction, ef_search, nlist, nprobe, "
                          "fields=jsonl|sqlite|none, fsync)")
    run.add_argument("--dataset", choices=datasets.DATASETS, default="synthetic")
    run.add_argument("-n", type=int, help="records (synthetic default 100000; fashion-mnist: first n of 60000)")
    run.add_argument("-d", "--dim", type=int, help="dimensions (synthetic only; default 384)")
    run.add_argument("--queries", type=int, help="query vectors (default 1000)")
    run.add_argument("--filtered-queries", type=int, help="filtered queries (default: --queries)")
    run.add_argument("-k", type=int, default=10)
    run.add_argument("--metric", help="metric (default: the data set's: synthetic cosine, fashion-mnist euclidean); "
                                      "added to the store URL unless it names one")
    run.add_argument("--insert-batch", type=int, default=1000, help="records per bulk_create / index.add")
    run.add_argument("--store-input", choices=("batch", "records"), default="batch",
                     help="the store side writes each insert batch as one RecordBatch (columns; default) or as Records")
    run.add_argument("--search-batch", type=int, help="queries per batched search (default 100)")
    run.add_argument("--concurrency", type=int, help="tasks searching at once in the concurrent phase (default 8)")
    run.add_argument("--repeats", type=int, help="interleaved search rounds per side (default 3)")
    run.add_argument("--insert-repeats", type=int, default=1, help="fresh inserts per side, alternating order")
    run.add_argument("--warmup", type=int, help="untimed queries per side before round 1 (default 20)")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--quick", action="store_true",
                     help=f"small smoke-test workload ({', '.join(f'{k}={v}' for k, v in QUICK.items())})")
    run.add_argument("--memory-only", action="store_true", help="insert and measure memory; no searches")
    run.add_argument("--out", type=Path, help="result JSON (default docs/benchmarks/<dataset>-...-<index>.json)")
    run.add_argument("--name", help="a label for the plot and table")
    run.add_argument("--cache", type=Path, default=datasets.DEFAULT_CACHE, help="prepared data sets")
    run.add_argument("--keep", action="store_true", help="keep the store's data and temporary directories")

    plot = sub.add_parser("plot", help="render PNGs from result JSON files")
    plot.add_argument("results", nargs="*", type=Path, help="JSON files (default: docs/benchmarks/*.json)")
    plot.add_argument("--out-dir", type=Path, help="where PNGs go (default: beside each JSON)")

    table = sub.add_parser("table", help="print a markdown table of results and targets")
    table.add_argument("results", nargs="*", type=Path)

    args = parser.parse_args(argv)
    if args.command == "run":
        return cmd_run(args)
    if args.command == "plot":
        from benchmarks import plot as plotting

        for path in plotting.render_all(args.results or None, args.out_dir):
            print(path)
        return 0
    from benchmarks import report

    print(report.markdown_table(args.results or None))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from benchmarks import runner

    preset = QUICK if args.quick else {}
    defaults = {"queries": 1000, "repeats": 3, "warmup": 20, "search_batch": 100, "filtered_queries": None,
                "concurrency": 8}

    def pick(name: str) -> object:
        value = getattr(args, name, None)
        return value if value is not None else preset.get(name, defaults.get(name))

    options = {}
    for item in args.raw_option:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"--raw-option expects KEY=VALUE, got {item!r}", file=sys.stderr)
            return 2
        options[key.strip()] = value.strip()
    opts = runner.RunOptions(
        store=args.store, raw=args.raw, dataset=args.dataset,
        n=args.n if args.n is not None else preset.get("n"),
        dim=args.dim if args.dim is not None else (preset.get("dim") if args.dataset == "synthetic" else None),
        queries=pick("queries"), filtered_queries=pick("filtered_queries"), k=args.k, insert_batch=args.insert_batch,
        store_input=args.store_input,
        search_batch=pick("search_batch"), concurrency=pick("concurrency"), repeats=pick("repeats"),
        insert_repeats=args.insert_repeats,
        warmup=pick("warmup"), seed=args.seed, metric=args.metric, raw_options=options, out=args.out,
        name=args.name, cache=args.cache, keep=args.keep, quick=args.quick, only_memory=args.memory_only,
    )
    try:
        result = runner.run(opts)
    except datasets.DatasetMissingError as err:
        print(err, file=sys.stderr)
        return 3
    out = args.out or runner.default_out(opts, result)
    runner.write(result, out)
    from benchmarks import report

    print(report.text_summary(result))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
