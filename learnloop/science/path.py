"""The path to a role: the remaining skills in order, with the answers and minutes each needs.

Re-planned from the current state after every answer; it reads the same beliefs as the
next-activity policy (``policy.py``), prerequisite diagnosis included, and counts a role
target as met by the same rule that decides "met" everywhere (P(known) with enough evidence,
``science/evidence.py``), so its answers are the answers that rule still asks for. How fast the learner learns is a
mixture (``kt/bkt.LearnRatePrior``, the caller's ``learn_prior``) updated from the learner's
own answers: a skill still to learn costs the expected answers under the posterior over it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from learnloop.science.evidence import mastery_step
from learnloop.science.kt.bkt import LearnRatePrior, bkt_predict
from learnloop.science.policy import (
    Curriculum,
    LearnerState,
    PolicyConfig,
    UnreachableTarget,
    effective_mastery,
    evidence_answers,
    expected_items_to_target,
    is_open,
    lesson_due,
    lesson_pays,
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

    #: answers and minutes if the learner already knows the skill (the right answers that
    #: lift the estimate to the target, and the evidence the target asks for)
    items_if_known: float = 0.0
    minutes_if_known: float = 0.0


@dataclass(frozen=True)
class PathPlan:
    steps: tuple[PlanStep, ...]
    met: tuple[PlanStep, ...]
    #: expected over what the product believes of the learner now (for a fresh learner: the
    #: prior, so a learner who knows everything reads the same until they answer)
    items: float
    minutes: float
    #: the least the path asks for: the answers and minutes if every remaining skill is
    #: already known (the low end of the range shown with the estimate)
    items_if_known: float = 0.0
    minutes_if_known: float = 0.0
    #: the posterior weights of ``learn_prior``'s factors given the learner's answers, and
    #: its expected factor on the skills' learning rates
    learn_weights: tuple[float, ...] = (1.0,)
    learn_factor: float = 1.0


def plan_path(
    cur: Curriculum,
    state: LearnerState,
    cfg: PolicyConfig | None = None,
    learn_prior: LearnRatePrior | None = None,
) -> PathPlan:
    """The remaining skills in the order to work on them, with answers and minutes each needs.

    ``learn_prior``: how fast the learner may learn (``kt/bkt.learn_prior_for``; None: the
    curriculum's rates as they are), updated from ``state.history``.
    Raises :class:`UnreachableTarget` when a skill the role needs has no items.
    """
    cfg = cfg or PolicyConfig()
    prior = learn_prior or LearnRatePrior()
    weights = prior.posterior((cur.estimate_params(s), state.history.get(s, ())) for s in cur.skills)
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
            evidence = evidence_answers(cur, state, cfg, skill)
            items = sum(
                w
                * expected_items_to_target(m, targets[skill], rate, evidence=evidence, max_step=cfg.max_step)
                for w, rate in zip(weights, prior.scaled(params), strict=True)
            )
            # a learner who knows the skill: the same rule, with P(known) = 1
            known = expected_items_to_target(
                m, targets[skill], params, evidence=evidence, max_step=cfg.max_step, p_known=1.0
            )
            lesson = _expected_lesson_minutes(cur, state, cfg, skill, m)
            minutes = items * minutes_each + lesson
            known_minutes = known * minutes_each
        elif cfg.reviews and r is not None and r < cfg.desired_retention:
            status, items, minutes = "review", 1.0, minutes_each
            known, known_minutes = items, minutes
        else:
            status, items, minutes = "met", 0.0, 0.0
            known, known_minutes = 0.0, 0.0
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
            items_if_known=known,
            minutes_if_known=known_minutes,
        )
    ordered = _order_steps(cur, state, [s for s in cur.skills if steps[s].status != "met"], steps)
    remaining = tuple(steps[s] for s in ordered)
    return PathPlan(
        steps=remaining,
        met=tuple(steps[s] for s in cur.skills if steps[s].status == "met"),
        items=sum(s.items for s in remaining),
        minutes=sum(s.minutes for s in remaining),
        items_if_known=sum(s.items_if_known for s in remaining),
        minutes_if_known=sum(s.minutes_if_known for s in remaining),
        learn_weights=weights,
        learn_factor=prior.mean_factor(weights),
    )


def _expected_lesson_minutes(
    cur: Curriculum, state: LearnerState, cfg: PolicyConfig, skill: str, mastery: float
) -> float:
    """The skill's lesson minutes, weighted by the chance the policy sends the learner to it:
    certain once it is due (:func:`~learnloop.science.policy.lesson_due`); under the default
    rule, while every answer on the skill so far is wrong and fewer than
    ``PolicyConfig.lesson_after``, the chance that the answers still to come before it are all
    wrong too (the product's own prediction); none once read, after a right answer or past the
    probe. Where the policy sends a due lesson only when it pays for its minutes
    (``PolicyConfig.lesson_learn``), none when it would not pay once those answers are wrong."""
    lessons = cur.lessons.get(skill, ())
    if not cfg.lessons or not lessons or any(x.lesson_id in state.lessons_seen for x in lessons):
        return 0.0
    minutes = min(x.minutes for x in lessons)
    if lesson_due(cur, state, cfg, skill):
        return minutes
    attempts = state.attempts.get(skill, 0)
    if cfg.lesson_when == "first" or attempts >= cfg.lesson_after or any(state.history.get(skill, ())):
        return 0.0
    wrong = 1.0 - bkt_predict(mastery, cur.estimate_params(skill))
    if cfg.lesson_learn is not None:
        # the state the lesson would fall due in: the answers still to come before it all wrong
        after = mastery
        for _ in range(cfg.lesson_after - attempts):
            after = mastery_step(after, False, cur.params(skill), max_step=cfg.max_step)
        history = list(state.history.get(skill, ()))
        due = replace(
            state,
            mastery={**state.mastery, skill: after},
            attempts={**state.attempts, skill: cfg.lesson_after},
            history={**state.history, skill: history + [False] * (cfg.lesson_after - len(history))},
        )
        if not lesson_pays(cur, due, cfg, skill):
            return 0.0
    return minutes * wrong ** (cfg.lesson_after - attempts)


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
