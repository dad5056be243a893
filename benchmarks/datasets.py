"""Benchmark data sets: vectors, queries and the record fields that go with them, cached as ``.npy`` files.

A prepared data set is a directory (``benchmarks/data/<key>/``, git-ignored) holding::

    base.npy          float32 (n, d)   the vectors to insert
    queries.npy       float32 (q, d)   query vectors (never rows of base)
    text.npy          unicode (n,)     a short text per record (the vector's source_field)
    category.npy      int16   (n,)     index into meta["categories"] (filtered searches use it)
    price.npy         float64 (n,)     a number per record
    filter_category.npy int16 (q,)     the category each filtered query asks for
    meta.json         name, metric, categories, seed, ...

Workers open them with ``mmap_mode="r"``: file-backed pages do not count as anonymous memory, so a
worker's memory figures show what the store (or raw client) keeps, not the input data.

Two sources: ``synthetic`` (seeded clustered Gaussian vectors on a low-dimensional manifold, like real
embeddings; uniform random vectors would make recall meaningless) and ``fashion-mnist`` (the ann-benchmarks
set, 60k x 784 train / 10k test, euclidean), from the Debian package ``dataset-fashion-mnist``.
"""

from __future__ import annotations

import gzip
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parent
DEFAULT_CACHE = ROOT / "data"
FORMAT = 2  # bump when the generated data changes, so stale caches are rebuilt

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_INSTALL = "apt-get update && apt-get install -y dataset-fashion-mnist"
FASHION_LABELS = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

SYNTHETIC_CATEGORIES = (
    "books", "music", "movies", "games", "garden", "kitchen", "toys", "sports", "travel", "health",
    "beauty", "office", "pets", "tools", "auto", "baby", "shoes", "jewelry", "software", "food",
)
_ADJECTIVES = (
    "quiet", "bright", "heavy", "small", "ancient", "modern", "rapid", "gentle", "bold", "curious",
    "silver", "wooden", "hidden", "frozen", "golden", "simple", "urban", "rural", "noisy", "tiny",
)
_NOUNS = (
    "river", "engine", "garden", "report", "guitar", "planet", "kettle", "bridge", "market", "notebook",
    "forest", "camera", "lantern", "harbor", "ticket", "blanket", "rocket", "puzzle", "mirror", "ladder",
)
_PURPOSES = ("beginners", "experts", "travel", "the office", "kids", "winter", "summer", "daily use")

DATASETS = ("synthetic", "fashion-mnist")


class DatasetMissingError(RuntimeError):
    """A real data set's files are not installed; the message holds the install command."""


@dataclass
class Dataset:
    """A prepared data set, memory-mapped from its directory."""

    path: Path
    meta: dict[str, Any]

    def array(self, name: str) -> np.ndarray:
        return np.load(self.path / f"{name}.npy", mmap_mode="r")

    @property
    def base(self) -> npt.NDArray[np.float32]:
        return self.array("base")

    @property
    def queries(self) -> npt.NDArray[np.float32]:
        return self.array("queries")

    @property
    def categories(self) -> list[str]:
        return list(self.meta["categories"])

    @property
    def n(self) -> int:
        return int(self.meta["n"])

    @property
    def dim(self) -> int:
        return int(self.meta["dim"])

    def record_id(self, row: int) -> str:
        return f"doc-{row:08d}"

    def field_bytes(self) -> int:
        """Bytes of the record fields written plainly: UTF-8 text + category + 8 per number + the id."""
        text = self.array("text")
        codes = self.array("category")
        cat_len = np.array([len(c.encode()) for c in self.categories], dtype=np.int64)
        text_bytes = sum(len(t.encode()) for t in text.tolist())
        return int(text_bytes + cat_len[codes].sum() + 8 * self.n + len(self.record_id(0)) * self.n)

    def vector_bytes(self) -> int:
        return self.n * self.dim * 4


def prepare(
    name: str,
    n: int | None = None,
    dim: int | None = None,
    queries: int = 1000,
    seed: int = 0,
    cache: Path = DEFAULT_CACHE,
) -> Dataset:
    """Build (or reuse from ``cache``) the data set ``name``."""
    if name == "synthetic":
        n = 100_000 if n is None else n
        dim = 384 if dim is None else dim
        key = f"synthetic-n{n}-d{dim}-q{queries}-s{seed}"
        builder = lambda out: _build_synthetic(out, n, dim, queries, seed)  # noqa: E731
    elif name == "fashion-mnist":
        if dim not in (None, 784):
            raise ValueError("fashion-mnist vectors have 784 dimensions; drop -d")
        key = f"fashion-mnist-n{n or 60000}-q{queries}-s{seed}"
        builder = lambda out: _build_fashion(out, n, queries, seed)  # noqa: E731
    else:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    path = cache / key
    meta_file = path / "meta.json"
    if meta_file.exists():
        meta = json.loads(meta_file.read_text())
        if meta.get("format") == FORMAT:
            return Dataset(path, meta)
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    meta = builder(tmp)
    meta.update(format=FORMAT, key=key, seed=seed)
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)
    return Dataset(path, meta)


