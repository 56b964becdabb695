"""``fit kt``: a skill keeps its own fitted learning rate and slip only with enough answers."""

from __future__ import annotations

from learnloop.science.kt import BKTParams
from learnloop.services.auth import default_organisation
from learnloop.services.calibration import MIN_SKILL_ANSWERS, MIN_SKILL_LEARNERS, fit_kt
from learnloop.services.context import AppContext
from learnloop.services.mastery import load_model
from tests.test_kt_live import _simulate_log


def test_a_small_log_keeps_the_default_parameters(ctx: AppContext) -> None:
    _simulate_log(ctx, learners=3, answers=5, items=["basics.tokens.count", "basics.prompts.role"])
    small = fit_kt(ctx, model="bkt")
    assert small.skills_fitted == 0 and any("population" in n for n in small.notes)
    with ctx.session() as session:
        assert (
            load_model(session, default_organisation(session).id).default == BKTParams()
        )  # too little to fit even the population


def test_only_skills_with_enough_answers_get_their_own_parameters(ctx: AppContext) -> None:
    # nine in ten answers on basics.tokens: it passes the bar, basics.prompts does not
    per = 2 * MIN_SKILL_ANSWERS // MIN_SKILL_LEARNERS
    pool = ["basics.tokens.count"] * 9 + ["basics.prompts.role"]
    _simulate_log(ctx, learners=MIN_SKILL_LEARNERS + 2, answers=per, seed=5, items=pool)
    fitted = fit_kt(ctx, model="bkt")
    with ctx.session() as session:
        model = load_model(session, default_organisation(session).id)
    assert "basics.tokens" in model.per_skill and "basics.prompts" not in model.per_skill
    assert fitted.skills_fitted == 1 and model.default != BKTParams()
