"""Mastery from evidence in the product: bounded steps, wrong open answers lower mastery, the skill
map shows uncertainty and what a target still needs, and practice meets every kind early."""

from __future__ import annotations

from learnloop.content.loader import load_pack
from learnloop.services import auth, practice
from learnloop.services.auth import CurrentUser
from learnloop.services.context import AppContext
from tests.conftest import MINI_PACK, answer_payload

PACK = load_pack(MINI_PACK)


def _learner(ctx: AppContext, email: str = "ev@example.org") -> CurrentUser:
    user = auth.signup(ctx, email=email, name="E", password="tidal-ferry-quartz-81").user
    practice.enrol(ctx, user, "builder")
    return user


def _answer_next(ctx: AppContext, user: CurrentUser, right: bool) -> tuple[str, practice.Feedback]:
    shown = practice.next_item(ctx, user)
    item = PACK.item(shown.item["id"])
    return item.id, practice.answer(ctx, user, item.id, answer_payload(item, right=right))


def test_no_answer_moves_mastery_by_more_than_a_quarter_and_wrong_open_answers_lower_it(
    ctx: AppContext,
) -> None:
    user = _learner(ctx)
    kinds_wrong: set[str] = set()
    for n in range(24):
        right = n % 4 != 3
        item_id, feedback = _answer_next(ctx, user, right)
        for change in feedback.mastery:
            assert abs(change.after - change.before) <= 0.25 + 1e-9
            if not feedback.correct:
                assert change.after < change.before or change.before == 0.0
        if not feedback.correct:
            kinds_wrong.add(PACK.item(item_id).kind)
    assert kinds_wrong  # wrong answers were given and each lowered mastery


def test_two_right_choices_do_not_meet_a_target_and_the_map_says_why(ctx: AppContext) -> None:
    user = _learner(ctx, "map@example.org")
    for _ in range(2):
        _answer_next(ctx, user, True)
    sm = practice.skill_map(ctx, user.id)
    skills = [s for d in sm.domains for s in d.skills]
    assert sm.targets_met == 0
    for s in skills:
        assert s.mastery_low <= s.mastery <= s.mastery_high  # the uncertainty brackets the estimate
        assert s.mastery < 0.8 or s.status != "met"


def test_a_right_streak_meets_targets_only_with_evidence_and_every_kind(ctx: AppContext) -> None:
    user = _learner(ctx, "streak@example.org")
    kinds: dict[str, set[str]] = {}
    for _ in range(30):
        shown = practice.next_item(ctx, user)
        item = PACK.item(shown.item["id"])
        kinds.setdefault(shown.skill_id, set()).add(item.kind)
        practice.answer(ctx, user, item.id, answer_payload(item, right=True))
    sm = practice.skill_map(ctx, user.id)
    by_id = {s.skill_id: s for d in sm.domains for s in d.skills}
    for status in by_id.values():
        if status.status == "met":
            assert status.distinct_items >= 1 and status.evidence >= status.evidence_needed
            assert not status.missing
    # within the first items of a skill every kind it has comes up
    prompts = {i.kind for i in PACK.items if i.skills[0] == "basics.prompts"}
    assert prompts <= kinds.get("basics.prompts", set())
