"""The learner tallies behind the team report's readiness lists (``services/learner_tally.py``):
counted with each answer (practice and skill checks), equal to counting the log again (what a
rebuild and migration 0042 do), kept equal after an instructor's decision overturns a grade,
on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select

from learnloop.content.loader import load_pack
from learnloop.services import assessment, auth, grading, learner_tally, mastery, practice
from learnloop.services.auth import CurrentUser
from learnloop.services.context import AppContext
from learnloop.store.models import GradeReview, PendingItem, Response
from tests.conftest import MINI_PACK, answer_payload
from tests.services.report_builders import current_user

PACK = load_pack(MINI_PACK)


def _learner(ctx: AppContext, email: str) -> CurrentUser:
    user = auth.signup(ctx, email=email, name="T", password="tidal-ferry-quartz-81").user
    practice.enrol(ctx, user, "builder")
    return user


def _practise(ctx: AppContext, user: CurrentUser, n: int, seed: int) -> None:
    for k in range(n):
        shown = practice.next_item(ctx, user)
        item = PACK.item(shown.item["id"])
        practice.answer(ctx, user, item.id, answer_payload(item, right=(k * 7 + seed) % 3 != 1))


def _by_hand(ctx: AppContext) -> dict[int, tuple[int, int]]:
    """The tallies from the log, counted in Python: practice answers, and items with an answer
    counted right (the instructor's decision where there is one)."""
    with ctx.session() as session:
        decided = {
            rid: ok
            for rid, ok in session.execute(
                select(GradeReview.response_id, GradeReview.decided_correct).where(
                    GradeReview.status == "decided"
                )
            )
        }
        out: dict[int, tuple[int, set[str]]] = {}
        for rid, uid, item_id, context, correct in session.execute(
            select(Response.id, Response.user_id, Response.item_id, Response.context, Response.correct)
        ):
            answers, right = out.setdefault(uid, (0, set()))
            if decided.get(rid, correct):
                right.add(item_id)
            out[uid] = (answers + (context == "practice"), right)
    return {uid: (answers, len(right)) for uid, (answers, right) in out.items()}


def _stored(ctx: AppContext) -> dict[int, tuple[int, int]]:
    with ctx.session() as session:
        return learner_tally.snapshot(session)


def test_tallies_count_each_answer_and_equal_the_log_and_a_rebuild(any_ctx: AppContext) -> None:
    users = [_learner(any_ctx, f"tally{k}@example.org") for k in range(3)]
    for k, user in enumerate(users):
        _practise(any_ctx, user, 8 + 5 * k, k)
    # a skill check: its answers count as items answered right, not as practice
    state = assessment.start(any_ctx, users[0], "builder")
    for _ in range(4):
        if state.next is None:
            break
        item = PACK.item(state.next.item["id"])
        state = assessment.answer(
            any_ctx, users[0], state.next.assessment_id, item.id, answer_payload(item, right=True)
        )
    live = _stored(any_ctx)
    assert live == _by_hand(any_ctx)
    assert set(live) == {u.id for u in users}
    with any_ctx.session() as session:
        checks = session.scalar(
            select(Response.id)
            .where(Response.user_id == users[0].id, Response.context != "practice")
            .limit(1)
        )
    assert checks is not None  # the check's answers were logged, and counted above
    for answers, right in live.values():
        assert 0 < right < answers  # repeated items and wrong answers are not counted twice
    with any_ctx.session() as session:  # learnloop rebuild
        mastery.rebuild_all(session)
    assert _stored(any_ctx) == live
    with any_ctx.session() as session:  # one learner's replay, as after a decision
        mastery.rebuild_all(session, user_id=users[1].id)
    assert _stored(any_ctx) == live


def test_an_instructor_decision_keeps_the_tally_equal_to_the_log(any_ctx: AppContext) -> None:
    user = _learner(any_ctx, "decided@example.org")
    _practise(any_ctx, user, 12, 0)
    with any_ctx.session() as session:
        rights = session.execute(
            select(Response.id, Response.item_id)
            .where(Response.user_id == user.id, Response.correct.is_(True))
            .order_by(Response.id)
        ).all()
        # an item answered right exactly once: overturning that answer takes the item away
        once = next((rid, item_id) for rid, item_id in rights if [i for _r, i in rights].count(item_id) == 1)
        teacher = auth.create_user(
            session,
            org_id=user.org_id,
            email="teacher@example.org",
            name="Teacher",
            password="tidal-ferry-quartz-81",
            role="instructor",
        )
        session.flush()
        instructor = current_user(session, teacher)
        review = GradeReview(
            org_id=user.org_id,
            user_id=user.id,
            item_id=once[1],
            answer_text="",
            provisional_correct=True,
            provisional_score=1.0,
            confidence=0.5,
            grader="test",
            reason="low_confidence",
            rationale="",
            status="pending",
            response_id=once[0],
        )
        session.add(review)
        session.flush()
        review_id = review.id
    before = _stored(any_ctx)[user.id]
    grading.decide(any_ctx, instructor, review_id, correct=False)
    after = _stored(any_ctx)[user.id]
    assert after == (before[0], before[1] - 1) and _stored(any_ctx) == _by_hand(any_ctx)
    # a later right answer to that item counts it again, live as in a rebuild
    item = PACK.item(once[1])
    practice.next_item(any_ctx, user)
    with any_ctx.session() as session:  # put the overturned item on the learner's screen
        pending = session.get(PendingItem, user.id)
        assert pending is not None
        pending.item_id = item.id
        presentation = pending.presentation_id
    practice.answer(any_ctx, user, item.id, answer_payload(item, right=True), presentation_id=presentation)
    live = _stored(any_ctx)
    assert live[user.id] == (after[0] + 1, after[1] + 1) and live == _by_hand(any_ctx)
    with any_ctx.session() as session:
        mastery.rebuild_all(session)
    assert _stored(any_ctx) == live
