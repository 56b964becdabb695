"""Talent analytics for managers: team x skill heatmap, skill gaps, readiness per role, trend.

People are measured against the explicit targets of the role they practise toward (their
active enrolment), the same targets the learner's skill map counts. Estimated hours to close
a gap are the expected BKT practice opportunities (``reports.practice_to_target``) times the
mean minutes of the skill's items. Aggregates over fewer than ``report_min_group`` people are
suppressed; names appear only for people the viewer may see (``reports.may_see_person``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel
from sqlalchemy.orm import Session

from learnloop.errors import NotFound
from learnloop.services import reports_snapshots
from learnloop.services.auth import CurrentUser
from learnloop.services.context import ActivePack, AppContext
from learnloop.services.mastery import evidence_matrix, evidence_rule, load_model
from learnloop.services.reports import (
    Person,
    backing,
    may_see_person,
    people_of_org,
    team_mastery,
    teams_of_org,
    week_start,
)
from learnloop.services.reports_gaps import Cells, Standing, TargetGrid, group_cells, standing, target_grid
from learnloop.store.models import Organisation, UtcDateTime, utcnow

#: Weeks back the gap report compares each blocked count with.
TREND_COMPARE_WEEKS = 4


# --------------------------------------------------------------------------- report models


class TeamRef(BaseModel):
    id: int
    name: str
    people: int


class RoleRef(BaseModel):
    id: str
    name: str
    holders: int


class SkillRef(BaseModel):
    id: str
    name: str
    domain: str


class HeatCell(BaseModel):
    skill_id: str
    measured: int
    share_met: float | None
    mean_mastery: float | None
    mean_target: float | None
    suppressed: bool


class HeatmapRow(BaseModel):
    team_id: int | None
    team_name: str | None
    people: int
    suppressed: bool
    cells: list[HeatCell]


class GapRow(BaseModel):
    role_id: str
    role_name: str
    skill_id: str
    skill_name: str
    target: float
    holders: int
    blocked: int
    share_blocked: float
    mean_gap: float
    hours: float | None
    hours_per_person: float | None
    blocked_weeks_ago: int | None


class PersonReadiness(BaseModel):
    id: int
    name: str
    team_name: str | None
    met: int
    total: int
    hours_to_ready: float
    status: str  # ready | close | far
    #: what backs it: answers in practice, distinct items answered right, and the newest
    #: finished skill check (its date, ISO, and score) if there is one
    practice_answers: int = 0
    distinct_items: int = 0
    last_check_on: str | None = None
    last_check_score: float | None = None


class ReadinessRow(BaseModel):
    role_id: str
    role_name: str
    holders: int
    suppressed: bool
    ready: int | None
    close: int | None
    far: int | None
    mean_hours_to_ready: float | None
    people: list[PersonReadiness]


class TrendPoint(BaseModel):
    week_start: UtcDateTime
    people: int
    suppressed: bool
    blocked: int | None
    hours: float | None
    ready: int | None
    current: bool


class TeamReport(BaseModel):
    org_name: str
    generated_at: UtcDateTime
    min_group: int
    close_share: float
    team: TeamRef | None
    role: RoleRef | None
    teams: list[TeamRef]
    roles: list[RoleRef]
    people: int
    without_role: int
    suppressed: bool
    answers_seen: bool
    skills: list[SkillRef]
    heatmap: list[HeatmapRow]
    gaps: list[GapRow]
    readiness: list[ReadinessRow]
    trend: list[TrendPoint]
    #: codes of plain statements for the page: empty_team, nobody, no_roles, small_group, no_answers
    notes: list[str]


# --------------------------------------------------------------------------- assembly


def _share(num: float, den: float) -> float | None:
    return round(num / den, 4) if den else None


def team_report(
    ctx: AppContext, viewer: CurrentUser, team_id: int | None = None, role_id: str | None = None
) -> TeamReport:
    """The manager dashboard for the viewer's organisation, optionally one team and/or one role."""
    viewer.require("manager")
    min_group = ctx.settings.report_min_group
    reports_snapshots.ensure_weekly_snapshots(ctx, viewer.org_id)
    with ctx.session() as session:
        active = ctx.active_pack(session, viewer.org_id)
        if role_id is not None:
            active.role(role_id)
        org = session.get(Organisation, viewer.org_id)
        assert org is not None
        team_names = teams_of_org(session, viewer.org_id)
        if team_id is not None and team_id not in team_names:
            raise NotFound(f"no team with id {team_id} in your organisation")
        model = load_model(session, viewer.org_id)
        grid = target_grid(active, model)
        everyone = people_of_org(session, active, viewer.org_id)
        people = [p for p in everyone if team_id is None or p.team_id == team_id]
        matrix, stored = team_mastery(session, viewer.org_id, people, grid.skill_ids, grid.priors, team_id)
        # a target counts as met only with the evidence the learner's own map asks for
        evidenced = evidence_matrix(
            session,
            [p.id for p in people],
            grid.skill_ids,
            active.items_by_skill,
            evidence_rule(ctx.settings),
            matrix,
            grid.targets[grid.role_index(people)],
            utcnow().timestamp(),
            stored=stored,
        )
        backed = backing(session, viewer.org_id, team_id)
        trend = _trend(session, viewer.org_id, team_id, role_id, ctx.settings.report_trend_weeks, min_group)
        previous = reports_snapshots.blocked_at(
            session,
            viewer.org_id,
            team_id,
            week_start(utcnow()) - reports_snapshots.WEEK * TREND_COMPARE_WEEKS,
            min_group,
        )

    if role_id is not None:
        people_kept = [i for i, p in enumerate(people) if p.role_id == role_id]
        people = [people[i] for i in people_kept]
        matrix = matrix[people_kept] if people_kept else matrix[:0]
        evidenced = evidenced[people_kept] if people_kept else evidenced[:0]
    team_ids: list[int | None] = [team_id] if team_id is not None else [*team_names, None]
    role_index = grid.role_index(people)
    st = standing(grid, role_index, matrix, ctx.settings.report_close_share, evidenced)
    cells = group_cells(grid, people, team_ids, matrix, st)
    role_slots = [grid.role_ids.index(role_id)] if role_id is not None else list(range(len(grid.role_ids)))

    team_sizes = Counter(p.team_id for p in everyone)
    teams = [TeamRef(id=t, name=n, people=team_sizes[t]) for t, n in team_names.items()]
    holders = Counter(p.role_id for p in everyone if team_id is None or p.team_id == team_id)
    roles = [RoleRef(id=r.id, name=r.name, holders=holders[r.id]) for r in active.pack.roles]
    measured = [p for p in people if p.role_id is not None]
    skills_shown = _skills_shown(grid, role_slots)
    skills = [
        SkillRef(
            id=grid.skill_ids[j],
            name=active.pack.skill(grid.skill_ids[j]).name,
            domain=active.pack.skill(grid.skill_ids[j]).domain,
        )
        for j in skills_shown
    ]

    now_point = _current_point(cells, role_slots, min_group)
    report = TeamReport(
        org_name=org.name,
        generated_at=utcnow(),
        min_group=min_group,
        close_share=ctx.settings.report_close_share,
        team=next((t for t in teams if t.id == team_id), None),
        role=next((r for r in roles if r.id == role_id), None),
        teams=teams,
        roles=roles,
        people=len(people),
        without_role=sum(1 for p in people if p.role_id is None),
        suppressed=len(measured) < min_group,
        answers_seen=bool(np.any(matrix != grid.priors)) if len(people) else False,
        skills=skills,
        heatmap=_heatmap(grid, cells, team_names, role_slots, skills_shown, people, min_group),
        gaps=_gaps(active, grid, cells, role_slots, min_group, previous),
        readiness=_readiness(
            viewer, active, people, role_index, st, cells, role_slots, team_names, min_group, backed
        ),
        trend=[*trend, now_point],
        notes=[],
    )
    report.notes = _notes(report, team_id)
    return report


