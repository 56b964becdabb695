"""Simulated learners for comparing practice policies: the world is known, the policies are not told it.

The true learner (``World`` holds every parameter):

- acquisition, BKT-style (Corbett & Anderson 1995): a skill is unknown or known; each answer
  on an unknown skill teaches it with P(T) (per learner: ``p_learn`` shifted by aptitude on
  the logit scale), reading its lesson with ``p_lesson``;
- prerequisite gating (knowledge spaces, Falmagne & Doignon): while any prerequisite is not
  known, both are multiplied by ``gate``;
- forgetting, FSRS-like: a known skill has a memory card of its own in py-fsrs (default
  FSRS-6 weights) on a per-learner clock running ``memory_clock`` times real time; an answer
  retrieves it with the card's retrievability R, and is then a Good (retrieved) or Again
  (lapsed) review of that card;
- answers: right with 1 - slip when known and retrieved, else with the guess rate; guess and
  slip move with the item's authored difficulty, and the guess rate with the item's kind
  (``KIND_GUESS_SHARE``: a number, a free text or a program is much harder to guess than a
  choice);
- time: an item takes its authored minutes times the learner's speed and noise, a lesson
  its minutes; one session a day on most days.

The policies see only what the product sees: mastery estimated from the answers as the
product does (``science/evidence.py``: BKT with the item's guess rate, bounded steps) with
the product's default parameters, the evidence behind it, and FSRS cards of the items
answered (rated from correctness and time). A learner reaches the role target when the
product would say so: every target of the role met with enough evidence
(:func:`~learnloop.science.policy.skill_met`). Retention is the true probability
of recalling each target skill 30 days after the learner stops.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from fsrs import Card, Rating

from learnloop.content.models import Pack
from learnloop.science.evidence import EvidenceRule, SkillEvidence, mastery_step
from learnloop.science.kt.bkt import BKTParams, bkt_predict
from learnloop.science.memory import MemoryModel, rating_for_answer
from learnloop.science.policy import (
    Activity,
    Curriculum,
    ItemOption,
    LearnerState,
    PolicyConfig,
    choose_activity,
    choose_item,
    choose_skill,
    curriculum_for_role,
    logit,
    sigmoid,
    skill_met,
    unlocked,
)
from learnloop.science.tradeoff import shift_role_targets

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
POLICIES = (
    "ours",
    "no_reviews",
    "ours_no_lessons",
    "ours_lesson_after1",
    "ours_lesson_after2",
    "ours_lesson_after3",
    "ours_lesson_when_due",
    "ours_lesson_learn0.8",
    "ours_lesson_learn0.6",
    "ours_lesson_learn1",
    "ours_no_diagnosis",
    "ours_kinds_early",
    "lowest_mastery",
    "oatutor",
    "curriculum",
    "random",
    "oracle",
)
#: the true guess rate of an item, as a share of the world's (choice) guess rate, by kind
KIND_GUESS_SHARE = {"choice": 1.0, "numeric": 0.25, "text": 0.5, "code": 0.1}


@dataclass(frozen=True)
class World:
    """The true learner model's parameters (see the module docstring)."""

    p_learn: float = 0.15
    p_lesson: float = 0.3
    gate: float = 0.2
    aptitude_sd: float = 0.7
    guess: float = 0.2
    slip: float = 0.1
    #: how much an item's difficulty (logits) moves guess and slip
    difficulty_effect: float = 0.5
    prior_known_root: float = 0.25
    prior_known_other: float = 0.1
    speed_sd: float = 0.3
    item_time_sd: float = 0.3
    memory_clock_sd: float = 0.4
    session_minutes: tuple[float, float] = (20.0, 45.0)
    study_day_probability: float = 0.8
    #: stop a learner after this much study time (minutes) without reaching the target
    max_minutes: float = 1800.0
    retention_days: float = 30.0
    #: the true guess rate by item kind, as a share of ``guess`` (kind, share) pairs; kinds not
    #: listed use :data:`KIND_GUESS_SHARE`
    kind_guess: tuple[tuple[str, float], ...] = ()
    #: how long an item of a kind really takes, as a multiple of its authored minutes
    #: ((kind, factor) pairs; 1 for kinds not listed)
    kind_time: tuple[tuple[str, float], ...] = ()

    def guess_share(self, kind: str) -> float:
        return dict(self.kind_guess).get(kind, KIND_GUESS_SHARE.get(kind, 1.0))

    def time_factor(self, kind: str) -> float:
        return dict(self.kind_time).get(kind, 1.0)


