"""Choosing the next activity and planning the path to a role, from mastery, memory and the graph.

Two policies live here.

``choose_skill`` / ``choose_item`` are the first policy (OATutor's rule): practise the
lowest-mastery *unlocked* skill still below its target (unlocked when every prerequisite
reaches the unlock level), and within it the item whose predicted success is nearest the
target success rate. The simulation benchmark keeps it as the baseline.

``choose_activity`` picks by expected progress per minute, progress counted in answers
saved toward the role (:func:`expected_gain`): an answer moves the skill's mastery
estimate, speeds up every unfinished skill waiting for it as a prerequisite, and makes a
fading skill (FSRS retrievability under the desired retention) retrievable again, which
is how due reviews compete with new learning. Skills open only on the frontier of the
graph (every prerequisite mastered), items are preferred in the zone of predicted success
0.6-0.85, a new skill starts with items and sends the learner to its lesson only once its
first two answers are both wrong (a right one leaves the lesson offered, not sent: :func:`lesson_due`;
``PolicyConfig.lesson_learn`` would also cost its minutes like an item's, :func:`lesson_pays`), and
long runs on one skill are discounted for variety. Items are valued by what their answer tells per minute (``science/evidence.py``: a
role target is met only with enough evidence, and a code item's right answer is far stronger
evidence than a choice item's), every kind a skill has comes early, and an item whose key
was shown waits ``repeat_gap`` answers before it returns. ``path.plan_path`` orders the remaining skills to the role target
with an estimate of the answers and minutes each needs; callers re-plan from the current
state after every answer.

Pure numerics: no database, no clock; the caller supplies mastery (BKT) and retrievability
(FSRS, see ``memory.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache

from learnloop.science.curriculum import (
    Curriculum,
    GraphError,
    ItemOption,
    LessonOption,
    SkillGraph,
    UnreachableTarget,
    build_curriculum,
    curriculum_for_role,
)
from learnloop.science.evidence import (
    MAX_STEP,
    EvidenceRule,
    SkillEvidence,
    log_likelihood_ratio,
    mastery_step,
    target_gaps,
)
from learnloop.science.kt.bkt import BKTParams, bkt_predict

__all__ = [
    "Activity",
    "Curriculum",
    "GraphError",
    "ItemOption",
    "LearnerState",
    "LessonOption",
    "PolicyConfig",
    "SkillGraph",
    "UnreachableTarget",
    "build_curriculum",
    "choose_activity",
    "choose_item",
    "choose_skill",
    "curriculum_for_role",
    "expected_items_to_target",
    "predicted_success",
    "skill_met",
]


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


# -- the first policy: lowest mastery first ---------------------------------------------------


def unlocked(
    skill: str, prerequisites: Mapping[str, Sequence[str]], mastery: Mapping[str, float], unlock_level: float
) -> bool:
    return all(mastery.get(pre, 0.0) >= unlock_level for pre in prerequisites.get(skill, ()))


def choose_skill(
    skills: Sequence[str],
    prerequisites: Mapping[str, Sequence[str]],
    mastery: Mapping[str, float],
    targets: Mapping[str, float],
    unlock_level: float,
    practicable: set[str],
) -> tuple[str, str] | None:
    """The skill to practise next and the reason, from ``skills`` in curriculum order."""
    open_skills = [
        s
        for s in skills
        if s in practicable
        and mastery.get(s, 0.0) < targets.get(s, unlock_level)
        and unlocked(s, prerequisites, mastery, unlock_level)
    ]
    if open_skills:
        order = {s: i for i, s in enumerate(skills)}
        best = min(open_skills, key=lambda s: (round(mastery.get(s, 0.0), 6), order[s]))
        return best, "frontier"
    maintained = [s for s in skills if s in practicable]
    if not maintained:
        return None
    best = min(maintained, key=lambda s: mastery.get(s, 0.0) - targets.get(s, unlock_level))
    return best, "maintain"


def choose_item(
    options: Sequence[ItemOption],
    p_skill_correct: float,
    recent: Sequence[str],
    answered: Mapping[str, int],
    target_success: float,
) -> tuple[ItemOption, float]:
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


# -- the learner and the policy's settings --------------------------------------------------


@dataclass(frozen=True)
class LearnerState:
    """What is known of one learner now. Missing skills are at their prior, never practised."""

    mastery: Mapping[str, float] = field(default_factory=dict)
    #: FSRS retrievability per practised skill (the best-remembered of its items' cards)
    retrievability: Mapping[str, float] = field(default_factory=dict)
    attempts: Mapping[str, int] = field(default_factory=dict)
    answered: Mapping[str, int] = field(default_factory=dict)
    #: most recent first
    recent_items: Sequence[str] = ()
    recent_skills: Sequence[str] = ()
    lessons_seen: frozenset[str] = frozenset()
    #: the live knowledge-tracing model's P(correct) on each skill's next (average) item, when
    #: it is not BKT (``learnloop fit kt`` chose the logistic model): the items' predicted
    #: success, and so the success zone, then come from the better-predicting model
    p_correct: Mapping[str, float] = field(default_factory=dict)
    #: answers (right or wrong) per skill, oldest first; the policy reads the newest
    #: ``PolicyConfig.history_window`` of a skill to suspect its prerequisites
    history: Mapping[str, Sequence[bool]] = field(default_factory=dict)
    #: what backs each practised skill (``science/evidence.py``): the role targets are met
    #: only with enough of it
    evidence: Mapping[str, SkillEvidence] = field(default_factory=dict)
    #: seconds since the epoch now (None: recency is not checked)
    now: float | None = None


@dataclass(frozen=True)
class PolicyConfig:
    #: predicted success where practice is most useful: hard enough to learn, easy enough to keep going
    zone: tuple[float, float] = (0.6, 0.85)
    #: how fast an item's fit falls off outside the zone (Gaussian width in probability)
    zone_width: float = 0.15
    #: the least fit an item outside the zone keeps: a new skill's first items (predicted
    #: success near its guess rate) still compete with polishing a finished one
    zone_floor: float = 0.3
    #: mastery every prerequisite needs before a skill opens (the frontier of the graph)
    prerequisite_mastery: float = 0.8
    #: assumed learning rate, relative to normal, on a skill while a prerequisite is missing
    prerequisite_gate: float = 0.25
    #: retrievability below which a finished skill starts to lose progress (FSRS's due point)
    desired_retention: float = 0.9
    reviews: bool = True
    lessons: bool = True
    #: when a new skill's lesson comes: "first" (before the first answer) or "after_wrong"
    #: (the skill starts with items; the lesson comes once the learner's first ``lesson_after``
    #: answers on it are all wrong, at most ``lesson_probe`` of them: one who shows they know
    #: the skill is offered the lesson, not sent to it)
    lesson_when: str = "after_wrong"
    lesson_probe: int = 1
    #: under "after_wrong", how many answers (all wrong) a new skill takes before its lesson
    #: comes: two, chosen on the validation worlds (``bench/validity.py --validation --parts
    #: policies``): against one, 4% fewer study minutes at the same 30-day retention; never
    #: sending learners to lessons saved more minutes but lost retention in one world
    lesson_after: int = 2
    #: what reading a new skill's lesson is assumed to do: the chance it teaches the skill to a
    #: learner who has its prerequisites (``prerequisite_gate`` times that while one is
    #: missing). A due lesson is then sent only when it is expected to save more answers per
    #: minute than the best item the skill could show instead (:func:`lesson_pays`): its
    #: minutes are costed like an item's. None (the default): sent whenever due. 0.6 won the
    #: validation worlds' comparison at matched retention (``bench/validity.py --validation
    #: --parts curves``), but on the shipped pack it sends no lesson at all, not even to a
    #: learner whose first two answers were wrong, a cost that rule did not weigh; its one test
    #: run is ``bench/results/validity_lesson_learn_06.json``
    lesson_learn: float | None = None
    recent_window: int = 8
    max_streak: int = 4
    streak_discount: float = 0.8
    #: revise belief in a skill's prerequisites from the skill's own answers (see
    #: :func:`prerequisite_posterior`)
    diagnose_prerequisites: bool = True
    history_window: int = 40
    #: what a role target needs besides P(known) (distinct items, a text or code item, ...)
    evidence: EvidenceRule = field(default_factory=EvidenceRule)
    #: an item whose key was shown (every answered item) does not return for this many answers
    repeat_gap: int = 20
    #: from this many answers on a skill, items of a kind the learner has not met there come first
    kinds_after: int | None = None
    #: every kind a skill has is met within its first this many answers there: once the
    #: answers left before it are no more than the kinds still unmet, those kinds come first
    #: (before that, the value per minute decides; the evidence rule already asks for a text
    #: or code answer where the skill has one)
    kinds_by: int = 30
    #: the largest change of P(known) one answer may cause
    max_step: float = MAX_STEP


@dataclass(frozen=True)
class Activity:
    kind: str  # "practice" | "review" | "lesson"
    skill_id: str
    #: "next_step" (toward ``toward``), "review" (fading), "lesson" (new skill), "maintain" (all met),
    #: "revisit" (a skill met on its own answers that the skills needing it cast doubt on),
    #: "chosen" (the learner chose to practise this skill)
    reason: str
    toward: str | None
    #: the item to answer (for a lesson: the first item after it)
    item_id: str | None = None
    lesson_id: str | None = None
    predicted_success: float | None = None
    progress_per_minute: float = 0.0


def mastery_or_prior(cur: Curriculum, state: LearnerState, skill: str) -> float:
    m = state.mastery.get(skill)
    return cur.params(skill).p_init if m is None else m


def skill_met(cur: Curriculum, state: LearnerState, cfg: PolicyConfig, skill: str, target: float) -> bool:
    """At or above ``target``, and for a role target also backed by enough evidence."""
    m = mastery_or_prior(cur, state, skill)
    if m < target:
        return False
    if skill not in cur.role_targets:
        return True
    bank = _bank(cur.items.get(skill, ()))
    return not target_gaps(
        m, target, state.evidence.get(skill), cfg.evidence, bank.kinds, state.now, bank.families
    )


def evidence_answers(
    cur: Curriculum,
    state: LearnerState,
    cfg: PolicyConfig,
    skill: str,
    evidence: SkillEvidence | None = None,
    fresh: bool = False,
) -> float:
    """Answers a role target still needs for its evidence, whatever its P(known): right answers
    on new items, a text or code item, and enough evidence against guessing, at the right
    rate of someone who knows the skill (1 - slip). ``fresh``: for a learner who has yet to
    learn the skill, whose evidence against guessing starts again from zero once they do."""
    need = _EvidenceNeed.of(cur, cfg, skill)
    if need is None:
        return 0.0
    ev = evidence if evidence is not None else state.evidence.get(skill) or SkillEvidence()
    return need.answers(ev, fresh)


class _EvidenceNeed:
    """:func:`evidence_answers` of one role target: what its bank and rule say, read once."""

    __slots__ = ("min_items", "threshold", "per_right", "open_kinds", "rate")

    def __init__(self, cur: Curriculum, cfg: PolicyConfig, skill: str) -> None:
        rule, options = cfg.evidence, cur.items[skill]
        params = cur.params(skill)
        bank = _bank(options)
        self.min_items = min(rule.min_items, bank.families)
        self.threshold = rule.threshold
        self.per_right = max(bank.per_right(params), 0.1)
        self.open_kinds = rule.need_open_kind and bool({"text", "code"} & bank.kinds)
        self.rate = max(1.0 - params.p_slip, 0.05)

    @staticmethod
    def of(cur: Curriculum, cfg: PolicyConfig, skill: str) -> _EvidenceNeed | None:
        """None where no evidence is asked for (not a role target, or no items)."""
        if skill not in cur.role_targets or not cur.items.get(skill, ()):
            return None
        return _EvidenceNeed(cur, cfg, skill)

    def answers(self, ev: SkillEvidence, fresh: bool = False) -> float:
        items = max(0, self.min_items - len(ev.families))
        cusum = max(0.0, self.threshold - (0.0 if fresh else ev.cusum)) / self.per_right
        open_needed = float(self.open_kinds and not {"text", "code"} & ev.kinds)
        rights = max(float(items), math.ceil(cusum - 1e-9), open_needed)
        return rights / self.rate


class _Bank:
    """What the evidence rule reads of one skill's items, computed once per item list."""

    __slots__ = ("options", "pairs", "families", "kinds", "_per_right")

    def __init__(self, options: Sequence[ItemOption]) -> None:
        self.options = options
        self.pairs = tuple((o.family_id, o.guess) for o in options)
        self.families = len({f for f, _g in self.pairs})
        self.kinds = frozenset(o.kind for o in options)
        self._per_right: dict[BKTParams, float] = {}

    def per_right(self, params: BKTParams) -> float:
        value = self._per_right.get(params)
        if value is None:
            value = self._per_right[params] = _bank_evidence(params, self.pairs)[1]
        return value


