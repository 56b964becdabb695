"""Mastery from evidence: per-item emission, bounded updates, and when a target counts as met.

Three pieces, used alike by the live mastery service, the practice policy, the path planner
and the simulated learners, so that what decides "met" is also what estimates the way there.

- **Per-item guessing.** An item's chance of a right answer without the skill depends on its
  kind: 1/options for a choice item, small for a number, a free text or a program
  (:data:`KIND_GUESS`). The skill's slip and learning rate stay the skill's (fitted from the
  organisation's log when it is large enough, else the defaults).
- **Bounded steps.** One answer moves P(known) by at most :data:`MAX_STEP` (0.25) either way
  (:func:`mastery_step`), so two lucky clicks cannot carry a new skill past a target and one
  slip cannot wipe out a skill; and it stays within [0.01, 0.99], so a wrong answer of any
  kind lowers it.
- **Evidence for a target** (:class:`EvidenceRule`, :func:`target_gaps`). P(known) at or above
  the target is necessary, not sufficient: the learner also needs right answers on at least
  ``min_items`` distinct items (a family of generated variants counts once), a right answer
  to a text or code item where the skill has enabled ones, a recent right answer, and
  evidence against guessing that survives the number of tries. The last is a CUSUM of the
  answers' log-likelihood ratios, known (right with 1 - slip) against guessing (right with
  the item's guess rate), reset at zero (Page 1954): a learner who knows the skill climbs
  it quickly, one who guesses drifts to zero, and a run of lucky answers has to beat a
  threshold that grows with the tries (false alarm rate about tries / e^threshold under
  guessing, Lorden 1971).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field, replace

from learnloop.science.kt.bkt import BKTParams, bkt_update

#: the largest change of P(known) one answer may cause, either way
MAX_STEP = 0.25
#: P(known) stays within these bounds: never certain either way, so a wrong answer always
#: lowers it visibly (BKT alone sticks at 1: a wrong answer from 0.9999 leaves 0.999)
FLOOR, CEILING = 0.01, 0.99
#: chance of a right answer without the skill, by item kind (choice items: 1 / options)
KIND_GUESS: dict[str, float] = {"numeric": 0.05, "text": 0.1, "code": 0.02}
#: item kinds whose right answer a learner produces rather than recognises
OPEN_KINDS = frozenset({"text", "code"})


def item_guess(kind: str, options: int | None = None) -> float | None:
    """The guess rate of one item from its kind (None: the skill's own)."""
    if kind == "choice":
        return 1.0 / options if options and options >= 2 else None
    return KIND_GUESS.get(kind)


def with_guess(params: BKTParams, guess: float | None) -> BKTParams:
    """The skill's parameters with an item's guess rate (kept below 1 - slip)."""
    if guess is None:
        return params
    return replace(params, p_guess=min(guess, max(0.0, 1.0 - params.p_slip - 0.05)))


def mastery_step(
    p_known: float, correct: bool, params: BKTParams, guess: float | None = None, max_step: float = MAX_STEP
) -> float:
    """P(known) after one answer: BKT (Corbett & Anderson 1995) with the item's guess rate,
    the change bounded by ``max_step``."""
    after = bkt_update(p_known, correct, with_guess(params, guess))
    if not math.isfinite(after):
        return p_known
    after = min(max(after, p_known - max_step), p_known + max_step)
    return min(max(after, FLOOR), CEILING)


def log_likelihood_ratio(correct: bool, params: BKTParams, guess: float | None = None) -> float:
    """log P(answer | known) / P(answer | guessing) for one answer."""
    s = min(max(params.p_slip, 1e-3), 0.999)
    g = params.p_guess if guess is None else min(guess, max(0.0, 1.0 - params.p_slip - 0.05))
    g = min(max(g, 1e-3), 0.999)
    return math.log((1 - s) / g) if correct else math.log(s / (1 - g))


@dataclass(frozen=True)
class EvidenceRule:
    """When P(known) at or above a target counts as met."""

    #: right answers on this many distinct items (variant families once)
    min_items: int = 4
    #: a right answer to a text or code item, where the skill has enabled ones
    need_open_kind: bool = True
    #: the newest right answer on the skill is at most this old (days; 0: no limit)
    max_age_days: float = 180.0
    #: CUSUM of log-likelihood ratios (known vs guessing) needed (nats)
    threshold: float = 10.0


@dataclass(frozen=True)
class SkillEvidence:
    """What backs one learner's mastery of one skill (folded answer by answer)."""

    #: distinct items (variant families) answered right
    families: frozenset[str] = frozenset()
    #: kinds of the items answered right
    kinds: frozenset[str] = frozenset()
    #: kinds of every item answered (right or wrong)
    seen_kinds: frozenset[str] = frozenset()
    #: CUSUM of the answers' log-likelihood ratios, known vs guessing (nats, >= 0)
    cusum: float = 0.0
    #: seconds since the epoch of the newest right answer (None: none yet)
    last_right_at: float | None = None
    answers: int = 0
    rights: int = 0
    #: the running CUSUM's largest value (for display)
    peak: float = field(default=0.0, compare=False)

    def fold(
        self,
        *,
        family: str,
        kind: str,
        correct: bool,
        params: BKTParams,
        guess: float | None,
        at: float | None = None,
    ) -> SkillEvidence:
        cusum = max(0.0, self.cusum + log_likelihood_ratio(correct, params, guess))
        return SkillEvidence(
            families=self.families | {family} if correct else self.families,
            kinds=self.kinds | {kind} if correct else self.kinds,
            seen_kinds=self.seen_kinds | {kind},
            cusum=cusum,
            last_right_at=(at if at is not None else self.last_right_at) if correct else self.last_right_at,
            answers=self.answers + 1,
            rights=self.rights + int(correct),
            peak=max(self.peak, cusum),
        )


#: the reasons a target with enough P(known) is not yet met, in the order they are shown
GAPS = ("mastery", "items", "open_kind", "evidence", "stale")


def target_gaps(
    p_known: float,
    target: float,
    evidence: SkillEvidence | None,
    rule: EvidenceRule,
    skill_kinds: Collection[str],
    now: float | None = None,
    available: int | None = None,
) -> list[str]:
    """Why a target is not met (empty: met). Codes from :data:`GAPS`. ``available``: the
    distinct items (families) the skill has, when it has fewer than ``min_items``."""
    ev = evidence or SkillEvidence()
    gaps = []
    if p_known < target:
        gaps.append("mastery")
    if len(ev.families) < min(rule.min_items, available if available is not None else rule.min_items):
        gaps.append("items")
    if rule.need_open_kind and OPEN_KINDS & set(skill_kinds) and not OPEN_KINDS & ev.kinds:
        gaps.append("open_kind")
    if ev.cusum < rule.threshold:
        gaps.append("evidence")
    if (
        rule.max_age_days > 0
        and now is not None
        and ev.last_right_at is not None
        and now - ev.last_right_at > rule.max_age_days * 86400
    ):
        gaps.append("stale")
    return gaps


def target_met(
    p_known: float,
    target: float,
    evidence: SkillEvidence | None,
    rule: EvidenceRule,
    skill_kinds: Collection[str],
    now: float | None = None,
    available: int | None = None,
) -> bool:
    return not target_gaps(p_known, target, evidence, rule, skill_kinds, now, available)


def next_answer_range(
    p_known: float, params: BKTParams, guesses: Iterable[float | None]
) -> tuple[float, float]:
    """The lowest and highest P(known) one more answer (on any of the skill's items) could
    give: how far the estimate may still move, shown as its uncertainty."""
    lows, highs = [], []
    for guess in list(guesses) or [None]:
        lows.append(mastery_step(p_known, False, params, guess))
        highs.append(mastery_step(p_known, True, params, guess))
    return min(lows), max(highs)
