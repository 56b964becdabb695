"""BKT fitted by EM recovers the parameters that generated the data, and its online form
replays the batch predictions exactly."""

from __future__ import annotations

import json

import numpy as np

from learnloop.science.kt import BKT, ResponseLog
from tests.science.kt.conftest import TRUE_PARAMS, replay, simulate_bkt


def test_em_recovers_known_parameters(bkt_log: ResponseLog) -> None:
    model = BKT(restarts=4, random_state=0).fit(bkt_log)
    for k, true in enumerate(TRUE_PARAMS):
        got = model.skill_params(k)
        assert abs(got.p_init - true.p_init) < 0.05, (k, got, true)
        assert abs(got.p_learn - true.p_learn) < 0.05, (k, got, true)
        assert abs(got.p_guess - true.p_guess) < 0.04, (k, got, true)
        assert abs(got.p_slip - true.p_slip) < 0.04, (k, got, true)


def test_em_log_likelihood_beats_the_generating_parameters_start(bkt_log: ResponseLog) -> None:
    """EM is monotone: the fit is at least as likely as the conventional starting point."""
    fitted = BKT(restarts=1, max_iter=200).fit(bkt_log)
    start = BKT(restarts=1, max_iter=0).fit(bkt_log)
    y = bkt_log.correct

    def loglik(model: BKT) -> float:
        p = model.predict_proba(bkt_log)
        return float(np.sum(y * np.log(p) + (1 - y) * np.log(1 - p)))

    assert loglik(fitted) > loglik(start)


def test_online_update_equals_batch_prediction(bkt_log: ResponseLog) -> None:
    model = BKT(fit_forget=True, restarts=2).fit(bkt_log)
    small = ResponseLog(user=bkt_log.user[:3000], skill=bkt_log.skill[:3000], correct=bkt_log.correct[:3000])
    np.testing.assert_allclose(replay(model, small), model.predict_proba(small), rtol=0, atol=1e-12)


def test_per_item_guess_slip_is_online_consistent_and_round_trips() -> None:
    log = simulate_bkt(TRUE_PARAMS, n_users=200, length=30, seed=3, n_items_per_skill=5, item_spread=1.0)
    model = BKT(item_guess_slip=True, restarts=2).fit(log)
    assert model.item_guess_ is not None and np.all(model.item_guess_ <= model.max_guess + 1e-12)
    np.testing.assert_allclose(replay(model, log), model.predict_proba(log), atol=1e-12)
    again = BKT.from_dict(json.loads(json.dumps(model.to_dict())))
    np.testing.assert_array_equal(again.predict_proba(log), model.predict_proba(log))


def test_guess_and_slip_stay_within_bounds(bkt_log: ResponseLog) -> None:
    model = BKT(max_guess=0.15, max_slip=0.12).fit(bkt_log)
    assert np.all(model.guess_ <= 0.15 + 1e-12) and np.all(model.slip_ <= 0.12 + 1e-12)


def test_product_layout_of_to_dict(bkt_log: ResponseLog) -> None:
    """The mastery service reads ``default`` and ``skills`` as BKTParams dicts."""
    data = BKT(restarts=1).fit(bkt_log).to_dict()
    assert set(data["default"]) == {"p_init", "p_learn", "p_guess", "p_slip", "p_forget"}
    assert set(data["skills"]) == {"0", "1", "2", "3"}