_BANKS: dict[int, _Bank] = {}


def _bank(options: Sequence[ItemOption]) -> _Bank:
    """The cached :class:`_Bank` of an item list (keyed by identity: curricula are immutable)."""
    bank = _BANKS.get(id(options))
    if bank is None or bank.options is not options:
        if len(_BANKS) > 4096:
            _BANKS.clear()
        bank = _BANKS[id(options)] = _Bank(options)
    return bank


@lru_cache(maxsize=4096)
def _bank_evidence(params: BKTParams, bank: tuple[tuple[str, float | None], ...]) -> tuple[int, float]:
    """(distinct families, mean evidence of a right answer in nats) of a skill's items."""
    per_right = sum(log_likelihood_ratio(True, params, g) for _f, g in bank) / len(bank)
    return len({f for f, _g in bank}), per_right


_ESTIMATES: dict[tuple[int, BKTParams], tuple[Sequence[ItemOption], BKTParams]] = {}


def _estimate_params(cur: Curriculum, skill: str) -> BKTParams:
    """``cur.estimate_params(skill)``, cached per item list and parameters (the policy asks
    for it thousands of times per choice)."""
    options, params = cur.items.get(skill, ()), cur.params(skill)
    key = (id(options), params)
    hit = _ESTIMATES.get(key)
    if hit is not None and hit[0] is options:
        return hit[1]
    if len(_ESTIMATES) > 4096:
        _ESTIMATES.clear()
    value = cur.estimate_params(skill)
    _ESTIMATES[key] = (options, value)
    return value


