"""What every report shares: the people a report measures, who may see whom, and mastery arrays.

Privacy rules, applied by every report:

- every query is scoped to the viewer's organisation; deleted members are left out;
- aggregate figures over a group of people are shown only when the group has at least
  ``settings.report_min_group`` people;
- a person's own figures are shown to themselves, to their manager (``manager_id``) and to
  admins, and to the latter two only when the person consented (``consent_share``).

Reports by concept: ``reports_team`` (heatmap, gaps, readiness, trend), ``reports_snapshots``
(weekly trend snapshots), ``reports_learner`` (a learner's progress) and ``reports_items``
(item analysis and content coverage).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Select, case, select
from sqlalchemy.orm import Session

from learnloop.services.auth import CurrentUser
from learnloop.services.context import ActivePack
from learnloop.services.mastery import MasteryModel
from learnloop.store.models import Enrolment, Mastery, Team, User

Array = NDArray[np.float64]
#: Expected practice opportunities are capped here: beyond it a target counts as out of reach.
MAX_OPPORTUNITIES = 200.0


@dataclass(frozen=True)
class Person:
    """A member a report measures: not deleted, with the target role they practise toward."""

    id: int
    name: str
    team_id: int | None
    manager_id: int | None
    consent_share: bool
    role_id: str | None


def people_of_org(
    session: Session, active: ActivePack, org_id: int, team_id: int | None = None
) -> list[Person]:
    """The organisation's members (of one team when given), in id order, with their target role."""
    query = (
        select(User.id, User.name, User.team_id, User.manager_id, User.consent_share, Enrolment.role_id)
        .outerjoin(Enrolment, (Enrolment.user_id == User.id) & Enrolment.is_active.is_(True))
        .where(User.org_id == org_id, User.deleted_at.is_(None))
        .order_by(User.id, Enrolment.id)
    )
    if team_id is not None:
        query = query.where(User.team_id == team_id)
    latest: dict[int, Person] = {}
    # Core rows (session.connection()) rather than the ORM's: these selects return many rows.
    for uid, name, team, manager, consent, role_id in session.connection().execute(query):
        # With several active enrolments the newest (last in id order) wins.
        role = role_id if role_id in active.roles else None
        if uid not in latest or role is not None:
            latest[uid] = Person(uid, name, team, manager, bool(consent), role)
    return list(latest.values())


def teams_of_org(session: Session, org_id: int) -> dict[int, str]:
    rows = session.execute(select(Team.id, Team.name).where(Team.org_id == org_id).order_by(Team.name))
    return {tid: name for tid, name in rows}


def may_see_person(viewer: CurrentUser, person: Person) -> bool:
    """Whether the viewer may see this person's individual figures."""
    if person.id == viewer.id:
        return True
    if not person.consent_share:
        return False
    if viewer.role == "admin":
        return True
    return viewer.role == "manager" and person.manager_id == viewer.id


def skill_priors(active: ActivePack, model: MasteryModel) -> tuple[list[str], Array]:
    """Every skill of the pack in pack order, with its prior mastery."""
    skill_ids = [s.id for s in active.pack.skills]
    return skill_ids, np.array([model.prior(s) for s in skill_ids], dtype=float)


#: the stored evidence summary of a team, people x skills (items, open kind right, CUSUM, newest
#: right), with the skills of rows stored before migration 0034 by learner (``mastery.evidence_matrix``)
StoredEvidence = tuple[Array, NDArray[np.bool_], Array, Array, dict[int, set[str]]]


def team_mastery(
    session: Session,
    org_id: int,
    people: list[Person],
    skill_ids: list[str],
    priors: Array,
    team_id: int | None = None,
) -> tuple[Array, StoredEvidence]:
    """Current P(known), people x skills (the prior where a person has not practised a skill),
    and the evidence summary stored beside it, in one read of the organisation's mastery rows (from their covering index, not the rows with the evidence
    JSON); rows stored before 0034 (no evidence, answered) are listed for folding from the log."""
    shape = (len(people), len(skill_ids))
    matrix = np.tile(priors, (len(people), 1))
    items, right, cusum = np.zeros(shape), np.zeros(shape, dtype=bool), np.zeros(shape)
    last = np.full(shape, np.nan)
    legacy: dict[int, set[str]] = {}
    if not people or not skill_ids:
        return matrix, (items, right, cusum, last, legacy)
    query = (
        select(
            Mastery.user_id,
            skill_column(Mastery.skill_id, skill_ids),
            Mastery.p_known,
            Mastery.attempts,
            Mastery.ev_items,
            Mastery.ev_open,
            Mastery.ev_cusum,
            Mastery.ev_last_right,
        )
        .join(User, User.id == Mastery.user_id)
        .where(User.org_id == org_id, User.deleted_at.is_(None))
    )
    if team_id is not None:
        query = query.where(User.team_id == team_id)
    rows = numeric_rows(session, query)
    ids = np.fromiter((p.id for p in people), dtype=np.int64, count=len(people))
    users, cols = rows[:, 0].astype(np.int64), rows[:, 1].astype(np.int64)
    pos = np.minimum(np.searchsorted(ids, users), ids.size - 1)
    ok = (ids[pos] == users) & (cols >= 0)
    i, j, kept = pos[ok], cols[ok], rows[ok]
    matrix[i, j] = kept[:, 2]
    items[i, j], right[i, j], cusum[i, j], last[i, j] = kept[:, 4], kept[:, 5] > 0, kept[:, 6], kept[:, 7]
    # A row without stored evidence reads as nothing right yet; only such rows can be from
    # before 0034, so only they are looked up (a few: answered, never right)
    blank = (
        (kept[:, 3] > 0) & (kept[:, 4] == 0) & (kept[:, 5] == 0) & (kept[:, 6] == 0) & np.isnan(kept[:, 7])
    )
    candidates = sorted({int(u) for u in users[ok][blank]})
    wanted = set(skill_ids)
    for start in range(0, len(candidates), 5000):
        for uid, skill_id in session.execute(
            select(Mastery.user_id, Mastery.skill_id).where(
                Mastery.user_id.in_(candidates[start : start + 5000]),
                Mastery.evidence.is_(None),
                Mastery.attempts > 0,
            )
        ):
            if skill_id in wanted:
                legacy.setdefault(uid, set()).add(skill_id)
    return matrix, (items, right, cusum, last, legacy)