@dataclass
class Outcome:
    policy: str
    learner: int
    role_id: str
    reached: bool
    items: int
    minutes: float
    days: float
    lessons: int
    reviews: int
    #: true P(recall) of the role's target skills when the target was reached (or at the stop)
    true_recall_at_stop: float
    #: the same, ``retention_days`` after the stop
    retention: float
    #: the role targets' shift in logits (see :mod:`learnloop.science.tradeoff`)
    target_shift: float = 0.0
    #: the most role targets met (with evidence) at any moment of the run
    targets_met_max: int = 0
    #: study minutes by activity: "lesson" or the item kind answered
    minutes_by: dict[str, float] = field(default_factory=dict)
    #: answers by item kind
    answers_by: dict[str, int] = field(default_factory=dict)
    #: the answers as the product logs them, when the run keeps them (``keep_log``):
    #: (skill, item, correct, seconds since the epoch), oldest first
    log: tuple[tuple[str, str, bool, float], ...] = ()
    #: what the product knew of the learner right after answer ``snapshot_at`` (a copy), when
    #: the run asks for it and the learner answered that many: what the path page then reads
    snapshot: LearnerState | None = None


@dataclass
class _Learner:
    """One simulated learner's hidden state."""

    aptitude: float
    speed: float
    clock: float
    daily_minutes: float
    known: dict[str, bool]
    memory: dict[str, Card]


@dataclass
class _Trace:
    """What the product would have stored and derived for one learner."""

    mastery: dict[str, float] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    answered: dict[str, int] = field(default_factory=dict)
    recent_items: deque[str] = field(default_factory=lambda: deque(maxlen=64))
    recent_skills: deque[str] = field(default_factory=lambda: deque(maxlen=64))
    lessons_seen: set[str] = field(default_factory=set)
    cards: dict[str, Card] = field(default_factory=dict)
    cards_by_skill: dict[str, list[str]] = field(default_factory=dict)
    history: dict[str, list[bool]] = field(default_factory=dict)
    evidence: dict[str, SkillEvidence] = field(default_factory=dict)
    #: what a role target needs besides mastery (the product's rule unless a run says otherwise)
    rule: EvidenceRule = field(default_factory=EvidenceRule)


_WORLD_MEMORY = MemoryModel()
_SYSTEM_MEMORY = MemoryModel()


def _subjective(moment: datetime, clock: float) -> datetime:
    return START + (moment - START) * clock


def _recall(learner: _Learner, skill: str, moment: datetime) -> float:
    if not learner.known.get(skill):
        return 0.0
    return _WORLD_MEMORY.retrievability(learner.memory[skill], _subjective(moment, learner.clock))


def _new_learner(cur: Curriculum, world: World, rng: random.Random) -> _Learner:
    aptitude = rng.gauss(0.0, world.aptitude_sd)
    clock = math.exp(rng.gauss(0.0, world.memory_clock_sd))
    known: dict[str, bool] = {}
    memory: dict[str, Card] = {}
    for skill in cur.skills:
        base = world.prior_known_other if cur.graph.prerequisites[skill] else world.prior_known_root
        if rng.random() < sigmoid(logit(base) + 0.5 * aptitude):
            known[skill] = True
            card = _WORLD_MEMORY.new_card()
            for days_ago in (rng.uniform(20, 60), rng.uniform(1, 15)):
                card = _WORLD_MEMORY.review(
                    card, Rating.Good, _subjective(START - timedelta(days=days_ago), clock)
                )
            memory[skill] = card
    return _Learner(
        aptitude=aptitude,
        speed=math.exp(rng.gauss(0.0, world.speed_sd)),
        clock=clock,
        daily_minutes=rng.uniform(*world.session_minutes),
        known=known,
        memory=memory,
    )


