"""The gap arithmetic: each person against their target role, summed per team, role and skill.

Shared by the live team report and the weekly snapshots, so both count the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from learnloop.services.context import ActivePack
from learnloop.services.mastery import MasteryModel
from learnloop.services.reports import Array, Person, practice_to_target, skill_priors


@dataclass(frozen=True)
class TargetGrid:
    """Role targets as arrays: (roles + 1) x skills, NaN where no target; the last row is 'no role'."""

    role_ids: list[str]
    skill_ids: list[str]
    targets: Array
    minutes: Array
    priors: Array
    p_learn: Array
    p_forget: Array

    def role_index(self, people: list[Person]) -> NDArray[np.int64]:
        index = {r: i for i, r in enumerate(self.role_ids)}
        none = len(self.role_ids)
        return np.fromiter(
            (index.get(p.role_id or "", none) for p in people), dtype=np.int64, count=len(people)
        )


def target_grid(active: ActivePack, model: MasteryModel) -> TargetGrid:
    skill_ids, priors = skill_priors(active, model)
    column = {s: j for j, s in enumerate(skill_ids)}
    role_ids = [r.id for r in active.pack.roles]
    targets = np.full((len(role_ids) + 1, len(skill_ids)), np.nan)
    for i, role in enumerate(active.pack.roles):
        for skill, value in role.mastery_targets().items():
            if skill in column:
                targets[i, column[skill]] = value
    minutes = np.array(
        [
            np.mean([it.minutes for it in active.items_by_skill.get(s, [])])
            if active.items_by_skill.get(s)
            else np.nan
            for s in skill_ids
        ]
    )
    params = [model.params(s) for s in skill_ids]
    return TargetGrid(
        role_ids,
        skill_ids,
        targets,
        minutes,
        priors,
        np.array([p.p_learn for p in params]),
        np.array([p.p_forget for p in params]),
    )


@dataclass(frozen=True)
class Standing:
    """Each person against their role's targets (arrays over people, or people x skills)."""

    targeted: NDArray[np.bool_]
    below: NDArray[np.bool_]
    gap: Array
    hours: Array  # NaN where the skill has no items to practise
    met: NDArray[np.int64]
    total: NDArray[np.int64]
    ready: NDArray[np.bool_]
    close: NDArray[np.bool_]
    hours_to_ready: Array


def standing(
    grid: TargetGrid,
    roles: NDArray[np.int64],
    matrix: Array,
    close_share: float,
    evidenced: NDArray[np.bool_] | None = None,
) -> Standing:
    """Each person against their role's targets. ``evidenced`` (people x skills): whether each
    target is met with enough evidence (``mastery.evidence_matrix``); a target is met only when
    its mastery reaches it and, where given, the evidence backs it."""
    target = grid.targets[roles]
    targeted = ~np.isnan(target)
    below = targeted & (matrix < np.where(targeted, target, -1.0))
    if evidenced is not None:
        below |= targeted & ~evidenced
    gap = np.where(below, target - matrix, 0.0)
    opportunities = practice_to_target(matrix, np.where(targeted, target, 0.0), grid.p_learn, grid.p_forget)
    hours = np.where(below, opportunities * grid.minutes / 60.0, 0.0)
    total = targeted.sum(axis=1)
    met = total - below.sum(axis=1)
    ready = (total > 0) & (met == total)
    close = ~ready & (total > 0) & (met >= close_share * total)
    return Standing(targeted, below, gap, hours, met, total, ready, close, np.nansum(hours, axis=1))


@dataclass(frozen=True)
class Cells:
    """Sums per (team slot, role, skill) and per (team slot, role); slot ``len(team_ids)-1`` may be None."""

    team_ids: list[int | None]
    people: NDArray[np.int64]  # (K, R, S) holders for whom the skill is a target
    blocked: NDArray[np.int64]
    gap_sum: Array
    hours: Array
    mastery_sum: Array
    holders: NDArray[np.int64]  # (K, R)
    ready: NDArray[np.int64]
    close: NDArray[np.int64]
    hours_to_ready: Array


def team_slots(people: list[Person], team_ids: list[int | None]) -> NDArray[np.int64]:
    slot = {t: i for i, t in enumerate(team_ids)}
    return np.fromiter((slot[p.team_id] for p in people), dtype=np.int64, count=len(people))


def group_cells(
    grid: TargetGrid, people: list[Person], team_ids: list[int | None], matrix: Array, st: Standing
) -> Cells:
    n_roles, n_skills, n_teams = len(grid.role_ids), len(grid.skill_ids), len(team_ids)
    roles = grid.role_index(people)
    keep = roles < n_roles
    key = team_slots(people, team_ids)[keep] * n_roles + roles[keep]
    size = n_teams * n_roles

    def by_cell(values: NDArray[np.generic]) -> Array:
        out = np.zeros((size, n_skills))
        np.add.at(out, key, values[keep])
        return out.reshape(n_teams, n_roles, n_skills)

    def by_group(values: NDArray[np.generic]) -> Array:
        sums = np.bincount(key, weights=values[keep].astype(float), minlength=size)
        return np.asarray(sums, dtype=float).reshape(n_teams, n_roles)

    hours = np.nan_to_num(st.hours)
    return Cells(
        team_ids=team_ids,
        people=by_cell(st.targeted.astype(float)).astype(np.int64),
        blocked=by_cell(st.below.astype(float)).astype(np.int64),
        gap_sum=by_cell(st.gap),
        hours=by_cell(hours),
        mastery_sum=by_cell(np.where(st.targeted, matrix, 0.0)),
        holders=by_group(np.ones(len(people))).astype(np.int64),
        ready=by_group(st.ready).astype(np.int64),
        close=by_group(st.close).astype(np.int64),
        hours_to_ready=by_group(st.hours_to_ready),
    )
