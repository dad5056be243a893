"""Smoke test of the benchmark harness (benchmarks/): a --quick run against memory:// and raw faiss.

The real workloads are run by hand (``python -m benchmarks run ...``, see docs/benchmarks.md), never by
the test suite: this only proves the harness runs end to end and writes a complete, sane result.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PHASES = ("single", "batch", "filtered")


@pytest.fixture(scope="module")
def quick_result(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench") / "quick.json"
    cache = tmp_path_factory.mktemp("bench-data")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "run", "--quick", "--store", "memory://", "--raw", "faiss",
         "--out", str(out), "--cache", str(cache)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "store/raw" in proc.stdout
    return json.loads(out.read_text())


def test_result_has_every_section(quick_result: dict) -> None:
    r = quick_result
    assert r["schema"] == "vectorknobs-benchmark/1"
    assert r["quick"] is True
    assert r["dataset"]["n"] == 5000
    assert r["dataset"]["dim"] == 64
    assert r["dataset"]["metric"] == "cosine"
    assert r["dataset"]["payload_bytes"] == r["dataset"]["vector_bytes"] + r["dataset"]["field_bytes"] > 0
    assert r["store"]["url"].startswith("memory://")
    assert r["raw"]["describe"]["index"] == "flat"  # an exact store is mirrored by an exact index
    for side in ("store", "raw"):
        s = r[side]
        assert s["insert"]["records"] == 5000
        assert s["insert"]["records_per_second"] > 0
        assert s["memory"]["resident_anon_bytes"] > 0
        assert s["memory"]["peak_anon_bytes"] > 0
        for phase in PHASES:
            p = s[phase]
            assert p["qps"] > 0
            assert p["rounds"] == 1
            latency = p["batch_latency" if phase == "batch" else "latency"]
            assert 0 < latency["p50_ms"] <= latency["p95_ms"] <= latency["p99_ms"] <= latency["max_ms"]
            assert p["short_results"] == 0
            assert p["unknown_ids"] == 0
        assert s["filtered"]["filter_violations"] == 0
    for key in ("insert_records_per_second", "memory_resident", "single_qps", "batch_qps", "filtered_qps",
                "single_p50_latency", "single_recall"):
        assert r["ratios"][key] is not None
        assert r["ratios"][key] > 0
    assert {t["id"] for t in r["targets"]} == {
        "search_single_qps", "search_batch_qps", "search_filtered_qps", "search_concurrent_qps", "insert",
        "hnsw_recall", "memory"}
    assert all(t["applies"] is False for t in r["targets"])  # targets are set for the full-size workloads


def test_exact_store_and_flat_baseline_have_perfect_recall(quick_result: dict) -> None:
    for side in ("store", "raw"):
        for phase in PHASES:
            assert quick_result[side][phase]["recall_at_k"] == pytest.approx(1.0), (side, phase)


def test_table_renders(quick_result: dict, tmp_path: Path) -> None:
    path = tmp_path / "quick.json"
    path.write_text(json.dumps(quick_result))
    table = subprocess.run([sys.executable, "-m", "benchmarks", "table", str(path)], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout
    assert "| run |" in table
    assert "search throughput (single)" in table


def test_plot_renders(quick_result: dict, tmp_path: Path) -> None:
    path = tmp_path / "quick.json"
    path.write_text(json.dumps(quick_result))
    subprocess.run([sys.executable, "-m", "benchmarks", "plot", str(path)], cwd=ROOT, check=True,
                   capture_output=True)
    assert (tmp_path / "quick.png").stat().st_size > 10_000