def _learn(
    learner: _Learner,
    cur: Curriculum,
    world: World,
    skill: str,
    base: float,
    moment: datetime,
    rng: random.Random,
) -> None:
    """One learning opportunity on an unknown skill (a practice answer or the lesson)."""
    p = sigmoid(logit(base) + learner.aptitude)
    if any(not learner.known.get(pre) for pre in cur.graph.prerequisites[skill]):
        p *= world.gate
    if rng.random() < p:
        learner.known[skill] = True
        learner.memory[skill] = _WORLD_MEMORY.review(
            _WORLD_MEMORY.new_card(), Rating.Good, _subjective(moment, learner.clock)
        )


def _answer(
    learner: _Learner,
    cur: Curriculum,
    world: World,
    skill: str,
    option: ItemOption,
    moment: datetime,
    rng: random.Random,
) -> bool:
    """The learner answers an item: true correctness, then the memory and learning updates."""
    b = option.difficulty * world.difficulty_effect
    share = world.guess_share(option.kind)
    guess = sigmoid(logit(min(max(world.guess * share, 1e-4), 0.99)) - b)
    slip = sigmoid(logit(world.slip) + b)
    if learner.known.get(skill):
        clock_now = _subjective(moment, learner.clock)
        retrieved = rng.random() < _WORLD_MEMORY.retrievability(learner.memory[skill], clock_now)
        correct = rng.random() < (1 - slip if retrieved else guess)
        learner.memory[skill] = _WORLD_MEMORY.review(
            learner.memory[skill], Rating.Good if retrieved else Rating.Again, clock_now
        )
        return correct
    correct = rng.random() < guess
    _learn(learner, cur, world, skill, world.p_learn, moment, rng)
    return correct


def _state(trace: _Trace, cur: Curriculum, moment: datetime, with_memory: bool) -> LearnerState:
    retrievability: dict[str, float] = {}
    if with_memory:
        for skill, items in trace.cards_by_skill.items():
            retrievability[skill] = max(_SYSTEM_MEMORY.retrievability(trace.cards[i], moment) for i in items)
    return LearnerState(
        mastery=trace.mastery,
        retrievability=retrievability,
        attempts=trace.attempts,
        answered=trace.answered,
        recent_items=tuple(trace.recent_items),
        recent_skills=tuple(trace.recent_skills),
        lessons_seen=frozenset(trace.lessons_seen),
        history=trace.history,
        evidence=trace.evidence,
        now=moment.timestamp(),
    )


Chooser = Callable[[Curriculum, _Trace, datetime, random.Random, _Learner], Activity]


def _ours(config: PolicyConfig) -> Chooser:
    def choose(
        cur: Curriculum, trace: _Trace, moment: datetime, rng: random.Random, learner: _Learner
    ) -> Activity:
        cfg = config if config.evidence == trace.rule else replace(config, evidence=trace.rule)
        activity = choose_activity(cur, _state(trace, cur, moment, config.reviews), cfg)
        assert activity is not None
        return activity

    return choose


def _as_met(cur: Curriculum, trace: _Trace, moment: datetime) -> dict[str, float]:
    """Mastery as the baselines read it: a role target with too little evidence counts as just
    below its target, so they keep practising it as the product's rule asks."""
    state = _state(trace, cur, moment, False)
    cfg = PolicyConfig(evidence=trace.rule)
    out = {}
    for s in cur.skills:
        m = trace.mastery.get(s, cur.params(s).p_init)
        if m >= cur.targets[s] and not skill_met(cur, state, cfg, s, cur.targets[s]):
            m = cur.targets[s] - 1e-6
        out[s] = m
    return out


def _practice(skill: str, item_id: str) -> Activity:
    return Activity(kind="practice", skill_id=skill, reason="next_step", toward=None, item_id=item_id)


