"""The common interface of knowledge-tracing models and the response log they learn from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, Self, TypeVar, overload

import numpy as np
from numpy.typing import NDArray


@dataclass
class ResponseLog:
    """Answers in time order, one row each (columnar numpy arrays of equal length).

    ``user``, ``skill`` and ``item`` are integer codes (0..n-1); ``correct`` is 0/1;
    ``timestamp`` is seconds (float) or None when the data has no times.

    ``answer`` (optional) names the answer each row belongs to: one answer to an item tagged
    with several skills is several rows, one per skill, that share its id, learner, label
    and item and are contiguous. A prediction never reads another row of its own answer:
    every row of an answer is predicted from the learner's earlier answers only. Without
    ``answer`` every row is its own answer.
    """

    user: NDArray[np.int64]
    skill: NDArray[np.int64]
    correct: NDArray[np.int8]
    item: NDArray[np.int64] | None = None
    timestamp: NDArray[np.float64] | None = None
    answer: NDArray[np.int64] | None = None

    def __post_init__(self) -> None:
        n = len(self.user)
        for name in ("skill", "correct", "item", "timestamp", "answer"):
            arr = getattr(self, name)
            if arr is not None and len(arr) != n:
                raise ValueError(f"ResponseLog.{name} has {len(arr)} rows, user has {n}")
        if n and not np.isin(self.correct, (0, 1)).all():
            bad = np.asarray(self.correct)[~np.isin(self.correct, (0, 1))][:5]
            raise ValueError(f"ResponseLog.correct must contain only 0 and 1, found {bad.tolist()}")

    def __len__(self) -> int:
        return len(self.user)

    def subset(self, mask: NDArray[Any]) -> ResponseLog:
        """The rows selected by a boolean mask or an index array, in their order."""

        def take(arr: NDArray[Any] | None) -> NDArray[Any] | None:
            return None if arr is None else arr[mask]

        return ResponseLog(
            user=self.user[mask],
            skill=self.skill[mask],
            correct=self.correct[mask],
            item=take(self.item),
            timestamp=take(self.timestamp),
            answer=take(self.answer),
        )


@dataclass(frozen=True)
class Answers:
    """How the rows of a log group into answers (see ``ResponseLog.answer``).

    ``index[r]`` is row r's answer (0..n_answers-1, in order of appearance); ``first[a]`` is
    the first row of answer a and ``size[a]`` its number of rows, so answer a is rows
    ``first[a]:first[a] + size[a]``; ``repeat[r]`` marks a row whose skill an earlier row of
    the same answer already lists (a duplicated tag: it carries no new information, so
    models fit without it and give it its twin's prediction)."""

    index: NDArray[np.int64]
    first: NDArray[np.int64]
    size: NDArray[np.int64]
    repeat: NDArray[np.bool_]

    @property
    def n_answers(self) -> int:
        return len(self.first)


def answers_of(log: ResponseLog) -> Answers:
    """The answer grouping of ``log`` (each row alone when it has no ``answer`` column)."""
    n = len(log)
    if log.answer is None:
        ids = np.arange(n, dtype=np.int64)
        return Answers(index=ids, first=ids, size=np.ones(n, dtype=np.int64), repeat=np.zeros(n, dtype=bool))
    a = np.asarray(log.answer)
    new = np.r_[True, a[1:] != a[:-1]] if n else np.zeros(0, dtype=bool)
    first = np.flatnonzero(new).astype(np.int64)
    index = (np.cumsum(new) - 1).astype(np.int64)
    size = np.diff(np.r_[first, n]).astype(np.int64)
    key = index * (int(log.skill.max()) + 1 if n else 1) + log.skill.astype(np.int64)
    order = np.argsort(key, kind="stable")
    repeat = np.zeros(n, dtype=bool)
    if n:
        repeat[order[1:]] = key[order[1:]] == key[order[:-1]]
    return Answers(index=index, first=first, size=size, repeat=repeat)


def twin_rows(log: ResponseLog, groups: Answers) -> NDArray[np.int64]:
    """For every row, the first row of its answer on the same skill (itself unless it repeats)."""
    key = groups.index * (int(log.skill.max()) + 1 if len(log) else 1) + log.skill.astype(np.int64)
    order = np.argsort(key, kind="stable")
    k = key[order]
    new = np.r_[True, k[1:] != k[:-1]] if len(log) else np.zeros(0, dtype=bool)
    starts = np.flatnonzero(new)
    twin = np.empty(len(log), dtype=np.int64)
    twin[order] = order[starts[np.cumsum(new) - 1]]
    return twin


def predict_without_repeats(
    log: ResponseLog, predict: Callable[[ResponseLog], NDArray[np.float64]]
) -> NDArray[np.float64]:
    """``predict`` on the rows that do not repeat a skill of their answer; a repeated row gets
    its twin's prediction (it carries no information its twin does not)."""
    groups = answers_of(log)
    if not groups.repeat.any():
        return predict(log)
    kept = np.flatnonzero(~groups.repeat)
    out = np.empty(len(log))
    out[kept] = predict(log.subset(kept))
    twin = twin_rows(log, groups)
    out[groups.repeat] = out[twin[groups.repeat]]
    return out


def without_repeats(log: ResponseLog) -> ResponseLog:
    """``log`` less the rows that repeat a skill of their answer (what models fit on)."""
    repeat = answers_of(log).repeat
    return log.subset(~repeat) if repeat.any() else log


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
    if log.answer is not None and len(log):
        a = np.asarray(log.answer)
        if not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"ResponseLog.answer must hold integer ids, got {a.dtype}")
        groups = answers_of(log)
        ids, counts = np.unique(a[groups.first], return_counts=True)
        if (counts > 1).any():
            raise ValueError(
                f"ResponseLog.answer: the rows of answer {int(ids[counts > 1][0])} are not contiguous"
            )
        lead = groups.first[groups.index]
        for name in ("user", "correct", "item", "timestamp"):
            arr = getattr(log, name)
            if arr is None:
                continue
            differ = np.flatnonzero(np.asarray(arr) != np.asarray(arr)[lead])
            if len(differ):
                row = int(differ[0])
                raise ValueError(
                    f"ResponseLog.answer: row {row} shares answer {int(a[row])} with row "
                    f"{int(lead[row])} but has another {name}"
                )


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