def _retrievability(state: LearnerState, cfg: PolicyConfig, skill: str) -> float:
    return state.retrievability.get(skill, 1.0) if cfg.reviews else 1.0


def working_targets(cur: Curriculum, state: LearnerState, cfg: PolicyConfig) -> dict[str, float]:
    """Targets with prerequisites raised to ``prerequisite_mastery`` while a skill needing them
    is still unfinished: a dependant only opens once they are mastered."""
    targets = dict(cur.targets)
    for skill in cur.skills:
        dependants = [d for d in cur.graph.dependants[skill] if d in cur.targets]
        if any(not skill_met(cur, state, cfg, d, cur.targets[d]) for d in dependants):
            targets[skill] = max(targets[skill], cfg.prerequisite_mastery)
    return targets


def is_open(cur: Curriculum, state: LearnerState, cfg: PolicyConfig, skill: str) -> bool:
    """On the frontier: every practicable prerequisite mastered."""
    return all(
        mastery_or_prior(cur, state, p) >= cfg.prerequisite_mastery
        for p in cur.graph.prerequisites[skill]
        if cur.items.get(p)
    )


def _zone_fit(p: float, cfg: PolicyConfig) -> float:
    low, high = cfg.zone
    gap = max(low - p, p - high, 0.0)
    return max(math.exp(-((gap / cfg.zone_width) ** 2)), cfg.zone_floor)


