"""Gradient-boosted trees stacked on the logistic model, behind the ``kt-gbdt`` extra (issue 19).

P(correct) = LightGBM trees over (a) the logistic model's prediction (its log-odds), (b) the
logistic model's shared history features (``features.dense_columns``, the same counters), and
(c) what a linear model cannot weigh or does not have (``TREE_FEATURES``): the item's and the
skill's smoothed log-odds of success in the training log (``logistic._item_logits``, the
logistic model's item prior) and the item's support, the learner's running ability as the mean
and exponentially decayed residual (right minus the item's prior probability) over earlier
answers, the same residual on the skill, the raw skill and item counts, answers since the
learner last saw the skill and the item, the last answer on the item, and the skill id.
Stacked generalisation (Wolpert 1992): on the training rows the logistic prediction and the
item and skill log-odds come from models fitted on the other folds' learners (``_fold_of``),
so no training row reads its own label; online and in ``predict_proba`` they come from the
whole training log.

One implementation of each feature: the logistic part is ``LogisticKT`` and ``features.py``
unchanged; the tree counters are ``TreeCounters``, which both ``predict_proba`` (a replay of
the log, answer by answer) and the online path (``predict_next``/``update_answer``) use, so
online equals batch. Every row of a multi-skill answer reads the learner's earlier answers
only. The learner state (``GBDTState``) is typed and versioned: the logistic model's
``LearnerState`` plus the tree counters, bounded by the skills and items the learner answered.
lightgbm is imported only to fit, predict and load (``pip install 'learnloop[kt-gbdt]'``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Self, TypedDict

import numpy as np
from numpy.typing import NDArray

from learnloop.science.kt.base import (
    AnswerUpdates,
    ResponseLog,
    answers_of,
    check_log,
    predict_without_repeats,
    without_repeats,
)
from learnloop.science.kt.features import (
    FeatureSpec,
    LearnerState,
    as_state,
    dense_features,
    dense_row,
    history_counts,
    stack_counts,
)
from learnloop.science.kt.logistic import LogisticKT, _fold_of, _item_logits
from learnloop.science.kt.tree_eval import FlatTrees

FloatArray = NDArray[np.float64]

#: decays of the learner's decayed residual (x_t = lam x_{t-1} + residual_{t-1})
RESIDUAL_DECAYS = (0.7, 0.9, 0.97)
#: pseudo-answers shrinking the running ability (learner) and the skill ability toward 0
ABILITY_SMOOTH = 5.0
SKILL_ABILITY_SMOOTH = 3.0
TREE_FEATURES = [
    "logistic_logit",
    "item_logit",
    "skill_logit",
    "log_item_support",
    "ability",
    *[f"decayed_residual_{d:g}" for d in RESIDUAL_DECAYS],
    "skill_ability",
    "answers",
    "answers_since_skill",
    "answers_since_item",
    "last_on_item",
    "skill_attempts",
    "skill_wins",
    "item_attempts",
    "skill_id",
]
#: LightGBM's settings (one thread: two OpenMP threads spin against each other on a small
#: machine); the number of trees is ``GBDTKT.rounds``
TREE_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 63,
    "min_data_in_leaf": 200,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "num_threads": 1,
    "verbose": -1,
    "seed": 0,
}

#: the logistic base's settings (LogisticKT keyword arguments, JSON-like) and the number of
#: trees, chosen on the Gervet validation splits (bench/kt_gbdt.py, never on a test file)
DEFAULT_BASE: dict[str, Any] = {"features": {"ability_decays": [0.5, 0.8, 0.95, 0.99]}, "l2_ability": 10.0}
DEFAULT_ROUNDS = 175

#: version 1: ``GBDTState`` as first written (issue 19)
GBDT_STATE_VERSION = 1


def _lightgbm() -> Any:
    try:
        import lightgbm
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("GBDTKT needs lightgbm: pip install 'learnloop[kt-gbdt]'") from exc
    return lightgbm


class SkillResidual(TypedDict):
    answers: float
    residual: float
    last_answer: float  # the learner's answer count before their last answer on the skill


class ItemRecord(TypedDict):
    last_answer: float  # the learner's answer count before their last answer on the item
    last: float  # 0 wrong, 1 right


@dataclass
class TreeCounters:
    """The tree features' per-learner counters (``TREE_FEATURES`` past the logistic part)."""

    answers: float = 0.0
    residual: float = 0.0
    decayed: list[float] = field(default_factory=lambda: [0.0 for _ in RESIDUAL_DECAYS])
    skills: dict[str, SkillResidual] = field(default_factory=dict)
    items: dict[str, ItemRecord] = field(default_factory=dict)

    def row(self, skill: int, item: int | None) -> list[float]:
        """ability, decayed residuals, skill ability, answers, answers since the skill and
        the item (-1: never), last answer on the item (-1: never)."""
        s = self.skills.get(str(skill))
        it = self.items.get(str(item)) if item is not None else None
        return [
            self.residual / (self.answers + ABILITY_SMOOTH),
            *self.decayed,
            s["residual"] / (s["answers"] + SKILL_ABILITY_SMOOTH) if s is not None else 0.0,
            self.answers,
            self.answers - s["last_answer"] if s is not None else -1.0,
            self.answers - it["last_answer"] if it is not None else -1.0,
            it["last"] if it is not None else -1.0,
        ]

    def update(self, skills: Sequence[int], correct: float, item: int | None, residual: float) -> None:
        """Fold one answer (all its skills at once) with its residual: right minus the item's
        prior probability of success."""
        for key in dict.fromkeys(str(int(s)) for s in skills):
            s = self.skills.get(key)
            if s is None:
                self.skills[key] = SkillResidual(answers=1.0, residual=residual, last_answer=self.answers)
            else:
                s["answers"] += 1.0
                s["residual"] += residual
                s["last_answer"] = self.answers
        if item is not None:
            self.items[str(item)] = ItemRecord(last_answer=self.answers, last=float(correct))
        self.decayed = [lam * d + residual for lam, d in zip(RESIDUAL_DECAYS, self.decayed, strict=True)]
        self.residual += residual
        self.answers += 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "answers": self.answers,
            "residual": self.residual,
            "decayed": self.decayed,
            "skills": self.skills,
            "items": self.items,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TreeCounters:
        try:
            return cls(
                answers=float(data["answers"]),
                residual=float(data["residual"]),
                decayed=[float(v) for v in data["decayed"]],
                skills=data["skills"],
                items=data["items"],
            )
        except KeyError as missing:
            raise ValueError(f"tree counters lack {missing}") from None


