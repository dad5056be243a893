"""``benchmarks plot``: one PNG per result JSON, plus ``summary.png`` of the store/raw ratios of the newest run
of each kind (store, index, raw baseline, data set, what the store was given to insert, with or without
searches).

Needs matplotlib (``pip install -r benchmarks/requirements.txt``); nothing else in the project does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.report import RESULTS, label, load

STORE_COLOR, RAW_COLOR, TARGET_COLOR, NEUTRAL_COLOR = "#1f77b4", "#ff7f0e", "#d62728", "#9e9e9e"


def _pyplot() -> Any:
    try:
        import matplotlib
    except ModuleNotFoundError:
        raise SystemExit("plotting needs matplotlib: pip install -r benchmarks/requirements.txt") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def render_all(paths: list[Path] | None = None, out_dir: Path | None = None) -> list[Path]:
    results = load(paths)
    written = []
    for path, result in results:
        target = (out_dir or path.parent) / (path.stem + ".png")
        render_one(result, target)
        written.append(target)
    if len(results) > 1 or not paths:
        summary = (out_dir or (results[0][0].parent if results else RESULTS)) / "summary.png"
        if results:
            render_summary(newest_of_each_kind([r for _, r in results]), summary)
            written.append(summary)
    return written


def newest_of_each_kind(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The newest result of each kind of run, in the order of the kinds' first results: what stands now."""
    newest: dict[tuple[Any, ...], dict[str, Any]] = {}
    for result in results:
        store, raw = result["store"], result["raw"]
        kind = (store["url"].split(":", 1)[0], str(store.get("settings", {}).get("index")), raw["name"],
                raw.get("describe", {}).get("fields"), result["dataset"]["name"], result["dataset"]["n"],
                result["workload"].get("store_input", "records"), "single" in store)
        if kind not in newest or result["created"] > newest[kind]["created"]:
            newest[kind] = result
    return list(newest.values())


def _bars(ax: Any, groups: list[str], store: list[float], raw: list[float], unit: str, title: str) -> None:
    import numpy as np

    x = np.arange(len(groups))
    width = 0.38
    b1 = ax.bar(x - width / 2, store, width, label="vectorknobs store", color=STORE_COLOR)
    b2 = ax.bar(x + width / 2, raw, width, label="raw client", color=RAW_COLOR)
    ax.set_xticks(x, groups)
    ax.set_ylabel(unit)
    ax.set_title(title, fontsize=10)
    for bars in (b1, b2):
        ax.bar_label(bars, fmt="{:,.3g}", fontsize=7, padding=1)
    ax.margins(y=0.15)


def render_one(result: dict[str, Any], target: Path) -> None:
    plt = _pyplot()
    store, raw, ratios = result["store"], result["raw"], result["ratios"]
    phases = [p for p in ("single", "batch", "filtered", "concurrent") if p in store]
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    fig.suptitle(f"{label(result)} — store {store['url']} vs raw {raw['name']}\n"
                 f"{result['created']}, {result['machine']['cpus']} CPUs, load {result['machine']['loadavg_start'][0]}"
                 f"→{result['machine']['loadavg_end'][0]}{' (quick)' if result.get('quick') else ''}", fontsize=11)

    ax = axes[0][0]
    _bars(ax, ["insert"], [store["insert"]["records_per_second"]], [raw["insert"]["records_per_second"]],
          "records / s", f"bulk insert of {result['dataset']['n']:,} records (incl. fields)")
    ax.legend(fontsize=8, loc="lower right")

    ax = axes[0][1]
    if phases:
        _bars(ax, phases, [store[p]["qps"] for p in phases], [raw[p]["qps"] for p in phases], "queries / s",
              f"search throughput (k={result['workload']['k']}, batch={result['workload']['search_batch']})")
        ax.set_yscale("log")

    ax = axes[0][2]
    lat_phases = [p for p in phases if p in ("single", "filtered")]  # one query at a time
    if lat_phases:
        groups = [f"{p} {q}" for p in lat_phases for q in ("p50", "p95", "p99")]
        _bars(ax, groups, [store[p]["latency"][f"{q}_ms"] for p in lat_phases for q in ("p50", "p95", "p99")],
              [raw[p]["latency"][f"{q}_ms"] for p in lat_phases for q in ("p50", "p95", "p99")], "ms",
              "single-query latency")
        ax.tick_params(axis="x", labelsize=7)

    ax = axes[1][0]
    if phases:
        _bars(ax, phases, [store[p]["recall_at_k"] for p in phases], [raw[p]["recall_at_k"] for p in phases],
              f"recall@{result['workload']['k']}", "recall against exact search")
        ax.set_ylim(0, 1.12)
        ax.axhline(0.95, color=TARGET_COLOR, linestyle=":", linewidth=1)

    ax = axes[1][1]
    mib = 2 ** 20
    payload = result["dataset"]["payload_bytes"] / mib
    _bars(ax, ["resident", "peak"],
          [store["memory"]["resident_anon_bytes"] / mib, store["memory"]["peak_anon_bytes"] / mib],
          [raw["memory"]["resident_anon_bytes"] / mib, raw["memory"]["peak_anon_bytes"] / mib], "MiB",
          "memory after insert (anonymous RSS delta)")
    ax.axhline(payload, color="grey", linestyle="--", linewidth=1)
    ax.axhline(payload * 1.15, color=TARGET_COLOR, linestyle=":", linewidth=1)
    ax.text(0.02, payload, " vectors + fields", fontsize=7, va="bottom", transform=ax.get_yaxis_transform())

    ax = axes[1][2]
    _ratio_panel(ax, result, ratios)
    for empty in (axes[0][1], axes[0][2], axes[1][0]) if not phases else ():  # an insert-only run (--memory-only)
        empty.axis("off")
        empty.text(0.5, 0.5, "no searches in this run (--memory-only)", ha="center", va="center", fontsize=9,
                   color="grey", transform=empty.transAxes)
    fig.tight_layout()
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, dpi=110)
    plt.close(fig)


