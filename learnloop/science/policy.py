"""Choosing the next practice item from mastery and the skill graph.

The rule here is the learning loop's first policy: practise the lowest-mastery *unlocked*
skill still below its target (a skill is unlocked when all its prerequisites reach the
unlock level), and within it the item whose predicted success is nearest the target
success rate (about 0.7: hard enough to learn from, easy enough not to discourage).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ItemOption:
    item_id: str
    difficulty: float


@dataclass(frozen=True)
class PolicyChoice:
    item_id: str
    skill_id: str
    #: why this item: "frontier" (working toward a target), "maintain" (all targets met)
    reason: str
    predicted_success: float


def logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def predicted_success(p_skill_correct: float, difficulty: float) -> float:
    """P(correct) on one item: the skill-level prediction shifted by the item's difficulty
    on the logit scale (a Rasch-style item offset)."""
    return sigmoid(logit(p_skill_correct) - difficulty)


def unlocked(skill: str, prerequisites: Mapping[str, Sequence[str]], mastery: Mapping[str, float],
             unlock_level: float) -> bool:
    return all(mastery.get(pre, 0.0) >= unlock_level for pre in prerequisites.get(skill, ()))


def choose_skill(skills: Sequence[str], prerequisites: Mapping[str, Sequence[str]],
                 mastery: Mapping[str, float], targets: Mapping[str, float], unlock_level: float,
                 practicable: set[str]) -> tuple[str, str] | None:
    """The skill to practise next and the reason, from ``skills`` in curriculum order."""
    open_skills = [s for s in skills if s in practicable
                   and mastery.get(s, 0.0) < targets.get(s, unlock_level)
                   and unlocked(s, prerequisites, mastery, unlock_level)]
    if open_skills:
        order = {s: i for i, s in enumerate(skills)}
        best = min(open_skills, key=lambda s: (round(mastery.get(s, 0.0), 6), order[s]))
        return best, "frontier"
    maintained = [s for s in skills if s in practicable]
    if not maintained:
        return None
    best = min(maintained, key=lambda s: mastery.get(s, 0.0) - targets.get(s, unlock_level))
    return best, "maintain"


def choose_item(options: Sequence[ItemOption], p_skill_correct: float, recent: Sequence[str],
                answered: Mapping[str, int], target_success: float) -> tuple[ItemOption, float]:
    """The item whose predicted success is nearest ``target_success``.

    Items seen in the last few answers are avoided while others remain, and items never
    answered are preferred over repeats.
    """
    recent_set = set(recent)
    fresh = [o for o in options if o.item_id not in recent_set] or list(options)

    def cost(option: ItemOption) -> float:
        p = predicted_success(p_skill_correct, option.difficulty)
        return abs(p - target_success) + 0.15 * answered.get(option.item_id, 0)

    best = min(fresh, key=lambda o: (cost(o), o.item_id))
    return best, predicted_success(p_skill_correct, best.difficulty)