@dataclass
class GBDTState:
    """One learner's state under ``GBDTKT``: the logistic model's and the trees' counters."""

    logistic: LearnerState
    trees: TreeCounters
    version: int = GBDT_STATE_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "logistic": self.logistic.to_dict(), "trees": self.trees.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GBDTState:
        version = data.get("version")
        if version != GBDT_STATE_VERSION:
            raise ValueError(
                f"unknown gbdt learner-state version {version!r}: this learnloop reads version "
                f"{GBDT_STATE_VERSION}; refit with `learnloop fit kt` or upgrade learnloop"
            )
        try:
            return cls(
                logistic=LearnerState.from_dict(data["logistic"]),
                trees=TreeCounters.from_dict(data["trees"]),
            )
        except KeyError as missing:
            raise ValueError(f"gbdt learner state lacks {missing}") from None


State = GBDTState | dict[str, Any]


class ItemTables:
    """The items' and skills' smoothed log-odds of success and the items' answer counts in a
    training log (one answer counts once), over every learner and, per fold of learners, over
    the other folds' learners."""

    def __init__(self, log: ResponseLog, n_items: int, n_skills: int, folds: int, smooth: float) -> None:
        g = answers_of(log)
        item = log.item[g.first] if log.item is not None else np.zeros(g.n_answers, dtype=np.int64)
        y_answer = log.correct[g.first].astype(np.float64)
        y = log.correct.astype(np.float64)
        self.item, self.mean = _item_logits(item, y_answer, n_items, smooth)
        self.skill = _item_logits(log.skill, y, n_skills, smooth)[0]
        self.item_n = np.bincount(item, minlength=n_items)[:n_items].astype(np.float64)
        fold_a, fold = _fold_of(log.user[g.first], folds), _fold_of(log.user, folds)
        self.fold_item = np.stack(
            [_item_logits(item[fold_a != f], y_answer[fold_a != f], n_items, smooth)[0] for f in range(folds)]
        )
        self.fold_skill = np.stack(
            [_item_logits(log.skill[fold != f], y[fold != f], n_skills, smooth)[0] for f in range(folds)]
        )
        self.fold_item_n = np.stack(
            [np.bincount(item[fold_a != f], minlength=n_items)[:n_items] for f in range(folds)]
        ).astype(np.float64)


