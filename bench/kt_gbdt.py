"""Gradient-boosted trees for knowledge tracing on the Gervet validation split (issue 19).

Issue 19 asks for a model at >= 0.80 AUC on Gervet ASSISTments09 and >= 0.85 on Gervet
Statics. This protocol measures whether LightGBM gets there, on the ``gervet-valid`` split
only (the training file's learners split 80/20 into fit and valid; the test file is not
read), beside ``LogisticKT`` at its defaults fitted and scored in the same run:

- ``lightgbm`` trees over the logistic model's per-answer history features (``features.py``:
  ``history_counts`` and ``dense_features``, unchanged) plus what a linear model cannot
  express or does not have: the raw counts (for interactions with item difficulty), the
  item's and the skill's smoothed log-odds of success (the logistic model's item prior,
  ``_item_logits``), the item's support, the learner's running ability as the mean and
  exponentially decayed residual (right minus the item's prior probability) over earlier
  answers, the same residual on the skill, answers since the learner last saw the skill and
  the item, and the last answer on the item. The data has no timestamps, so recency is
  counted in answers.
- ``lightgbm+logistic``: the same trees with the logistic model's prediction as one more
  feature (stacking); on the fit learners that prediction is out of fold (5 folds by
  learner), on valid it comes from the logistic model fitted on every fit learner.

Every feature of a row reads the learner's earlier answers only; the item and skill log-odds
of a fit row come from the other folds' learners (``_fold_of``, as the item prior), so no
row reads its own label. The number of trees is read off valid (the AUC after each tree),
so the trees' figure is, if anything, optimistic. Requires ``pip install lightgbm``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bench._common import Record, record
from learnloop.science.kt import LogisticKT, ResponseLog
from learnloop.science.kt.base import sequence_key
from learnloop.science.kt.features import (
    FeatureSpec,
    _exclusive_counts,
    _scan_sequences,
    dense_features,
    history_counts,
)
from learnloop.science.kt.logistic import _fold_of, _item_logits
from learnloop.science.kt.metrics import auc
from learnloop.science.kt.packing import pack_sequences, previous_in_group

FloatArray = NDArray[np.float64]

FOLDS = 5
SMOOTH = 20.0  # LogisticKT's item_prior_smooth
RESIDUAL_DECAYS = (0.7, 0.9, 0.97)
PARAMS: dict[str, Any] = {
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

PROTOCOL_GERVET_GBDT = (
    "Gervet et al. 2020 training file only (preprocessed_data_train), its learners split 80/20 at "
    "random (seed {seed}) into fit and valid, as gervet-valid; LogisticKT at its defaults and LightGBM "
    "{lightgbm} ({params}; up to {rounds} trees, the count with the best valid AUC reported) fitted on "
    "fit; valid AUC; the test file is not read"
)


class Tables:
    """The items' and skills' smoothed log-odds of success on the fit learners: over all of
    them (for valid rows) and per fold, over the other folds' learners (for fit rows)."""

    def __init__(self, fit: ResponseLog, n_items: int, n_skills: int) -> None:
        assert fit.item is not None
        y = fit.correct.astype(np.float64)
        fold = _fold_of(fit.user, FOLDS)
        self.item = _item_logits(fit.item, y, n_items, SMOOTH)[0]
        self.skill = _item_logits(fit.skill, y, n_skills, SMOOTH)[0]
        self.item_n = np.bincount(fit.item, minlength=n_items).astype(np.float64)
        self.fold_item = np.stack(
            [_item_logits(fit.item[fold != f], y[fold != f], n_items, SMOOTH)[0] for f in range(FOLDS)]
        )
        self.fold_skill = np.stack(
            [_item_logits(fit.skill[fold != f], y[fold != f], n_skills, SMOOTH)[0] for f in range(FOLDS)]
        )
        self.fold_item_n = np.stack(
            [np.bincount(fit.item[fold != f], minlength=n_items) for f in range(FOLDS)]
        ).astype(np.float64)

    def rows(self, log: ResponseLog, out_of_fold: bool) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Per row: the item's log-odds, the skill's log-odds and the item's answer count."""
        assert log.item is not None
        if not out_of_fold:
            return self.item[log.item], self.skill[log.skill], self.item_n[log.item]
        f = _fold_of(log.user, FOLDS)
        return self.fold_item[f, log.item], self.fold_skill[f, log.skill], self.fold_item_n[f, log.item]


