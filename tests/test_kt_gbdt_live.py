"""``learnloop fit kt --model gbdt`` in the product (issue 19): the trees stacked on the logistic
model are fitted, compared on held-out learners with BKT and the logistic model, stored, and
drive live answers; a bad model name is a 4xx-style error in both languages."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import select

from learnloop.errors import InvalidInput
from learnloop.services.auth import default_organisation
from learnloop.services.calibration import fit_kt
from learnloop.services.context import AppContext
from learnloop.services.mastery import load_model, mastery_of
from learnloop.store.models import KTState, ModelParams
from tests.conftest import need_module
from tests.test_kt_live import _answer_live, _simulate_log


def test_fit_kt_gbdt_is_stored_and_drives_live_answers(ctx: AppContext) -> None:
    need_module("lightgbm")
    _simulate_log(ctx, learners=30, answers=40)
    summary = fit_kt(ctx, model="gbdt")
    assert summary.model == "gbdt"
    assert set(summary.held_out_auc) == {"bkt", "logistic", "gbdt"}
    assert all(v is not None for v in summary.held_out_auc.values())
    with ctx.session() as session:
        row = session.execute(select(ModelParams).order_by(ModelParams.id.desc())).scalars().first()
        assert row is not None and row.params["model"] == "gbdt" and row.params["params"]["kind"] == "gbdt"
    user_id = _answer_live(ctx, "trees@example.org", 6, 2)
    with ctx.session() as session:
        model = load_model(session, default_organisation(session).id)
        assert model.tracer is not None and model.tracer.kind == "gbdt"
        state = session.execute(select(KTState).where(KTState.user_id == user_id)).scalars().one()
        assert state.state["version"] == 1 and state.state["trees"]["answers"] == 6.0
        assert all(math.isfinite(m.p_known) for m in mastery_of(session, user_id).values())


def test_auto_leaves_the_trees_out_on_a_small_log(ctx: AppContext) -> None:
    _simulate_log(ctx, learners=12, answers=20)
    summary = fit_kt(ctx, model="auto")
    assert "gbdt" not in summary.held_out_auc and summary.model in ("bkt", "logistic")


def test_an_unknown_model_is_refused(ctx: AppContext) -> None:
    with pytest.raises(InvalidInput, match="auto, bkt, logistic or gbdt"):
        fit_kt(ctx, model="forest")
