"""Reading result files back: a terminal summary of one run, a markdown table of many."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks"


def load(paths: list[Path] | None = None) -> list[tuple[Path, dict[str, Any]]]:
    files = paths if paths else sorted(RESULTS.glob("*.json"))
    out = []
    for path in files:
        data = json.loads(path.read_text())
        if data.get("schema", "").startswith("vectorknobs-benchmark/"):
            out.append((path, data))
    return out


def label(result: dict[str, Any]) -> str:
    if result.get("name"):
        return str(result["name"])
    ds = result["dataset"]
    store = result["store"]
    index = store["settings"].get("index")
    scheme = store["url"].split(":", 1)[0]
    size = f"{ds['n']:,}x{ds['dim']}"
    return f"{ds['name']} {size} {scheme}{f' {index}' if index else ''}"


def _f(value: float | None, fmt: str = ".2f") -> str:
    return "-" if value is None else format(value, fmt)


def text_summary(result: dict[str, Any]) -> str:
    store, raw, ratios = result["store"], result["raw"], result["ratios"]
    lines = [f"{label(result)}  (store {store['url']} vs raw {raw['name']})",
             f"{'':28}{'store':>14}{'raw':>14}{'store/raw':>11}"]

    def row(name: str, a: float | None, b: float | None, r: float | None, fmt: str = ",.0f") -> None:
        lines.append(f"{name:28}{_f(a, fmt):>14}{_f(b, fmt):>14}{_f(r):>11}")

    row("insert records/s", store["insert"]["records_per_second"], raw["insert"]["records_per_second"],
        ratios["insert_records_per_second"])
    for phase in ("single", "batch", "filtered", "concurrent"):
        if phase not in store:
            continue
        lat = "batch_latency" if phase == "batch" else "latency"
        row(f"{phase} qps", store[phase]["qps"], raw[phase]["qps"], ratios[f"{phase}_qps"])
        row(f"{phase} p50 ms", store[phase][lat]["p50_ms"], raw[phase][lat]["p50_ms"],
            ratios[f"{phase}_p50_latency"], ".3f")
        row(f"{phase} p99 ms", store[phase][lat]["p99_ms"], raw[phase][lat]["p99_ms"],
            ratios[f"{phase}_p99_latency"], ".3f")
        row(f"{phase} recall@{result['workload']['k']}", store[phase]["recall_at_k"], raw[phase]["recall_at_k"],
            ratios[f"{phase}_recall"], ".4f")
    mib = 2 ** 20
    row("resident MiB", store["memory"]["resident_anon_bytes"] / mib, raw["memory"]["resident_anon_bytes"] / mib,
        ratios["memory_resident"], ",.1f")
    row("peak MiB", store["memory"]["peak_anon_bytes"] / mib, raw["memory"]["peak_anon_bytes"] / mib,
        ratios["memory_peak"], ",.1f")
    lines.append(f"payload (vectors + fields): {result['dataset']['payload_bytes'] / mib:,.1f} MiB; "
                 f"store resident / payload = {store['memory']['resident_vs_payload']:.2f}")
    lines.append("targets:")
    for t in result["targets"]:
        verdict = "n/a" if t["met"] is None else ("met" if t["met"] else "MISSED")
        scope = "" if t["applies"] else "  (indicative: target is set for another workload)"
        lines.append(f"  {t['target']}: {_f(t['value'], '.3f')} {t['op']} {t['threshold']} -> {verdict}{scope}")
    for note in result.get("checks", []):
        lines.append(f"check: {note}")
    load_start, load_end = result["machine"]["loadavg_start"][0], result["machine"]["loadavg_end"][0]
    lines.append(f"load average {load_start} -> {load_end} on {result['machine']['cpus']} CPUs "
                 "(numbers are noisy when others share the machine)")
    return "\n".join(lines)


def markdown_table(paths: list[Path] | None = None) -> str:
    """One row per result: throughputs, latencies, recall and memory as ``store / raw (ratio)``."""
    rows = load(paths)
    head = ("| run | insert rec/s (ratio) | single qps (ratio) | single p50 ms (ratio) | batch qps (ratio) | "
            "filtered qps (ratio) | recall@10 store / raw (filtered) | resident MiB (ratio, / payload) |")
    sep = "|" + "|".join(["---"] * (head.count("|") - 1)) + "|"
    out = [head, sep]
    mib = 2 ** 20
    for path, r in rows:
        s, w, q = r["store"], r["raw"], r["ratios"]

        def qps(phase: str, s: dict[str, Any] = s, w: dict[str, Any] = w, q: dict[str, Any] = q) -> str:
            if phase not in s:
                return "-"
            return f"{s[phase]['qps']:,.0f} / {w[phase]['qps']:,.0f} ({_f(q[phase + '_qps'])})"

        single = s.get("single")
        lat = (f"{single['latency']['p50_ms']:.3f} / {w['single']['latency']['p50_ms']:.3f} "
               f"({_f(q['single_p50_latency'])})") if single else "-"
        recall = (f"{s['single']['recall_at_k']:.3f} / {w['single']['recall_at_k']:.3f} "
                  f"({s['filtered']['recall_at_k']:.3f} / {w['filtered']['recall_at_k']:.3f})") if single else "-"
        memory = (f"{s['memory']['resident_anon_bytes'] / mib:,.0f} / {w['memory']['resident_anon_bytes'] / mib:,.0f} "
                  f"({_f(q['memory_resident'])}, {s['memory']['resident_vs_payload']:.2f})")
        insert = (f"{s['insert']['records_per_second']:,.0f} / {w['insert']['records_per_second']:,.0f} "
                  f"({_f(q['insert_records_per_second'])})")
        out.append(f"| [{label(r)}]({path.name}) | {insert} | {qps('single')} | {lat} | {qps('batch')} | "
                   f"{qps('filtered')} | {recall} | {memory} |")
    out.append("")
    out.append("| run | target | value | threshold | verdict |")
    out.append("|---|---|---|---|---|")
    for _path, r in rows:
        for t in r["targets"]:
            verdict = "n/a" if t["met"] is None else ("met" if t["met"] else "**missed**")
            if not t["applies"]:
                verdict += " (indicative)"
            out.append(f"| {label(r)} | {t['target']} | {_f(t['value'], '.3f')} | {t['op']} {t['threshold']} | "
                       f"{verdict} |")
    return "\n".join(out)
