"""Spaced-review cards: one FSRS card per learner and item, derived from the response log.

Every answer in the log is one review of its item's card (``science/memory.py`` turns it
into a rating). Cards are brought up to date from the log before they are read
(:func:`sync_cards`), and :func:`rebuild_cards` drops and replays them all, so they never
disagree with the log; the live answer path does not need to know about them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fsrs import Card, State
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from learnloop.content.models import Pack
from learnloop.science.memory import MemoryModel, MemoryParams, card_lapses, rating_for_answer
from learnloop.services.context import ActivePack
from learnloop.store.grades import instructor_decisions
from learnloop.store.models import ContentPack, ModelParams, Response, ReviewCard, User, as_utc


def memory_kind(org_id: int) -> str:
    return f"fsrs.org.{org_id}"


def memory_model(session: Session, org_id: int) -> MemoryModel:
    """The organisation's fitted FSRS parameters, else the library's defaults."""
    row = (
        session.execute(
            select(ModelParams).where(ModelParams.kind == memory_kind(org_id)).order_by(ModelParams.id.desc())
        )
        .scalars()
        .first()
    )
    if row is None:
        return MemoryModel()
    return MemoryModel(MemoryParams.from_dict(row.params))  # type: ignore[arg-type]


def _card(row: ReviewCard) -> Card:
    return Card(
        card_id=0,
        state=State(row.state),
        step=row.step,
        stability=row.stability,
        difficulty=row.difficulty,
        due=as_utc(row.due),
        last_review=as_utc(row.last_review) if row.last_review else None,
    )


def _store(row: ReviewCard, card: Card) -> None:
    row.state, row.step = int(card.state), card.step
    row.stability, row.difficulty = card.stability, card.difficulty
    row.due, row.last_review = card.due, card.last_review


@dataclass(frozen=True)
class LoggedAnswer:
    """One answer as a review: what the rating and the card need."""

    id: int
    user_id: int
    item_id: str
    correct: bool
    hints_used: int
    duration_ms: int | None
    created_at: datetime


def _review(model: MemoryModel, row: ReviewCard, answer: LoggedAnswer, minutes: float) -> None:
    """Fold one answer into its card: the same code for the live loop and the rebuild."""
    duration = answer.duration_ms / 1000 if answer.duration_ms is not None else None
    rating = rating_for_answer(
        answer.correct, minutes=minutes, duration_s=duration, hints_used=answer.hints_used
    )
    before = _card(row) if row.reps else model.new_card()
    after = model.review(before, rating, answer.created_at)
    _store(row, after)
    row.lapses = (row.lapses or 0) + card_lapses(before.state, rating)
    row.reps = (row.reps or 0) + 1
    row.last_response_id = answer.id


def logged_answers(session: Session, *conditions: object) -> list[LoggedAnswer]:
    rows = session.execute(
        select(
            Response.id,
            Response.user_id,
            Response.item_id,
            Response.correct,
            Response.hints_used,
            Response.duration_ms,
            Response.created_at,
        )
        .where(*conditions)  # type: ignore[arg-type]
        .order_by(Response.id)
    ).all()
    decisions = instructor_decisions(session)
    return [LoggedAnswer(r[0], r[1], r[2], decisions.get(r[0], bool(r[3])), r[4] or 0, r[5], r[6]) for r in rows]



def item_minutes(pack: Pack | None) -> dict[str, float]:
    return {i.id: i.minutes for i in pack.items} if pack else {}


def sync_cards(session: Session, user_id: int, org_id: int, pack: Pack | None) -> int:
    """Fold the learner's answers that are not in their cards yet into them; returns how many.

    Answers are folded in id order, so the newest folded id is the watermark.
    """
    done = (
        session.scalar(select(func.max(ReviewCard.last_response_id)).where(ReviewCard.user_id == user_id))
        or 0
    )
    new = logged_answers(session, Response.user_id == user_id, Response.id > done)
    if not new:
        return 0
    touched = {answer.item_id for answer in new}
    cards = {
        c.item_id: c
        for c in session.execute(
            select(ReviewCard).where(ReviewCard.user_id == user_id, ReviewCard.item_id.in_(touched))
        ).scalars()
    }
    model, minutes = memory_model(session, org_id), item_minutes(pack)
    for answer in new:
        row = cards.get(answer.item_id)
        if row is None:
            row = cards[answer.item_id] = ReviewCard(
                user_id=user_id, item_id=answer.item_id, reps=0, lapses=0
            )
            session.add(row)
        _review(model, row, answer, minutes.get(answer.item_id, 1.0))
    session.flush()
    return len(new)


def _stored_pack(session: Session) -> Pack | None:
    row = (
        session.execute(
            select(ContentPack).where(ContentPack.is_active.is_(True)).order_by(ContentPack.id.desc())
        )
        .scalars()
        .first()
    )
    return Pack.model_validate(row.document) if row else None


def rebuild_cards(session: Session) -> int:
    """Drop every review card and replay the whole response log; returns answers replayed."""
    session.execute(delete(ReviewCard))
    session.flush()
    minutes = item_minutes(_stored_pack(session))
    org_of: dict[int, int] = {
        user_id: org_id for user_id, org_id in session.execute(select(User.id, User.org_id))
    }
    models: dict[int, MemoryModel] = {}
    cards: dict[tuple[int, str], ReviewCard] = {}
    answers = logged_answers(session)
    for answer in answers:
        org_id = org_of.get(answer.user_id, 0)
        if org_id not in models:
            models[org_id] = memory_model(session, org_id)
        key = (answer.user_id, answer.item_id)
        row = cards.get(key)
        if row is None:
            row = cards[key] = ReviewCard(user_id=answer.user_id, item_id=answer.item_id, reps=0, lapses=0)
        _review(models[org_id], row, answer, minutes.get(answer.item_id, 1.0))
    session.add_all(cards.values())
    session.flush()
    return len(answers)


def card_snapshot(session: Session) -> dict[tuple[int, str], tuple[object, ...]]:
    """Cards as comparable tuples, for checking a rebuild equals the live state."""
    rows = session.execute(select(ReviewCard)).scalars()
    return {
        (c.user_id, c.item_id): (
            c.state,
            c.step,
            None if c.stability is None else round(c.stability, 9),
            None if c.difficulty is None else round(c.difficulty, 9),
            as_utc(c.due),
            c.reps,
            c.lapses,
            c.last_response_id,
        )
        for c in rows
    }


def skill_retrievability(
    session: Session, user_id: int, active: ActivePack, memory: MemoryModel, now: datetime
) -> dict[str, float]:
    """Per practised skill, the retrievability of its best-remembered item: any item of a skill
    refreshes the skill, so the skill fades only when all of them do.

    FSRS retrievability falls with elapsed days over stability whatever the weights, so only
    the card with the smallest ratio per skill is handed to the library.
    """
    rows = session.execute(
        select(ReviewCard.item_id, ReviewCard.stability, ReviewCard.difficulty, ReviewCard.last_review).where(
            ReviewCard.user_id == user_id, ReviewCard.reps > 0
        )
    ).all()
    best: dict[str, tuple[float, Card]] = {}
    for item_id, stability, difficulty, last_review in rows:
        item = active.items.get(item_id)
        if item is None or not stability or last_review is None:
            continue
        last = as_utc(last_review)
        ratio = max(0, (now - last).days) / stability
        for skill in item.skills:
            if skill not in best or ratio < best[skill][0]:
                card = Card(
                    card_id=0,
                    state=State.Review,
                    stability=stability,
                    difficulty=difficulty,
                    due=now,
                    last_review=last,
                )
                best[skill] = (ratio, card)
    return {skill: memory.retrievability(card, now) for skill, (_, card) in best.items()}
