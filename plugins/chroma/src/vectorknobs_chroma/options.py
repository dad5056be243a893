"""The store's options, and the names of the Chroma collections a store keeps.

``chroma:///var/data/chroma?collection=docs&ef_search=200`` and ``{"backend": "chroma", "path":
"/var/data/chroma", "collection": "docs", "ef_search": 200}`` are the same configuration. Every option
is in the README's Configuration table (a test checks that).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from vectorknobs import DistanceMetric, Option
from vectorknobs.config import parse_bool, parse_int

#: Chroma's space (``hnsw:space``) for each metric. Cosine is ``ip`` over unit vectors normalized by the
#: store (``unit.py``: Chroma's ``cosine`` space keeps no exact copy of the vectors). Chroma's distances are
#: never reported as they are (its ``l2`` is squared, ``ip`` is ``1 - dot``): ``distances.scores`` converts them.
SPACES = {DistanceMetric.COSINE: "ip", DistanceMetric.EUCLIDEAN: "l2", DistanceMetric.DOT_PRODUCT: "ip"}
#: the collection metadata key naming the metric a vector field's collection was created for
METRIC_KEY = "vectorknobs_metric"

# A base name without dots, so that "<base>.<field>.vectors" can never be another store's collection.
_BASE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{1,61}[A-Za-z0-9]")


def _at_least(minimum: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        number = parse_int(value)
        if number < minimum:
            raise ValueError(f"expected an int >= {minimum}, got {value!r}")
        return number

    return parse


def _seconds(value: Any) -> float:
    number = float(value)
    if not (number > 0 and math.isfinite(number)):
        raise ValueError(f"expected a number of seconds > 0, got {value!r}")
    return number


def _resize_factor(value: Any) -> float:
    number = float(value)
    if not number > 1:
        raise ValueError(f"expected a number > 1, got {value!r}")
    return number


def parse_collection(value: Any) -> str:
    """A base collection name: 3 to 63 letters, digits, ``_`` or ``-``, starting and ending alphanumeric."""
    name = str(value)
    if not _BASE.fullmatch(name):
        raise ValueError(
            f"collection {name!r} must be 3 to 63 letters, digits, '_' or '-', starting and ending with a "
            "letter or digit (no dots: the store adds '<name>.<field>.vectors' collections beside it)"
        )
    return name


#: HNSW options, passed to Chroma when a vector field's collection is created (Chroma's names)
HNSW_OPTIONS = ("ef_construction", "ef_search", "max_neighbors", "sync_threshold", "resize_factor")

OPTIONS: dict[str, Option] = {
    "collection": Option(
        parse_collection, "vectorknobs", "base name of the store's Chroma collections (http: also the URL path)"
    ),
    "tenant": Option(str, "default_tenant", "Chroma tenant"),
    "database": Option(str, "default_database", "Chroma database"),
    "ssl": Option(parse_bool, False, "http: connect with https"),
    "timeout": Option(_seconds, 30.0, "http: seconds to wait for each request to the server"),
    "ef_construction": Option(_at_least(1), 100, "HNSW candidate list while building (Chroma's hnsw:construction_ef)"),
    "ef_search": Option(_at_least(1), 100, "HNSW candidate list while searching (hnsw:search_ef)"),
    "max_neighbors": Option(_at_least(2), 16, "HNSW links per vector (hnsw:M)"),
    "sync_threshold": Option(_at_least(2), 1000, "vectors Chroma adds before it saves an HNSW index to disk"),
    "resize_factor": Option(_resize_factor, 1.2, "how much an HNSW index grows when it is full"),
    "exact_limit": Option(
        _at_least(0),
        1000,
        "a search over at most this many vectors (a small collection, or "
        "the matches of a filter) is exact: scored in numpy from the stored vectors",
    ),
    "write_batch_size": Option(
        _at_least(1),
        1000,
        "records per Chroma write call in bulk writes (at most "
        "Chroma's maximum batch size); embedded: each call holds the GIL, smaller keeps the "
        "event loop responsive at some cost in throughput",
    ),
}


def hnsw_configuration(settings: Mapping[str, Any], metric: DistanceMetric) -> dict[str, Any]:
    """Chroma's ``configuration`` of a vector field's collection, from the store's settings."""
    return {"hnsw": {"space": SPACES[metric], **{name: settings[name] for name in HNSW_OPTIONS}}}

