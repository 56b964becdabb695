"""Guidance in the product: the practice loop's next activity, review cards, the path page and API."""

from __future__ import annotations

import re
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from learnloop.content.loader import load_pack
from learnloop.errors import Conflict, Forbidden
from learnloop.services import auth, guidance, practice
from learnloop.services.auth import CurrentUser
from learnloop.services.context import AppContext
from learnloop.services.mastery import rebuild_all
from learnloop.services.review_cards import card_snapshot
from learnloop.store.models import Response, ReviewCard
from tests.conftest import MINI_PACK, _make_ctx, answer_payload, need_module

PACK = load_pack(MINI_PACK)


def _learner(ctx: AppContext, email: str = "g@example.org") -> CurrentUser:
    user = auth.signup(ctx, email=email, name="G", password="tidal-ferry-quartz-81").user
    practice.enrol(ctx, user, "builder")
    return user


def _right(item_id: str) -> dict[str, object]:
    item = PACK.item(item_id)
    if item.kind == "choice":
        return {"choice": item.key}
    if item.kind == "numeric":
        return {"value": item.answer}
    if item.kind == "text":
        return {"text": (item.reference_answers or [""])[0]}
    return {"code": item.solution}


def _answer(ctx: AppContext, user: CurrentUser, n: int, right: bool = True) -> list[str]:
    seen = []
    for _ in range(n):
        shown = practice.next_item(ctx, user)
        item_id = shown.item["id"]
        payload = _right(item_id) if right else {"choice": "zz", "value": -1, "text": "no", "code": "pass"}
        field = {"choice": "choice", "numeric": "value", "text": "text", "code": "code"}[
            PACK.item(item_id).kind
        ]
        practice.answer(ctx, user, item_id, {field: payload[field]})
        seen.append(item_id)
    return seen


def _wrong(item_id: str) -> dict[str, object]:
    item = PACK.item(item_id)
    if item.kind == "choice":
        return {"choice": next(o for o in item.options or {} if o != item.key)}
    return {"numeric": {"value": -1}, "text": {"text": "no"}, "code": {"code": "pass"}}[item.kind]


def test_two_wrong_answers_on_a_new_skill_send_to_its_lesson(ctx: AppContext) -> None:
    user = _learner(ctx)
    shown = practice.next_item(ctx, user)
    # the first item comes first: the lesson is offered by the page's link, not sent
    assert shown.skill_id == "basics.tokens" and shown.reason != "lesson" and shown.lesson is None
    assert "Prompts" in shown.reason_text or "Tokens" in shown.reason_text
    practice.answer(ctx, user, shown.item["id"], _wrong(shown.item["id"]))
    # one wrong answer may be a slip or an unlucky item: another item of the skill first
    second = practice.next_item(ctx, user)
    assert second.skill_id == "basics.tokens" and second.reason != "lesson" and second.lesson is None
    practice.answer(ctx, user, second.item["id"], _wrong(second.item["id"]))
    after = practice.next_item(ctx, user)
    assert after.skill_id == "basics.tokens" and after.reason == "lesson"
    assert after.lesson is not None and after.lesson.id == "lesson.tokens"
    path = guidance.my_path(ctx, user)
    assert path.next is not None and path.next.lesson is not None and path.next.lesson.id == "lesson.tokens"
    # one whose first answer is right is not sent to the lesson
    other = _learner(ctx, "right@example.org")
    _answer(ctx, other, 1)
    assert practice.next_item(ctx, other).lesson is None


def test_cards_follow_the_log_and_rebuild_to_the_same_state(ctx: AppContext) -> None:
    user = _learner(ctx)
    seen = _answer(ctx, user, 5)
    practice.next_item(ctx, user)  # reading the state brings the cards up to date
    with ctx.session() as session:
        cards = session.execute(select(ReviewCard).where(ReviewCard.user_id == user.id)).scalars().all()
        assert {c.item_id for c in cards} == set(seen)
        assert sum(c.reps for c in cards) == 5
        live = card_snapshot(session)
    with ctx.session() as session:
        session.execute(update(ReviewCard).values(stability=99.0, reps=0))  # corrupt derived state
    with ctx.session() as session:
        assert rebuild_all(session) == 5
    with ctx.session() as session:
        assert card_snapshot(session) == live