def _lowest_mastery(unlock: float, target_success: float) -> Chooser:
    """Lowest mastery first: the lowest-mastery skill below target, among the skills whose
    prerequisites reach ``unlock``. With ``unlock=0`` this is OATutor's rule as OATutor runs
    it (``problemSelectHeuristic1.js``: the problem of lowest mastery among the lesson's
    objectives, no prerequisite gate); with ``unlock=0.6`` it is the product's first policy,
    OATutor's rule behind a prerequisite gate."""

    def choose(
        cur: Curriculum, trace: _Trace, moment: datetime, rng: random.Random, learner: _Learner
    ) -> Activity:
        mastery = _as_met(cur, trace, moment)
        practicable = {s for s in cur.skills if cur.items.get(s)}
        picked = choose_skill(
            list(cur.skills), cur.graph.prerequisites, mastery, cur.targets, unlock, practicable
        )
        assert picked is not None
        skill = picked[0]
        option, _ = choose_item(
            cur.items[skill],
            bkt_predict(mastery[skill], cur.params(skill)),
            list(trace.recent_items)[:8],
            trace.answered,
            target_success,
        )
        return _practice(skill, option.item_id)

    return choose


def _curriculum_order(target_success: float) -> Chooser:
    """Fixed order: the first skill in topological order still below its target."""

    def choose(
        cur: Curriculum, trace: _Trace, moment: datetime, rng: random.Random, learner: _Learner
    ) -> Activity:
        practicable = [s for s in cur.skills if cur.items.get(s)]
        mastery = _as_met(cur, trace, moment)
        skill = next((s for s in practicable if mastery[s] < cur.targets[s]), practicable[-1])
        m = trace.mastery.get(skill, cur.params(skill).p_init)
        option, _ = choose_item(
            cur.items[skill],
            bkt_predict(m, cur.params(skill)),
            list(trace.recent_items)[:8],
            trace.answered,
            target_success,
        )
        return _practice(skill, option.item_id)

    return choose


def _random_unlocked(unlock: float) -> Chooser:
    """Any item of any unlocked skill still below its target, uniformly."""

    def choose(
        cur: Curriculum, trace: _Trace, moment: datetime, rng: random.Random, learner: _Learner
    ) -> Activity:
        mastery = _as_met(cur, trace, moment)
        open_skills = [
            s
            for s in cur.skills
            if cur.items.get(s)
            and mastery[s] < cur.targets[s]
            and unlocked(s, cur.graph.prerequisites, mastery, unlock)
        ]
        pool = [
            (s, o) for s in (open_skills or [s for s in cur.skills if cur.items.get(s)]) for o in cur.items[s]
        ]
        skill, option = pool[int(rng.random() * len(pool))]
        return _practice(skill, option.item_id)

    return choose


def make_chooser(policy: str, *, unlock: float = 0.6, target_success: float = 0.7) -> Chooser:
    if policy == "ours":
        return _ours(PolicyConfig())
    if policy == "no_reviews":
        return _ours(PolicyConfig(reviews=False))
    if policy == "ours_no_lessons":
        return _ours(PolicyConfig(lessons=False))
    if policy.startswith("ours_lesson_after"):  # the lesson only after this many answers, all wrong
        return _ours(PolicyConfig(lesson_after=int(policy.removeprefix("ours_lesson_after"))))
    if policy == "ours_lesson_when_due":  # a due lesson is always sent, whatever its minutes
        return _ours(PolicyConfig(lesson_learn=None))
    if policy.startswith("ours_lesson_learn"):  # a due lesson only when it pays per minute
        return _ours(PolicyConfig(lesson_learn=float(policy.removeprefix("ours_lesson_learn"))))
    if policy == "ours_kinds_early":  # the earlier kind coverage: unmet kinds from a skill's 2nd answer
        return _ours(PolicyConfig(kinds_after=2))
    if policy == "ours_no_diagnosis":
        return _ours(PolicyConfig(diagnose_prerequisites=False))
    if policy == "lowest_mastery":
        return _lowest_mastery(unlock, target_success)
    if policy == "oatutor":
        return _lowest_mastery(0.0, target_success)
    if policy == "oracle":
        return _oracle
    if policy == "curriculum":
        return _curriculum_order(target_success)
    if policy == "random":
        return _random_unlocked(unlock)
    raise ValueError(f"unknown policy {policy!r}; choose from {', '.join(POLICIES)}")