def skill_column(column: Any, skill_ids: list[str]) -> Any:
    """SQL for a skill's position in ``skill_ids`` (-1 for others), so rows come back numeric."""
    return case({s: j for j, s in enumerate(skill_ids)}, value=column, else_=-1)


def numeric_rows(session: Session, query: Select[Any]) -> Array:
    """A select of numbers as a float array (NULL as NaN), through the driver's own cursor.

    Dashboards read a row per (person, skill) of an organisation: hundreds of thousands of
    rows, where SQLAlchemy's per-row result objects would cost more than the query. The bound
    values are integers, moments and skill ids, so the statement is compiled with literals.
    """
    connection = session.connection()
    sql = str(query.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
        rows = cursor.fetchall()
    finally:
        cursor.close()
    width = len(query.selected_columns)
    return np.array(rows, dtype=float).reshape(len(rows), width)


def fill_matrix(matrix: Array, people: list[Person], rows: Array, missing: Array | None = None) -> None:
    """Write rows of (user id, skill position, p_known) into the matrix, people in id order.

    A NaN p_known takes the skill's value in ``missing`` (it is skipped without it); rows of
    people not in the list or skills not in the matrix are skipped.
    """
    if rows.size == 0 or not people:
        return
    ids = np.fromiter((p.id for p in people), dtype=np.int64, count=len(people))
    users, cols, values = rows[:, 0].astype(np.int64), rows[:, 1].astype(np.int64), rows[:, 2]
    pos = np.minimum(np.searchsorted(ids, users), ids.size - 1)
    ok = (ids[pos] == users) & (cols >= 0)
    if missing is not None:
        values = np.where(np.isnan(values) & ok, missing[np.maximum(cols, 0)], values)
    ok &= ~np.isnan(values)
    matrix[pos[ok], cols[ok]] = values[ok]


def practice_to_target(mastery: Array, target: Array, p_learn: Array, p_forget: Array) -> Array:
    """Expected practice opportunities for P(known) to reach the target under BKT.

    Averaged over the observation, the BKT posterior equals the prior, so in expectation
    only the learning step moves mastery: m' = m (1 - F) + (1 - m) T, a linear recurrence
    with fixed point m* = T / (T + F) and m_n = m* + (m - m*) (1 - T - F)^n (Corbett &
    Anderson 1995, the P(L_n) recursion). Solving for n gives the count; 0 where the target
    is met, ``MAX_OPPORTUNITIES`` where it is out of reach.
    """
    learn = np.clip(p_learn, 1e-6, 1.0)
    forget = np.clip(p_forget, 0.0, 1.0)
    fixed = learn / (learn + forget)
    rate = np.clip(1.0 - learn - forget, 1e-9, 1.0 - 1e-9)
    with np.errstate(invalid="ignore", divide="ignore"):
        n = np.log((target - fixed) / (mastery - fixed)) / np.log(rate)
    n = np.where(np.isnan(n) | (target >= fixed), MAX_OPPORTUNITIES, np.clip(n, 0.0, MAX_OPPORTUNITIES))
    return np.where(mastery >= target, 0.0, n)


def week_start(moment: datetime) -> datetime:
    """Monday 00:00 UTC of the moment's week."""
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    day = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def backing(
    session: Session, org_id: int, team_id: int | None = None
) -> dict[int, tuple[int, int, datetime | None, float | None]]:
    """What backs each member's standing: (answers in practice, distinct items answered right,
    when their newest finished skill check ended, its score) per member of the organisation
    (of one team when given) with any of them. The counts are the stored tallies
    (``services.learner_tally``: kept with each answer, rebuilt with mastery), not the log."""
    from learnloop.store.models import Assessment, LearnerTally

    members = [User.org_id == org_id, User.deleted_at.is_(None)]
    if team_id is not None:
        members.append(User.team_id == team_id)
    out: dict[int, tuple[int, int, datetime | None, float | None]] = {}
    tallies = (
        select(LearnerTally.user_id, LearnerTally.practice_answers, LearnerTally.right_items)
        .join(User, User.id == LearnerTally.user_id)
        .where(*members)
    )
    for uid, answers, distinct in session.connection().execute(tallies):
        out[uid] = (int(answers), int(distinct), None, None)
    checks = (
        select(Assessment.user_id, Assessment.finished_at, Assessment.score)
        .join(User, User.id == Assessment.user_id)
        .where(*members, Assessment.status == "done")
        .order_by(Assessment.finished_at)
    )
    for uid, finished, score in session.execute(checks):  # the newest, last, wins
        out[uid] = (*out.get(uid, (0, 0))[:2], finished, None if score is None else float(score))
    return out