def test_a_faded_skill_comes_back_as_a_due_review(ctx: AppContext) -> None:
    user = _learner(ctx)
    _answer(ctx, user, 6)
    with ctx.session() as session:  # the same answers, a month ago
        for row in session.execute(select(Response).where(Response.user_id == user.id)).scalars():
            row.created_at = row.created_at - timedelta(days=30)
    with ctx.session() as session:
        rebuild_all(session)
    plan = guidance.my_path(ctx, user)
    assert "basics.tokens" in {d.skill_id for d in plan.due_reviews}
    assert plan.steps[0].skill_id == "basics.tokens" and plan.steps[0].status == "review"
    # Practice on a role target now also builds its evidence, which can come first; the due
    # review follows within a few items.
    for _ in range(6):
        shown = practice.next_item(ctx, user)
        if shown.reason == "review":
            break
        _answer(ctx, user, 1)
    assert shown.reason == "review" and shown.activity == "review"
    assert shown.skill_id in {d.skill_id for d in plan.due_reviews}
    assert "fading" in shown.reason_text


def test_path_replans_after_every_answer(ctx: AppContext) -> None:
    user = _learner(ctx)
    before = guidance.my_path(ctx, user)
    assert [s.skill_id for s in before.steps][0] == "basics.tokens" and before.answers_so_far == 0
    assert before.next is not None and (before.next.kind, before.next.skill_id) == (
        "practice",
        "basics.tokens",
    )
    _answer(ctx, user, 3)
    after = guidance.my_path(ctx, user)
    assert after.answers_so_far == 3 and after.answers_to_go < before.answers_to_go


def test_path_without_a_role_is_empty(ctx: AppContext) -> None:
    user = auth.signup(ctx, email="n@example.org", name="N", password="tidal-ferry-quartz-81").user
    assert guidance.my_path(ctx, user).role_id is None


def test_unreachable_role_is_a_clear_conflict(tmp_path: Path) -> None:
    holes = tmp_path / "holes"
    shutil.copytree(MINI_PACK, holes)
    (holes / "items" / "apps.yaml").unlink()
    ctx = _make_ctx(f"sqlite:///{tmp_path / 'h.db'}", holes)
    user = _learner(ctx)
    with pytest.raises(Conflict, match="cannot be reached.*apps.rag"):
        guidance.my_path(ctx, user)
    assert practice.next_item(ctx, user).skill_id == "basics.tokens"  # what can be practised still is


def test_fitting_memory_is_for_staff(ctx: AppContext) -> None:
    with pytest.raises(Forbidden):
        guidance.fit_memory(ctx, _learner(ctx))


def test_fitting_memory_on_a_short_log_keeps_defaults(ctx: AppContext) -> None:
    need_module("torch")
    need_module("pandas")
    user = _learner(ctx)
    _answer(ctx, user, 3)
    with ctx.session() as session:
        from learnloop.store.models import User

        session.execute(update(User).where(User.id == user.id).values(role="manager"))
    fit = guidance.fit_memory(ctx, user.model_copy(update={"role": "manager"}))
    assert fit.reviews == 3 and not fit.fitted and fit.answers_replayed == 0


def test_path_api_and_page(client: TestClient) -> None:
    r = client.post(
        "/api/v1/auth/signup",
        json={"email": "p@example.org", "name": "P", "password": "tidal-ferry-quartz-81"},
    )
    headers = {"Authorization": f"Bearer {r.json()['token']}"}
    client.cookies.clear()
    client.post("/api/v1/enrolment", json={"role_id": "builder"}, headers=headers)
    body = client.get("/api/v1/path", headers=headers).json()
    assert body["role_id"] == "builder" and body["steps"][0]["skill_id"] == "basics.tokens"
    assert body["answers_to_go"] > 0 and body["next"]["skill_id"] == "basics.tokens"
    assert 0 < body["answers_if_known"] < body["answers_to_go"]
    assert 0 < body["minutes_if_known"] < body["minutes_to_go"]
    nxt = client.get("/api/v1/practice/next", headers=headers).json()
    assert nxt["lesson"] is None and nxt["reason_text"] and nxt["lesson_ids"] == ["lesson.tokens"]
    assert client.get("/api/v1/path").status_code == 401
    assert "/api/v1/path" in client.get("/api/v1/openapi.json").json()["paths"]

    client.cookies.set("learnloop_session", r.json()["token"])
    page = client.get("/path")
    assert page.status_code == 200 and "My path" in page.text
    assert re.search(r'data-skill="basics.tokens" data-status="learn"', page.text)
    assert 'id="if-known"' in page.text and "If you already know it all" in page.text
    practice_page = client.get("/practice")
    # the first item of a new skill offers the lesson (a link), without the "read it first" card
    assert 'data-lesson-id="lesson.tokens"' not in practice_page.text
    assert 'href="/lessons/lesson.tokens"' in practice_page.text


