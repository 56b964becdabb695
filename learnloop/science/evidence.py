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
from functools import lru_cache
from typing import Any

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
    return _with_guess(params, guess)


@lru_cache(maxsize=4096)
def _with_guess(params: BKTParams, guess: float) -> BKTParams:
    # cached: the policy asks for the same few (skill, guess) pairs thousands of times a choice,
    # and a dataclass copy costs more than the BKT step itself
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


#: the version of :meth:`SkillEvidence.to_json`
EVIDENCE_VERSION = 1


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

    @property
    def n_items(self) -> int:
        """Distinct items (variant families) answered right."""
        return len(self.families)

    @property
    def open_right(self) -> bool:
        """Whether a text or code item was answered right."""
        return bool(OPEN_KINDS & self.kinds)

    def to_json(self) -> dict[str, Any]:
        """The stored form (``mastery.evidence``), versioned."""
        return {
            "v": EVIDENCE_VERSION,
            "families": sorted(self.families),
            "kinds": sorted(self.kinds),
            "seen_kinds": sorted(self.seen_kinds),
            "cusum": self.cusum,
            "peak": self.peak,
            "last_right_at": self.last_right_at,
            "answers": self.answers,
            "rights": self.rights,
        }

    @classmethod
    def from_json(cls, data: Any) -> SkillEvidence | None:
        """The stored form read back; None when it is missing or of another version (the
        caller folds the log again)."""
        if not isinstance(data, dict) or data.get("v") != EVIDENCE_VERSION:
            return None
        last = data.get("last_right_at")
        return cls(
            families=frozenset(str(f) for f in data.get("families", ())),
            kinds=frozenset(str(k) for k in data.get("kinds", ())),
            seen_kinds=frozenset(str(k) for k in data.get("seen_kinds", ())),
            cusum=float(data.get("cusum", 0.0)),
            last_right_at=None if last is None else float(last),
            answers=int(data.get("answers", 0)),
            rights=int(data.get("rights", 0)),
            peak=float(data.get("peak", 0.0)),
        )

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


def gap_tests(
    p_known: Any,
    target: Any,
    n_items: Any,
    open_right: Any,
    cusum: Any,
    last_right_at: Any,
    *,
    need_items: Any,
    needs_open: Any,
    rule: EvidenceRule,
    now: float | None,
) -> dict[str, Any]:
    """Each gap of :data:`GAPS` as a test, true where the gap is there: the rule, written once
    for one learner's skill (numbers) and for a whole team (numpy arrays, element-wise).

    ``n_items``: distinct items answered right; ``open_right``: a text or code item answered
    right; ``last_right_at``: POSIX seconds of the newest right answer, NaN for none;
    ``need_items``: the distinct items the target needs (``min_items``, or fewer where the
    skill has fewer); ``needs_open``: the rule asks for a text or code item and the skill has
    one."""
    age_limit = rule.max_age_days * 86400
    moment = math.nan if now is None or rule.max_age_days <= 0 else now
    return {
        "mastery": p_known < target,
        "items": n_items < need_items,
        "open_kind": needs_open & (open_right == 0),
        "evidence": cusum < rule.threshold,
        "stale": (moment - last_right_at) > age_limit,  # NaN (no limit, no right answer): False
    }


def needs(rule: EvidenceRule, skill_kinds: Collection[str], available: int | None) -> tuple[int, bool]:
    """What a skill's target needs under ``rule``: distinct items, and whether a text or code
    item (the skill's kinds; its distinct items when it has fewer than ``min_items``)."""
    items = min(rule.min_items, available if available is not None else rule.min_items)
    return items, bool(rule.need_open_kind and OPEN_KINDS & set(skill_kinds))


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
    need_items, needs_open = needs(rule, skill_kinds, available)
    tests = gap_tests(
        p_known,
        target,
        ev.n_items,
        ev.open_right,
        ev.cusum,
        math.nan if ev.last_right_at is None else ev.last_right_at,
        need_items=need_items,
        needs_open=needs_open,
        rule=rule,
        now=now,
    )
    return [gap for gap in GAPS if tests[gap]]


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
