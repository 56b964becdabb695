"""The path to a role: the remaining skills in order, with the answers and minutes each needs.

Re-planned from the current state after every answer; it reads the same beliefs as the
next-activity policy (``policy.py``), prerequisite diagnosis included, and counts a role
target as met by the same rule that decides "met" everywhere (P(known) with enough evidence,
``science/evidence.py``), so its answers are the answers that rule still asks for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from learnloop.science.policy import (
    Curriculum,
    LearnerState,
    PolicyConfig,
    UnreachableTarget,
    effective_mastery,
    evidence_answers,
    expected_items_to_target,
    is_open,
    mastery_or_prior,
    skill_met,
    toward_target,
    working_targets,
)

__all__ = ["PathPlan", "PlanStep", "plan_path"]


@dataclass(frozen=True)
class PlanStep:
    skill_id: str
    #: "review" (met but fading), "learn" (below target), "revisit" (met on its own answers,
    #: doubted from the answers on the skills needing it), "met"
    status: str
    mastery: float
    target: float
    retrievability: float | None
    #: expected answers and minutes still needed
    items: float
    minutes: float
    toward: str | None
    is_target: bool
    #: True when every prerequisite is mastered now
    open: bool


@dataclass(frozen=True)
class PathPlan:
    steps: tuple[PlanStep, ...]
    met: tuple[PlanStep, ...]
    items: float
    minutes: float


def plan_path(cur: Curriculum, state: LearnerState, cfg: PolicyConfig | None = None) -> PathPlan:
    """The remaining skills in the order to work on them, with answers and minutes each needs.

    Raises :class:`UnreachableTarget` when a skill the role needs has no items.
    """
    cfg = cfg or PolicyConfig()
    missing = cur.missing_items()
    if missing:
        raise UnreachableTarget(missing)
    own_targets = working_targets(cur, state, cfg)
    own = {s: mastery_or_prior(cur, state, s) for s in cur.skills}
    if cfg.diagnose_prerequisites and state.history:  # the same beliefs as choose_activity
        state = replace(state, mastery=effective_mastery(cur, state, cfg))
    targets = working_targets(cur, state, cfg)
    steps: dict[str, PlanStep] = {}
    for skill in cur.skills:
        m = mastery_or_prior(cur, state, skill)
        r = state.retrievability.get(skill)
        params = cur.estimate_params(skill)
        minutes_each = cur.mean_minutes(skill)
        if not skill_met(cur, state, cfg, skill, targets[skill]):
            # met on its own answers, but the skills needing it cast doubt on it
            status = "revisit" if own[skill] >= own_targets[skill] and m < targets[skill] else "learn"
            items = expected_items_to_target(
                m,
                targets[skill],
                params,
                evidence=evidence_answers(cur, state, cfg, skill),
                max_step=cfg.max_step,
            )
            lesson = (
                min(x.minutes for x in cur.lessons[skill])
                if cfg.lessons
                and cur.lessons.get(skill)
                and not state.attempts.get(skill)
                and not any(x.lesson_id in state.lessons_seen for x in cur.lessons[skill])
                else 0.0
            )
            minutes = items * minutes_each + lesson
        elif cfg.reviews and r is not None and r < cfg.desired_retention:
            status, items, minutes = "review", 1.0, minutes_each
        else:
            status, items, minutes = "met", 0.0, 0.0
        steps[skill] = PlanStep(
            skill_id=skill,
            status=status,
            mastery=m,
            target=targets[skill],
            retrievability=r,
            items=items,
            minutes=minutes,
            toward=toward_target(cur, state, skill),
            is_target=skill in cur.role_targets,
            open=is_open(cur, state, cfg, skill),
        )
    ordered = _order_steps(cur, state, [s for s in cur.skills if steps[s].status != "met"], steps)
    remaining = tuple(steps[s] for s in ordered)
    return PathPlan(
        steps=remaining,
        met=tuple(steps[s] for s in cur.skills if steps[s].status == "met"),
        items=sum(s.items for s in remaining),
        minutes=sum(s.minutes for s in remaining),
    )


def _order_steps(
    cur: Curriculum, state: LearnerState, remaining: list[str], steps: Mapping[str, PlanStep]
) -> list[str]:
    """Topological order of the remaining skills: reviews first, then skills already started,
    then those that unlock the most of the role."""
    left = set(remaining)
    order = {s: i for i, s in enumerate(cur.skills)}
    placed: list[str] = []
    while left:
        ready = [s for s in left if not any(p in left for p in cur.graph.prerequisites[s])]

        def priority(skill: str) -> tuple[int, int, int]:
            stage = (
                0 if steps[skill].status in ("review", "revisit") else 1 if state.attempts.get(skill) else 2
            )
            return stage, -len(cur.downstream[skill]), order[skill]

        nxt = min(ready, key=priority)
        placed.append(nxt)
        left.remove(nxt)
    return placed