def _candidates(
    options: Sequence[ItemOption], state: LearnerState, cfg: PolicyConfig, skill: str, review: bool
) -> list[ItemOption]:
    """The skill's items that may be shown now.

    An item answered in the last ``repeat_gap`` answers (its key was shown in the feedback)
    waits, unless every item of the skill has been answered that recently; then the one
    answered longest ago comes back. Items of a kind the learner has not met on the skill come
    first once the skill's answers reach ``kinds_by`` less the kinds still unmet (or, when set,
    ``kinds_after``), so every kind a skill has is met within its first ``kinds_by`` answers
    without sending a learner who proves the skill sooner through slow kinds the evidence
    rule does not ask for."""
    family = {o.item_id: o.family_id for o in options}
    # a family of generated variants shares the rule: a variant's key shows its siblings' too
    recent = [family.get(item, item) for item in state.recent_items[: cfg.repeat_gap]]
    fresh = [o for o in options if o.family_id not in recent]
    if not fresh:
        last_seen = {fam: i for i, fam in reversed(list(enumerate(recent)))}
        oldest = max(last_seen.get(o.family_id, len(recent)) for o in options)
        fresh = [o for o in options if last_seen.get(o.family_id, len(recent)) == oldest]
    if not review:
        ev = state.evidence.get(skill)
        seen = ev.seen_kinds if ev is not None else frozenset()
        unmet = [o for o in fresh if o.kind not in seen]
        attempts = state.attempts.get(skill, 0)
        due = cfg.kinds_by - len({o.kind for o in options if o.kind not in seen})
        if unmet and (attempts >= due or (cfg.kinds_after is not None and attempts >= cfg.kinds_after)):
            return unmet
    return fresh


def _pick_item(
    options: Sequence[ItemOption],
    p_skill: float,
    state: LearnerState,
    cfg: PolicyConfig,
    review: bool,
    skill: str = "",
    gain: Callable[[ItemOption], float] | None = None,
) -> tuple[ItemOption, float, float]:
    """The skill's best item: (option, predicted success, value per minute).

    The value of an item is what its answer is expected to save (``gain``: evidence and
    learning, so a slow item that tells much can beat quick ones that tell little) times its
    fit to the success zone, per minute; without ``gain`` every item is worth the same."""
    best: tuple[float, ItemOption, float, float] | None = None
    skill_logit = logit(p_skill)
    for option in _candidates(options, state, cfg, skill, review):
        p = sigmoid(skill_logit - option.difficulty)
        quality = _zone_fit(p, cfg)
        if not review:
            quality /= 1.0 + 0.5 * state.answered.get(option.item_id, 0)
        worth = gain(option) if gain is not None else 1.0
        score = max(worth, 0.0) * quality / option.minutes
        if gain is not None and worth <= 1e-9:
            score = -1e-9 / option.minutes  # never better than an item that helps
        # ties go to the smaller id, so the choice does not depend on the order of the bank
        if best is None or score > best[0] or (score == best[0] and option.item_id < best[1].item_id):
            best = (score, option, p, quality)
    assert best is not None
    return best[1], best[2], best[0]


def toward_target(cur: Curriculum, state: LearnerState, skill: str) -> str | None:
    """The nearest unfinished role target this skill leads to (itself included)."""
    order = {s: i for i, s in enumerate(cur.skills)}
    open_targets = [
        (n, order[t], t)
        for t, n in cur.downstream[skill].items()
        if t in cur.role_targets and mastery_or_prior(cur, state, t) < cur.targets[t]
    ]
    if open_targets:
        return min(open_targets)[2]
    return skill if skill in cur.role_targets else None


def _prerequisites_known(
    cur: Curriculum, state: LearnerState, skill: str, changed: str = "", changed_to: float = 0.0
) -> float:
    """P(every practicable prerequisite is known), as if ``changed`` had mastery ``changed_to``."""
    q = 1.0
    for pre in cur.graph.prerequisites[skill]:
        if cur.items.get(pre):
            q *= changed_to if pre == changed else mastery_or_prior(cur, state, pre)
    return q


def expected_gain(
    cur: Curriculum,
    state: LearnerState,
    cfg: PolicyConfig,
    targets: Mapping[str, float],
    skill: str,
    option: ItemOption | None = None,
) -> tuple[float, float]:
    """(expected answers saved toward the role by one answer on ``skill``, P(correct)).

    Answers still needed are :func:`expected_items_to_target`, learning only as fast as the
    prerequisites are believed known (mastery learning: a skill is learnt on top of its
    prerequisites), and never fewer than a role target's evidence still asks for
    (:func:`evidence_answers`). One answer moves the skill's estimate (BKT, Corbett &
    Anderson 1995, with the item's guess rate and the bounded step of
    ``science/evidence.py``; right or wrong with the predicted chance of each) and, on
    ``option``, adds to the evidence (a new item, its kind, evidence against guessing), so it
    saves answers on the skill itself and on every unfinished skill waiting for it; it also
    makes a fading skill retrievable again, saving the expected cost of relearning it ((1 - R
    / desired retention) times the answers a new start needs). On a finished skill the first
    term is a cost: a wrong answer, likelier as the skill fades, drops the estimate below
    target again, so a review is worth its answer only once forgetting costs more than that
    risk. Without ``option`` the answer is on an average item and adds no evidence.
    """
    return _SkillGain(cur, state, cfg, targets, skill).of(option)


