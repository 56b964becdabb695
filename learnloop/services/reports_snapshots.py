"""Weekly snapshots of the team gap figures, for the trend over weeks.

A completed week is computed once, from the mastery each member had at the week's end (the
last ``mastery_history`` value before it, else the prior), grouped by the team and target
role each member has when the snapshot is taken. The figures go to ``skill_gap_weekly`` and
``role_readiness_weekly`` and do not change afterwards; the current week is computed live by
the dashboard. The first dashboard view of an organisation with a long history fills the
missing weeks (at most ``report_trend_weeks``); later views find them stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from learnloop.services.context import AppContext
from learnloop.services.mastery import evidence_matrices, evidence_rule, load_model
from learnloop.services.reports import (
    Array,
    Person,
    fill_matrix,
    numeric_rows,
    people_of_org,
    skill_column,
    team_mastery,
    week_start,
)
from learnloop.services.reports_gaps import Cells, group_cells, standing, target_grid
from learnloop.store.models import (
    Mastery,
    MasteryHistory,
    ReportWeek,
    Response,
    RoleReadinessWeekly,
    SkillGapWeekly,
    Team,
    User,
    as_utc,
    utcnow,
)

WEEK = timedelta(days=7)


@dataclass(frozen=True)
class WeekFigures:
    """One stored week, summed over the teams and roles of a selection."""

    week_start: datetime
    people: int
    blocked: int
    hours: float
    ready: int


def weeks_to_snapshot(session: Session, org_id: int, weeks: int, now: datetime) -> list[datetime]:
    """Completed weeks of the trend window not yet stored (none before the first answer)."""
    if session.execute(select(Response.id).where(Response.org_id == org_id).limit(1)).first() is None:
        return []
    current = week_start(now)
    wanted = [current - WEEK * k for k in range(weeks, 0, -1)]
    done = {
        as_utc(w)
        for w in session.execute(select(ReportWeek.week_start).where(ReportWeek.org_id == org_id)).scalars()
    }
    return [w for w in wanted if w not in done]


def ensure_weekly_snapshots(ctx: AppContext, org_id: int, now: datetime | None = None) -> int:
    """Store the missing completed weeks of the trend window; returns how many were added."""
    now = now or utcnow()
    with ctx.session() as session:
        missing = weeks_to_snapshot(session, org_id, ctx.settings.report_trend_weeks, now)
    if not missing:
        return 0
    try:
        with ctx.session() as session:
            active = ctx.active_pack(session)
            grid = target_grid(active, load_model(session, org_id))
            people = people_of_org(session, active, org_id)
            current, _ = team_mastery(session, org_id, people, grid.skill_ids, grid.priors)
            team_ids: list[int | None] = [
                *session.execute(select(Team.id).where(Team.org_id == org_id).order_by(Team.id)).scalars(),
                None,
            ]
            pairs = (
                session.scalar(
                    select(func.count())
                    .select_from(Mastery)
                    .join(User, User.id == Mastery.user_id)
                    .where(User.org_id == org_id, User.deleted_at.is_(None))
                )
                or 0
            )
            weeks = []
            for week in missing:
                matrix, unanswered = mastery_as_of(
                    session, org_id, people, grid.skill_ids, grid.priors, current, week + WEEK
                )
                weeks.append((week, matrix, unanswered))
            # "ready" as the live dashboard counts it: mastery at the target *and* the evidence
            # the learner had by the week's end
            role_index = grid.role_index(people)
            evidenced = evidence_matrices(
                session,
                [p.id for p in people],
                grid.skill_ids,
                active.items_by_skill,
                evidence_rule(ctx.settings),
                [((week + WEEK).timestamp(), matrix) for week, matrix, _ in weeks],
                grid.targets[role_index],
            )
            for (week, matrix, unanswered), backed in zip(weeks, evidenced, strict=True):
                session.add(ReportWeek(org_id=org_id, week_start=week, computed_at=utcnow()))
                if unanswered == pairs:
                    continue  # no one had answered yet: the week is stored empty, the trend skips it
                st = standing(grid, role_index, matrix, ctx.settings.report_close_share, backed)
                _store(
                    session,
                    org_id,
                    week,
                    grid.role_ids,
                    grid.skill_ids,
                    group_cells(grid, people, team_ids, matrix, st),
                )
    except IntegrityError:
        return 0  # another request stored these weeks first
    return len(missing)


def mastery_as_of(
    session: Session,
    org_id: int,
    people: list[Person],
    skill_ids: list[str],
    priors: Array,
    current: Array,
    at: datetime,
) -> tuple[Array, int]:
    """Mastery at a past moment: the current matrix, rolled back where it changed since then.

    Also returns how many (member, skill) pairs had no answer yet at that moment.
    """
    history = aliased(MasteryHistory)
    last_before = (
        select(history.p_known)
        .where(
            history.user_id == Mastery.user_id, history.skill_id == Mastery.skill_id, history.created_at < at
        )
        .order_by(history.created_at.desc(), history.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    rows = numeric_rows(
        session,
        (
            select(Mastery.user_id, skill_column(Mastery.skill_id, skill_ids), last_before)
            .join(User, User.id == Mastery.user_id)
            .where(User.org_id == org_id, User.deleted_at.is_(None), Mastery.updated_at >= at)
        ),
    )
    matrix = current.copy()
    fill_matrix(matrix, people, rows, missing=priors)
    return matrix, int(np.isnan(rows[:, 2]).sum()) if rows.size else 0


def _store(
    session: Session, org_id: int, week: datetime, role_ids: list[str], skill_ids: list[str], cells: Cells
) -> None:
    gaps, readiness = [], []
    for k, r, j in zip(*np.nonzero(cells.people), strict=True):
        gaps.append(
            {
                "org_id": org_id,
                "week_start": week,
                "team_id": cells.team_ids[k],
                "role_id": role_ids[r],
                "skill_id": skill_ids[j],
                "people": int(cells.people[k, r, j]),
                "blocked": int(cells.blocked[k, r, j]),
                "gap_sum": float(cells.gap_sum[k, r, j]),
                "hours": float(cells.hours[k, r, j]),
            }
        )
    for k, r in zip(*np.nonzero(cells.holders), strict=True):
        readiness.append(
            {
                "org_id": org_id,
                "week_start": week,
                "team_id": cells.team_ids[k],
                "role_id": role_ids[r],
                "people": int(cells.holders[k, r]),
                "ready": int(cells.ready[k, r]),
                "close": int(cells.close[k, r]),
                "hours": float(cells.hours_to_ready[k, r]),
            }
        )
    if gaps:
        session.execute(insert(SkillGapWeekly), gaps)
    if readiness:
        session.execute(insert(RoleReadinessWeekly), readiness)
    session.flush()


def trend(
    session: Session, org_id: int, team_id: int | None, role_id: str | None, weeks: int
) -> list[WeekFigures]:
    """Stored weeks of the selection, oldest first (at most ``weeks``)."""
    gap = (
        select(SkillGapWeekly.week_start, func.sum(SkillGapWeekly.blocked), func.sum(SkillGapWeekly.hours))
        .where(SkillGapWeekly.org_id == org_id)
        .group_by(SkillGapWeekly.week_start)
    )
    ready = (
        select(
            RoleReadinessWeekly.week_start,
            func.sum(RoleReadinessWeekly.people),
            func.sum(RoleReadinessWeekly.ready),
        )
        .where(RoleReadinessWeekly.org_id == org_id)
        .group_by(RoleReadinessWeekly.week_start)
    )
    if team_id is not None:
        gap = gap.where(SkillGapWeekly.team_id == team_id)
        ready = ready.where(RoleReadinessWeekly.team_id == team_id)
    if role_id is not None:
        gap = gap.where(SkillGapWeekly.role_id == role_id)
        ready = ready.where(RoleReadinessWeekly.role_id == role_id)
    gaps = {as_utc(w): (int(b or 0), float(h or 0.0)) for w, b, h in session.execute(gap)}
    marks = [
        as_utc(w)
        for w in session.execute(
            select(ReportWeek.week_start)
            .where(ReportWeek.org_id == org_id)
            .order_by(ReportWeek.week_start.desc())
            .limit(weeks)
        ).scalars()
    ]
    people = {as_utc(w): (int(p or 0), int(r or 0)) for w, p, r in session.execute(ready)}
    out = []
    for week in sorted(w for w in marks if w in people):
        blocked, hours = gaps.get(week, (0, 0.0))
        holders, ready_count = people[week]
        out.append(WeekFigures(week, holders, blocked, hours, ready_count))
    return out


def blocked_at(
    session: Session, org_id: int, team_id: int | None, week: datetime, min_group: int
) -> dict[tuple[str, str], int]:
    """Blocked holders per (role, skill) in a stored week, for groups of at least ``min_group``."""
    query = (
        select(
            SkillGapWeekly.role_id,
            SkillGapWeekly.skill_id,
            func.sum(SkillGapWeekly.blocked),
            func.sum(SkillGapWeekly.people),
        )
        .where(SkillGapWeekly.org_id == org_id, SkillGapWeekly.week_start == week)
        .group_by(SkillGapWeekly.role_id, SkillGapWeekly.skill_id)
    )
    if team_id is not None:
        query = query.where(SkillGapWeekly.team_id == team_id)
    return {(r, s): int(b or 0) for r, s, b, n in session.execute(query) if (n or 0) >= min_group}
