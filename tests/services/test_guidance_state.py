"""The learner state behind the next activity: what the fast read path hands the policy is what
a full replay of the response log says, and reading it costs the same few queries however
long the log is."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, func, insert, select

from learnloop.science.memory import MemoryModel, rating_for_answer
from learnloop.science.policy import LearnerState, choose_activity
from learnloop.services import auth, guidance, practice
from learnloop.services.auth import CurrentUser, default_organisation
from learnloop.services.context import AppContext
from learnloop.services.mastery import apply_answer, load_model, mastery_of, skill_evidence
from learnloop.services.review_cards import card_snapshot, rebuild_cards
from learnloop.store.db import get_engine
from learnloop.store.models import GradeReview, Mastery, PendingItem, Response, ReviewCard, utcnow

START = datetime(2026, 1, 5, 9, tzinfo=UTC)
RETIRED = "retired.item"  # answered once, no longer in the pack


def _learner(ctx: AppContext, email: str) -> CurrentUser:
    user = auth.signup(ctx, email=email, name="S", password="tidal-ferry-quartz-81").user
    practice.enrol(ctx, user, "builder")
    return user


def _log_answers(ctx: AppContext, user: CurrentUser, n: int, start: datetime, seed: int) -> None:
    """``n`` answers as a bulk import writes them: log rows and mastery, no review cards."""
    rng = random.Random(seed)
    with ctx.session() as session:
        active = ctx.active_pack(session)
        items = sorted(active.items)
        model, rows = load_model(session, default_organisation(session).id), mastery_of(session, user.id)
        for k in range(n):
            item_id = RETIRED if k == n // 2 else items[int(rng.random() * len(items))]
            skills = list(active.items[item_id].skills) if item_id in active.items else ["basics.tokens"]
            at = start + timedelta(hours=5 * k + rng.random() * 48 * (rng.random() < 0.1))
            correct = rng.random() < 0.7
            rid = session.execute(
                insert(Response).values(
                    org_id=user.org_id,
                    user_id=user.id,
                    item_id=item_id,
                    skills=skills,
                    kind="choice",
                    context="practice",
                    answer={"choice": "a"},
                    correct=correct,
                    score=float(correct),
                    hints_used=int(rng.random() < 0.2),
                    duration_ms=None if rng.random() < 0.1 else int(60_000 * rng.uniform(0.2, 2.5)),
                    created_at=at,
                )
            ).inserted_primary_key[0]
            apply_answer(
                session, model, rows, user_id=user.id, skills=skills, correct=correct, response_id=rid, at=at
            )
            if rng.random() < 0.05:  # an instructor overturned the grade: the cards must follow
                session.add(
                    GradeReview(
                        org_id=user.org_id,
                        user_id=user.id,
                        response_id=rid,
                        item_id=item_id,
                        answer_text="",
                        provisional_correct=correct,
                        provisional_score=float(correct),
                        confidence=0.2,
                        grader="test",
                        reason="low_confidence",
                        status="decided",
                        decided_correct=not correct,
                    )
                )


def _replayed_state(ctx: AppContext, user: CurrentUser, now: datetime) -> LearnerState:
    """The state straight from the log: every answer replayed through FSRS, nothing cached."""
    memory = MemoryModel()
    with ctx.session() as session:
        active = ctx.active_pack(session)
        decided = {
            rid: ok
            for rid, ok in session.execute(
                select(GradeReview.response_id, GradeReview.decided_correct).where(
                    GradeReview.status == "decided"
                )
            )
        }
        log = (
            session.execute(select(Response).where(Response.user_id == user.id).order_by(Response.id))
            .scalars()
            .all()
        )
        mastery = session.execute(select(Mastery).where(Mastery.user_id == user.id)).scalars().all()
        cards = {}
        for r in log:
            minutes = active.items[r.item_id].minutes if r.item_id in active.items else 1.0
            rating = rating_for_answer(
                decided.get(r.id, r.correct),
                minutes=minutes,
                duration_s=None if r.duration_ms is None else r.duration_ms / 1000,
                hints_used=r.hints_used,
            )
            card = cards.get(r.item_id) or memory.new_card()
            cards[r.item_id] = memory.review(card, rating, r.created_at)
        best: dict[str, float] = {}
        for item_id, card in cards.items():
            if item_id in active.items:
                for skill in active.items[item_id].skills:
                    best[skill] = max(best.get(skill, 0.0), memory.retrievability(card, now))
        recent = [r.item_id for r in reversed(log)][: max(16, ctx.settings.practice_repeat_gap)]
        history: dict[str, list[bool]] = {}
        for r in log[-guidance.HISTORY_WINDOW :]:
            for skill in r.skills:
                history.setdefault(skill, []).append(bool(decided.get(r.id, r.correct)))
        return LearnerState(
            mastery={m.skill_id: m.p_known for m in mastery},
            retrievability=best,
            attempts={m.skill_id: m.attempts for m in mastery},
            answered=Counter(r.item_id for r in log[-guidance.HISTORY_WINDOW :]),
            recent_items=tuple(recent),
            recent_skills=tuple(active.items[i].skills[0] for i in recent if i in active.items),
            history=history,
            evidence=skill_evidence(session, user.id),
            now=now.timestamp(),
        )


def _read_state(ctx: AppContext, user: CurrentUser, now: datetime) -> LearnerState:
    with ctx.session() as session:
        active = ctx.active_pack(session)
        state, _memory = guidance.learner_state(
            session, active, user, load_model(session, default_organisation(session).id), now
        )
    return state


def _assert_same(fast: LearnerState, replayed: LearnerState) -> None:
    assert fast.retrievability == pytest.approx(replayed.retrievability, abs=1e-12)
    assert fast.retrievability.keys() == replayed.retrievability.keys()
    assert (fast.mastery, fast.attempts, dict(fast.answered)) == (
        replayed.mastery,
        replayed.attempts,
        dict(replayed.answered),
    )
    assert (tuple(fast.recent_items), tuple(fast.recent_skills)) == (
        tuple(replayed.recent_items),
        tuple(replayed.recent_skills),
    )
    assert {k: list(v) for k, v in fast.history.items()} == {k: list(v) for k, v in replayed.history.items()}


def test_next_item_sees_what_a_full_replay_of_the_log_sees(any_ctx: AppContext) -> None:
    ctx = any_ctx
    user = _learner(ctx, "state@example.org")
    _log_answers(ctx, user, 700, START, seed=3)  # past the history window; no cards yet
    for days in (0, 9, 120):
        now = START + timedelta(hours=5 * 700, days=days)
        _assert_same(_read_state(ctx, user, now), _replayed_state(ctx, user, now))
    _log_answers(ctx, user, 40, START + timedelta(days=200), seed=4)  # folded into existing cards
    now = START + timedelta(days=215)
    replayed = _replayed_state(ctx, user, now)
    _assert_same(_read_state(ctx, user, now), replayed)

    with ctx.session() as session:
        session.execute(PendingItem.__table__.delete())
        active = ctx.active_pack(session)
        cur = guidance.curriculum(
            active,
            "builder",
            ctx.settings.unlock_mastery,
            load_model(session, default_organisation(session).id),
        )
    expected = choose_activity(
        cur, _replayed_state(ctx, user, guidance.utcnow()), guidance.policy_config(MemoryModel())
    )
    assert expected is not None
    shown = practice.next_item(ctx, user)
    assert (shown.item["id"], shown.skill_id, shown.reason) == (
        expected.item_id,
        expected.skill_id,
        expected.reason,
    )


def test_cards_folded_in_pieces_equal_a_rebuild(ctx: AppContext) -> None:
    user = _learner(ctx, "pieces@example.org")
    for piece in range(3):
        _log_answers(ctx, user, 60, START + timedelta(days=40 * piece), seed=piece)
        _read_state(ctx, user, START + timedelta(days=40 * piece + 30))
    with ctx.session() as session:
        live = card_snapshot(session)
        assert rebuild_cards(session) == 180
        assert card_snapshot(session) == live


def test_reading_the_state_takes_the_same_few_queries_for_any_log(ctx: AppContext) -> None:
    statements: list[str] = []
    engine = get_engine(ctx.settings.database_url)

    def count(_conn, _cursor, statement, _params, _context, _many) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    counts = []
    for n, email in ((20, "short@example.org"), (600, "long@example.org")):
        user = _learner(ctx, email)
        _log_answers(ctx, user, n, START, seed=n)
        _read_state(ctx, user, START + timedelta(days=200))  # folds the imported answers once
        with ctx.session() as session:
            active, model = ctx.active_pack(session), load_model(session, default_organisation(session).id)
            event.listen(engine, "before_cursor_execute", count)
            try:
                guidance.learner_state(session, active, user, model, START + timedelta(days=201))
            finally:
                event.remove(engine, "before_cursor_execute", count)
        counts.append(len(statements))
        # nothing new to fold, so no decisions read for the cards (the history joins them)
        assert not any("FROM grade_reviews" in s for s in statements)
        statements.clear()
    # the log's newest answers, cards, and mastery read with the evidence stored on it (one
    # query; no answer is read for it); the memory model's row was read with the KT model's
    # (load_model, in the same transaction)
    assert counts[0] == counts[1] == 3


def test_a_pending_item_that_left_the_pack_is_replaced(ctx: AppContext) -> None:
    user = _learner(ctx, "left@example.org")
    with ctx.session() as session:
        session.add(PendingItem(user_id=user.id, item_id=RETIRED, reason="next_step:", hints_shown=2))
    shown = practice.next_item(ctx, user)
    with ctx.session() as session:
        pending = session.get(PendingItem, user.id)
        assert pending is not None and pending.hints_shown == 0
        assert pending.item_id == shown.item["id"] != RETIRED
    assert practice.next_item(ctx, user).item["id"] == shown.item["id"]  # the same until answered


def test_a_new_decision_rebuilds_one_learners_cards_only(ctx: AppContext) -> None:
    first, other = _learner(ctx, "first@example.org"), _learner(ctx, "other@example.org")
    for k, user in enumerate((first, other)):
        _log_answers(ctx, user, 50, START, seed=10 + k)
        _read_state(ctx, user, START + timedelta(days=30))  # cards folded from the provisional grades
    with ctx.session() as session:
        reviewed = select(GradeReview.response_id).where(GradeReview.response_id.is_not(None))
        answer = session.execute(
            select(Response).where(Response.user_id == first.id, Response.id.not_in(reviewed)).limit(1)
        ).scalar_one()
        session.add(
            GradeReview(
                org_id=first.org_id,
                user_id=first.id,
                response_id=answer.id,
                item_id=answer.item_id,
                answer_text="",
                provisional_correct=answer.correct,
                provisional_score=answer.score,
                confidence=0.2,
                grader="test",
                reason="low_confidence",
                status="decided",
                decided_correct=not answer.correct,
            )
        )
    with ctx.session() as session:
        before = card_snapshot(session)
        assert rebuild_cards(session, first.id) == 50
        after = card_snapshot(session)
        assert after[(first.id, answer.item_id)] != before[(first.id, answer.item_id)]
        assert {k: v for k, v in after.items() if k[0] == other.id} == {
            k: v for k, v in before.items() if k[0] == other.id
        }
        rebuild_cards(session)
        assert card_snapshot(session) == after


def test_a_practice_answer_folds_its_card_and_the_live_cards_equal_a_rebuild(any_ctx: AppContext) -> None:
    """The answer's transaction folds the answer into its review card (the next item's read of
    the cards has nothing left to fold); answers logged without a card (here, as a bulk import
    writes them) are folded in id order by the next item's read; the live cards equal a
    rebuild from the log on both backends."""
    ctx = any_ctx
    user = _learner(ctx, "folded@example.org")
    rng = random.Random(3)
    for k in range(12):
        if k == 5:  # answers in the log that no card holds yet
            _log_answers(ctx, user, 3, utcnow() - timedelta(days=4), seed=k)
        shown = practice.next_item(ctx, user)
        item = shown.item
        if item["kind"] == "choice":
            answer: dict[str, object] = {"choice": rng.choice(sorted(item["options"]))}
        elif item["kind"] == "numeric":
            answer = {"value": rng.uniform(0, 10)}
        else:
            answer = {"text": "It depends on the context window."}
        feedback = practice.answer(ctx, user, item["id"], answer, presentation_id=shown.presentation_id)
        with ctx.session() as session:
            newest = session.scalar(select(func.max(Response.id)).where(Response.user_id == user.id))
            folded = session.scalar(
                select(func.max(ReviewCard.last_response_id)).where(ReviewCard.user_id == user.id)
            )
        assert feedback.response_id == newest == folded
    with ctx.session() as session:
        live = card_snapshot(session)
        assert rebuild_cards(session) == 15
        assert card_snapshot(session) == live
