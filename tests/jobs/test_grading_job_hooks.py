"""An answer graded by the model-grading job gets the hooks the in-request path calls (its
xAPI "answered" statement, in the grade's transaction), and only when the grade lands."""

from __future__ import annotations

from sqlalchemy import select

from learnloop import jobs
from learnloop.services import auth, practice, xapi_outbox
from learnloop.store.models import Response, User
from learnloop.store.models_interop import XapiOutbox
from tests.jobs.test_grading_job import ANSWER, ITEM_ID, ScriptedModel, _ctx, _learner, _show, good_model

__all__ = ["good_model"]  # the fixture, used by name below


def test_a_job_graded_answer_gets_its_xapi_statement_when_the_grade_lands(
    db_url: str, good_model: ScriptedModel
) -> None:
    ctx = _ctx(db_url, good_model)
    admin = auth.signup(
        ctx, email="admin@example.org", name="Ada Admin", password="tidal-ferry-quartz-81"
    ).user
    with ctx.session() as session:
        row = session.get(User, admin.id)
        assert row is not None
        row.role = "admin"
    xapi_outbox.save_settings(
        ctx,
        admin.model_copy(update={"role": "admin"}),
        enabled=True,
        endpoint="https://lrs.example.org/xAPI/",
        username="u",
        password="not-a-secret-really",
        actor_mode="account",
        home_page="https://learn.example.org",
    )
    user = _learner(ctx)
    presentation = _show(ctx, user, ITEM_ID)
    queued = practice.answer(ctx, user, ITEM_ID, {"text": ANSWER}, presentation_id=presentation)
    assert queued.grading == "queued"
    with ctx.session() as session:  # "being graded": no answer yet, so no statement yet
        assert session.scalars(select(XapiOutbox).where(XapiOutbox.event == "answered")).all() == []

    assert jobs.run_due(ctx) >= 1  # the grade (and a delivery try of earlier statements)
    landed = practice.grade_status(ctx, user, presentation)
    assert landed.grading == "done" and landed.correct
    with ctx.session() as session:
        response = session.get(Response, landed.response_id)
        assert response is not None
        rows = session.scalars(select(XapiOutbox).where(XapiOutbox.event == "answered")).all()
        assert len(rows) == 1 and rows[0].org_id == response.org_id
        statement = rows[0].statement
        assert statement["object"]["id"].endswith(ITEM_ID)
        assert statement["result"]["success"] is True and statement["result"]["score"]["scaled"] == 1.0
