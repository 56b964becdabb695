"""Mastery from evidence: per-item guessing, bounded steps, and the evidence a target needs."""

from __future__ import annotations

import random

from learnloop.science.evidence import (
    EvidenceRule,
    SkillEvidence,
    item_guess,
    mastery_step,
    target_gaps,
)
from learnloop.science.kt.bkt import BKTParams
from learnloop.science.policy import (
    ItemOption,
    LearnerState,
    PolicyConfig,
    build_curriculum,
    choose_activity,
    skill_met,
)

PARAMS = BKTParams()


def test_guess_rate_comes_from_the_item_kind() -> None:
    assert item_guess("choice", 4) == 0.25 and item_guess("choice", 2) == 0.5
    assert item_guess("code") is not None and item_guess("code") < item_guess("numeric") < 0.25  # type: ignore[operator]
    assert item_guess("choice", None) is None


def test_two_lucky_choices_do_not_carry_a_new_skill_past_a_target() -> None:
    m = PARAMS.p_init
    for _ in range(2):
        after = mastery_step(m, True, PARAMS, item_guess("choice", 4))
        assert after - m <= 0.25 + 1e-12
        m = after
    assert m < 0.8


def test_no_answer_moves_mastery_by_more_than_a_quarter() -> None:
    rng = random.Random(0)
    for _ in range(2000):
        m = rng.random()
        guess = rng.choice([None, 0.02, 0.05, 0.1, 0.25, 0.5])
        after = mastery_step(m, rng.random() < 0.5, PARAMS, guess)
        assert abs(after - m) <= 0.25 + 1e-12 and 0.0 <= after <= 1.0


def test_a_wrong_text_or_code_answer_lowers_mastery() -> None:
    for kind in ("text", "code"):
        for m in (0.5, 0.9, 0.999):
            assert mastery_step(m, False, PARAMS, item_guess(kind)) < m


def test_a_target_needs_four_distinct_items_and_an_open_kind() -> None:
    rule = EvidenceRule(threshold=0.0)  # the distinct-item and kind rules on their own
    ev = SkillEvidence()
    for item in ("q1", "q2", "q3", "q1", "q2"):
        ev = ev.fold(family=item, kind="choice", correct=True, params=PARAMS, guess=0.25)
    assert "items" in target_gaps(0.99, 0.8, ev, rule, {"choice"})
    ev = ev.fold(family="q4", kind="choice", correct=True, params=PARAMS, guess=0.25)
    assert target_gaps(0.99, 0.8, ev, rule, {"choice"}) == []
    # a skill with a text item also needs one of those answered right
    assert target_gaps(0.99, 0.8, ev, rule, {"choice", "text"}) == ["open_kind"]
    # a variant of q1 (same family) is not a new item
    same = SkillEvidence().fold(family="fam", kind="choice", correct=True, params=PARAMS, guess=0.25)
    same = same.fold(family="fam", kind="choice", correct=True, params=PARAMS, guess=0.25)
    assert len(same.families) == 1
    # stale evidence
    dated = ev.fold(family="q5", kind="choice", correct=True, params=PARAMS, guess=0.25, at=0.0)
    assert target_gaps(0.99, 0.8, dated, rule, {"choice"}, now=100 * 86400) == []
    assert target_gaps(0.99, 0.8, dated, rule, {"choice"}, now=200 * 86400) == ["stale"]


def test_guessers_rarely_build_evidence_and_knowers_quickly_do() -> None:
    rule = EvidenceRule()
    rng = random.Random(1)
    met = 0
    for _ in range(300):
        ev, m = SkillEvidence(), PARAMS.p_init
        for k in range(60):  # sixty choice answers, each a 1-in-4 guess
            right = rng.random() < 0.25
            ev = ev.fold(family=f"q{k % 10}", kind="choice", correct=right, params=PARAMS, guess=0.25)
            m = mastery_step(m, right, PARAMS, 0.25)
            met += not target_gaps(m, 0.8, ev, rule, {"choice"})
    assert met <= 3  # answers at which a guesser looked ready, over 18,000
    ev, m = SkillEvidence(), PARAMS.p_init
    for k in range(8):  # someone who knows it: eight right choice answers, or fewer stronger ones
        ev = ev.fold(family=f"q{k}", kind="choice", correct=True, params=PARAMS, guess=0.25)
        m = mastery_step(m, True, PARAMS, 0.25)
    assert not target_gaps(m, 0.8, ev, rule, {"choice"})
    ev = SkillEvidence()
    for k in range(3):
        ev = ev.fold(family=f"c{k}", kind="code", correct=True, params=PARAMS, guess=item_guess("code"))
    assert ev.cusum >= rule.threshold  # three programs that pass tell as much


def _bank() -> dict[str, list[ItemOption]]:
    choices = [ItemOption(f"a.c{i}", 0.0, minutes=1.0, kind="choice", guess=0.25) for i in range(8)]
    return {"a": [*choices, ItemOption("a.code", 0.0, minutes=6.0, kind="code", guess=0.02)]}


def test_a_code_item_is_met_early_and_keys_shown_do_not_return_soon() -> None:
    cur = build_curriculum({"a": []}, {"a": 0.8}, items=_bank())
    cfg = PolicyConfig(repeat_gap=5)
    params = cur.params("a")
    state = LearnerState(lessons_seen=frozenset())
    shown: list[str] = []
    ev, m = SkillEvidence(), params.p_init
    for _ in range(30):
        activity = choose_activity(cur, state, cfg)
        assert activity is not None and activity.item_id is not None
        option = next(o for o in cur.items["a"] if o.item_id == activity.item_id)
        assert option.item_id not in shown[-5:]  # its key was shown: not within 5 answers
        shown.append(option.item_id)
        right = len(shown) % 3 != 0
        ev = ev.fold(
            family=option.family_id, kind=option.kind, correct=right, params=params, guess=option.guess
        )
        m = mastery_step(m, right, params, option.guess)
        state = LearnerState(
            mastery={"a": m},
            attempts={"a": len(shown)},
            recent_items=tuple(reversed(shown)),
            recent_skills=tuple("a" for _ in shown),
            evidence={"a": ev},
        )
        if skill_met(cur, state, cfg, "a", 0.8):
            break
    assert "a.code" in shown  # the code item came within the first 30 items of the skill


def test_variants_of_one_family_share_the_repeat_gap_and_count_once() -> None:
    bank = {
        "a": [
            ItemOption("a.v1", 0.0, kind="choice", guess=0.25, family="fam"),
            ItemOption("a.v2", 0.0, kind="choice", guess=0.25, family="fam"),
            ItemOption("a.other", 0.0, kind="choice", guess=0.25),
        ]
    }
    cur = build_curriculum({"a": []}, {"a": 0.8}, items=bank)
    cfg = PolicyConfig(repeat_gap=3)
    state = LearnerState(mastery={"a": 0.4}, attempts={"a": 1}, recent_items=("a.v1",))
    choice = choose_activity(cur, state, cfg)
    assert choice is not None and choice.item_id == "a.other"  # not a.v2: its sibling's key was shown
    assert len({o.family_id for o in bank["a"]}) == 2