def _oracle(
    cur: Curriculum, trace: _Trace, moment: datetime, rng: random.Random, learner: _Learner
) -> Activity:
    """A reference bound, not a policy: it reads the simulated learner's true state.

    It teaches every unknown skill the role needs (targets and the prerequisites they lack),
    each only once its prerequisites are truly known, lesson first and then answers; then it
    proves the targets to the product's estimate with the easiest items (fewest slips).
    Nothing is practised that is already known or cannot yet be learnt, so it shows how few
    answers honest teaching needs in this world."""
    needed: set[str] = set()
    stack = [s for s in cur.role_targets if not learner.known.get(s)]
    while stack:
        skill = stack.pop()
        if skill not in needed:
            needed.add(skill)
            stack.extend(p for p in cur.graph.prerequisites[skill] if not learner.known.get(p))
    for skill in cur.skills:
        if skill not in needed or not cur.items.get(skill):
            continue
        if any(not learner.known.get(p) for p in cur.graph.prerequisites[skill]):
            continue
        hardest = max(cur.items[skill], key=lambda o: (o.difficulty, o.item_id))
        for lesson in cur.lessons.get(skill, ()):
            if lesson.lesson_id not in trace.lessons_seen:
                return Activity(
                    kind="lesson",
                    skill_id=skill,
                    reason="lesson",
                    toward=None,
                    item_id=hardest.item_id,
                    lesson_id=lesson.lesson_id,
                )
        return _practice(skill, hardest.item_id)
    mastery = _as_met(cur, trace, moment)
    for skill in cur.skills:
        below = mastery[skill] < cur.targets[skill]
        if skill in cur.role_targets and cur.items.get(skill) and below:
            seen = {i for i in trace.recent_items}
            easiest = min(
                cur.items[skill],
                key=lambda o: (o.item_id in seen, o.kind not in ("text", "code"), o.difficulty),
            )
            return _practice(skill, easiest.item_id)
    skill = next(s for s in cur.skills if cur.items.get(s))
    return _practice(skill, cur.items[skill][0].item_id)


def _targets_met(cur: Curriculum, trace: _Trace, moment: datetime = START) -> int:
    state = _state(trace, cur, moment, False)
    cfg = PolicyConfig(evidence=trace.rule)
    return sum(skill_met(cur, state, cfg, s, cur.targets[s]) for s in cur.role_targets)


def _reached(cur: Curriculum, trace: _Trace, moment: datetime = START) -> bool:
    return _targets_met(cur, trace, moment) == len(cur.role_targets)


def _true_recall(learner: _Learner, cur: Curriculum, moment: datetime) -> float:
    return sum(_recall(learner, s, moment) for s in cur.role_targets) / len(cur.role_targets)