class _SkillGain:
    """:func:`expected_gain` of one skill in one state, its parts computed once: what does not
    depend on the item (the answers the skill and its unfinished dependants need now), what
    depends on its guess rate only (P(correct), the estimate after a right or a wrong answer,
    what the dependants need then), and per item the evidence its answer adds. The sums are
    formed in the same order as one evaluation would, so the values are the same bits."""

    def __init__(
        self,
        cur: Curriculum,
        state: LearnerState,
        cfg: PolicyConfig,
        targets: Mapping[str, float],
        skill: str,
    ) -> None:
        self.cur, self.state, self.cfg, self.skill = cur, state, cfg, skill
        self.params = params = cur.params(skill)
        self.est = est = _estimate_params(cur, skill)
        self.m = m = mastery_or_prior(cur, state, skill)
        self.r = r = _retrievability(state, cfg, skill)
        self.target = target = targets[skill]
        self.q = _prerequisites_known(cur, state, skill)
        self.ev = ev = state.evidence.get(skill) or SkillEvidence()
        self.role_target = skill in cur.role_targets
        self.need = _EvidenceNeed.of(cur, cfg, skill)
        self.now = self._remaining(m, ev, m)
        self.forgetting = max(0.0, 1.0 - r / cfg.desired_retention) * expected_items_to_target(
            params.p_init, target, est, max_step=cfg.max_step
        )
        #: the unfinished dependants (:class:`_Waiting`) and the answers each needs now
        self.dependants: list[tuple[_Waiting, float]] = []
        for dependant in cur.graph.dependants[skill]:
            if dependant not in targets or skill_met(cur, state, cfg, dependant, targets[dependant]):
                continue
            waiting = _Waiting(cur, state, cfg, targets[dependant], dependant, skill)
            self.dependants.append((waiting, waiting(m)))
        self._guessed: dict[float, tuple[float, float, float, float, float, list[tuple[float, float]]]] = {}
        self._saved: dict[object, tuple[float, float]] = {}

    def _remaining(self, x: float, e: SkillEvidence, knows: float) -> float:
        need, cfg = self.need, self.cfg
        return expected_items_to_target(
            x,
            self.target,
            self.est,
            prerequisites_known=self.q,
            gate=cfg.prerequisite_gate,
            evidence=0.0 if need is None else need.answers(e),
            fresh_evidence=0.0 if need is None else need.answers(e, fresh=True),
            max_step=cfg.max_step,
            p_known=knows,
        )

    def _by_guess(self, guess: float) -> tuple[float, float, float, float, float, list[tuple[float, float]]]:
        hit = self._guessed.get(guess)
        if hit is None:
            m, params, cfg = self.m, self.params, self.cfg
            p_correct = bkt_predict(m * self.r, replace(params, p_guess=guess))
            right = mastery_step(m, True, params, guess, cfg.max_step)
            wrong = mastery_step(m, False, params, guess, cfg.max_step)
            # the belief that the learner knows the skill after the answer is the unbounded
            # posterior; the bounded step only moves the estimate (how many right answers still
            # lift it to the target). Weighting by the bounded estimate instead would make every
            # answer on a hard-to-guess item look like lost progress: its right answer's rise is
            # capped, its wrong answer's fall is not, and the policy would avoid the strongest
            # evidence.
            knows_right = mastery_step(m, True, params, guess, 1.0)
            knows_wrong = mastery_step(m, False, params, guess, 1.0)
            after = [(waiting(right), waiting(wrong)) for waiting, _now in self.dependants]
            hit = self._guessed[guess] = (p_correct, right, wrong, knows_right, knows_wrong, after)
        return hit

    def of(self, option: ItemOption | None = None) -> tuple[float, float]:
        """(expected answers saved by one answer on ``option``, or on an average item, P(correct)).
        Items alike in guess rate and, on a role target, in novelty and kind (what their answer
        adds to the evidence) are worth the same answer: computed once."""
        guess = option.guess if option is not None and option.guess is not None else self.est.p_guess
        key: object = guess
        if option is not None and self.role_target:
            key = (guess, option.family_id in self.ev.families, option.kind)
        hit = self._saved.get(key)
        if hit is None:
            hit = self._saved[key] = self._of(option, guess)
        return hit

    def _of(self, option: ItemOption | None, guess: float) -> tuple[float, float]:
        p_correct, right, wrong, knows_right, knows_wrong, after = self._by_guess(guess)
        ev = self.ev
        ev_right = ev_wrong = ev
        if option is not None and self.role_target:
            params = self.params
            ev_right = ev.fold(
                family=option.family_id, kind=option.kind, correct=True, params=params, guess=guess
            )
            ev_wrong = ev.fold(
                family=option.family_id, kind=option.kind, correct=False, params=params, guess=guess
            )
        saved = (
            self.now
            - p_correct * self._remaining(right, ev_right, knows_right)
            - (1 - p_correct) * self._remaining(wrong, ev_wrong, knows_wrong)
        )
        saved += self.forgetting
        for (_waiting_for, waiting_now), (waiting_right, waiting_wrong) in zip(
            self.dependants, after, strict=True
        ):
            saved += waiting_now - p_correct * waiting_right - (1 - p_correct) * waiting_wrong
        return saved, p_correct