RATIO_KEYS = (
    ("insert_records_per_second", "insert", 0.8),
    ("single_qps", "single qps", 0.9),
    ("batch_qps", "batch qps", 0.9),
    ("filtered_qps", "filtered qps", 0.9),
    ("concurrent_qps", "concurrent qps", 0.9),
)


def _ratio_panel(ax: Any, result: dict[str, Any], ratios: dict[str, Any]) -> None:
    """The ratios with their targets: the issue's defaults, or only those a baseline states for its store
    (also a latency ratio, where lower is better); a ratio without a target is grey."""
    stated = {t["ratio"]: (t["threshold"], t["op"]) for t in result.get("targets", []) if t.get("ratio")}
    targets = stated or {k: (t, ">=") for k, _, t in RATIO_KEYS}
    names = {k: name for k, name, _ in RATIO_KEYS}
    keys = [k for k in [*names, *stated] if ratios.get(k) is not None]
    keys = list(dict.fromkeys(keys))
    values = [ratios[k] for k in keys]
    colors = [NEUTRAL_COLOR if k not in targets else STORE_COLOR if _met(v, *targets[k]) else TARGET_COLOR
              for k, v in zip(keys, values, strict=True)]
    bars = ax.barh([names.get(k, k.replace("_", " ")) for k in keys], values, color=colors)
    ax.bar_label(bars, fmt="{:.2f}", fontsize=8, padding=2)
    for i, k in enumerate(keys):
        if k in targets:
            ax.plot([targets[k][0]] * 2, [i - 0.4, i + 0.4], color="black", linewidth=1.5)
    ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("store / raw (black tick = target; latency: lower is better)")
    ax.set_title("ratios vs targets (red = target missed, grey = no target)", fontsize=10)
    ax.invert_yaxis()
    ax.set_xlim(0, max([1.2, *values]) * 1.15)


def _met(value: float, threshold: float, op: str) -> bool:
    return value >= threshold if op == ">=" else value <= threshold


SUMMARY_TOP = 2.0  # the summary's ratio axis ends here; bars above are clipped and marked ↑


def render_summary(results: list[dict[str, Any]], target: Path) -> None:
    import numpy as np

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(8, 2.2 * len(results) + 3), 5))
    keys = [k for k in RATIO_KEYS if any(r["ratios"].get(k[0]) is not None for r in results)]
    x = np.arange(len(results))
    width = 0.8 / max(1, len(keys))
    for i, (key, name, threshold) in enumerate(keys):
        values = [r["ratios"].get(key) for r in results]
        # a ratio far above 1 (18x langchain-postgres) would flatten every other bar: clip it, label its value
        bars = ax.bar(x + (i - (len(keys) - 1) / 2) * width, [min(v or 0.0, SUMMARY_TOP) for v in values], width,
                      label=f"{name} (target ≥ {threshold})")
        ax.bar_label(bars, labels=["n/a" if v is None else f"{v:.2f}" + ("↑" if v > SUMMARY_TOP else "")
                                   for v in values], fontsize=7, padding=1)
    ax.axhline(0.9, color=TARGET_COLOR, linestyle=":", linewidth=1)
    ax.axhline(0.8, color=TARGET_COLOR, linestyle=":", linewidth=1)
    ax.axhline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set_xticks(x, [label(r) for r in results], fontsize=8, rotation=10)
    ax.set_ylabel("store / raw")
    ax.set_title("vectorknobs vs the raw client, same run (higher is better; dotted = targets)")
    ax.legend(fontsize=8)
    ax.set_ylim(0, SUMMARY_TOP * 1.12)
    fig.tight_layout()
    fig.savefig(target, dpi=110)
    plt.close(fig)