def simulate_learner(
    cur: Curriculum,
    role_id: str,
    policy: str,
    learner_index: int,
    *,
    seed: int = 0,
    world: World | None = None,
    system: BKTParams | None = None,
    rule: EvidenceRule | None = None,
    keep_log: bool = False,
    snapshot_at: int = 0,
) -> Outcome:
    """One learner (the same person for every policy, given ``seed`` and ``learner_index``);
    ``rule``: the evidence a role target needs (the product's by default). The product's
    estimate uses the curriculum's BKT parameters per skill (``cur.params``: fitted ones when
    the curriculum was built with them, else its defaults); ``system`` replaces the defaults of
    the skills without their own. ``keep_log``: keep the answers (``Outcome.log``);
    ``snapshot_at``: keep the product's state after that many answers (``Outcome.snapshot``)."""
    world = world or World()
    if system is not None:
        cur = replace(cur, default_params=system)
    person_rng = random.Random(f"learner-{seed}-{learner_index}")
    learner = _new_learner(cur, world, person_rng)
    rng = random.Random(f"answers-{seed}-{learner_index}")
    chooser = make_chooser(policy)
    trace = _Trace(rule=rule or EvidenceRule())
    met_max = 0
    day, used_today, studied = 0, 0.0, 0.0
    moment = START
    items = lessons = reviews = 0
    options = {o.item_id: (s, o) for s in cur.skills for o in cur.items.get(s, ())}
    lesson_minutes = {x.lesson_id: x.minutes for s in cur.skills for x in cur.lessons.get(s, ())}
    reached = _reached(cur, trace)
    minutes_by: dict[str, float] = {}
    answers_by: dict[str, int] = {}
    log: list[tuple[str, str, bool, float]] = []
    snapshot: LearnerState | None = None
    while not reached and studied < world.max_minutes:
        if used_today >= learner.daily_minutes:
            day += 1
            while rng.random() > world.study_day_probability:
                day += 1
            used_today = 0.0
            moment = START + timedelta(days=day)
        activity = chooser(cur, trace, moment, rng, learner)
        if activity.kind == "lesson" and activity.lesson_id is not None:
            spent = lesson_minutes[activity.lesson_id] * learner.speed
            skill = activity.skill_id
            if learner.known.get(skill):
                learner.memory[skill] = _WORLD_MEMORY.review(
                    learner.memory[skill], Rating.Good, _subjective(moment, learner.clock)
                )
            else:
                _learn(learner, cur, world, skill, world.p_lesson, moment, rng)
            trace.lessons_seen.add(activity.lesson_id)
            lessons += 1
            minutes_by["lesson"] = minutes_by.get("lesson", 0.0) + spent
        else:
            assert activity.item_id is not None
            skill, option = options[activity.item_id]
            spent = (
                option.minutes
                * world.time_factor(option.kind)
                * learner.speed
                * math.exp(rng.gauss(0.0, world.item_time_sd))
            )
            correct = _answer(learner, cur, world, skill, option, moment, rng)
            params = cur.params(skill)
            prior = trace.mastery.get(skill, params.p_init)
            trace.mastery[skill] = mastery_step(prior, correct, params, option.guess)
            trace.evidence[skill] = (trace.evidence.get(skill) or SkillEvidence()).fold(
                family=option.family_id,
                kind=option.kind,
                correct=correct,
                params=params,
                guess=option.guess,
                at=moment.timestamp(),
            )
            trace.attempts[skill] = trace.attempts.get(skill, 0) + 1
            trace.history.setdefault(skill, []).append(correct)
            trace.answered[option.item_id] = trace.answered.get(option.item_id, 0) + 1
            trace.recent_items.appendleft(option.item_id)
            trace.recent_skills.appendleft(skill)
            rating = rating_for_answer(correct, minutes=option.minutes, duration_s=spent * 60)
            card = trace.cards.get(option.item_id) or _SYSTEM_MEMORY.new_card()
            trace.cards[option.item_id] = _SYSTEM_MEMORY.review(card, rating, moment)
            if option.item_id not in trace.cards_by_skill.setdefault(skill, []):
                trace.cards_by_skill[skill].append(option.item_id)
            items += 1
            reviews += int(activity.kind == "review")
            minutes_by[option.kind] = minutes_by.get(option.kind, 0.0) + spent
            answers_by[option.kind] = answers_by.get(option.kind, 0) + 1
            if keep_log:
                log.append((skill, option.item_id, correct, moment.timestamp()))
            if snapshot_at and items == snapshot_at:
                snapshot = _copy_state(_state(trace, cur, moment + timedelta(minutes=spent), True))
            met_now = _targets_met(cur, trace, moment)
            met_max = max(met_max, met_now)
            reached = met_now == len(cur.role_targets)
        moment += timedelta(minutes=spent)
        used_today += spent
        studied += spent
    return Outcome(
        policy=policy,
        learner=learner_index,
        role_id=role_id,
        reached=reached,
        items=items,
        minutes=studied,
        days=(moment - START).total_seconds() / 86400,
        lessons=lessons,
        reviews=reviews,
        true_recall_at_stop=_true_recall(learner, cur, moment),
        retention=_true_recall(learner, cur, moment + timedelta(days=world.retention_days)),
        targets_met_max=met_max,
        minutes_by=minutes_by,
        answers_by=answers_by,
        log=tuple(log),
        snapshot=snapshot,
    )