def answer_features(
    log: ResponseLog, n_skills: int, item_logit: FloatArray, skill_logit: FloatArray, item_n: FloatArray
) -> tuple[FloatArray, list[str]]:
    """The trees' features per row (see the module docstring), and their names."""
    assert log.item is not None
    spec = FeatureSpec()
    h = history_counts(spec, log, n_skills, False)
    y = log.correct.astype(np.float64)
    residual = y - 1.0 / (1.0 + np.exp(-item_logit))
    answers, residual_sum = _exclusive_counts(log.user.astype(np.int64), residual)
    decayed, _, _, _ = _scan_sequences(
        pack_sequences(log.user.astype(np.int64)), residual, RESIDUAL_DECAYS, False
    )
    user_skill = sequence_key(log.user, log.skill, n_skills)
    skill_answers, skill_residual = _exclusive_counts(user_skill, residual)
    ordinal = np.asarray(h.user_attempts)
    prev_skill = previous_in_group(user_skill)
    prev_item = previous_in_group(sequence_key(log.user, log.item, int(log.item.max()) + 1))
    extra = {
        "item_logit": item_logit,
        "skill_logit": skill_logit,
        "log_item_support": np.log1p(item_n),
        "ability": residual_sum / (answers + 5.0),
        **{f"decayed_residual_{d:g}": w for d, (w, _) in zip(RESIDUAL_DECAYS, decayed, strict=True)},
        "skill_ability": skill_residual / (skill_answers + 3.0),
        "answers": answers,
        "answers_since_skill": np.where(prev_skill >= 0, ordinal - ordinal[np.maximum(prev_skill, 0)], -1.0),
        "answers_since_item": np.where(prev_item >= 0, ordinal - ordinal[np.maximum(prev_item, 0)], -1.0),
        "last_on_item": np.where(prev_item >= 0, y[np.maximum(prev_item, 0)], -1.0),
        "skill_attempts": np.asarray(h.skill_attempts, dtype=np.float64),
        "skill_wins": np.asarray(h.skill_wins, dtype=np.float64),
        "item_attempts": np.asarray(h.item_attempts, dtype=np.float64),
        "skill_id": log.skill.astype(np.float64),
    }
    x = np.column_stack([dense_features(spec, h, False), *extra.values()])
    return x, [*spec.dense_names(False), *extra]


def _trees(
    x_fit: FloatArray,
    y_fit: NDArray[Any],
    x_valid: FloatArray,
    y_valid: NDArray[Any],
    names: list[str],
    rounds: int,
) -> tuple[float, int, float]:
    """LightGBM fitted on fit; (best valid AUC over the tree counts, that count, fit CPU s)."""
    import lightgbm as lgb

    cpu = time.process_time()
    booster = lgb.train(PARAMS, lgb.Dataset(x_fit, y_fit, feature_name=names), num_boost_round=rounds)
    cpu = time.process_time() - cpu
    aucs = [
        auc(y_valid, np.asarray(booster.predict(x_valid, num_iteration=k), dtype=np.float64))
        for k in range(25, rounds + 1, 25)
    ]
    best = int(np.argmax(aucs))
    return float(aucs[best]), 25 * (best + 1), cpu


def _logit(p: FloatArray) -> FloatArray:
    q = np.clip(p, 1e-6, 1 - 1e-6)
    return np.asarray(np.log(q / (1 - q)), dtype=np.float64)


def gervet_gbdt_records(
    data: Path, datasets: Sequence[str], split: Any, seed: int, rounds: int = 300
) -> list[Record]:
    """Valid AUC and fit CPU time of LogisticKT, the trees and the stacked trees per dataset.
    ``split(data, dataset)`` gives gervet-valid's (fit, valid) logs."""
    import lightgbm as lgb

    params = ", ".join(f"{k} {v}" for k, v in PARAMS.items() if k not in ("verbose", "objective"))
    protocol = PROTOCOL_GERVET_GBDT.format(seed=seed, lightgbm=lgb.__version__, params=params, rounds=rounds)
    records: list[Record] = []
    for dataset in datasets:
        fit, valid = split(data, dataset)
        assert fit.item is not None and valid.item is not None
        n_items = int(max(fit.item.max(), valid.item.max())) + 1
        n_skills = int(max(fit.skill.max(), valid.skill.max())) + 1

        def add(method: str, metric: str, value: float, dataset: str = dataset) -> None:
            print(f"{dataset}: {method} {metric} {value:.4f}", flush=True)
            records.append(record(dataset, protocol, method, metric, value))

        cpu = time.process_time()
        tables = Tables(fit, n_items, n_skills)
        x_fit, names = answer_features(fit, n_skills, *tables.rows(fit, out_of_fold=True))
        x_valid, _ = answer_features(valid, n_skills, *tables.rows(valid, out_of_fold=False))
        feature_cpu = time.process_time() - cpu

        cpu = time.process_time()
        logistic_valid = LogisticKT().fit(fit).predict_proba(valid)
        logistic_cpu = time.process_time() - cpu
        add("learnloop.logistic", "valid_auc", auc(valid.correct, logistic_valid))
        add("learnloop.logistic", "fit_cpu_seconds", logistic_cpu)

        value, best, cpu = _trees(x_fit, fit.correct, x_valid, valid.correct, names, rounds)
        add("lightgbm", "valid_auc", value)
        add("lightgbm", "trees", best)
        add("lightgbm", "fit_cpu_seconds", feature_cpu + cpu)

        cpu = time.process_time()
        fold = _fold_of(fit.user, FOLDS)
        out_of_fold = np.empty(len(fit))
        for f in range(FOLDS):
            out_of_fold[fold == f] = (
                LogisticKT().fit(fit.subset(fold != f)).predict_proba(fit.subset(fold == f))
            )
        stack_cpu = time.process_time() - cpu + logistic_cpu
        value, best, cpu = _trees(
            np.column_stack([x_fit, _logit(out_of_fold)]),
            fit.correct,
            np.column_stack([x_valid, _logit(logistic_valid)]),
            valid.correct,
            [*names, "logistic"],
            rounds,
        )
        add("lightgbm+logistic", "valid_auc", value)
        add("lightgbm+logistic", "trees", best)
        add("lightgbm+logistic", "fit_cpu_seconds", feature_cpu + stack_cpu + cpu)
    return records