# -- synthetic ------------------------------------------------------------------------------------
def _build_synthetic(out: Path, n: int, dim: int, n_queries: int, seed: int) -> dict[str, Any]:
    """Clustered Gaussian vectors on a ``latent``-dimensional manifold, plus isotropic noise.

    Real embeddings have a low intrinsic dimension and cluster by topic; this reproduces both, so an
    approximate index has real neighbourhoods to find (recall is neither trivially 1 nor meaningless).
    """
    rng = np.random.default_rng(seed)
    latent = min(dim, 64)
    clusters = int(np.clip(n // 250, 8, 2000))
    centers = rng.normal(0.0, 1.0, size=(clusters, latent))
    spread = rng.uniform(0.25, 0.6, size=clusters)  # clusters of different tightness
    projection = rng.normal(0.0, 1.0 / np.sqrt(latent), size=(latent, dim))
    noise = 0.08

    def sample(count: int, stream: np.random.Generator) -> npt.NDArray[np.float32]:
        rows = np.empty((count, dim), dtype=np.float32)
        for start in range(0, count, 50_000):
            m = min(50_000, count - start)
            which = stream.integers(0, clusters, size=m)
            points = centers[which] + stream.normal(size=(m, latent)) * spread[which, None]
            rows[start:start + m] = points @ projection + stream.normal(0.0, noise, size=(m, dim))
        return rows

    base = sample(n, np.random.default_rng([seed, 1]))
    queries = sample(n_queries, np.random.default_rng([seed, 2]))
    np.save(out / "base.npy", base)
    np.save(out / "queries.npy", queries)
    del base
    fields = np.random.default_rng([seed, 3])
    weights = 1.0 / np.sqrt(np.arange(1, len(SYNTHETIC_CATEGORIES) + 1))  # mildly skewed: 3%..9% each
    category = fields.choice(len(SYNTHETIC_CATEGORIES), size=n, p=weights / weights.sum()).astype(np.int16)
    adj = fields.integers(0, len(_ADJECTIVES), size=n)
    noun = fields.integers(0, len(_NOUNS), size=n)
    purpose = fields.integers(0, len(_PURPOSES), size=n)
    text = np.array(
        [f"{_ADJECTIVES[a]} {_NOUNS[b]} for {_PURPOSES[c]} #{i}"
         for i, (a, b, c) in enumerate(zip(adj.tolist(), noun.tolist(), purpose.tolist(), strict=True))]
    )
    price = np.round(fields.lognormal(3.0, 1.0, size=n), 2)
    filter_category = fields.integers(0, len(SYNTHETIC_CATEGORIES), size=n_queries).astype(np.int16)
    np.save(out / "text.npy", text)
    np.save(out / "category.npy", category)
    np.save(out / "price.npy", price)
    np.save(out / "filter_category.npy", filter_category)
    return {
        "name": "synthetic", "n": n, "dim": dim, "queries": n_queries, "metric": "cosine",
        "categories": list(SYNTHETIC_CATEGORIES),
        "generator": {"clusters": clusters, "latent_dim": latent, "noise": noise, "spread": [0.25, 0.6]},
    }


# -- fashion-mnist --------------------------------------------------------------------------------
def fashion_files() -> tuple[Path, Path, Path]:
    """The train images, train labels and test images of the Debian package, or a clear error."""
    files = (
        FASHION_DIR / "train-images-idx3-ubyte.gz",
        FASHION_DIR / "train-labels-idx1-ubyte.gz",
        FASHION_DIR / "t10k-images-idx3-ubyte.gz",
    )
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise DatasetMissingError(
            f"fashion-mnist is not installed (missing {', '.join(missing)}).\n"
            f"Install it (as root) with:\n    {FASHION_INSTALL}"
        )
    return files


def read_idx(path: Path) -> npt.NDArray[np.uint8]:
    """An IDX file (the MNIST format: big-endian magic, dimensions, then unsigned bytes)."""
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    if data[0:2] != b"\x00\x00" or data[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise ValueError(f"{path} is truncated: {array.size} bytes for shape {shape}")
    return array.reshape(shape)


def _build_fashion(out: Path, n: int | None, n_queries: int, seed: int) -> dict[str, Any]:
    """The ann-benchmarks set: train images are the base, test images the queries, euclidean on pixels."""
    train_images, train_labels, test_images = fashion_files()
    base = read_idx(train_images).reshape(-1, 784).astype(np.float32)
    labels = read_idx(train_labels).astype(np.int16)
    tests = read_idx(test_images).reshape(-1, 784).astype(np.float32)
    if n is not None:
        base, labels = base[:n], labels[:n]
    if n_queries > len(tests):
        raise ValueError(f"fashion-mnist has {len(tests)} test queries; asked for {n_queries}")
    count = len(base)
    np.save(out / "base.npy", base)
    np.save(out / "queries.npy", tests[:n_queries])
    rng = np.random.default_rng([seed, 4])
    text = np.array([f"{FASHION_LABELS[c].lower()} photo #{i}" for i, c in enumerate(labels.tolist())])
    np.save(out / "text.npy", text)
    np.save(out / "category.npy", labels)
    np.save(out / "price.npy", np.round(rng.lognormal(3.0, 1.0, size=count), 2))
    np.save(out / "filter_category.npy", rng.integers(0, len(FASHION_LABELS), size=n_queries).astype(np.int16))
    return {
        "name": "fashion-mnist", "n": count, "dim": 784, "queries": n_queries, "metric": "euclidean",
        "categories": list(FASHION_LABELS), "source": str(FASHION_DIR),
    }
