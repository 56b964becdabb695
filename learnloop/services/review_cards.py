"""Spaced-review cards: one FSRS card per learner and item, derived from the response log.

Every answer in the log is one review of its item's card (``science/memory.py`` turns it
into a rating). Cards are brought up to date from the log before they are read
(:func:`current_cards`, :func:`sync_cards`), and :func:`rebuild_cards` drops and replays them
all, so they never disagree with the log. The practice answer folds its own answer into its
card in its transaction (:func:`fold_answer`, the same review step), so the next item's read
finds nothing to fold; answers logged elsewhere (skill checks, grading jobs) are folded by
that read. A replay keeps each card in memory and writes its row once, after its last answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from fsrs import Card, State
from sqlalchemy import ColumnElement, and_, delete, func, literal_column, select
from sqlalchemy.orm import Session

from learnloop.content.models import Pack
from learnloop.science.memory import MemoryModel, MemoryParams, card_lapses, rating_for_answer
from learnloop.services.context import ActivePack
from learnloop.store.grades import instructor_decisions
from learnloop.store.guard import holds_learner_lock, lock_learner
from learnloop.store.models import ContentPack, Response, ReviewCard, User, as_utc
from learnloop.store.params_cache import ParamsCache, newest_heads


def memory_kind(org_id: int) -> str:
    return f"fsrs.org.{org_id}"


_DEFAULT_MODEL = MemoryModel()
_models: ParamsCache[MemoryModel] = ParamsCache(size=256)


def memory_model(session: Session, org_id: int) -> MemoryModel:
    """The organisation's fitted FSRS parameters, else the library's defaults."""
    head = newest_heads(session, (memory_kind(org_id),))[0]  # read with the KT model's, if it was
    if head is None:
        return _DEFAULT_MODEL
    return _models.get(
        session, int(head.id), head.fitted_at, lambda params: MemoryModel(MemoryParams.from_dict(params))
    )


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


class LoggedAnswer(NamedTuple):
    """One answer as a review: what the rating and the card need (a tuple: a replay makes one
    per answer in the log)."""

    id: int
    user_id: int
    item_id: str
    correct: bool
    hints_used: int
    duration_ms: int | None
    created_at: datetime


@dataclass
class _Replay:
    """A card while answers are folded into it; its row is written once, after the last."""

    row: ReviewCard
    card: Card | None  # None until the first review
    reps: int
    lapses: int
    last_response_id: int

    @classmethod
    def of(cls, row: ReviewCard) -> _Replay:
        card = _card(row) if row.reps else None
        return cls(row, card, row.reps or 0, row.lapses or 0, row.last_response_id or 0)

    def review(self, model: MemoryModel, answer: LoggedAnswer, minutes: float) -> None:
        """Fold one answer into the card: the same code for the live loop and the rebuild."""
        duration = answer.duration_ms / 1000 if answer.duration_ms is not None else None
        rating = rating_for_answer(
            answer.correct, minutes=minutes, duration_s=duration, hints_used=answer.hints_used
        )
        before = self.card if self.card is not None else model.new_card()
        self.card = model.review(before, rating, answer.created_at)
        self.lapses += card_lapses(before.state, rating)
        self.reps += 1
        self.last_response_id = answer.id

    def store(self) -> ReviewCard:
        if self.card is not None:
            _store(self.row, self.card)
        self.row.reps, self.row.lapses = self.reps, self.lapses
        self.row.last_response_id = self.last_response_id
        return self.row


def logged_answers(session: Session, *conditions: object, user_id: int | None = None) -> list[LoggedAnswer]:
    """The answers matching ``conditions`` in log order, with the instructors' decisions applied
    (``user_id``: the answers are one learner's, so only their decisions are read)."""
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
    if not rows:
        return []
    decisions = instructor_decisions(session, user_id)
    return [
        LoggedAnswer(r[0], r[1], r[2], decisions.get(r[0], bool(r[3])), r[4] or 0, r[5], r[6]) for r in rows
    ]


def item_minutes(pack: Pack | None) -> dict[str, float]:
    return {i.id: i.minutes for i in pack.items} if pack else {}


def _fold_new(
    session: Session, user_id: int, org_id: int, pack: Pack | None, after_id: int, memory: MemoryModel | None
) -> tuple[int, list[ReviewCard]]:
    """Fold the learner's answers with ids above ``after_id`` into their cards, in id order;
    returns how many answers and the cards they changed."""
    new = logged_answers(session, Response.user_id == user_id, Response.id > after_id, user_id=user_id)
    if not new:
        return 0, []
    # Cards are written: one writer per learner (two requests folding the same answers would
    # insert the same card twice); under the lock, fold what is still unfolded. A caller that
    # held the lock when it read ``after_id`` (the practice loop's next item) read it current.
    if not holds_learner_lock(session, user_id):
        lock_learner(session, user_id)
        done = (
            session.scalar(select(func.max(ReviewCard.last_response_id)).where(ReviewCard.user_id == user_id))
            or 0
        )
        if done > after_id:
            new = [answer for answer in new if answer.id > done]
            if not new:
                return 0, []
    touched = {answer.item_id for answer in new}
    replays = {
        row.item_id: _Replay.of(row)
        for row in session.execute(
            select(ReviewCard).where(ReviewCard.user_id == user_id, ReviewCard.item_id.in_(touched))
        ).scalars()
    }
    model, minutes = memory or memory_model(session, org_id), item_minutes(pack)
    for answer in new:
        replay = replays.get(answer.item_id)
        if replay is None:
            row = ReviewCard(user_id=user_id, item_id=answer.item_id, reps=0, lapses=0)
            replay = replays[answer.item_id] = _Replay.of(row)
            session.add(row)
        replay.review(model, answer, minutes.get(answer.item_id, 1.0))
    changed = [replay.store() for replay in replays.values()]
    session.flush()
    return len(new), changed


def sync_cards(
    session: Session, user_id: int, org_id: int, pack: Pack | None, memory: MemoryModel | None = None
) -> int:
    """Fold the learner's answers that are not in their cards yet into them; returns how many.

    Answers are folded in id order, so the newest folded id is the watermark.
    """
    done = (
        session.scalar(select(func.max(ReviewCard.last_response_id)).where(ReviewCard.user_id == user_id))
        or 0
    )
    return _fold_new(session, user_id, org_id, pack, done, memory)[0]


def fold_answer(
    session: Session, user_id: int, org_id: int, pack: Pack | None, answer: LoggedAnswer, minutes: float
) -> None:
    """Fold an answer just logged (and flushed) in this transaction, under the learner's lock,
    into its card, so that the next item's read of the cards finds them current and folds
    nothing. One statement reads the card, the cards' watermark and the learner's answer
    before this one: when that answer is folded already, this one is reviewed alone (with the
    library's same step as a replay: ``_Replay.review``); otherwise the answers since the
    watermark are folded in id order (:func:`_fold_new`), this one with them. ``minutes``: the
    item's expected minutes (``item_minutes``). A fresh answer has no instructor's decision."""
    assert holds_learner_lock(session, user_id), "cards are written under the learner's lock"
    done = (
        select(func.max(ReviewCard.last_response_id)).where(ReviewCard.user_id == user_id).scalar_subquery()
    )
    before = (
        select(func.max(Response.id))
        .where(Response.user_id == user_id, Response.id < answer.id)
        .scalar_subquery()
    )
    one = select(literal_column("1").label("one")).subquery()
    found = session.execute(
        select(done, before, ReviewCard)
        .select_from(one)
        .outerjoin(ReviewCard, and_(ReviewCard.user_id == user_id, ReviewCard.item_id == answer.item_id))
    ).one()
    watermark, previous, row = found[0] or 0, found[1] or 0, found[2]
    if previous > watermark or watermark >= answer.id:
        _fold_new(session, user_id, org_id, pack, watermark, None)
        return
    if row is None:
        row = ReviewCard(user_id=user_id, item_id=answer.item_id, reps=0, lapses=0)
        session.add(row)
    replay = _Replay.of(row)
    replay.review(memory_model(session, org_id), answer, minutes)
    replay.store()


class CardMemory(NamedTuple):
    """What a card says about recall: its stability, difficulty and last review."""

    item_id: str
    stability: float | None
    difficulty: float | None
    last_review: datetime | None


def current_cards(
    session: Session,
    user_id: int,
    org_id: int,
    pack: Pack | None,
    memory: MemoryModel,
    newest_answer_id: int | None = None,
) -> list[CardMemory]:
    """The learner's reviewed cards with every logged answer folded in: :func:`sync_cards` in
    one read of the cards, whose newest folded answer is the watermark, and one of the answers
    after it, skipped when the caller has read the learner's newest answer id
    (``newest_answer_id``, 0 for none) and it is not past the watermark."""
    session.flush()  # plain rows from the connection below: the ORM's bookkeeping per row was a
    # third of this read, and nothing here needs ORM objects
    rows = (
        session.connection()
        .execute(
            select(
                ReviewCard.item_id,
                ReviewCard.stability,
                ReviewCard.difficulty,
                ReviewCard.last_review,
                ReviewCard.reps,
                ReviewCard.last_response_id,
            ).where(ReviewCard.user_id == user_id)
        )
        .all()
    )
    done = max((row[5] or 0 for row in rows), default=0)
    cards = {row[0]: CardMemory(row[0], row[1], row[2], row[3]) for row in rows if row[4]}
    if newest_answer_id is None or newest_answer_id > done:
        for card in _fold_new(session, user_id, org_id, pack, done, memory)[1]:
            cards[card.item_id] = CardMemory(card.item_id, card.stability, card.difficulty, card.last_review)
    return list(cards.values())


def _stored_pack(session: Session) -> Pack | None:
    row = (
        session.execute(
            select(ContentPack).where(ContentPack.is_active.is_(True)).order_by(ContentPack.id.desc())
        )
        .scalars()
        .first()
    )
    return Pack.model_validate(row.document) if row else None


def rebuild_cards(session: Session, user_id: int | None = None) -> int:
    """Drop the review cards (one learner's, or everyone's) and replay their answers from the
    log with the instructors' decisions applied; returns answers replayed."""
    dropped, users = delete(ReviewCard), select(User.id, User.org_id)
    logged: list[ColumnElement[bool]] = []
    if user_id is not None:
        dropped, users = dropped.where(ReviewCard.user_id == user_id), users.where(User.id == user_id)
        logged.append(Response.user_id == user_id)
    session.execute(dropped)
    session.flush()
    minutes = item_minutes(_stored_pack(session))
    org_of: dict[int, int] = {uid: org_id for uid, org_id in session.execute(users)}
    models: dict[int, MemoryModel] = {}
    replays: dict[tuple[int, str], _Replay] = {}
    answers = logged_answers(session, *logged, user_id=user_id)
    for answer in answers:
        org_id = org_of.get(answer.user_id, 0)
        if org_id not in models:
            models[org_id] = memory_model(session, org_id)
        key = (answer.user_id, answer.item_id)
        replay = replays.get(key)
        if replay is None:
            row = ReviewCard(user_id=answer.user_id, item_id=answer.item_id, reps=0, lapses=0)
            replay = replays[key] = _Replay.of(row)
        replay.review(models[org_id], answer, minutes.get(answer.item_id, 1.0))
    session.add_all([replay.store() for replay in replays.values()])
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
    cards: Iterable[CardMemory], active: ActivePack, memory: MemoryModel, now: datetime
) -> dict[str, float]:
    """Per practised skill, the retrievability of its best-remembered item: any item of a skill
    refreshes the skill, so the skill fades only when all of them do.

    FSRS retrievability falls with elapsed days over stability whatever the weights, so only
    the card with the smallest ratio per skill is handed to the library.
    """
    # SQLite hands back naive UTC datetimes: subtract them from a naive now, not one by one.
    now_naive = now.astimezone(UTC).replace(tzinfo=None)
    best: dict[str, tuple[float, float, float | None, datetime]] = {}
    for item_id, stability, difficulty, last_review in cards:
        item = active.items.get(item_id)
        if item is None or not stability or last_review is None:
            continue
        days = ((now_naive if last_review.tzinfo is None else now) - last_review).days
        ratio = max(0, days) / stability
        for skill in item.skills:
            held = best.get(skill)
            if held is None or ratio < held[0]:
                best[skill] = (ratio, stability, difficulty, last_review)
    return {
        skill: memory.retrievability(
            Card(
                card_id=0,
                state=State.Review,
                stability=stability,
                difficulty=difficulty,
                due=now,
                last_review=as_utc(last_review),
            ),
            now,
        )
        for skill, (_ratio, stability, difficulty, last_review) in best.items()
    }
