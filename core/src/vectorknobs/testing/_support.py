"""Shared pieces of the conformance suite: config helpers, the base mixin, and an exact vector oracle."""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeAlias
from urllib.parse import parse_qsl, urlencode

import numpy as np
import numpy.typing as npt
import pytest

import vectorknobs as vk
from vectorknobs.config import parse_config
from vectorknobs.connect import Connection
from vectorknobs.plugins import get_registry
from vectorknobs.store import VectorStore

ConfigLike: TypeAlias = str | Mapping[str, Any]

#: relative and absolute tolerance when comparing scores with the exact float64 oracle
SCORE_REL_TOL = 1e-4
SCORE_ABS_TOL = 1e-5


def with_options(config: ConfigLike, **options: Any) -> ConfigLike:
    """``config`` with extra options: query parameters of a URL string, or keys of a dict.

    >>> with_options("memory:///tmp/s", metric="euclidean")
    'memory:///tmp/s?metric=euclidean'
    >>> with_options({"backend": "memory"}, metric="dot_product")
    {'backend': 'memory', 'metric': 'dot_product'}

    An option already in ``config`` is replaced.
    """
    if not options:
        return config
    rendered = {name: _render_option(value) for name, value in options.items()}
    if isinstance(config, Mapping):
        return {**config, **rendered}
    if not isinstance(config, str):
        raise TypeError(f"a store config is a URL string or a dict, got {type(config).__name__}")
    base, hash_sign, fragment = config.partition("#")
    head, _, query = base.partition("?")
    params = dict(parse_qsl(query, keep_blank_values=True))
    params.update(rendered)
    return f"{head}?{urlencode(params)}{hash_sign}{fragment}"


def fresh_config(config: ConfigLike, label: str) -> ConfigLike:
    """A config for another, empty store next to ``config``, told apart by ``label``.

    Path-based configs (``scheme:///dir``, or a dict with ``path``) get a sub-directory; any other config
    is returned unchanged (the differential tests then drop the store after each example).
    """
    if isinstance(config, Mapping):
        path = config.get("path")
        return {**config, "path": f"{str(path).rstrip('/')}/{label}"} if path else dict(config)
    head, question, query = config.partition("?")
    _, separator, rest = head.partition("://")
    if separator and rest.startswith("/") and rest.strip("/"):
        return f"{head.rstrip('/')}/{label}{question}{query}"
    return config


def store_class(config: ConfigLike) -> type[VectorStore]:
    """The store class a config selects."""
    return get_registry().store_for_scheme(parse_config(config).scheme).store_class


def _render_option(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


class ConformanceBase:
    """What every mixin shares: the ``store_config`` fixture a subclass overrides, and small helpers."""

    pytestmark = pytest.mark.asyncio

    @pytest.fixture
    def store_config(self) -> ConfigLike:
        """Override in your test class: the config (URL or dict) of a fresh, empty store."""
        pytest.fail(
            f"{type(self).__name__} must define a 'store_config' fixture returning the config of a fresh, "
            "empty store, e.g. 'return f\"memory://{tmp_path}/store\"'"
        )

    @staticmethod
    def declared(config: ConfigLike) -> vk.Capabilities:
        """The capabilities the store class behind ``config`` declares (known before connecting)."""
        return store_class(config).capabilities

    def connect_with_metric(self, config: ConfigLike, metric: vk.DistanceMetric) -> Connection:
        """Open the store with ``metric`` as its configured metric; skip if the store does not declare it
        (``CapabilityTests`` checks that connecting then fails)."""
        if metric not in self.declared(config).metrics:
            pytest.skip(f"the store does not declare metric {metric.value!r}")
        return vk.connect(with_options(config, metric=metric))

    @staticmethod
    async def contents(store: vk.VectorStore) -> dict[str, vk.Record]:
        """Every stored record by id (read with an unfiltered search)."""
        records = await store.search(vk.Query())
        return {r.key: r for r in records}


# -- an exact vector oracle, computed here and not by the store or the core -----------------------------
def as_f32(vector: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """A vector rounded to float32 (as every store stores it), then widened to float64."""
    return np.asarray(vector, dtype=np.float32).astype(np.float64)


def oracle_scores(
    vectors: Mapping[str, npt.ArrayLike], query: npt.ArrayLike, metric: vk.DistanceMetric | str
) -> dict[str, float]:
    """Exact score of every vector against ``query``: cosine similarity, inner product, or 1/(1+L2)."""
    metric = vk.DistanceMetric.parse(metric)
    q = as_f32(query)
    out: dict[str, float] = {}
    for record_id, vector in vectors.items():
        v = as_f32(vector)
        if metric is vk.DistanceMetric.DOT_PRODUCT:
            out[record_id] = float(np.dot(v, q))
        elif metric is vk.DistanceMetric.EUCLIDEAN:
            out[record_id] = 1.0 / (1.0 + float(np.sqrt(np.sum((v - q) ** 2))))
        else:
            norms = float(np.linalg.norm(v)) * float(np.linalg.norm(q))
            out[record_id] = 0.0 if norms == 0.0 else float(np.dot(v, q)) / norms
    return out


def oracle_distance(score: float, metric: vk.DistanceMetric | str) -> float:
    """The raw distance a result reports for ``score``: 1 - cosine, -inner product, or the L2 distance."""
    metric = vk.DistanceMetric.parse(metric)
    if metric is vk.DistanceMetric.COSINE:
        return 1.0 - score
    if metric is vk.DistanceMetric.DOT_PRODUCT:
        return -score
    return 1.0 / score - 1.0


def ranked(scores: Mapping[str, float], k: int | None = None) -> list[tuple[str, float]]:
    """``(id, score)`` best first, ties by id; the first ``k``."""
    order = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
    return order if k is None else order[:k]


def scores_close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=SCORE_REL_TOL, abs_tol=SCORE_ABS_TOL)


def assert_ranked_like(
    results: Sequence[vk.VectorSearchResult],
    oracle: Mapping[str, float],
    expected: Sequence[tuple[str, float]],
    what: str = "vector search",
) -> None:
    """``results`` hold the ``expected`` ranking: same length, each id a candidate with the right score,
    each at a rank whose expected score it has. Ids whose scores tie within tolerance may swap places;
    otherwise the ids and their order must be exactly ``expected``.

    ``oracle`` has the exact score of every candidate (every record that passes the filter and has the
    vector field).
    """
    got = [(r.id, r.score) for r in results]
    assert len(got) == len(expected), (
        f"{what}: {len(got)} results, expected {len(expected)}\n got: {got}\n expected: {list(expected)}"
    )
    ids = [record_id for record_id, _ in got]
    assert len(set(ids)) == len(ids), f"{what}: an id is returned twice: {ids}"
    for position, ((record_id, score), (want_id, want_score)) in enumerate(zip(got, expected, strict=True)):
        assert record_id in oracle, (
            f"{what}: result {position} is {record_id!r}, which fails the filter or has no such vector field"
        )
        assert scores_close(score, oracle[record_id]), (
            f"{what}: {record_id!r} has score {score!r}, the exact score is {oracle[record_id]!r} "
            "(check the metric's score formula: higher = more similar)"
        )
        assert scores_close(oracle[record_id], want_score), (
            f"{what}: position {position} holds {record_id!r} (score {oracle[record_id]!r}); expected "
            f"{want_id!r} (score {want_score!r})\n got: {ids}\n expected: {[i for i, _ in expected]}"
        )


def ids_of(items: Iterable[vk.Record | vk.VectorSearchResult]) -> list[str]:
    return [item.key if isinstance(item, vk.Record) else item.id for item in items]