class _Waiting:
    """Answers ``dependant`` still needs if ``prerequisite`` had a given mastery (called with
    it), what does not depend on that mastery read once."""

    __slots__ = ("before", "after", "m", "target", "est", "gate", "need", "max_step")

    def __init__(
        self,
        cur: Curriculum,
        state: LearnerState,
        cfg: PolicyConfig,
        target: float,
        dependant: str,
        prerequisite: str,
    ) -> None:
        #: the practicable prerequisites' mastery before and after ``prerequisite`` in the
        #: graph's order (``after`` None: it is not among them)
        before: list[float] = []
        after: list[float] | None = None
        for pre in cur.graph.prerequisites[dependant]:
            if cur.items.get(pre):
                if pre == prerequisite:
                    after = []
                else:
                    (before if after is None else after).append(mastery_or_prior(cur, state, pre))
        self.before, self.after = before, after
        self.m = mastery_or_prior(cur, state, dependant)
        self.target, self.est = target, _estimate_params(cur, dependant)
        self.gate, self.max_step = cfg.prerequisite_gate, cfg.max_step
        self.need = evidence_answers(cur, state, cfg, dependant)

    def __call__(self, prerequisite_mastery: float) -> float:
        q = 1.0
        for value in self.before:
            q *= value
        if self.after is not None:
            q *= prerequisite_mastery
            for value in self.after:
                q *= value
        return expected_items_to_target(
            self.m,
            self.target,
            self.est,
            prerequisites_known=q,
            gate=self.gate,
            evidence=self.need,
            max_step=self.max_step,
        )


def prerequisite_posterior(outcomes: Sequence[bool], prior: float, params: BKTParams, gate: float) -> float:
    """P(every prerequisite of a skill is known | the skill's own answers).

    A two-factor hidden Markov model: Q (prerequisites known, fixed over the window) and K
    (the skill known, BKT). K is learnt with P(T) when Q holds and with ``gate`` P(T) when it
    does not (mastery learning's premise, as in the prerequisite-gated dynamic Bayesian
    networks of Kaser et al. 2014); answers depend on K alone. Many answers on a skill that
    stays unlearnt are likelier without the prerequisites, so the posterior of Q falls and
    the policy goes back to them. Exact forward filtering over the four joint states.
    """
    if not outcomes or prior <= 0.0 or prior >= 1.0:
        return prior
    g, s, t = params.p_guess, params.p_slip, params.p_learn
    # joint probabilities of (Q, K): [Q=1 K=1, Q=1 K=0, Q=0 K=1, Q=0 K=0]
    k0 = params.p_init
    a, b, c, d = prior * k0, prior * (1 - k0), (1 - prior) * k0, (1 - prior) * (1 - k0)
    for right in outcomes:
        e1, e0 = (1 - s, g) if right else (s, 1 - g)
        a, b, c, d = a * e1, b * e0, c * e1, d * e0
        total = a + b + c + d
        if total <= 0.0:
            return prior
        a, b, c, d = a / total, b / total, c / total, d / total
        a, b = a + b * t, b * (1 - t)
        c, d = c + d * t * gate, d * (1 - t * gate)
    return a + b


def effective_mastery(cur: Curriculum, state: LearnerState, cfg: PolicyConfig) -> dict[str, float]:
    """Mastery with each skill's prerequisites revised by the answers on the skills needing them.

    For every unfinished skill with answers, the belief that all its (practicable)
    prerequisites are known, q = prod m_p, is updated to q' by :func:`prerequisite_posterior`;
    each prerequisite then becomes P(known | q') = q' + (1 - q') (m_p - q) / (1 - q), the
    exact marginal under independent priors. A prerequisite keeps the lowest value any of
    its dependants gives it. Skills not revised keep their own estimate, and so does a
    prerequisite whose own answers are strong evidence that it is known (a CUSUM at the
    evidence threshold): its bounded mastery could never rise past the doubt, and practising
    it again would repeat forever."""
    mastery = {s: mastery_or_prior(cur, state, s) for s in cur.skills}
    if not cfg.diagnose_prerequisites:
        return mastery
    revised = dict(mastery)
    for skill in cur.skills:
        history = state.history.get(skill)
        if not history or mastery[skill] >= cur.targets[skill]:
            continue
        # a prerequisite proven by its own answers (evidence against guessing at the target's
        # bar) is taken as known: the doubt falls on the others
        pres = [
            p
            for p in cur.graph.prerequisites[skill]
            if cur.items.get(p) and _own_evidence(state, p) < cfg.evidence.threshold
        ]
        if not pres:
            continue
        q = math.prod(mastery[p] for p in pres)
        if q >= 1.0 or q <= 0.0:
            continue
        window = history[-cfg.history_window :]
        q_post = prerequisite_posterior(window, q, cur.params(skill), cfg.prerequisite_gate)
        if q_post >= q:
            continue
        for p in pres:
            m = q_post + (1 - q_post) * (mastery[p] - q) / (1 - q)
            revised[p] = min(revised[p], m)
    return revised


def _own_evidence(state: LearnerState, skill: str) -> float:
    ev = state.evidence.get(skill)
    return ev.cusum if ev is not None else 0.0


def lesson_due(cur: Curriculum, state: LearnerState, cfg: PolicyConfig, skill: str) -> bool:
    """Whether the skill's lesson comes before its next item: lessons on, the skill has one the
    learner has not read, and either no answer yet (``lesson_when="first"``) or, by default,
    the skill's first ``lesson_after`` answers all wrong (and no more than ``lesson_probe``
    answers so far). A learner with a right answer among them is offered the lesson (the
    practice page links it), not sent to it: reading it costs minutes the answers show they
    do not need, and one wrong answer is often a slip or an unlucky first item."""
    lessons = cur.lessons.get(skill, ())
    if not cfg.lessons or not lessons or any(x.lesson_id in state.lessons_seen for x in lessons):
        return False
    attempts = state.attempts.get(skill, 0)
    if cfg.lesson_when == "first":
        return not attempts
    history = state.history.get(skill, ())
    return (
        cfg.lesson_after <= attempts <= max(cfg.lesson_probe, cfg.lesson_after)
        and len(history) == attempts
        and not any(history)
        and lesson_pays(cur, state, cfg, skill)
    )


