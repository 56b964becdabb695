"""The curriculum of one role: the validated skill graph, targets, items and lessons the policies read.

Pure data built from a content pack (``curriculum_for_role``) or from plain mappings
(``build_curriculum``); building it refuses a graph with a cycle or an unknown
prerequisite (:class:`GraphError`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from learnloop.content.graph import find_cycle, prerequisite_closure, topological_order
from learnloop.content.models import Item, Pack
from learnloop.science.evidence import item_guess, with_guess
from learnloop.science.kt.bkt import BKTParams


@dataclass(frozen=True)
class ItemOption:
    item_id: str
    difficulty: float
    minutes: float = 1.0
    kind: str = "choice"
    #: chance of a right answer without the skill (None: the skill's guess rate)
    guess: float | None = None
    #: variants generated from one item share a family and count as one distinct item
    family: str = ""

    @property
    def family_id(self) -> str:
        return self.family or self.item_id


class GraphError(ValueError):
    """The prerequisite graph cannot be planned over (a cycle or an unknown prerequisite)."""


class UnreachableTarget(ValueError):
    """Some skills the role needs have no practice items, so its target cannot be reached."""

    def __init__(self, missing: Mapping[str, Sequence[str]]) -> None:
        self.missing = {s: list(t) for s, t in missing.items()}
        parts = [f"{s} (needed for {', '.join(t)})" for s, t in sorted(self.missing.items())]
        super().__init__("no practice items for " + "; ".join(parts))


@dataclass(frozen=True)
class SkillGraph:
    """A validated prerequisite graph (skill -> prerequisites) in topological order."""

    prerequisites: Mapping[str, tuple[str, ...]]
    order: tuple[str, ...]
    dependants: Mapping[str, tuple[str, ...]]

    @classmethod
    def build(cls, prerequisites: Mapping[str, Sequence[str]]) -> SkillGraph:
        unknown = sorted(
            f"{s} -> {p}" for s, pre in prerequisites.items() for p in pre if p not in prerequisites
        )
        if unknown:
            raise GraphError("unknown prerequisites: " + ", ".join(unknown))
        cycle = find_cycle(prerequisites)
        if cycle:
            raise GraphError("the prerequisite graph has a cycle: " + " -> ".join([*cycle, cycle[0]]))
        dependants: dict[str, list[str]] = {s: [] for s in prerequisites}
        for skill, pre in prerequisites.items():
            for p in pre:
                dependants[p].append(skill)
        return cls(
            prerequisites={s: tuple(p) for s, p in prerequisites.items()},
            order=tuple(topological_order(prerequisites)),
            dependants={s: tuple(sorted(d)) for s, d in dependants.items()},
        )

    def closure(self, skills: Sequence[str]) -> set[str]:
        return prerequisite_closure(self.prerequisites, skills)

    def distances_down(self, skill: str) -> dict[str, int]:
        """Every skill that (transitively) needs ``skill``, with the number of steps to it."""
        dist = {skill: 0}
        queue = deque([skill])
        while queue:
            node = queue.popleft()
            for child in self.dependants[node]:
                if child not in dist:
                    dist[child] = dist[node] + 1
                    queue.append(child)
        return dist


@dataclass(frozen=True)
class LessonOption:
    lesson_id: str
    minutes: float


@dataclass(frozen=True)
class Curriculum:
    """What the policy knows of one role in one pack. Build with :func:`build_curriculum`."""

    graph: SkillGraph
    #: every skill the role needs (targets and their prerequisites) -> mastery it asks for
    targets: Mapping[str, float]
    role_targets: frozenset[str]
    items: Mapping[str, tuple[ItemOption, ...]]
    lessons: Mapping[str, tuple[LessonOption, ...]]
    skill_params: Mapping[str, BKTParams]
    default_params: BKTParams
    #: the role's skills in topological order
    skills: tuple[str, ...] = ()
    #: skill -> {role skill needing it (itself included): steps to it}
    downstream: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    #: skill -> minutes of its shortest item
    min_minutes: Mapping[str, float] = field(default_factory=dict)

    def params(self, skill: str) -> BKTParams:
        return self.skill_params.get(skill, self.default_params)

    def item_params(self, skill: str, option: ItemOption) -> BKTParams:
        """The skill's parameters with the item's guess rate."""
        return with_guess(self.params(skill), option.guess)

    def estimate_params(self, skill: str) -> BKTParams:
        """The skill's parameters with the mean guess rate of its items: what estimates of the
        answers still needed assume of the next answers."""
        return _estimate_params(self.params(skill), tuple(o.guess for o in self.items.get(skill, ())))

    def kinds(self, skill: str) -> frozenset[str]:
        return _kinds(tuple(o.kind for o in self.items.get(skill, ())))

    def missing_items(self) -> dict[str, list[str]]:
        """Skills without practice items -> the role targets that need them."""
        return {
            s: sorted(t for t in self.role_targets if t in self.downstream[s])
            for s in self.skills
            if not self.items.get(s)
        }

    def mean_minutes(self, skill: str) -> float:
        options = self.items.get(skill, ())
        return sum(o.minutes for o in options) / len(options) if options else 1.0


@lru_cache(maxsize=4096)
def _estimate_params(params: BKTParams, guesses: tuple[float | None, ...]) -> BKTParams:
    if not guesses:
        return params
    values = [params.p_guess if g is None else g for g in guesses]
    return with_guess(params, sum(values) / len(values))


@lru_cache(maxsize=4096)
def _kinds(kinds: tuple[str, ...]) -> frozenset[str]:
    return frozenset(kinds)


def build_curriculum(
    prerequisites: Mapping[str, Sequence[str]],
    role_targets: Mapping[str, float],
    *,
    items: Mapping[str, Sequence[ItemOption]],
    lessons: Mapping[str, Sequence[LessonOption]] | None = None,
    skill_params: Mapping[str, BKTParams] | None = None,
    default_params: BKTParams | None = None,
    unlock_level: float = 0.6,
) -> Curriculum:
    """Validate the graph (raises :class:`GraphError`) and gather what the policy needs."""
    graph = SkillGraph.build(prerequisites)
    unknown = sorted(set(role_targets) - set(graph.prerequisites))
    if unknown:
        raise GraphError("role targets are not skills of the graph: " + ", ".join(unknown))
    needed = graph.closure(list(role_targets))
    targets = {s: unlock_level for s in needed}
    targets.update(role_targets)
    skills = tuple(s for s in graph.order if s in needed)
    downstream = {s: {d: n for d, n in graph.distances_down(s).items() if d in needed} for s in skills}
    return Curriculum(
        graph=graph,
        targets=targets,
        role_targets=frozenset(role_targets),
        items={s: tuple(items.get(s, ())) for s in skills},
        lessons={s: tuple((lessons or {}).get(s, ())) for s in skills},
        skill_params=dict(skill_params or {}),
        default_params=default_params or BKTParams(),
        skills=skills,
        downstream=downstream,
        min_minutes={s: min((o.minutes for o in items.get(s, ())), default=1.0) for s in skills},
    )


def item_option(item: Item) -> ItemOption:
    """What the policy reads of one item: difficulty, minutes, kind, guess rate and family."""
    options = len(item.options) if item.options else None
    return ItemOption(
        item.id,
        item.item_params.b,
        item.minutes,
        kind=item.kind,
        guess=item_guess(item.kind, options),
        family=str(getattr(item, "family", None) or ""),
    )


def curriculum_for_role(
    pack: Pack,
    role_id: str,
    *,
    unlock_level: float = 0.6,
    skill_params: Mapping[str, BKTParams] | None = None,
    default_params: BKTParams | None = None,
) -> Curriculum:
    """The curriculum of one role of a content pack (items by their first skill)."""
    role = pack.role(role_id)
    items: dict[str, list[ItemOption]] = {}
    for item in pack.items:
        items.setdefault(item.skills[0], []).append(item_option(item))
    lessons: dict[str, list[LessonOption]] = {}
    for lesson in pack.lessons:
        for skill in lesson.skills:
            lessons.setdefault(skill, []).append(LessonOption(lesson.id, lesson.minutes))
    return build_curriculum(
        {s.id: s.prerequisites for s in pack.skills},
        role.mastery_targets(),
        items=items,
        lessons=lessons,
        skill_params=skill_params,
        default_params=default_params,
        unlock_level=unlock_level,
    )
