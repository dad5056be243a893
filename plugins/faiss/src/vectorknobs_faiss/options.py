"""The store's options and the choice of faiss index for a field of a given size.

``plan`` is pure: from the options, the dimension and the number of vectors it names the index a
field should have. ``auto`` follows the original design: exact below ``flat_limit`` vectors, IVF up to
``ivf_limit``, HNSW above. An index that needs training (IVF, and any ``sq8``/``pq`` quantizer) stays
exact until enough vectors are stored to train it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from vectorknobs import DistanceMetric, Option
from vectorknobs.config import parse_int

INDEX_KINDS = ("auto", "flat", "ivf", "hnsw")
QUANTIZERS = ("none", "sq8", "pq")
#: vectors per IVF list (and per PQ centroid) that k-means needs to train well (faiss' own advice)
TRAIN_PER_CENTROID = 39
MIN_TRAIN = 1_000
PQ_CENTROIDS = 256
#: an IVF index with an automatic ``nlist`` is retrained once the field grows this many times larger
RETRAIN_GROWTH = 4


def _choice(*allowed: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = str(value).strip().lower()
        if text not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}, got {value!r}")
        return text

    return parse


def _count(minimum: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        number = parse_int(value)
        if number < minimum:
            raise ValueError(f"expected an int >= {minimum}, got {value!r}")
        return number

    return parse


OPTIONS: dict[str, Option] = {
    "path": Option(str, None, "directory of the store (same as faiss:///path/to/dir)"),
    "index": Option(_choice(*INDEX_KINDS), "auto", "auto, flat (exact), ivf or hnsw"),
    "quantizer": Option(_choice(*QUANTIZERS), "none", "vector compression inside ivf and hnsw indexes"),
    "nlist": Option(_count(0), 0, "IVF lists; 0 = 4·√n, at most n/39"),
    "nprobe": Option(_count(0), 0, "IVF lists searched per query; 0 = max(8, nlist/16)"),
    "m": Option(_count(2), 16, "HNSW links per vector"),
    "ef_construction": Option(_count(1), 200, "HNSW candidate list while building"),
    "ef_search": Option(_count(1), 64, "HNSW candidate list while searching (at least k)"),
    "pq_m": Option(_count(0), 0, "PQ sub-quantizers, a divisor of the dimension; 0 = about dimension/4"),
    "flat_limit": Option(_count(0), 10_000, "auto: exact search below this many vectors"),
    "ivf_limit": Option(_count(0), 1_000_000, "auto: IVF up to this many vectors, HNSW above"),
    "exact_limit": Option(_count(0), 2_048, "a filtered search matching at most this many records scores them all"),
}


@dataclass(frozen=True)
class IndexSpec:
    """What a field's index is: enough to build it again and to tell whether it still fits."""

    kind: str
    metric: DistanceMetric
    dims: int
    nlist: int = 0
    quantizer: str = "none"
    pq_m: int = 0
    m: int = 0
    ef_construction: int = 0

    @property
    def factory(self) -> str:
        """The faiss ``index_factory`` string."""
        codec = {"none": "Flat", "sq8": "SQ8", "pq": f"PQ{self.pq_m}"}[self.quantizer]
        if self.kind == "ivf":
            return f"IVF{self.nlist},{codec}"
        if self.kind == "hnsw":
            return f"IDMap,HNSW{self.m}" + ("" if self.quantizer == "none" else f"_{codec}")
        return "IDMap,Flat"

    @property
    def training_size(self) -> int:
        """Vectors needed before this index can be trained (0: no training)."""
        needs = []
        if self.kind == "ivf":
            needs.append(max(MIN_TRAIN, TRAIN_PER_CENTROID * self.nlist))
        if self.quantizer == "sq8":
            needs.append(MIN_TRAIN)
        if self.quantizer == "pq":
            needs.append(TRAIN_PER_CENTROID * PQ_CENTROIDS)
        return max(needs, default=0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IndexSpec:
        return cls(**{**data, "metric": DistanceMetric(data["metric"])})


def plan(settings: Mapping[str, Any], metric: DistanceMetric, dims: int, n: int) -> IndexSpec:
    """The index a field of ``n`` vectors of ``dims`` dimensions should have."""
    kind = settings["index"]
    if kind == "auto":
        kind = "flat" if n < settings["flat_limit"] else "ivf" if n <= settings["ivf_limit"] else "hnsw"
    quantizer = "none" if kind == "flat" else settings["quantizer"]
    spec = IndexSpec(
        kind=kind,
        metric=metric,
        dims=dims,
        nlist=(settings["nlist"] or auto_nlist(n)) if kind == "ivf" else 0,
        quantizer=quantizer,
        pq_m=(settings["pq_m"] or auto_pq_m(dims)) if quantizer == "pq" else 0,
        m=settings["m"] if kind == "hnsw" else 0,
        ef_construction=settings["ef_construction"] if kind == "hnsw" else 0,
    )
    if n < spec.training_size:
        return IndexSpec("flat", metric, dims)
    return spec


def still_fits(current: IndexSpec, trained_on: int, wanted: IndexSpec, n: int, fixed_nlist: bool) -> bool:
    """Can a field of ``n`` vectors keep ``current`` (trained on ``trained_on``) when ``wanted`` is the plan?

    An IVF index whose ``nlist`` is automatic is kept until the field has grown ``RETRAIN_GROWTH`` times.
    """
    if current.kind == "ivf" == wanted.kind and not fixed_nlist:
        return current.to_dict() | {"nlist": 0} == wanted.to_dict() | {"nlist": 0} and n < RETRAIN_GROWTH * trained_on
    return current == wanted


def auto_nlist(n: int) -> int:
    return max(1, min(int(4 * math.sqrt(n)), n // TRAIN_PER_CENTROID))


def auto_nprobe(nlist: int) -> int:
    return min(nlist, max(8, nlist // 16))


def auto_pq_m(dims: int) -> int:
    """The largest divisor of ``dims`` not above ``dims / 4`` (4 dimensions per byte-sized code)."""
    return max(m for m in range(1, max(1, dims // 4) + 1) if dims % m == 0)