class GBDTKT(AnswerUpdates[GBDTState]):
    """LightGBM trees stacked on ``LogisticKT`` (module docstring). ``base`` holds the logistic
    model's settings; ``rounds`` trees with ``TREE_PARAMS``; ``folds`` folds of learners for the
    out-of-fold logistic predictions and item tables of the training rows."""

    kind = "gbdt"

    def __init__(
        self,
        *,
        base: dict[str, Any] | None = None,
        rounds: int = DEFAULT_ROUNDS,
        folds: int = 5,
        smooth: float = 20.0,
        params: dict[str, Any] | None = None,
    ) -> None:
        self.base = copy.deepcopy(DEFAULT_BASE if base is None else base)
        self.rounds = rounds
        self.folds = folds
        self.smooth = smooth
        self.params = {**TREE_PARAMS, **(params or {})}

    def _logistic(self) -> LogisticKT:
        hyper = dict(self.base)
        if isinstance(hyper.get("features"), dict):
            hyper["features"] = FeatureSpec.from_dict(hyper["features"])
        return LogisticKT(**hyper)

    @property
    def with_windows_(self) -> bool:
        return self.logistic_.with_windows_

    # -- features ------------------------------------------------------------------------------

    def feature_names(self) -> list[str]:
        return [*TREE_FEATURES[:1], *self.logistic_.dense_names_, *TREE_FEATURES[1:]]

    def _features(
        self,
        log: ResponseLog,
        logistic_logit: FloatArray,
        item_logit: FloatArray,
        skill_logit: FloatArray,
        item_n: FloatArray,
    ) -> FloatArray:
        """The trees' features of every row of ``log`` (no repeated rows), given per row the
        logistic prediction and the item tables: the tree counters by a replay of the log,
        answer by answer, with ``TreeCounters`` (the online code)."""
        n = len(log)
        spec = self.logistic_.features
        h = history_counts(
            spec, log, max(self.n_skills_, int(log.skill.max()) + 1 if n else 1), self.with_windows_
        )
        dense = dense_features(spec, h, self.with_windows_) if n else np.zeros((0, self.logistic_.n_dense_))
        counters = np.empty((n, len(TREE_FEATURES) - 8))
        g = answers_of(log)
        states: dict[int, TreeCounters] = {}
        prob = 1.0 / (1.0 + np.exp(-item_logit))
        users, skills = log.user.tolist(), log.skill.tolist()
        items = log.item.tolist() if log.item is not None else [None] * n
        y = log.correct.tolist()
        for a, first in enumerate(g.first.tolist()):
            last = first + int(g.size[a])
            state = states.get(users[first])
            if state is None:
                state = states[users[first]] = TreeCounters()
            for r in range(first, last):
                counters[r] = state.row(skills[r], items[r])
            state.update(skills[first:last], y[first], items[first], y[first] - float(prob[first]))
        return np.column_stack(
            [
                logistic_logit,
                dense,
                item_logit,
                skill_logit,
                np.log1p(item_n),
                counters,
                np.asarray(h.skill_attempts, dtype=np.float64),
                np.asarray(h.skill_wins, dtype=np.float64),
                np.asarray(h.item_attempts, dtype=np.float64),
                log.skill.astype(np.float64),
            ]
        )

    def _lookup(self, log: ResponseLog) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Per row of a log outside training: the item's and skill's log-odds and the item's
        support (unknown ones: the mean and 0)."""
        t = self.tables_
        n = len(log)
        if log.item is None:
            item_logit, item_n = np.full(n, t.mean), np.zeros(n)
        else:
            known = log.item < len(t.item)
            safe = np.where(known, log.item, 0)
            item_logit = np.where(known, t.item[safe], t.mean)
            item_n = np.where(known, t.item_n[safe], 0.0)
        known_s = log.skill < len(t.skill)
        skill_logit = np.where(known_s, t.skill[np.where(known_s, log.skill, 0)], t.mean)
        return item_logit, skill_logit, item_n

    # -- fitting -------------------------------------------------------------------------------

    def fit(self, log: ResponseLog) -> Self:
        _lightgbm()  # before the logistic fits: say at once when the extra is missing
        kept, x = self.stack(log)
        self.booster_ = self.train_trees(x, kept.correct, self.params, self.rounds)
        return self

    def stack(self, log: ResponseLog) -> tuple[ResponseLog, FloatArray]:
        """Everything but the trees: the item tables, the out-of-fold logistic predictions,
        the logistic model on the whole log (``logistic_``); returns the log less repeated
        rows and the trees' features of its rows (``feature_names``)."""
        check_log(log)
        log = without_repeats(log)
        n = len(log)
        if n == 0:
            raise ValueError("GBDTKT needs answers to fit: the log is empty")
        self.n_skills_ = int(log.skill.max()) + 1
        self.n_items_ = int(log.item.max()) + 1 if log.item is not None else 0
        self.tables_ = ItemTables(log, self.n_items_, self.n_skills_, self.folds, self.smooth)
        fold = _fold_of(log.user, self.folds)
        out_of_fold = np.zeros(n)
        for f in range(self.folds):
            inside = fold == f
            if inside.any() and (~inside).any():
                out_of_fold[inside] = (
                    self._logistic().fit(log.subset(~inside)).predict_proba(log.subset(inside))
                )
            else:  # one fold holds every learner: no other fold to predict from
                out_of_fold[inside] = float(np.clip(log.correct.mean(), 1e-3, 1 - 1e-3))
        self.logistic_ = self._logistic().fit(log)
        t = self.tables_
        item = log.item if log.item is not None else np.zeros(n, dtype=np.int64)
        x = self._features(
            log,
            _logit(out_of_fold),
            t.fold_item[fold, item],
            t.fold_skill[fold, log.skill],
            t.fold_item_n[fold, item],
        )
        return log, x

    def train_trees(self, x: FloatArray, correct: NDArray[Any], params: dict[str, Any], rounds: int) -> Any:
        """LightGBM on the stacked features (a Booster)."""
        lgb = _lightgbm()
        train = lgb.Dataset(x, np.asarray(correct, dtype=np.float64), feature_name=self.feature_names())
        return lgb.train(params, train, num_boost_round=rounds)

    def features_of(self, log: ResponseLog) -> FloatArray:
        """The trees' features of a log outside training (no repeated rows), as ``predict_proba``
        reads them."""
        return self._features(log, _logit(self.logistic_.predict_proba(log)), *self._lookup(log))

    def predict_proba(self, log: ResponseLog) -> FloatArray:
        """P(correct) per row from the learner's earlier answers only."""
        check_log(log)
        if len(log) == 0:
            return np.zeros(0)
        return predict_without_repeats(log, self._predict_kept)

    def _predict_kept(self, log: ResponseLog) -> FloatArray:
        x = self.features_of(log)
        return np.asarray(self.booster_.predict(x, num_threads=1), dtype=np.float64)

    # -- online --------------------------------------------------------------------------------

    def initial_state(self) -> dict[str, Any]:
        return GBDTState(logistic=as_state(self.logistic_.initial_state()), trees=TreeCounters()).to_dict()

    def _row(self, typed: GBDTState, skill: int, item: int | None, timestamp: float | None) -> list[float]:
        logistic = self.logistic_
        h = logistic._counters().counts(typed.logistic, skill, item, timestamp)
        t = self.tables_
        known_item = item is not None and 0 <= item < len(t.item)
        dense = dense_row(logistic.features, h, self.with_windows_)
        z = logistic.logit_next(typed.logistic, skill, item, h, dense)
        return [
            min(max(z, -LOGIT_BOUND), LOGIT_BOUND),  # as _logit's clip of the batch prediction
            *dense,
            float(t.item[item]) if known_item and item is not None else t.mean,
            float(t.skill[skill]) if 0 <= skill < len(t.skill) else t.mean,
            math.log1p(float(t.item_n[item])) if known_item and item is not None else 0.0,
            *typed.trees.row(skill, item),
            float(h.skill_attempts),
            float(h.skill_wins),
            float(h.item_attempts),
            float(skill),
        ]

    def predict_next(
        self, state: State, skill: int, item: int | None = None, timestamp: float | None = None
    ) -> float:
        typed = _as_gbdt_state(state)
        return self._flat().predict(self._row(typed, skill, item, timestamp))

    def _flat(self) -> FlatTrees:
        """The booster's trees as arrays for one-row predictions (built on first use, and again
        when the booster changes)."""
        flat = getattr(self, "_flat_trees", None)
        if flat is None or flat[0] is not self.booster_:
            flat = self._flat_trees = (self.booster_, FlatTrees(self.booster_))
        return flat[1]

    def predict_all(self, state: State, timestamp: float | None = None) -> FloatArray:
        """``predict_next(state, s)`` for every skill code ``s`` (an average item), in one call of
        the trees."""
        typed = _as_gbdt_state(state)
        k = self.n_skills_
        if k == 0:
            return np.zeros(0)
        logistic = self.logistic_
        counters = logistic._counters()
        h = stack_counts([counters.counts(typed.logistic, s, None, timestamp) for s in range(k)])
        p = logistic.predict_all(typed.logistic, timestamp)
        t = self.tables_
        trees = np.asarray([typed.trees.row(s, None) for s in range(k)], dtype=np.float64)
        x = np.column_stack(
            [
                _logit(np.asarray(p, dtype=np.float64)),
                dense_features(logistic.features, h, self.with_windows_),
                np.full(k, t.mean),
                t.skill[:k],
                np.zeros(k),
                trees,
                np.asarray(h.skill_attempts, dtype=np.float64),
                np.asarray(h.skill_wins, dtype=np.float64),
                np.asarray(h.item_attempts, dtype=np.float64),
                np.arange(k, dtype=np.float64),
            ]
        )
        return np.asarray(self.booster_.predict(x, num_threads=1), dtype=np.float64)

    def _typed(self, state: State) -> GBDTState:
        return _as_gbdt_state(state)

    def _fold_answer(
        self, typed: GBDTState, skills: list[int], correct: int, item: int | None, timestamp: float | None
    ) -> None:
        """One answer into the logistic model's counters and the tree counters (its residual
        against the item's prior)."""
        self.logistic_._fold_answer(typed.logistic, skills, correct, item, timestamp)
        t = self.tables_
        known_item = item is not None and 0 <= item < len(t.item)
        prior = float(t.item[item]) if known_item and item is not None else t.mean
        residual = float(correct) - 1.0 / (1.0 + math.exp(-prior))
        typed.trees.update(skills, float(correct), item, residual)

    def __getstate__(self) -> dict[str, Any]:
        """Pickling and copying leave out the trees' arrays; they are built again from the
        booster on the next ``predict_next``."""
        return {k: v for k, v in self.__dict__.items() if k != "_flat_trees"}

    # -- persistence ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        t = self.tables_
        base = dict(self.base)
        if isinstance(base.get("features"), FeatureSpec):
            base["features"] = base["features"].to_dict()
        return {
            "kind": self.kind,
            "hyper": {"base": base, "rounds": self.rounds, "folds": self.folds, "smooth": self.smooth},
            "params": self.params,
            "n_skills": self.n_skills_,
            "n_items": self.n_items_,
            "logistic": self.logistic_.to_dict(),
            "item_logit": [float(v) for v in t.item],
            "skill_logit": [float(v) for v in t.skill],
            "item_n": [float(v) for v in t.item_n],
            "mean": t.mean,
            "trees": self.booster_.model_to_string(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GBDTKT:
        lgb = _lightgbm()
        model = cls(**data["hyper"], params=data["params"])
        model.n_skills_ = int(data["n_skills"])
        model.n_items_ = int(data["n_items"])
        model.logistic_ = LogisticKT.from_dict(data["logistic"])
        tables = ItemTables.__new__(ItemTables)
        tables.item = np.asarray(data["item_logit"], dtype=np.float64)
        tables.skill = np.asarray(data["skill_logit"], dtype=np.float64)
        tables.item_n = np.asarray(data["item_n"], dtype=np.float64)
        tables.mean = float(data["mean"])
        model.tables_ = tables
        model.booster_ = lgb.Booster(model_str=data["trees"])
        return model


def _as_gbdt_state(state: State) -> GBDTState:
    return state if isinstance(state, GBDTState) else GBDTState.from_dict(state)


#: the log-odds of 1 - 1e-6: the logistic prediction's log-odds are clipped to +-this
LOGIT_BOUND = math.log((1 - 1e-6) / 1e-6)


def _logit(p: FloatArray) -> FloatArray:
    q = np.clip(p, 1e-6, 1 - 1e-6)
    return np.asarray(np.log(q / (1 - q)), dtype=np.float64)
