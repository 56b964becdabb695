"""bench/kt_gbdt.py's tree features read the learner's earlier answers only (issue 19)."""

from __future__ import annotations

import numpy as np

from bench.kt_gbdt import Tables, answer_features
from learnloop.science.kt import ResponseLog


def _log(seed: int) -> ResponseLog:
    rng = np.random.default_rng(seed)
    n = 400
    user = np.sort(rng.integers(0, 12, n))
    return ResponseLog(
        user=user.astype(np.int64),
        skill=rng.integers(0, 5, n).astype(np.int64),
        correct=rng.integers(0, 2, n).astype(np.int8),
        item=rng.integers(0, 30, n).astype(np.int64),
    )


def test_a_row_reads_neither_its_own_label_nor_later_ones() -> None:
    log = _log(0)
    tables = Tables(log, 30, 5)
    row_logit, row_skill, row_n = tables.rows(log, out_of_fold=False)
    x, names = answer_features(log, 5, row_logit, row_skill, row_n)
    assert x.shape == (len(log), len(names))
    # flip the labels from the middle of learner 3's rows on: their earlier rows and every
    # other learner's rows keep their features (the tables held fixed)
    rows = np.flatnonzero(log.user == 3)
    cut = rows[len(rows) // 2]
    flipped = ResponseLog(
        user=log.user,
        skill=log.skill,
        correct=np.where((log.user == 3) & (np.arange(len(log)) >= cut), 1 - log.correct, log.correct).astype(
            np.int8
        ),
        item=log.item,
    )
    y, _ = answer_features(flipped, 5, row_logit, row_skill, row_n)
    same = np.arange(len(log)) <= cut
    same |= log.user != 3
    # (running sums over the whole log differ in the last bits only)
    np.testing.assert_allclose(x[same], y[same], rtol=0, atol=1e-9)
    assert np.abs(x[~same] - y[~same]).max() > 1e-3


def test_fit_rows_read_the_item_log_odds_of_other_folds_only() -> None:
    log = _log(1)
    tables = Tables(log, 30, 5)
    item_logit, _, _ = tables.rows(log, out_of_fold=True)
    flipped = ResponseLog(
        user=log.user, skill=log.skill, correct=(1 - log.correct).astype(np.int8), item=log.item
    )
    other = Tables(flipped, 30, 5)
    # a learner's own labels flipped alone leave its rows' out-of-fold log-odds unchanged
    mine = log.user == 4
    mixed = ResponseLog(
        user=log.user,
        skill=log.skill,
        correct=np.where(mine, flipped.correct, log.correct).astype(np.int8),
        item=log.item,
    )
    np.testing.assert_allclose(Tables(mixed, 30, 5).rows(log, out_of_fold=True)[0][mine], item_logit[mine])
    assert not np.allclose(other.rows(log, out_of_fold=False)[0], tables.rows(log, out_of_fold=False)[0])