def _skills_shown(grid: TargetGrid, role_slots: list[int]) -> list[int]:
    """Skills that are a target of a role in the selection, in pack order."""
    targeted = np.any(~np.isnan(grid.targets[role_slots]), axis=0)
    return [int(j) for j in np.flatnonzero(targeted)]


def _heatmap(
    grid: TargetGrid,
    cells: Cells,
    team_names: dict[int, str],
    role_slots: list[int],
    skills: list[int],
    people: list[Person],
    min_group: int,
) -> list[HeatmapRow]:
    rows = []
    target_sum = np.nansum(cells.people * grid.targets[:-1][None, :, :], axis=1)
    sizes = Counter(p.team_id for p in people)
    for k, team in enumerate(cells.team_ids):
        size = sizes[team]
        holders = int(cells.holders[k][role_slots].sum())
        if team is None and holders == 0:
            continue  # members without a team are a row only when some of them are measured
        measured = cells.people[k][role_slots].sum(axis=0)
        blocked = cells.blocked[k][role_slots].sum(axis=0)
        mastery = cells.mastery_sum[k][role_slots].sum(axis=0)
        out = []
        for j in skills:
            n = int(measured[j])
            hidden = 0 < n < min_group
            # model_construct: hundreds of cells built from numbers that are already checked
            out.append(
                HeatCell.model_construct(
                    skill_id=grid.skill_ids[j],
                    measured=n,
                    suppressed=hidden,
                    share_met=None if hidden else _share(n - int(blocked[j]), n),
                    mean_mastery=None if hidden else _share(float(mastery[j]), n),
                    mean_target=None if hidden else _share(float(target_sum[k, j]), n),
                )
            )
        rows.append(
            HeatmapRow(
                team_id=team,
                team_name=team_names.get(team) if team is not None else None,
                people=size,
                suppressed=holders < min_group,
                cells=out,
            )
        )
    return rows