def _copy_state(state: LearnerState) -> LearnerState:
    """``state`` with copies of the run's growing maps, so it stays as it was."""
    return replace(
        state,
        mastery=dict(state.mastery),
        attempts=dict(state.attempts),
        answered=dict(state.answered),
        history={k: tuple(v) for k, v in state.history.items()},
        evidence=dict(state.evidence),
    )


def simulate(
    pack: Pack,
    *,
    policies: Sequence[str] = POLICIES,
    learners: int = 100,
    seed: int = 0,
    roles: Sequence[str] | None = None,
    world: World | None = None,
    learner_offset: int = 0,
    target_shift: float = 0.0,
    rule: EvidenceRule | None = None,
    skill_params: Mapping[str, BKTParams] | None = None,
    default_params: BKTParams | None = None,
    keep_log: bool = False,
    snapshot_at: int = 0,
) -> list[Outcome]:
    """Learners ``learner_offset ..`` (role by turns over ``roles``), each under every policy;
    ``target_shift`` moves every role target on the logit scale (stricter when positive).
    ``skill_params`` / ``default_params``: the product's BKT parameters (as ``learnloop fit kt``
    stores them; the defaults when not given). ``keep_log``: keep every answer;
    ``snapshot_at``: the product's state after that many answers (:func:`simulate_learner`)."""
    role_ids = list(roles or [r.id for r in pack.roles])
    curricula = {
        r: shift_role_targets(
            curriculum_for_role(pack, r, skill_params=skill_params, default_params=default_params),
            target_shift,
        )
        for r in role_ids
    }
    outcomes = []
    for index in range(learner_offset, learner_offset + learners):
        role_id = role_ids[index % len(role_ids)]
        for policy in policies:
            outcome = simulate_learner(
                curricula[role_id],
                role_id,
                policy,
                index,
                seed=seed,
                world=world,
                rule=rule,
                keep_log=keep_log,
                snapshot_at=snapshot_at,
            )
            outcomes.append(replace(outcome, target_shift=target_shift))
    return outcomes


@dataclass(frozen=True)
class PolicySummary:
    policy: str
    learners: int
    reached_share: float
    reached_within_budget_share: float
    median_items: float
    mean_items_reached: float
    median_minutes: float
    mean_minutes_reached: float
    mean_retention: float
    mean_true_recall_at_stop: float
    mean_lessons: float
    mean_reviews: float


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def summarise(outcomes: Sequence[Outcome], budget_minutes: float = 600.0) -> list[PolicySummary]:
    """Per policy; a learner who never reached the target counts as infinitely many items in medians."""
    out = []
    for policy in dict.fromkeys(o.policy for o in outcomes):
        rows = [o for o in outcomes if o.policy == policy]
        reached = [o for o in rows if o.reached]
        out.append(
            PolicySummary(
                policy=policy,
                learners=len(rows),
                reached_share=len(reached) / len(rows),
                reached_within_budget_share=sum(o.minutes <= budget_minutes for o in reached) / len(rows),
                median_items=_median([o.items if o.reached else math.inf for o in rows]),
                mean_items_reached=_mean([o.items for o in reached]),
                median_minutes=_median([o.minutes if o.reached else math.inf for o in rows]),
                mean_minutes_reached=_mean([o.minutes for o in reached]),
                mean_retention=_mean([o.retention for o in rows]),
                mean_true_recall_at_stop=_mean([o.true_recall_at_stop for o in rows]),
                mean_lessons=_mean([o.lessons for o in rows]),
                mean_reviews=_mean([o.reviews for o in rows]),
            )
        )
    return out


def paired_item_ratio(outcomes: Sequence[Outcome], policy: str, baseline: str) -> float:
    """Mean items of ``policy`` over mean items of ``baseline``, over learners who reached the
    target under both (the same simulated people)."""
    by = {(o.policy, o.learner): o for o in outcomes}
    pairs = [
        (by[(policy, i)], by[(baseline, i)])
        for (p, i) in by
        if p == policy and (baseline, i) in by and by[(policy, i)].reached and by[(baseline, i)].reached
    ]
    if not pairs:
        return math.nan
    return sum(a.items for a, _ in pairs) / sum(b.items for _, b in pairs)
