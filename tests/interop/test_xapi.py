"""xAPI 1.0.3: statements for answers, hints, lessons, targets met and skill checks, queued in
the event's transaction and delivered to a real LRS (Ralph) once per statement id."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from learnloop.errors import Forbidden, InvalidInput, NotFound
from learnloop.interop import xapi
from learnloop.jobs import queue as jobs_queue
from learnloop.services import assessment, auth, packs, practice, xapi_outbox
from learnloop.services.context import AppContext
from learnloop.store.models import Job, PendingItem, User, utcnow
from learnloop.store.models_interop import XapiOutbox
from tests.conftest import answer_payload
from tests.interop.conftest import Lrs, free_port

PASSWORD = "tidal-ferry-quartz-81"
HOME = "https://learn.example.org"


def _people(ctx: AppContext) -> tuple[auth.CurrentUser, auth.CurrentUser]:
    admin = auth.signup(ctx, email="admin@example.org", name="Ada Admin", password=PASSWORD).user
    with ctx.session() as session:
        row = session.get(User, admin.id)
        assert row is not None
        row.role = "admin"
    admin = admin.model_copy(update={"role": "admin"})
    learner = auth.signup(ctx, email="lee@example.org", name="Lee Learner", password=PASSWORD).user
    practice.enrol(ctx, learner, "builder")
    return admin, learner


def _configure(
    ctx: AppContext, admin: auth.CurrentUser, endpoint: str, lrs: Lrs | None, **kw: object
) -> None:
    xapi_outbox.save_settings(
        ctx,
        admin,
        enabled=True,
        endpoint=endpoint,
        username=lrs.username if lrs else "nobody",
        password=lrs.password if lrs else "not-a-secret-really",
        actor_mode=str(kw.get("actor_mode", "account")),
        home_page=HOME,
    )


def _outbox(ctx: AppContext) -> list[XapiOutbox]:
    with ctx.session() as session:
        rows = list(session.scalars(select(XapiOutbox).order_by(XapiOutbox.id)))
        for r in rows:
            session.expunge(r)
        return rows


def _place(ctx: AppContext, user: auth.CurrentUser, item_id: str, pid: str) -> None:
    with ctx.session() as session:
        session.merge(PendingItem(user_id=user.id, item_id=item_id, reason="next_step:", presentation_id=pid))


def test_statements_are_pure_and_name_the_actor_by_account() -> None:
    ns = str(uuid.uuid4())
    site = xapi.Site(home_page=HOME, namespace=ns)
    who = xapi.Actor(user_key="k-1", name="Lee", email="lee@example.org")
    at = utcnow()
    s = xapi.answered(
        site.statement_id("answered", 7), site, who, item_id="a.b", item_kind="choice", stem="Q?",
        skills=[("s1", "Skill one")], correct=True, score=1.0, hints_used=1, duration_ms=1500, at=at,
    )  # fmt: skip
    assert s["actor"] == {"objectType": "Agent", "account": {"homePage": HOME, "name": "k-1"}}
    assert "lee@example.org" not in str(s)
    assert s["verb"]["id"] == "http://adlnet.gov/expapi/verbs/answered"
    assert s["result"]["success"] is True and s["result"]["duration"] == "PT1.50S"
    assert s["object"]["definition"]["interactionType"] == "choice"
    other = xapi.Site(home_page=HOME, namespace=str(uuid.uuid4()))
    assert s["id"] == site.statement_id("answered", 7) != other.statement_id("answered", 7)
    mbox = xapi.actor(xapi.Site(home_page=HOME, namespace=ns, actor_mode="mbox"), who)
    assert mbox["mbox"] == "mailto:lee@example.org"
    for verb in ("interacted", "experienced", "mastered", "completed"):
        assert xapi.VERBS[verb] == "http://adlnet.gov/expapi/verbs/" + verb
    with pytest.raises(xapi.XapiError):
        xapi.Site(home_page="javascript:alert(1)", namespace=ns)
    with pytest.raises(xapi.XapiError):
        xapi.Site(home_page=HOME, namespace=ns, actor_mode="email")


def test_settings_need_an_admin_valid_urls_and_never_show_the_password(ctx: AppContext) -> None:
    admin, learner = _people(ctx)
    with pytest.raises(Forbidden):
        xapi_outbox.settings_view(ctx, learner)
    for bad in ("ftp://lrs.example.org/", "not a url", "https://user:pw@lrs.example.org/xAPI/"):
        with pytest.raises(InvalidInput):
            xapi_outbox.save_settings(
                ctx, admin, enabled=True, endpoint=bad, username="u", password="p", actor_mode="account",
                home_page=HOME,
            )  # fmt: skip
    with pytest.raises(InvalidInput):
        xapi_outbox.save_settings(
            ctx, admin, enabled=True, endpoint="https://lrs.example.org/xAPI/", username="u", password="p",
            actor_mode="email", home_page=HOME,
        )  # fmt: skip
    view = xapi_outbox.save_settings(
        ctx, admin, enabled=True, endpoint="https://lrs.example.org/xAPI/", username="u",
        password="hunter2-secret", actor_mode="account", home_page=HOME,
    )  # fmt: skip
    assert view.password_set and "hunter2-secret" not in view.model_dump_json()
    # an empty password keeps the stored one
    view = xapi_outbox.save_settings(
        ctx, admin, enabled=True, endpoint="https://lrs.example.org/xAPI/", username="u", password="",
        actor_mode="account", home_page=HOME,
    )  # fmt: skip
    assert view.password_set


def test_nothing_is_queued_without_an_lrs(ctx: AppContext) -> None:
    _, learner = _people(ctx)
    _place(ctx, learner, "apps.rag.why", "p-none")
    with ctx.session() as session:
        item = ctx.active_pack(session).items["apps.rag.why"]
    practice.answer(ctx, learner, item.id, answer_payload(item, True), presentation_id="p-none")
    assert _outbox(ctx) == []


def test_events_are_queued_with_the_event_and_delivered_to_ralph(ctx: AppContext, ralph: Lrs) -> None:
    # targets met after one right answer, so the test reaches "mastered" quickly
    ctx.settings = ctx.settings.model_copy(
        update={"target_min_items": 1, "target_needs_open_kind": False, "target_evidence_nats": 0.0}
    )
    admin, learner = _people(ctx)
    _configure(ctx, admin, ralph.endpoint, ralph)
    with ctx.session() as session:
        item = ctx.active_pack(session).items["apps.rag.why"]
    for n in range(6):  # right answers until the builder's apps.rag target is met
        _place(ctx, learner, item.id, f"p-{n}")
        if n == 0:
            practice.hint(ctx, learner, item.id)
        practice.answer(ctx, learner, item.id, answer_payload(item, True), presentation_id=f"p-{n}")
        if any(r.event == "target_met" for r in _outbox(ctx)):
            break
    with pytest.raises(NotFound):
        packs.lesson(ctx, "no-such-lesson", reader=learner)
    packs.lesson(ctx, "lesson.tokens", reader=learner)
    packs.lesson(ctx, "lesson.tokens", reader=learner)  # the same minute: one statement
    state = assessment.start(ctx, learner, "builder")
    while state.next is not None:
        got = ctx_item(ctx, state.next.item["id"])
        state = assessment.answer(ctx, learner, state.next.assessment_id, got.id, answer_payload(got, True))

    rows = _outbox(ctx)
    events = [r.event for r in rows]
    assert events.count("hint") == 1 and events.count("lesson") == 1
    met = [r.statement["object"]["id"] for r in rows if r.event == "target_met"]
    assert len(met) == len(set(met)), "one statement per learner, role and skill"
    assert HOME + "/xapi/activities/skill/apps.rag" in met
    assert events.count("check_completed") == 1 and events.count("answered") >= 2
    assert all(r.status == "pending" for r in rows)

    # delivered by the job queue: the answers enqueued xapi.deliver jobs in their transactions
    with ctx.session() as session:
        assert session.scalar(select(func.count()).select_from(Job).where(Job.task == "xapi.deliver")) >= 1
    assert jobs_queue.run_due(ctx) >= 1
    assert all(r.status == "sent" and r.attempts == 1 for r in _outbox(ctx))
    key = xapi_outbox.actor_key(ctx, learner.org_id, learner.id)
    for row in rows:
        got = ralph.get(statementId=row.statement_id)
        assert got.status_code == 200, got.text
        stored = got.json()["statements"]
        assert len(stored) == 1
        statement = stored[0]
        assert statement["actor"]["account"] == {"homePage": HOME, "name": key}
        assert "lee@example.org" not in got.text
        assert statement["verb"]["id"].startswith("http://adlnet.gov/expapi/verbs/")
    check = next(r for r in rows if r.event == "check_completed")
    assert (
        ralph.get(statementId=check.statement_id).json()["statements"][0]["verb"]["id"].endswith("/completed")
    )

    # delivering a statement again (a worker died after the PUT) still leaves one statement
    with ctx.session() as session:
        again = session.get(XapiOutbox, rows[0].id)
        assert again is not None
        again.status, again.next_attempt_at = "pending", utcnow()
    assert xapi_outbox.deliver_pending(ctx).sent == 1
    agent = json.dumps({"objectType": "Agent", "account": {"homePage": HOME, "name": key}})
    by_agent = ralph.get(agent=agent, limit="500").json()["statements"]
    ids = [s["id"] for s in by_agent]
    assert sorted(ids) == sorted(r.statement_id for r in rows)


def ctx_item(ctx: AppContext, item_id: str):  # type: ignore[no-untyped-def]
    with ctx.session() as session:
        return ctx.active_pack(session).items[item_id]


def test_an_lrs_that_is_down_loses_nothing(ctx: AppContext, ralph: Lrs) -> None:
    admin, learner = _people(ctx)
    dead = f"http://127.0.0.1:{free_port()}/xAPI/"  # nothing listens there
    _configure(ctx, admin, dead, ralph)
    item = ctx_item(ctx, "apps.rag.why")
    _place(ctx, learner, item.id, "p-down")
    practice.answer(ctx, learner, item.id, answer_payload(item, False), presentation_id="p-down")
    (row,) = _outbox(ctx)

    first = xapi_outbox.deliver_pending(ctx)
    assert (first.sent, first.failed) == (0, 1)
    (row,) = _outbox(ctx)
    assert row.status == "pending" and row.attempts == 1 and row.last_error
    assert ralph.password not in row.last_error and "127.0.0.1" not in row.last_error
    # not due again until the backoff has passed
    assert xapi_outbox.deliver_pending(ctx).failed == 0
    assert xapi_outbox.deliver_pending(ctx, now=utcnow() + timedelta(minutes=2)).failed == 1
    (row,) = _outbox(ctx)
    assert row.attempts == 2 and xapi_outbox.backoff(2) > xapi_outbox.backoff(1)

    _configure(ctx, admin, ralph.endpoint, ralph)  # the LRS is back
    later = xapi_outbox.deliver_pending(ctx, now=utcnow() + timedelta(hours=2))
    assert (later.sent, later.failed) == (1, 0)
    (row,) = _outbox(ctx)
    assert row.status == "sent" and row.last_error is None
    stored = ralph.get(statementId=row.statement_id).json()["statements"]
    assert stored[0]["result"]["success"] is False


def test_disabled_organisations_keep_their_queue(ctx: AppContext, ralph: Lrs) -> None:
    admin, learner = _people(ctx)
    _configure(ctx, admin, ralph.endpoint, ralph)
    item = ctx_item(ctx, "apps.rag.why")
    _place(ctx, learner, item.id, "p-off")
    practice.answer(ctx, learner, item.id, answer_payload(item, True), presentation_id="p-off")
    xapi_outbox.save_settings(
        ctx, admin, enabled=False, endpoint=ralph.endpoint, username=ralph.username, password=None,
        actor_mode="account", home_page=HOME,
    )  # fmt: skip
    assert xapi_outbox.deliver_pending(ctx).sent == 0
    with ctx.session() as session:
        assert (
            session.scalar(select(func.count()).select_from(XapiOutbox).where(XapiOutbox.status == "pending"))
            == 1
        )
