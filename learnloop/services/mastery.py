"""Derived mastery: updated after every answer, and rebuilt from the response log on demand.

Both paths call :func:`apply_answer`, so a rebuild replays exactly what the live loop did.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from learnloop.science.kt import BKTParams, bkt_predict, bkt_update
from learnloop.services.review_cards import rebuild_cards
from learnloop.store.grades import instructor_decisions
from learnloop.store.models import Mastery, MasteryHistory, ModelParams, Response


@dataclass(frozen=True)
class MasteryModel:
    """Per-skill BKT parameters (fitted by ``learnloop fit kt``, else defaults)."""

    default: BKTParams
    per_skill: dict[str, BKTParams]

    def params(self, skill_id: str) -> BKTParams:
        return self.per_skill.get(skill_id, self.default)

    def prior(self, skill_id: str) -> float:
        return self.params(skill_id).p_init

    def predict(self, skill_id: str, p_known: float) -> float:
        return bkt_predict(p_known, self.params(skill_id))


def load_model(session: Session) -> MasteryModel:
    row = session.execute(
        select(ModelParams).where(ModelParams.kind == "bkt").order_by(ModelParams.id.desc())
    ).scalars().first()
    if row is None:
        return MasteryModel(default=BKTParams(), per_skill={})
    params = row.params
    return MasteryModel(
        default=BKTParams.from_dict(params.get("default", {})),
        per_skill={k: BKTParams.from_dict(v) for k, v in params.get("skills", {}).items()},
    )


def mastery_of(session: Session, user_id: int) -> dict[str, Mastery]:
    rows = session.execute(select(Mastery).where(Mastery.user_id == user_id)).scalars()
    return {m.skill_id: m for m in rows}


def apply_answer(session: Session, model: MasteryModel, rows: dict[str, Mastery], *, user_id: int,
                 skills: list[str], correct: bool, response_id: int, at: datetime) -> dict[str, tuple[float, float]]:
    """Update mastery rows (in ``rows`` and the session) for one answer.

    Returns skill -> (before, after).
    """
    changes: dict[str, tuple[float, float]] = {}
    for skill_id in skills:
        row = rows.get(skill_id)
        if row is None:
            row = Mastery(user_id=user_id, skill_id=skill_id, p_known=model.prior(skill_id), attempts=0,
                          correct=0, last_response_id=0)
            session.add(row)
            rows[skill_id] = row
        before = row.p_known
        row.p_known = bkt_update(before, correct, model.params(skill_id))
        row.attempts += 1
        row.correct += int(correct)
        row.last_response_id = response_id
        row.updated_at = at
        session.add(MasteryHistory(user_id=user_id, skill_id=skill_id, response_id=response_id,
                                   p_known=row.p_known, created_at=at))
        changes[skill_id] = (before, row.p_known)
    return changes


def rebuild_all(session: Session, user_id: int | None = None) -> int:
    """Drop derived mastery and replay the response log (one learner's, or everyone's) with the
    instructors' decisions applied; returns answers replayed."""
    model = load_model(session)
    decisions = instructor_decisions(session, user_id)
    if user_id is None:
        session.execute(delete(MasteryHistory))
        session.execute(delete(Mastery))
    else:
        session.execute(delete(MasteryHistory).where(MasteryHistory.user_id == user_id))
        session.execute(delete(Mastery).where(Mastery.user_id == user_id))
    session.flush()
    per_user: dict[int, dict[str, Mastery]] = {}
    count = 0
    query = select(Response.id, Response.user_id, Response.skills, Response.correct, Response.created_at)
    if user_id is not None:
        query = query.where(Response.user_id == user_id)
    for rid, uid, skills, correct, created_at in session.execute(query.order_by(Response.id)).yield_per(5000):
        rows = per_user.setdefault(uid, {})
        apply_answer(session, model, rows, user_id=uid, skills=list(skills),
                     correct=decisions.get(rid, bool(correct)), response_id=rid, at=created_at)
        count += 1
        if count % 5000 == 0:
            session.flush()
    session.flush()
    if user_id is None:
        rebuild_cards(session)  # review cards are derived from the same log
    return count


def snapshot(session: Session) -> dict[tuple[int, str], tuple[float, int, int, int]]:
    """Mastery state as comparable tuples, for checking a rebuild equals the live state."""
    rows = session.execute(select(Mastery)).scalars()
    return {(m.user_id, m.skill_id): (round(m.p_known, 12), m.attempts, m.correct, m.last_response_id)
            for m in rows}
