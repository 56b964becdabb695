"""The offline grader's classifier: logistic regression on all features averaged with gradient-
boosted trees on the named (hand-made) ones, trained on SemEval-2013 (``bench/grading.py``),
and a calibration map from its confidence in a verdict to the probability that the verdict is
right, fitted on answers to questions the classifier was not trained on
(:meth:`OfflineGrader.calibrate`; isotonic regression, stored as breakpoints).

Hyper-parameters: trees of depth 5 beat depth 3 in 3-fold cross-validation on the joint
train split (macro-F1 0.781 vs 0.777); C=0.01 likewise (0.777, next to 0.779 at 0.003).
Training needs scikit-learn; prediction is plain numpy on the saved arrays, so the shipped
artefact (``artefacts/grader_2way.npz``, a few hundred kB) loads without it.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from learnloop.llm.grading_features import CROSS_LINGUAL_FEATURES, SCALAR_FEATURES

ARTEFACT_DIR = Path(__file__).resolve().parent / "artefacts"


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _as_proba(raw: np.ndarray) -> np.ndarray:
    """Raw scores (n, 1) for two classes or (n, K) for more, to class probabilities."""
    if raw.shape[1] == 1:
        p = 1.0 / (1.0 + np.exp(-raw[:, 0]))
        return np.column_stack([1.0 - p, p])
    return _softmax(raw)


#: up to this many rows, the trees are walked row by row in plain Python (``_tree_row``)
_ROW_BY_ROW = 8


class OfflineGrader:
    """``fit(X, y) -> self``; ``predict_proba(X)`` over ``classes_``; ``save``/``load`` as npz."""

    def __init__(
        self,
        C: float = 0.01,
        n_estimators: int = 200,
        max_depth: int = 5,
        learning_rate: float = 0.05,
        random_state: int = 0,
        features: tuple[str, ...] = SCALAR_FEATURES,
    ):
        self.features = tuple(features)
        self.C = C
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.random_state = random_state
        self.metadata_: dict[str, Any] = {}
        #: isotonic calibration breakpoints (raw confidence -> P(verdict right)); empty: identity
        self.calib_x_ = np.zeros(0)
        self.calib_y_ = np.zeros(0)

    # -- training (scikit-learn) ----------------------------------------------------------
    def fit(self, X: np.ndarray, y: np.ndarray) -> OfflineGrader:
        from sklearn.ensemble import GradientBoostingClassifier
        from sklearn.linear_model import LogisticRegression

        n_scalar = len(self.features)
        self.classes_ = np.array(sorted(set(y.tolist())))
        self.mean_ = X.mean(axis=0)
        self.scale_ = X.std(axis=0)
        self.scale_[self.scale_ == 0] = 1.0
        lr = LogisticRegression(C=self.C, max_iter=5000)
        lr.fit((X - self.mean_) / self.scale_, y)
        self.coef_ = lr.coef_.astype(np.float64)
        self.intercept_ = lr.intercept_.astype(np.float64)
        gb = GradientBoostingClassifier(
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            learning_rate=self.learning_rate,
            random_state=self.random_state,
        )
        gb.fit(X[:, :n_scalar], y)
        self._export_trees(gb, y)
        # The numpy re-implementation must agree with scikit-learn's own predictions.
        assert np.allclose(self._trees_proba(X[:, :n_scalar]), gb.predict_proba(X[:, :n_scalar]), atol=1e-6)
        return self

    def _export_trees(self, gb: Any, y: np.ndarray) -> None:
        n_classes = len(self.classes_)
        priors = np.array([np.mean(y == c) for c in self.classes_])
        if n_classes == 2:
            self.tree_init_ = np.array([np.log(priors[1] / priors[0])])
        else:
            self.tree_init_ = np.log(priors)
        features, thresholds, lefts, rights, values, offsets = [], [], [], [], [], [0]
        for stage in gb.estimators_:
            for tree in stage:
                t = tree.tree_
                features.append(t.feature)
                thresholds.append(t.threshold)
                lefts.append(t.children_left)
                rights.append(t.children_right)
                values.append(t.value.reshape(-1))
                offsets.append(offsets[-1] + t.node_count)
        self.tree_feature_ = np.concatenate(features).astype(np.int32)
        self.tree_threshold_ = np.concatenate(thresholds)
        self.tree_left_ = np.concatenate(lefts).astype(np.int32)
        self.tree_right_ = np.concatenate(rights).astype(np.int32)
        self.tree_value_ = np.concatenate(values)
        self.tree_offsets_ = np.array(offsets, dtype=np.int64)
        self.tree_rate_ = float(gb.learning_rate)
        self._tree_lists: tuple[list[Any], ...] | None = None

    # -- prediction (numpy only) ---------------------------------------------------------
    def _trees_raw(self, X: np.ndarray) -> np.ndarray:
        n_outputs = 1 if len(self.classes_) == 2 else len(self.classes_)
        raw = np.tile(self.tree_init_, (X.shape[0], 1)).astype(np.float64)
        X = X.astype(np.float32)  # scikit-learn's trees compare float32 features with the thresholds
        if X.shape[0] <= _ROW_BY_ROW:
            for r in range(X.shape[0]):
                raw[r] = self._tree_row(X[r].tolist(), raw[r].tolist(), n_outputs)
            return raw
        for t in range(len(self.tree_offsets_) - 1):
            base = int(self.tree_offsets_[t])
            node = np.zeros(X.shape[0], dtype=np.int64)
            while True:
                left = self.tree_left_[base + node]
                leaf = left == -1
                if leaf.all():
                    break
                feature = self.tree_feature_[base + node]
                go_left = (
                    X[np.arange(X.shape[0]), np.where(leaf, 0, feature)] <= self.tree_threshold_[base + node]
                )
                node = np.where(leaf, node, np.where(go_left, left, self.tree_right_[base + node]))
            raw[:, t % n_outputs] += self.tree_rate_ * self.tree_value_[base + node]
        return raw

    def _tree_row(self, x: list[float], raw: list[float], n_outputs: int) -> list[float]:
        """One row through every tree in plain Python (a graded answer is one row: numpy's
        per-call cost over 200 small trees was about 30 ms of CPU an answer). The same
        comparisons (float32 features against float64 thresholds) and the same float64 sums in
        the same order as the vectorised walk, so the result is the same to the last bit."""
        lists = getattr(self, "_tree_lists", None)
        if lists is None:
            lists = self._tree_lists = (
                self.tree_feature_.tolist(),
                self.tree_threshold_.tolist(),
                self.tree_left_.tolist(),
                self.tree_right_.tolist(),
                self.tree_value_.tolist(),
                self.tree_offsets_.tolist(),
            )
        feature, threshold, left, right, value, offsets = lists
        rate = self.tree_rate_
        for t in range(len(offsets) - 1):
            base = node = offsets[t]
            while left[node] != -1:
                node = base + (left[node] if x[feature[node]] <= threshold[node] else right[node])
            raw[t % n_outputs] += rate * value[node]
        return raw

    def _trees_proba(self, X_scalar: np.ndarray) -> np.ndarray:
        return _as_proba(self._trees_raw(X_scalar))

    def _linear_proba(self, X: np.ndarray) -> np.ndarray:
        raw = ((X - self.mean_) / self.scale_) @ self.coef_.T + self.intercept_
        return _as_proba(raw)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        return (self._linear_proba(X) + self._trees_proba(X[:, : len(self.features)])) / 2

    # -- calibration -------------------------------------------------------------------------
    def calibrate(self, X: np.ndarray, y: np.ndarray) -> OfflineGrader:
        """Fit the confidence map on answers to questions this model was NOT trained on."""
        from sklearn.isotonic import IsotonicRegression

        proba = self.predict_proba(X)
        raw = proba.max(axis=1)
        right = (self.classes_[proba.argmax(axis=1)] == y).astype(float)
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip", increasing=True)
        iso.fit(raw, right)
        self.calib_x_ = np.asarray(iso.X_thresholds_, dtype=np.float64)
        self.calib_y_ = np.asarray(iso.y_thresholds_, dtype=np.float64)
        return self

    def confidence(self, proba: np.ndarray) -> np.ndarray:
        """Calibrated probability that the arg-max verdict of each row of ``proba`` is right."""
        raw = np.atleast_2d(proba).max(axis=1)
        if not len(self.calib_x_):
            return raw
        return np.interp(raw, self.calib_x_, self.calib_y_)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    # -- serialisation -----------------------------------------------------------------------
    _ARRAYS = (
        "mean_",
        "scale_",
        "coef_",
        "intercept_",
        "tree_init_",
        "tree_feature_",
        "tree_threshold_",
        "tree_left_",
        "tree_right_",
        "tree_value_",
        "tree_offsets_",
        "calib_x_",
        "calib_y_",
    )

    def save(self, path: Path, metadata: dict[str, Any] | None = None) -> None:
        meta = {
            "classes": self.classes_.tolist(),
            "tree_rate": self.tree_rate_,
            "features": list(self.features),
            "params": {
                "C": self.C,
                "n_estimators": self.n_estimators,
                "max_depth": self.max_depth,
                "learning_rate": self.learning_rate,
                "random_state": self.random_state,
            },
            **(metadata or {}),
        }
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            meta=np.array(json.dumps(meta)),
            **{
                name: getattr(self, name).astype(
                    np.float32 if name in ("coef_", "mean_", "scale_") else getattr(self, name).dtype
                )
                for name in self._ARRAYS
            },
        )
        path.write_bytes(buffer.getvalue())

    @classmethod
    def load(cls, path: Path) -> OfflineGrader:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            grader = cls(**meta["params"], features=tuple(meta["features"]))
            for name in cls._ARRAYS:
                array = data[name] if name in data else np.zeros(0)
                setattr(grader, name, array.astype(np.float64) if array.dtype == np.float32 else array)
        if tuple(meta["features"]) not in (SCALAR_FEATURES, CROSS_LINGUAL_FEATURES):
            raise ValueError(
                "the grader artefact was trained on other features; retrain it with bench/grading.py"
            )
        grader.classes_ = np.array(meta["classes"])
        grader.tree_rate_ = float(meta["tree_rate"])
        grader.metadata_ = meta
        return grader


ARTEFACTS = {"same-language": "grader_2way.npz", "cross-lingual": "grader_xling_2way.npz"}


def shipped_grader(kind: str = "same-language") -> OfflineGrader | None:
    """The trained 2-way grader for answers in the references' language, or across languages."""
    path = ARTEFACT_DIR / ARTEFACTS[kind]
    return OfflineGrader.load(path) if path.exists() else None
