"""The trees stacked on the logistic model (``GBDTKT``, the ``kt-gbdt`` extra, issue 19): better
than the logistic model alone where the data has what trees can use, online equal to batch,
no row reading its own answer or a later one, state typed and versioned, JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from learnloop.science.kt import LogisticKT, ResponseLog, model_from_dict
from learnloop.science.kt.metrics import auc
from tests.conftest import need_module
from tests.science.kt.conftest import replay

need_module("lightgbm")

from learnloop.science.kt.gbdt import GBDT_STATE_VERSION, GBDTKT, GBDTState, ItemTables  # noqa: E402
from learnloop.science.kt.logistic import _fold_of  # noqa: E402


def _interaction_log(n_users: int, length: int, seed: int) -> ResponseLog:
    """Learners of a fixed ability answering items whose discrimination differs: a strong
    learner gains far more on a discriminating item than on a flat one (an item x ability
    interaction, which a model additive in item and history cannot fit), plus two-skill
    answers (rows sharing an answer id)."""
    rng = np.random.default_rng(seed)
    n_items = 40
    slope = np.where(np.arange(n_items) % 2 == 0, 3.0, 0.2)
    difficulty = rng.normal(0, 0.5, n_items)
    rows_u, rows_s, rows_i, rows_c, rows_a = [], [], [], [], []
    answer = 0
    for u in range(n_users):
        theta = rng.normal()
        for _ in range(length):
            item = int(rng.integers(n_items))
            p = 1.0 / (1.0 + np.exp(-(slope[item] * theta - difficulty[item])))
            c = int(rng.random() < p)
            skills = [item % 5] if item % 3 else [item % 5, 5]
            for s in skills:
                rows_u.append(u)
                rows_s.append(s)
                rows_i.append(item)
                rows_c.append(c)
                rows_a.append(answer)
            answer += 1
    return ResponseLog(
        user=np.array(rows_u, dtype=np.int64),
        skill=np.array(rows_s, dtype=np.int64),
        correct=np.array(rows_c, dtype=np.int8),
        item=np.array(rows_i, dtype=np.int64),
        answer=np.array(rows_a, dtype=np.int64),
    )


@pytest.fixture(scope="module")
def fitted() -> tuple[GBDTKT, ResponseLog, ResponseLog]:
    train, test = _interaction_log(300, 40, 0), _interaction_log(120, 40, 1)
    return GBDTKT(rounds=60, params={"min_data_in_leaf": 50}).fit(train), train, test


def _first_rows(log: ResponseLog) -> np.ndarray:
    a = np.asarray(log.answer)
    return np.r_[True, a[1:] != a[:-1]]


def test_trees_beat_the_logistic_model_on_an_item_by_ability_interaction(
    fitted: tuple[GBDTKT, ResponseLog, ResponseLog],
) -> None:
    model, train, test = fitted
    first = _first_rows(test)
    trees = auc(test.correct[first], model.predict_proba(test)[first])
    logistic = auc(test.correct[first], LogisticKT().fit(train).predict_proba(test)[first])
    assert trees > logistic + 0.01, (trees, logistic)


def test_online_equals_batch_and_rows_of_an_answer_agree(
    fitted: tuple[GBDTKT, ResponseLog, ResponseLog],
) -> None:
    model, _, test = fitted
    part = test.subset(np.flatnonzero(test.user < 15))
    batch = model.predict_proba(part)
    online = replay(model, part)
    np.testing.assert_allclose(online, batch, rtol=1e-9, atol=1e-9)


def test_a_row_reads_neither_its_own_answer_nor_later_ones(
    fitted: tuple[GBDTKT, ResponseLog, ResponseLog],
) -> None:
    model, _, test = fitted
    part = test.subset(np.flatnonzero(test.user < 10))
    before = model.predict_proba(part)
    a = np.asarray(part.answer)
    cut = int(a[len(part) // 2])
    flipped = part.correct.copy()
    later = a >= cut
    flipped[later] = 1 - flipped[later]
    after = model.predict_proba(
        ResponseLog(user=part.user, skill=part.skill, correct=flipped, item=part.item, answer=part.answer)
    )
    upto = a <= cut  # the answer at the cut is predicted before its own label
    np.testing.assert_allclose(after[upto], before[upto], rtol=0, atol=1e-12)
    assert not np.allclose(after[~upto], before[~upto])


def test_state_is_typed_versioned_and_round_trips_through_json(
    fitted: tuple[GBDTKT, ResponseLog, ResponseLog],
) -> None:
    model, _, test = fitted
    state = model.initial_state()
    assert state["version"] == GBDT_STATE_VERSION
    model.update_answer(state, [1, 5], 1, 7)
    model.update(state, 2, 0, 8)
    typed = GBDTState.from_dict(json.loads(json.dumps(state)))
    assert typed.trees.answers == 2.0 and set(typed.trees.skills) == {"1", "2", "5"}
    with pytest.raises(ValueError, match="version"):
        GBDTState.from_dict({**state, "version": 99})
    loaded = model_from_dict(json.loads(json.dumps(model.to_dict())))
    assert isinstance(loaded, GBDTKT)
    part = test.subset(np.flatnonzero(test.user < 5))
    np.testing.assert_allclose(loaded.predict_proba(part), model.predict_proba(part), rtol=1e-12)
    assert loaded.predict_next(state, 3, 9) == pytest.approx(model.predict_next(state, 3, 9))
    every = model.predict_all(state)
    assert every.shape == (model.n_skills_,)
    assert every[2] == pytest.approx(model.predict_next(state, 2))


def test_bad_input_is_rejected(fitted: tuple[GBDTKT, ResponseLog, ResponseLog]) -> None:
    model, _, _ = fitted
    state = model.initial_state()
    with pytest.raises(ValueError, match="correct"):
        model.update(state, 1, 2)
    with pytest.raises(ValueError, match="skill"):
        model.update_answer(state, [], 1)
    empty = ResponseLog(
        user=np.zeros(0, dtype=np.int64),
        skill=np.zeros(0, dtype=np.int64),
        correct=np.zeros(0, dtype=np.int8),
    )
    with pytest.raises(ValueError, match="answers"):
        GBDTKT().fit(empty)


def test_training_rows_read_the_item_log_odds_of_other_folds_only() -> None:
    log = _interaction_log(60, 20, 3)
    tables = ItemTables(log, 40, 6, 5, 20.0)
    fold = _fold_of(log.user, 5)
    mine = log.user == 4
    flipped = ResponseLog(
        user=log.user,
        skill=log.skill,
        correct=np.where(mine, 1 - log.correct, log.correct).astype(np.int8),
        item=log.item,
        answer=log.answer,
    )
    other = ItemTables(flipped, 40, 6, 5, 20.0)
    # a learner's own labels flipped leave the log-odds their rows read in training unchanged
    np.testing.assert_allclose(other.fold_item[fold, log.item][mine], tables.fold_item[fold, log.item][mine])
    np.testing.assert_allclose(
        other.fold_skill[fold, log.skill][mine], tables.fold_skill[fold, log.skill][mine]
    )
    assert not np.allclose(other.item, tables.item)


def test_a_copied_model_predicts_as_the_original(fitted: tuple[GBDTKT, ResponseLog, ResponseLog]) -> None:
    import copy
    import pickle

    model, _, _ = fitted
    state = model.initial_state()
    model.update_answer(state, [1], 1, 3)
    expected = model.predict_next(state, 2, 4)
    for twin in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert twin.predict_next(state, 2, 4) == expected