def lesson_value(cur: Curriculum, state: LearnerState, cfg: PolicyConfig, skill: str) -> tuple[float, float]:
    """(answers the skill's lesson is expected to save per minute of reading it, answers the
    best item the skill could show now saves per minute of answering it), in the unit of
    :func:`expected_gain`. The lesson teaches with ``cfg.lesson_learn`` (gated while a
    prerequisite is believed missing): P(known) rises from m to m + (1 - m) that much, so the
    skill and every unfinished skill waiting for it need fewer answers; it adds no evidence
    and does not move the estimate, which only answers do. The item is valued as
    :func:`choose_activity` values it, without the success zone's fit."""
    lessons = cur.lessons.get(skill, ())
    options = cur.items.get(skill, ())
    if not lessons or not options or cfg.lesson_learn is None:
        return math.inf, 0.0
    parts = _SkillGain(cur, state, cfg, working_targets(cur, state, cfg), skill)
    teach = cfg.lesson_learn * (parts.q + (1 - parts.q) * cfg.prerequisite_gate)
    knows = parts.m + (1 - parts.m) * min(max(teach, 0.0), 1.0)
    saved = parts.now - parts._remaining(parts.m, parts.ev, knows)
    for waiting, now in parts.dependants:
        saved += now - waiting(knows)
    minutes = min(x.minutes for x in lessons)
    item = max(parts.of(o)[0] / o.minutes for o in _candidates(options, state, cfg, skill, review=False))
    return saved / max(minutes, 1e-9), item


def lesson_pays(cur: Curriculum, state: LearnerState, cfg: PolicyConfig, skill: str) -> bool:
    """Whether the skill's lesson is worth its minutes now (:func:`lesson_value`): always
    where ``cfg.lesson_learn`` is None."""
    if cfg.lesson_learn is None:
        return True
    lesson, item = lesson_value(cur, state, cfg, skill)
    return lesson >= item


def choose_activity(cur: Curriculum, state: LearnerState, cfg: PolicyConfig | None = None) -> Activity | None:
    """The next activity by expected progress per minute; None when no skill has items."""
    cfg = cfg or PolicyConfig()
    doubted: set[str] = set()
    if cfg.diagnose_prerequisites and state.history:
        own_targets = working_targets(cur, state, cfg)
        revised = effective_mastery(cur, state, cfg)
        doubted = {
            s
            for s in cur.skills
            if mastery_or_prior(cur, state, s) >= own_targets[s]
            and revised[s] < mastery_or_prior(cur, state, s)
        }
        state = replace(state, mastery=revised)
    targets = working_targets(cur, state, cfg)
    streak = (
        state.recent_skills[0]
        if len(state.recent_skills) >= cfg.max_streak and len(set(state.recent_skills[: cfg.max_streak])) == 1
        else None
    )
    best: tuple[float, int, str, ItemOption, float, bool] | None = None
    stuck: tuple[float, int, str, ItemOption, float, bool] | None = None
    order = {s: i for i, s in enumerate(cur.skills)}
    for skill in cur.skills:
        options = cur.items.get(skill)
        if not options:
            continue
        finished = skill_met(cur, state, cfg, skill, targets[skill])
        if not finished and not is_open(cur, state, cfg, skill):
            continue
        parts = _SkillGain(cur, state, cfg, targets, skill)
        _gain, p_skill = parts.of()
        fading = finished and _retrievability(state, cfg, skill) < cfg.desired_retention
        if skill in state.p_correct and skill not in doubted:
            p_skill = state.p_correct[skill]

        def gain(
            option: ItemOption,
            parts: _SkillGain = parts,
        ) -> float:
            return parts.of(option)[0]

        option, p_item, value = _pick_item(
            options, p_skill, state, cfg, review=fading, skill=skill, gain=gain
        )
        if value <= 1e-12:
            # no item of an unfinished skill looks worth its minutes now (every one left is a
            # kind that must come, or was just shown): it is still practised before any
            # maintenance, the skill whose average answer saves most first
            if not finished and (stuck is None or (_gain, -order[skill]) > (stuck[0], stuck[1])):
                stuck = (_gain, -order[skill], skill, option, p_item, finished)
            continue
        if skill == streak:
            value *= cfg.streak_discount
        if best is None or (value, -order[skill]) > (best[0], best[1]):
            best = (value, -order[skill], skill, option, p_item, finished)
    if best is None and stuck is not None:
        best = (0.0, *stuck[1:])
    if best is None:
        return _maintain(cur, state, cfg)
    value, _, skill, option, p_item, finished = best
    toward = toward_target(cur, state, skill)
    if finished and _retrievability(state, cfg, skill) < cfg.desired_retention:
        return Activity(
            kind="review",
            skill_id=skill,
            reason="review",
            toward=toward,
            item_id=option.item_id,
            predicted_success=p_item,
            progress_per_minute=value,
        )
    lessons = cur.lessons.get(skill, ())
    if (
        not finished  # a finished skill chosen while fresh is firmed up for the skills waiting on it
        and lessons
        and lesson_due(cur, state, cfg, skill)
    ):
        lesson = min(lessons, key=lambda x: (x.minutes, x.lesson_id))
        return Activity(
            kind="lesson",
            skill_id=skill,
            reason="lesson",
            toward=toward,
            item_id=option.item_id,
            lesson_id=lesson.lesson_id,
            predicted_success=p_item,
            progress_per_minute=value,
        )
    return Activity(
        kind="practice",
        skill_id=skill,
        # met on its own answers, but the skills needing it are failing: check it again
        reason="revisit" if skill in doubted and not finished else "next_step",
        toward=toward,
        item_id=option.item_id,
        predicted_success=p_item,
        progress_per_minute=value,
    )


