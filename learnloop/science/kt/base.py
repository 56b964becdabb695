"""The common interface of knowledge-tracing models and the response log they learn from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Self

import numpy as np
from numpy.typing import NDArray


@dataclass
class ResponseLog:
    """Answers in time order, one row each (columnar numpy arrays of equal length).

    ``user``, ``skill`` and ``item`` are integer codes (0..n-1); ``correct`` is 0/1;
    ``timestamp`` is seconds (float) or None when the data has no times.
    """

    user: NDArray[np.int64]
    skill: NDArray[np.int64]
    correct: NDArray[np.int8]
    item: NDArray[np.int64] | None = None
    timestamp: NDArray[np.float64] | None = None

    def __post_init__(self) -> None:
        n = len(self.user)
        for name in ("skill", "correct", "item", "timestamp"):
            arr = getattr(self, name)
            if arr is not None and len(arr) != n:
                raise ValueError(f"ResponseLog.{name} has {len(arr)} rows, user has {n}")
        if n and not np.isin(self.correct, (0, 1)).all():
            bad = np.asarray(self.correct)[~np.isin(self.correct, (0, 1))][:5]
            raise ValueError(f"ResponseLog.correct must contain only 0 and 1, found {bad.tolist()}")

    def __len__(self) -> int:
        return len(self.user)


def check_log(log: ResponseLog) -> None:
    """Reject logs a model cannot use: negative or non-integer codes, non-finite times."""
    for name in ("user", "skill", "item"):
        arr = getattr(log, name)
        if arr is None or len(arr) == 0:
            continue
        if not np.issubdtype(np.asarray(arr).dtype, np.integer):
            raise ValueError(f"ResponseLog.{name} must hold integer codes, got {np.asarray(arr).dtype}")
        if arr.min() < 0:
            raise ValueError(f"ResponseLog.{name} must hold codes >= 0, found {int(arr.min())}")
    if log.timestamp is not None and len(log) and not np.isfinite(log.timestamp).all():
        raise ValueError("ResponseLog.timestamp must be finite (use None when there are no times)")


def check_label(correct: int | bool) -> None:
    if correct not in (0, 1):
        raise ValueError(f"correct must be 0 or 1, got {correct!r}")


def sequence_key(user: NDArray[np.int64], skill: NDArray[np.int64], n_skills: int) -> NDArray[np.int64]:
    """One integer per (learner, skill) pair."""
    return user.astype(np.int64) * max(n_skills, 1) + skill.astype(np.int64)


class KnowledgeTracer(Protocol):
    """What the product needs from a knowledge-tracing model.

    ``state`` is a JSON-serialisable dict per learner (what the store keeps as derived
    mastery); ``update`` must be cheap enough for the request path.
    """

    def fit(self, log: ResponseLog) -> Self: ...

    def predict_proba(self, log: ResponseLog) -> NDArray[np.float64]:
        """P(correct) for every row of ``log``, using only the rows before it per user."""
        ...

    def initial_state(self) -> dict[str, Any]: ...

    def predict_next(
        self, state: dict[str, Any], skill: int, item: int | None = None, timestamp: float | None = None
    ) -> float:
        """P(correct) on the learner's next answer, from ``state``."""
        ...

    def update(
        self,
        state: dict[str, Any],
        skill: int,
        correct: int,
        item: int | None = None,
        timestamp: float | None = None,
    ) -> dict[str, Any]: ...

    def to_dict(self) -> dict[str, Any]: ...


class LatentMastery(Protocol):
    """A tracer with a hidden known/unknown state per skill (BKT): ``mastery`` is P(skill
    known), the scale of the role targets, and nothing else. Models without such a state (the
    logistic and recurrent ones) have only ``predict_next``, P(correct); the product never
    turns one into the other (``services/mastery.py``)."""

    def mastery(self, state: dict[str, Any], skill: int) -> float: ...