def _gaps(
    active: ActivePack,
    grid: TargetGrid,
    cells: Cells,
    role_slots: list[int],
    min_group: int,
    previous: dict[tuple[str, str], int],
) -> list[GapRow]:
    rows = []
    for r in role_slots:
        role = active.pack.roles[r]
        holders = int(cells.holders[:, r].sum())
        if holders < min_group:
            continue
        for j in np.flatnonzero(~np.isnan(grid.targets[r])):
            blocked = int(cells.blocked[:, r, j].sum())
            if blocked == 0:
                continue
            skill_id = grid.skill_ids[j]
            has_items = not np.isnan(grid.minutes[j])
            hours = float(cells.hours[:, r, j].sum()) if has_items else None
            rows.append(
                GapRow(
                    role_id=role.id,
                    role_name=role.name,
                    skill_id=skill_id,
                    skill_name=active.pack.skill(skill_id).name,
                    target=float(grid.targets[r, j]),
                    holders=holders,
                    blocked=blocked,
                    share_blocked=round(blocked / holders, 4),
                    mean_gap=round(float(cells.gap_sum[:, r, j].sum()) / blocked, 4),
                    hours=round(hours, 2) if hours is not None else None,
                    hours_per_person=round(hours / blocked, 2) if hours is not None else None,
                    blocked_weeks_ago=previous.get((role.id, skill_id)),
                )
            )
    rows.sort(key=lambda g: (-g.blocked, -(g.hours or 0.0), g.role_id, g.skill_id))
    return rows


def _readiness(
    viewer: CurrentUser,
    active: ActivePack,
    people: list[Person],
    roles: NDArray[np.int64],
    st: Standing,
    cells: Cells,
    role_slots: list[int],
    team_names: dict[int, str],
    min_group: int,
    backed: Mapping[int, tuple[int, int, object, float | None]] | None = None,
) -> list[ReadinessRow]:
    rows = []
    for r in role_slots:
        role = active.pack.roles[r]
        holders = int(cells.holders[:, r].sum())
        hidden = holders < min_group
        ready = int(cells.ready[:, r].sum())
        close = int(cells.close[:, r].sum())
        visible = []
        for i in np.flatnonzero(roles == r):
            person = people[i]
            if person.id == viewer.id or not may_see_person(viewer, person):
                continue
            status = "ready" if st.ready[i] else "close" if st.close[i] else "far"
            answers, distinct, check_at, check_score = (backed or {}).get(person.id, (0, 0, None, None))
            visible.append(
                PersonReadiness(
                    id=person.id,
                    name=person.name,
                    team_name=team_names.get(person.team_id) if person.team_id is not None else None,
                    met=int(st.met[i]),
                    total=int(st.total[i]),
                    hours_to_ready=round(float(st.hours_to_ready[i]), 1),
                    status=status,
                    practice_answers=answers,
                    distinct_items=distinct,
                    last_check_on=check_at.date().isoformat() if hasattr(check_at, "date") else None,
                    last_check_score=None if check_score is None else round(check_score),
                )
            )
        visible.sort(key=lambda p: ({"ready": 0, "close": 1, "far": 2}[p.status], p.hours_to_ready, p.name))
        rows.append(
            ReadinessRow(
                role_id=role.id,
                role_name=role.name,
                holders=holders,
                suppressed=hidden,
                ready=None if hidden else ready,
                close=None if hidden else close,
                far=None if hidden else holders - ready - close,
                mean_hours_to_ready=None
                if hidden or not holders
                else round(float(cells.hours_to_ready[:, r].sum()) / holders, 1),
                people=visible,
            )
        )
    return rows


def _current_point(cells: Cells, role_slots: list[int], min_group: int) -> TrendPoint:
    people = int(cells.holders[:, role_slots].sum())
    hidden = people < min_group
    return TrendPoint(
        week_start=week_start(utcnow()),
        people=people,
        suppressed=hidden,
        current=True,
        blocked=None if hidden else int(cells.blocked[:, role_slots].sum()),
        hours=None if hidden else round(float(cells.hours[:, role_slots].sum()), 1),
        ready=None if hidden else int(cells.ready[:, role_slots].sum()),
    )


def _trend(
    session: Session, org_id: int, team_id: int | None, role_id: str | None, weeks: int, min_group: int
) -> list[TrendPoint]:
    points = []
    for w in reports_snapshots.trend(session, org_id, team_id, role_id, weeks):
        hidden = w.people < min_group
        points.append(
            TrendPoint(
                week_start=w.week_start,
                people=w.people,
                suppressed=hidden,
                current=False,
                blocked=None if hidden else w.blocked,
                hours=None if hidden else round(w.hours, 1),
                ready=None if hidden else w.ready,
            )
        )
    return points


def _notes(report: TeamReport, team_id: int | None) -> list[str]:
    notes = []
    if report.people == 0:
        notes.append("empty_team" if team_id is not None and report.role is None else "nobody")
    elif report.without_role == report.people:
        notes.append("no_roles")
    elif report.suppressed:
        notes.append("small_group")
    if report.people and not report.answers_seen:
        notes.append("no_answers")
    return notes