def choose_in_skill(
    cur: Curriculum, state: LearnerState, skill: str, cfg: PolicyConfig | None = None
) -> Activity | None:
    """The best item of one skill the learner chose to practise ("Practise this skill" on the
    skill page), whatever the skill's place in the path: the policy's own item choice (the
    success zone, items not shown lately, time per item); None when the skill has no items."""
    cfg = cfg or PolicyConfig()
    options = cur.items.get(skill)
    if not options:
        return None
    targets = working_targets(cur, state, cfg)
    _gain, p_skill = expected_gain(cur, state, cfg, targets, skill)
    if skill in state.p_correct:
        p_skill = state.p_correct[skill]
    option, p_item, value = _pick_item(options, p_skill, state, cfg, review=False, skill=skill)
    return Activity(
        kind="practice",
        skill_id=skill,
        reason="chosen",
        toward=toward_target(cur, state, skill),
        item_id=option.item_id,
        predicted_success=p_item,
        progress_per_minute=value,
    )


def _maintain(cur: Curriculum, state: LearnerState, cfg: PolicyConfig) -> Activity | None:
    """Every target met and fresh: keep the skill most at risk fresh."""
    candidates = [s for s in cur.skills if cur.items.get(s)]
    if not candidates:
        return None

    def at_risk(skill: str) -> tuple[float, str]:
        m, r = mastery_or_prior(cur, state, skill), _retrievability(state, cfg, skill)
        return m * r - cur.targets[skill], skill

    skill = min(candidates, key=at_risk)
    p_skill = bkt_predict(
        mastery_or_prior(cur, state, skill) * _retrievability(state, cfg, skill), cur.params(skill)
    )
    option, p_item, _ = _pick_item(cur.items[skill], p_skill, state, cfg, review=True, skill=skill)
    return Activity(
        kind="review",
        skill_id=skill,
        reason="maintain",
        toward=None,
        item_id=option.item_id,
        predicted_success=p_item,
    )


# -- answers still needed (the policy's and the path planner's unit of progress) ----------


def _correct_run(m: float, target: float, params: BKTParams, cap: int, max_step: float) -> int:
    n = 0
    while m < target and n < cap:
        m = mastery_step(m, True, params, max_step=max_step)
        n += 1
    return n


@lru_cache(maxsize=512)
def _wrong_floor(params: BKTParams, max_step: float) -> float:
    """The estimate a long run of wrong answers settles at."""
    floor = params.p_init
    for _ in range(30):
        floor = mastery_step(floor, False, params, max_step=max_step)
    return floor


@lru_cache(maxsize=4096)
def _runs(m: float, target: float, params: BKTParams, cap: int, max_step: float) -> tuple[int, int]:
    return (
        _correct_run(m, target, params, cap, max_step),
        _correct_run(_wrong_floor(params, max_step), target, params, cap, max_step),
    )


def expected_items_to_target(
    m: float,
    target: float,
    params: BKTParams,
    *,
    prerequisites_known: float = 1.0,
    gate: float = 0.25,
    cap: int = 100,
    evidence: float = 0.0,
    max_step: float = MAX_STEP,
    fresh_evidence: float | None = None,
    p_known: float | None = None,
) -> float:
    """Answers until mastery reaches ``target`` with the evidence a target needs.

    A learner who knows the skill (probability ``m``) needs the run of right answers that
    lifts the estimate there (bounded steps, :func:`~learnloop.science.evidence.mastery_step`),
    and at least the ``evidence`` answers the target still asks for (``fresh_evidence`` for one
    who has yet to learn it: their evidence against guessing starts again). One who does not first
    needs about 1 / P(T) attempts to learn it, or 1 / (``gate`` P(T)) while a prerequisite is
    missing (probability ``1 - prerequisites_known``), with the estimate near its floor
    meanwhile. Linear in both probabilities, so learning more about a learner never looks like
    lost progress. ``p_known``: the probability that the learner knows the skill when it is not
    the estimate ``m`` itself (after a bounded step, the unbounded posterior); ``m`` then only
    sets how far the estimate still has to rise.
    """
    if m >= target and evidence <= 0.0:
        return 0.0
    known_run, fresh_run = _runs(round(m, 6), target, params, cap, max_step)
    later = evidence if fresh_evidence is None else fresh_evidence
    known, fresh = max(float(known_run), evidence), max(float(fresh_run), later)
    if m >= target:
        return float(min(known, cap))
    rate = max(params.p_learn, 1.0 / cap)
    learn = prerequisites_known / rate + (1 - prerequisites_known) / (rate * gate)
    k = m if p_known is None else p_known
    return float(min(k * known + (1 - k) * (learn + fresh), cap))
