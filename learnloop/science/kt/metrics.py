"""Scores for P(correct) predictions: AUC, accuracy, RMSE and log loss (numpy/scipy only)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.stats import rankdata


def auc(y: NDArray[np.integer] | NDArray[np.floating], p: NDArray[np.floating]) -> float:
    """Area under the ROC curve by the Mann-Whitney U statistic, ties counted half
    (Hanley & McNeil 1982, eq. 2). NaN when only one class is present."""
    y = np.asarray(y).astype(bool)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(p)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def accuracy(
    y: NDArray[np.integer] | NDArray[np.floating], p: NDArray[np.floating], threshold: float = 0.5
) -> float:
    return float(np.mean((np.asarray(p) >= threshold) == np.asarray(y).astype(bool)))


def rmse(y: NDArray[np.integer] | NDArray[np.floating], p: NDArray[np.floating]) -> float:
    return float(np.sqrt(np.mean((np.asarray(p) - np.asarray(y)) ** 2)))


def log_loss(
    y: NDArray[np.integer] | NDArray[np.floating], p: NDArray[np.floating], eps: float = 1e-12
) -> float:
    q = np.clip(np.asarray(p, dtype=np.float64), eps, 1 - eps)
    yy = np.asarray(y, dtype=np.float64)
    return float(-np.mean(yy * np.log(q) + (1 - yy) * np.log(1 - q)))


def scores(y: NDArray[np.integer] | NDArray[np.floating], p: NDArray[np.floating]) -> dict[str, float]:
    return {"auc": auc(y, p), "accuracy": accuracy(y, p), "rmse": rmse(y, p), "log_loss": log_loss(y, p)}