def test_simulate_service_and_cli(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from learnloop.cli import app

    rows = guidance.simulate(MINI_PACK, learners=3, seed=2, policies=["ours", "lowest_mastery"])
    assert {r["policy"] for r in rows} == {"ours", "lowest_mastery"}
    with pytest.raises(Exception, match="unknown policies: nope"):
        guidance.simulate(MINI_PACK, learners=1, seed=0, policies=["nope"])
    done = CliRunner().invoke(
        app, ["simulate", "--learners", "2", "--pack", str(MINI_PACK), "--policy", "ours"]
    )
    assert done.exit_code == 0 and "ours" in done.output and "retention" in done.output
    bad = CliRunner().invoke(
        app, ["simulate", "--learners", "1", "--pack", str(MINI_PACK), "--role", "astronaut"]
    )
    assert bad.exit_code == 2 and "unknown roles: astronaut" in bad.output
    stricter = CliRunner().invoke(
        app, ["simulate", "--learners", "1", "--pack", str(MINI_PACK), "--target-shift", "9"]
    )
    assert stricter.exit_code == 2 and "target-shift" in stricter.output
    # a stricter role target never costs fewer answers for the same learners (on this small
    # pack the evidence a target needs, not its P(known), decides when it is met)
    lax, strict = (
        guidance.simulate(MINI_PACK, learners=6, seed=2, policies=["oatutor"], target_shift=shift)[0]
        for shift in (0.0, 2.0)
    )
    assert strict["mean_items_reached"] >= lax["mean_items_reached"] - 1.0
    assert lax["reached_share"] == 1.0


def test_failing_a_skill_brings_its_prerequisite_back_with_a_reason(ctx: AppContext) -> None:
    user = _learner(ctx, "stuck@example.org")
    for _ in range(20):  # right answers until the frontier moves past the root skill
        shown = practice.next_item(ctx, user)
        if shown.skill_id != "basics.tokens":
            break
        _answer(ctx, user, 1, right=True)
    assert shown.skill_id == "basics.prompts"
    for _ in range(40):  # then the learner keeps failing the skill that builds on it
        shown = practice.next_item(ctx, user)
        if shown.skill_id == "basics.tokens":
            break
        assert shown.skill_id == "basics.prompts"
        item = PACK.item(shown.item["id"])
        practice.answer(ctx, user, item.id, answer_payload(item, right=False))
    # the prerequisite comes back, named as the step toward the failing skill (with bounded
    # steps the policy may go back to it before its belief in it is revised: "next_step")
    assert shown.skill_id == "basics.tokens" and shown.reason in ("revisit", "next_step")
    assert "Prompts" in shown.reason_text
    path = guidance.my_path(ctx, user)  # the path leads with it too
    assert path.steps[0].skill_id == "basics.tokens"


def test_fresh_path_is_the_cold_start_priors_expectation(ctx: AppContext) -> None:
    """Before `fit kt`, the path's answers are the expectation over the cold-start learning-rate
    prior (kt/bkt.COLD_START_LEARN_PRIOR), not the default rate alone."""
    from learnloop.science.kt.bkt import COLD_START_LEARN_PRIOR, LearnRatePrior
    from learnloop.science.path import plan_path
    from learnloop.science.policy import LearnerState, PolicyConfig, curriculum_for_role

    shown = guidance.my_path(ctx, _learner(ctx))
    cur = curriculum_for_role(PACK, "builder", unlock_level=ctx.settings.unlock_mastery)
    cfg = PolicyConfig(evidence=guidance.evidence_rule(ctx.settings))
    mixed = plan_path(cur, LearnerState(), cfg, learn_prior=COLD_START_LEARN_PRIOR).items
    point = plan_path(cur, LearnerState(), cfg, learn_prior=LearnRatePrior()).items
    assert shown.answers_to_go == round(mixed, 1) != round(point, 1)