class VersionedState(Protocol):
    """A learner's typed state: its layout version and its JSON form."""

    version: int

    def to_dict(self) -> dict[str, Any]: ...


S = TypeVar("S", bound=VersionedState)


class AnswerUpdates(Generic[S]):
    """``update`` and ``update_answer`` for a tracer whose learner state is a typed, versioned
    structure ``S``: both take that structure or its JSON dict (any stored version) and give
    back what they were given, updated in place. A subclass says how a dict becomes ``S``
    (``_typed``) and how one answer is folded into ``S`` (``_fold_answer``)."""

    def _typed(self, state: S | dict[str, Any]) -> S:
        raise NotImplementedError

    def _fold_answer(
        self, typed: S, skills: list[int], correct: int, item: int | None, timestamp: float | None
    ) -> None:
        raise NotImplementedError

    @overload
    def update(
        self,
        state: dict[str, Any],
        skill: int,
        correct: int,
        item: int | None = ...,
        timestamp: float | None = ...,
    ) -> dict[str, Any]: ...

    @overload
    def update(
        self, state: S, skill: int, correct: int, item: int | None = ..., timestamp: float | None = ...
    ) -> S: ...

    def update(
        self,
        state: S | dict[str, Any],
        skill: int,
        correct: int,
        item: int | None = None,
        timestamp: float | None = None,
    ) -> S | dict[str, Any]:
        """Fold an answer on one skill into ``state``: ``update_answer`` with ``[skill]``."""
        return self.update_answer(state, [skill], correct, item, timestamp)

    @overload
    def update_answer(
        self,
        state: dict[str, Any],
        skills: list[int],
        correct: int,
        item: int | None = ...,
        timestamp: float | None = ...,
    ) -> dict[str, Any]: ...

    @overload
    def update_answer(
        self, state: S, skills: list[int], correct: int, item: int | None = ..., timestamp: float | None = ...
    ) -> S: ...

    def update_answer(
        self,
        state: S | dict[str, Any],
        skills: list[int],
        correct: int,
        item: int | None = None,
        timestamp: float | None = None,
    ) -> S | dict[str, Any]:
        """Fold one answer on ``skills`` (all the skills of its item, at once: none of them
        sees the others, as in ``predict_proba``) into ``state``, in place, and return it.
        A dict (a stored state of any version) is rewritten in the current layout."""
        check_label(correct)
        if not skills:
            raise ValueError("an answer needs at least one skill")
        typed = self._typed(state)
        self._fold_answer(typed, skills, int(correct), item, timestamp)
        if isinstance(state, dict):
            fresh = typed.to_dict()
            if state.get("version") != typed.version:
                state.clear()
            state.update(fresh)
        return state
