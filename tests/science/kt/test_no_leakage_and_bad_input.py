"""Predictions use only earlier answers, and awkward input never yields NaN or a crash."""

from __future__ import annotations

import numpy as np
import pytest

from learnloop.science.kt import BKT, LogisticKT, ResponseLog, fit_from_log, model_from_dict

MODELS = [lambda: BKT(restarts=2), lambda: LogisticKT(l2=1.0)]


@pytest.mark.parametrize("make", MODELS, ids=["bkt", "logistic"])
def test_changing_a_future_answer_leaves_earlier_predictions(make, item_log: ResponseLog) -> None:  # type: ignore[no-untyped-def]
    model = make().fit(item_log)
    rows = np.flatnonzero(item_log.user == 7)
    cut = rows[len(rows) // 2]
    flipped = item_log.correct.copy()
    flipped[cut] = 1 - flipped[cut]
    changed = ResponseLog(
        user=item_log.user,
        skill=item_log.skill,
        correct=flipped,
        item=item_log.item,
        timestamp=item_log.timestamp,
    )
    before, after = model.predict_proba(item_log), model.predict_proba(changed)
    earlier = np.arange(len(item_log)) <= cut
    np.testing.assert_array_equal(before[earlier], after[earlier])
    others = item_log.user != 7
    np.testing.assert_array_equal(before[others], after[others])
    assert not np.array_equal(before[rows[rows > cut]], after[rows[rows > cut]])


def _log(user: list[int], skill: list[int], correct: list[int]) -> ResponseLog:
    return ResponseLog(
        user=np.array(user, dtype=np.int64),
        skill=np.array(skill, dtype=np.int64),
        correct=np.array(correct, dtype=np.int8),
    )


@pytest.mark.parametrize("kind", ["bkt", "logistic"])
def test_empty_log_fits_and_predicts(kind: str) -> None:
    empty = _log([], [], [])
    model = fit_from_log(empty, kind)
    assert model.predict_proba(empty).shape == (0,)
    assert 0.0 < model.predict_next(model.initial_state(), 0) < 1.0


@pytest.mark.parametrize("kind", ["bkt", "logistic"])
def test_learner_with_one_answer_and_unseen_skills(kind: str, item_log: ResponseLog) -> None:
    model = fit_from_log(item_log, kind)
    new = _log([999, 1000, 1000], [2, 50, 50], [1, 0, 1])  # skill 50 never seen in training
    p = model.predict_proba(new)
    assert np.all(np.isfinite(p)) and np.all((p > 0) & (p < 1))
    state = model.initial_state()
    assert np.isfinite(model.predict_next(state, 50))


def test_unseen_skill_falls_back_to_prior_mastery(item_log: ResponseLog) -> None:
    model = BKT(restarts=1).fit(item_log)
    assert model.mastery(model.initial_state(), 50) == pytest.approx(model.default_.p_init)
    assert model.predict_proba(_log([5], [50], [1]))[0] == pytest.approx(
        model.default_.p_init * (1 - model.default_.p_slip)
        + (1 - model.default_.p_init) * model.default_.p_guess
    )


def test_fit_on_a_single_answer_gives_finite_predictions() -> None:
    one = _log([0], [0], [1])
    for kind in ("bkt", "logistic"):
        p = fit_from_log(one, kind).predict_proba(one)
        assert np.all(np.isfinite(p))


def test_labels_other_than_zero_one_are_rejected() -> None:
    with pytest.raises(ValueError, match="only 0 and 1"):
        _log([0, 0], [0, 0], [1, 2])
    model = BKT(restarts=1).fit(_log([0, 0, 1], [0, 0, 0], [0, 1, 1]))
    with pytest.raises(ValueError, match="0 or 1"):
        model.update(model.initial_state(), 0, 3)


def test_negative_codes_are_rejected() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        BKT().fit(_log([0, -1], [0, 0], [1, 0]))


def test_model_from_dict_dispatches_on_kind(item_log: ResponseLog) -> None:
    for kind in ("bkt", "logistic"):
        model = fit_from_log(item_log, kind)
        again = model_from_dict(model.to_dict())
        np.testing.assert_array_equal(again.predict_proba(item_log), model.predict_proba(item_log))
    with pytest.raises(ValueError, match="unknown"):
        model_from_dict({"kind": "no-such-model"})
