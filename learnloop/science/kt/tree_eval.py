"""A LightGBM model's trees as flat arrays, evaluated on one row by a compiled loop (issue 19).

``GBDTKT``'s online path predicts one answer at a time. LightGBM's own single-row calls
(``Booster.predict`` on a one-row matrix, or its C API through ctypes) cost more in checks,
conversions and locking than walking the trees does. Here the booster's dump
(``Booster.dump_model``) becomes one node table and one leaf table; ``FlatTrees.predict``
walks every tree with LightGBM's numerical decision rule (its missing-value handling
included) in a Numba-compiled loop and applies the binary objective's sigmoid, so it gives
``Booster.predict``'s value (tests: equal to 1e-12). Only numerical splits of a binary
model are read; anything else is refused when the table is built. Numba is imported when a
table is first built, not when ``learnloop.science.kt`` is imported.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

#: LightGBM's kZeroThreshold: |x| at most this counts as zero for missing_type "Zero"
ZERO_THRESHOLD = 1e-35
#: node table columns
FEATURE, THRESHOLD, LEFT, RIGHT, MISSING, DEFAULT_LEFT = range(6)
_MISSING = {"None": 0.0, "Zero": 1.0, "NaN": 2.0}

_walk: Callable[..., float] | None = None


def _compiled_walk() -> Callable[..., float]:
    """The compiled tree walk (built once per process, cached on disk where Numba can)."""
    global _walk
    if _walk is not None:
        return _walk
    from numba import njit

    def walk(x: Any, roots: Any, nodes: Any, leaves: Any) -> float:
        score = 0.0
        for t in range(roots.shape[0]):
            node = roots[t]
            while node >= 0:
                v = x[int(nodes[node, 0])]
                missing = nodes[node, 4]
                nan = math.isnan(v)
                # LightGBM: NaN counts as 0 unless the split's missing type is NaN; a missing
                # value (NaN, or zero for missing type Zero) takes the default side
                if (missing == 2.0 and nan) or (missing == 1.0 and (nan or abs(v) <= 1e-35)):
                    go_left = nodes[node, 5] > 0.0
                else:
                    if nan:
                        v = 0.0
                    go_left = v <= nodes[node, 1]
                node = int(nodes[node, 2]) if go_left else int(nodes[node, 3])
            score += leaves[-node - 1]
        return score

    try:
        _walk = njit(cache=True, nogil=True)(walk)
    except RuntimeError:  # no writable cache folder: compile per process
        _walk = njit(nogil=True)(walk)
    assert _walk is not None
    return _walk


class FlatTrees:
    """A fitted LightGBM binary model's trees as arrays: ``nodes[i]`` = (feature, threshold,
    left, right, missing type, default left) with a child ``>= 0`` an inner node and ``-k-1``
    leaf ``k``; ``roots[t]`` tree ``t``'s first node (a leaf where the tree has one leaf)."""

    def __init__(self, booster: Any) -> None:
        dump = booster.dump_model()
        objective = str(dump.get("objective", ""))
        if not objective.startswith("binary"):
            raise ValueError(f"FlatTrees reads binary models only, not {objective!r}")
        self.sigmoid = 1.0
        for part in objective.split():
            if part.startswith("sigmoid:"):
                self.sigmoid = float(part.split(":", 1)[1])
        self.n_features = int(dump["max_feature_idx"]) + 1
        nodes: list[list[float]] = []
        leaves: list[float] = []
        roots: list[int] = []

        def add(tree: dict[str, Any]) -> int:
            if "leaf_value" in tree and "split_feature" not in tree:
                leaves.append(float(tree["leaf_value"]))
                return -len(leaves)
            if tree.get("decision_type") != "<=":
                raise ValueError(f"FlatTrees reads numerical splits only, not {tree.get('decision_type')!r}")
            here = len(nodes)
            nodes.append([])
            left, right = add(tree["left_child"]), add(tree["right_child"])
            nodes[here] = [
                float(tree["split_feature"]),
                float(tree["threshold"]),
                float(left),
                float(right),
                _MISSING[str(tree.get("missing_type", "None"))],
                1.0 if tree.get("default_left", True) else 0.0,
            ]
            return here

        for info in dump["tree_info"]:
            roots.append(add(info["tree_structure"]))
        self.nodes: NDArray[np.float64] = np.asarray(nodes, dtype=np.float64).reshape(-1, 6)
        self.leaves: NDArray[np.float64] = np.asarray(leaves, dtype=np.float64)
        self.roots: NDArray[np.int64] = np.asarray(roots, dtype=np.int64)
        self._walk = _compiled_walk()

    def score(self, row: list[float]) -> float:
        """The raw score (sum of the trees' leaves) of one row of features."""
        x = np.asarray(row, dtype=np.float64)
        if x.shape != (self.n_features,):
            raise ValueError(f"a row of {self.n_features} features expected, got shape {x.shape}")
        return float(self._walk(x, self.roots, self.nodes, self.leaves))

    def predict(self, row: list[float]) -> float:
        """P(correct) of one row: the binary objective's sigmoid of ``score``."""
        z = self.sigmoid * self.score(row)
        return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
