"""The path's learning-rate prior (``kt/bkt.LearnRatePrior``): a mixture over how fast the
learner learns, updated from their own answers, read by ``path.plan_path``."""

from __future__ import annotations

import math

import pytest

from learnloop.science.kt.bkt import (
    COLD_START_LEARN_PRIOR,
    BKTParams,
    LearnRatePrior,
    bkt_log_likelihood,
    learn_prior_for,
)
from learnloop.science.path import plan_path
from learnloop.science.policy import Curriculum, ItemOption, LearnerState, build_curriculum

PRIOR = LearnRatePrior((0.5, 1.0, 2.0, 4.0), (1.0, 1.0, 1.0, 1.0))
BANK = {s: [ItemOption(f"{s}.{i}", 0.0, minutes=1.0, guess=0.2) for i in range(6)] for s in "abc"}
GRAPH: dict[str, list[str]] = {"a": [], "b": [], "c": ["a", "b"]}


def _cur(learn: float = 0.08) -> Curriculum:
    return build_curriculum(GRAPH, {"c": 0.8}, items=BANK, default_params=BKTParams(p_learn=learn))


def test_likelihood_is_bkt_forward() -> None:
    params = BKTParams(p_init=0.3, p_learn=0.2, p_guess=0.25, p_slip=0.1)
    # by hand: P(right) = 0.3 * 0.9 + 0.7 * 0.25 = 0.445; then P(known) after it, learnt
    post = 0.27 / 0.445
    known = post + (1 - post) * 0.2
    p2 = known * 0.9 + (1 - known) * 0.25
    assert bkt_log_likelihood([True, False], params) == pytest.approx(math.log(0.445) + math.log(1 - p2))
    assert bkt_log_likelihood([], params) == 0.0


def test_posterior_follows_how_fast_the_answers_turn_right() -> None:
    params = BKTParams(p_learn=0.08)
    quick = [(params, [False, True, True, True, True, True])] * 3
    slow = [(params, [False] * 24 + [True, True, True])] * 3
    w_quick, w_slow = PRIOR.posterior(quick), PRIOR.posterior(slow)
    assert sum(w_quick) == pytest.approx(1.0) and sum(w_slow) == pytest.approx(1.0)
    assert PRIOR.mean_factor(w_quick) > PRIOR.mean_factor() > PRIOR.mean_factor(w_slow)
    assert max(w_quick) == w_quick[-1] and max(w_slow) == w_slow[0]
    # no answers: the prior itself; a point mass never moves
    assert PRIOR.posterior([]) == pytest.approx((0.25,) * 4)
    assert LearnRatePrior().posterior(quick) == (1.0,)


def test_a_prior_needs_positive_factors_and_one_weight_each() -> None:
    with pytest.raises(ValueError):
        LearnRatePrior((1.0, 2.0), (1.0,))
    with pytest.raises(ValueError):
        LearnRatePrior((0.0,), (1.0,))
    with pytest.raises(ValueError):
        LearnRatePrior((1.0,), (-1.0,))


def test_first_estimate_is_the_mixtures_expectation() -> None:
    fresh = LearnerState()
    mixed = plan_path(_cur(), fresh, learn_prior=PRIOR)
    each = [plan_path(_cur(0.08 * f), fresh).items for f in PRIOR.factors]
    assert mixed.items == pytest.approx(sum(each) / len(each))
    assert mixed.learn_weights == pytest.approx((0.25,) * 4)
    # the low end (every skill already known) does not depend on the learning rate
    assert mixed.items_if_known == pytest.approx(plan_path(_cur(), fresh).items_if_known)
    # no prior: the curriculum's rates as they are
    assert plan_path(_cur(), fresh).items == plan_path(_cur(), fresh, learn_prior=LearnRatePrior()).items


def test_estimate_for_untouched_skills_adapts_to_the_learners_speed() -> None:
    """Answers on skill a say how fast this learner learns; the estimate for b, never
    answered, follows."""
    cur = _cur()

    def b_items(history: list[bool], mastery: float) -> float:
        state = LearnerState(mastery={"a": mastery}, attempts={"a": len(history)}, history={"a": history})
        plan = plan_path(cur, state, learn_prior=PRIOR)
        return next(s.items for s in plan.steps if s.skill_id == "b")

    fresh = next(
        s.items for s in plan_path(cur, LearnerState(), learn_prior=PRIOR).steps if s.skill_id == "b"
    )
    quick = b_items([False, True, True, True, True, True, True], 0.9)
    slow = b_items([False] * 14 + [True, True], 0.6)
    assert quick < fresh < slow


def test_cold_start_prior_until_a_fit() -> None:
    assert learn_prior_for(fitted=False) == COLD_START_LEARN_PRIOR
    assert learn_prior_for(fitted=True) == LearnRatePrior()
    assert len(COLD_START_LEARN_PRIOR.factors) > 1
