"""`learnloop fit kt` per organisation: each organisation's knowledge tracing is fitted on its own
learners' answers only, and traces only its own learners; another organisation keeps its own
model (or the defaults) whatever the first one's learners answer."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from learnloop.errors import InvalidInput, NotFound
from learnloop.science.kt import BKTParams
from learnloop.services.calibration import fit_kt, fit_kt_each
from learnloop.services.context import AppContext
from learnloop.services.mastery import kt_kind, load_model, mastery_of, rebuild_all, snapshot
from learnloop.store.models import ModelParams, Response
from tests.services.report_builders import Org, add_user, make_org

LEARNERS, ANSWERS = 12, 24


def _answers(ctx: AppContext, org: Org, right_share: float, seed: int) -> list[int]:
    """LEARNERS learners answering the first two skills' items, right with ``right_share``."""
    rng = random.Random(seed)
    with ctx.session() as session:
        pack = ctx.active_pack(session, org.id).pack
    skills = [s.id for s in pack.skills][:2]
    items = [
        (i.id, i.kind, list(i.skills)) for i in pack.items if i.skills[0] in skills and i.kind == "choice"
    ]
    ids = []
    for n in range(LEARNERS):
        user_id = add_user(ctx, org, f"kt{n}")
        ids.append(user_id)
        with ctx.session() as session:
            for _k in range(ANSWERS):
                item_id, kind, item_skills = items[int(rng.random() * len(items))]
                right = rng.random() < right_share
                session.add(
                    Response(
                        org_id=org.id,
                        user_id=user_id,
                        item_id=item_id,
                        skills=item_skills,
                        kind=kind,
                        context="practice",
                        answer={},
                        correct=right,
                        score=float(right),
                        hints_used=0,
                    )
                )
    with ctx.session() as session:
        for user_id in ids:
            rebuild_all(session, user_id=user_id)
    return ids


def test_each_organisation_is_traced_by_a_fit_of_its_own_answers(ctx: AppContext) -> None:
    strong, weak = make_org(ctx, "Strong"), make_org(ctx, "Weak")
    _answers(ctx, strong, 0.9, seed=1)
    first = fit_kt(ctx, model="bkt")  # one organisation has answers: it is the one fitted
    assert first.answers == LEARNERS * ANSWERS
    weak_ids = _answers(ctx, weak, 0.3, seed=2)
    with pytest.raises(InvalidInput, match="--org"):  # two organisations have: which one?
        fit_kt(ctx, model="bkt")
    with ctx.session() as session:
        strong_params = _bkt(session, strong.id)
        assert load_model(session, weak.id).params_id is None  # the weak one: the defaults
        weak_state = {u: {s: m.p_known for s, m in mastery_of(session, u).items()} for u in weak_ids}
    runs = {done.org_id: done for done in fit_kt_each(ctx, model="bkt")}
    strong_run, weak_run = runs[strong.id].summary, runs[weak.id].summary
    assert strong_run is not None and weak_run is not None
    assert strong_run.answers == weak_run.answers == LEARNERS * ANSWERS
    with ctx.session() as session:
        kinds = set(session.execute(select(ModelParams.kind)).scalars())
        assert {kt_kind(strong.id), kt_kind(weak.id)} <= kinds and "kt" not in kinds
        # the strong organisation's fit is the same with the weak one's answers in the log
        assert _bkt(session, strong.id) == strong_params
        # weak learners guess and slip more: their own fit differs, and traces them
        assert _bkt(session, weak.id) != strong_params
        after = {u: {s: m.p_known for s, m in mastery_of(session, u).items()} for u in weak_ids}
        assert after != weak_state
    with ctx.session() as session:
        live = snapshot(session)
        rebuild_all(session)
        assert snapshot(session) == live  # a whole rebuild replays each learner under their own


def _bkt(session: Session, org_id: int) -> dict[str, BKTParams]:
    model = load_model(session, org_id)
    return {"default": model.default, **model.per_skill}


def test_an_unknown_organisation_is_a_clear_error(ctx: AppContext) -> None:
    with pytest.raises(NotFound):
        fit_kt(ctx, 999_999, model="bkt")
