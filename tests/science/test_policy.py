"""The next-activity policy, the path planner and the simulated-learner comparison."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from learnloop.content.loader import load_pack
from learnloop.science.evidence import SkillEvidence
from learnloop.science.path import PathPlan, plan_path
from learnloop.science.policy import (
    Curriculum,
    GraphError,
    ItemOption,
    LearnerState,
    LessonOption,
    PolicyConfig,
    UnreachableTarget,
    build_curriculum,
    choose_activity,
    choose_item,
    choose_skill,
    curriculum_for_role,
    expected_gain,
    expected_items_to_target,
    lesson_value,
    skill_met,
)
from learnloop.science.simulation import paired_item_ratio, simulate, simulate_learner, summarise

DEFAULT_PACK = Path(__file__).resolve().parents[2] / "packs" / "ai_era"
# a -> b -> c (c needs b needs a); d is a second target needing a.
GRAPH = {"a": [], "b": ["a"], "c": ["b"], "d": ["a"], "z": []}


def items(**difficulties: list[float]) -> dict[str, list[ItemOption]]:
    return {
        skill: [ItemOption(f"{skill}.{i}", b, minutes=1.0) for i, b in enumerate(values)]
        for skill, values in difficulties.items()
    }


BANK = items(a=[-0.8, 0.0, 2.5], b=[0.0, 0.5], c=[0.0, 0.3], d=[0.0, 0.2], z=[0.0])
CUR = build_curriculum(
    GRAPH, {"c": 0.8, "d": 0.6}, items=BANK, lessons={"a": [LessonOption("lesson.a", 5.0)]}
)
#: evidence enough for any target: right answers on every item, strong evidence against guessing
PROVEN = SkillEvidence(
    families=frozenset(o.item_id for options in BANK.values() for o in options),
    kinds=frozenset({"choice"}),
    seen_kinds=frozenset({"choice"}),
    cusum=20.0,
)


def test_cycle_and_unknown_prerequisite_are_refused_cleanly() -> None:
    with pytest.raises(GraphError, match="cycle: .*b.*"):
        build_curriculum({"a": ["b"], "b": ["a"]}, {"a": 0.8}, items={})
    with pytest.raises(GraphError, match="unknown prerequisites: a -> ghost"):
        build_curriculum({"a": ["ghost"]}, {"a": 0.8}, items={})
    with pytest.raises(GraphError, match="not skills of the graph: nope"):
        build_curriculum(GRAPH, {"nope": 0.8}, items=BANK)


def test_curriculum_holds_targets_and_their_prerequisites_only() -> None:
    assert set(CUR.skills) == {"a", "b", "c", "d"}  # z is not needed by the role
    assert CUR.targets == {"a": 0.6, "b": 0.6, "c": 0.8, "d": 0.6}
    assert CUR.skills.index("a") < CUR.skills.index("b") < CUR.skills.index("c")


def test_a_new_skill_starts_with_items_and_two_wrong_answers_send_to_the_lesson() -> None:
    first = choose_activity(CUR, LearnerState())
    assert first is not None and (first.kind, first.skill_id) == ("practice", "a")
    assert first.item_id in {"a.0", "a.1", "a.2"} and first.toward in {"c", "d"}
    # one wrong answer is often a slip or an unlucky item: another item first
    once = LearnerState(mastery={"a": 0.1}, attempts={"a": 1}, history={"a": [False]})
    again = choose_activity(CUR, once)
    assert again is not None and (again.kind, again.skill_id) == ("practice", "a")
    once_sent = choose_activity(CUR, once, PolicyConfig(lesson_after=1))
    assert once_sent is not None and once_sent.kind == "lesson"
    wrong = LearnerState(mastery={"a": 0.05}, attempts={"a": 2}, history={"a": [False, False]})
    lesson = choose_activity(CUR, wrong)
    assert lesson is not None and (lesson.kind, lesson.skill_id, lesson.lesson_id) == (
        "lesson",
        "a",
        "lesson.a",
    )
    assert lesson.item_id in {"a.0", "a.1", "a.2"}
    # a right first answer: the lesson is offered (linked), not sent
    right = LearnerState(mastery={"a": 0.3}, attempts={"a": 2}, history={"a": [False, True]})
    practised = choose_activity(CUR, right)
    assert practised is not None and (practised.kind, practised.skill_id) == ("practice", "a")
    read = choose_activity(CUR, LearnerState(**{**wrong.__dict__, "lessons_seen": frozenset({"lesson.a"})}))
    assert read is not None and (read.kind, read.skill_id, read.reason) == ("practice", "a", "next_step")
    no_lessons = choose_activity(CUR, wrong, PolicyConfig(lessons=False))
    assert no_lessons is not None and no_lessons.kind == "practice"
    before = choose_activity(CUR, LearnerState(), PolicyConfig(lesson_when="first"))
    assert before is not None and (before.kind, before.lesson_id) == ("lesson", "lesson.a")


def test_a_due_lesson_is_sent_only_when_it_pays_for_its_minutes() -> None:
    wrong = LearnerState(mastery={"a": 0.05}, attempts={"a": 2}, history={"a": [False, False]})

    def with_lesson(minutes: float) -> Curriculum:
        return build_curriculum(
            GRAPH, {"c": 0.8, "d": 0.6}, items=BANK, lessons={"a": [LessonOption("lesson.a", minutes)]}
        )

    short, long = with_lesson(5.0), with_lesson(20.0)
    cfg = PolicyConfig(lesson_learn=0.6)
    # answers saved per minute: the lesson's fall with its minutes, the best item's do not
    lesson_short, item = lesson_value(short, wrong, cfg, "a")
    lesson_long, item_long = lesson_value(long, wrong, cfg, "a")
    assert lesson_short == pytest.approx(4 * lesson_long) and item == pytest.approx(item_long)
    assert item > 0
    assert lesson_long < item < lesson_short
    sent = choose_activity(short, wrong, cfg)
    assert sent is not None and (sent.kind, sent.lesson_id) == ("lesson", "lesson.a")
    skipped = choose_activity(long, wrong, cfg)
    assert skipped is not None and (skipped.kind, skipped.skill_id) == ("practice", "a")
    # a lesson assumed to teach more is worth more of its minutes
    assert lesson_value(long, wrong, PolicyConfig(lesson_learn=1.0), "a")[0] > lesson_long
    # without the assumption a due lesson is sent whatever its minutes
    always = choose_activity(long, wrong, PolicyConfig(lesson_learn=None))
    assert always is not None and always.kind == "lesson"
    # a lesson not yet due still comes after two wrong answers: the path counts its minutes only
    # where it would pay then
    assert (
        plan_path(long, wrong, cfg).minutes < plan_path(long, wrong, PolicyConfig(lesson_learn=None)).minutes
    )
    fresh_long = plan_path(long, LearnerState(), cfg)
    fresh_always = plan_path(long, LearnerState(), PolicyConfig(lesson_learn=None))
    assert fresh_long.items == pytest.approx(fresh_always.items) and fresh_long.minutes < fresh_always.minutes
    assert plan_path(short, LearnerState(), cfg).minutes == pytest.approx(
        plan_path(short, LearnerState(), PolicyConfig(lesson_learn=None)).minutes
    )


def test_only_the_frontier_is_practised() -> None:
    # b is far below target but a is not mastered yet: b and c stay closed.
    state = LearnerState(mastery={"a": 0.7, "b": 0.2}, attempts={"a": 3})
    for _ in range(3):
        choice = choose_activity(CUR, state)
        assert choice is not None and choice.skill_id == "a"
    opened = choose_activity(CUR, LearnerState(mastery={"a": 0.97}, attempts={"a": 5}))
    assert opened is not None and opened.skill_id in {"b", "d"}


def test_items_in_the_success_zone_are_preferred_and_recent_ones_avoided() -> None:
    state = LearnerState(mastery={"a": 0.5}, attempts={"a": 1}, lessons_seen=frozenset({"lesson.a"}))
    choice = choose_activity(CUR, state)
    assert choice is not None and choice.predicted_success is not None
    assert 0.6 <= choice.predicted_success <= 0.85
    again = choose_activity(CUR, LearnerState(**{**state.__dict__, "recent_items": (choice.item_id,)}))
    assert again is not None and again.item_id != choice.item_id


def test_a_fading_finished_skill_gets_a_due_review() -> None:
    base = {"a": 0.99, "b": 0.99, "c": 0.99, "d": 0.99}
    attempts = dict.fromkeys(base, 6)
    fresh = LearnerState(
        mastery=base,
        attempts=attempts,
        retrievability=dict.fromkeys(base, 0.97),
        evidence=dict.fromkeys(base, PROVEN),
    )
    faded = replace(fresh, retrievability={**fresh.retrievability, "d": 0.6})
    review = choose_activity(CUR, faded)
    assert review is not None and (review.kind, review.reason, review.skill_id) == ("review", "review", "d")
    maintain = choose_activity(CUR, fresh)
    assert maintain is not None and maintain.reason == "maintain"
    # Without reviews the fading skill is invisible to the policy.
    blind = choose_activity(CUR, faded, PolicyConfig(reviews=False))
    assert blind is not None and blind.reason == "maintain"


#: a target skill with quick choice items and one slow, hard-to-guess code item; "q" needs it
MIXED = build_curriculum(
    {"p": [], "q": ["p"]},
    {"p": 0.8, "q": 0.8},
    items={
        "p": [
            *(ItemOption(f"p.c{i}", 0.0, minutes=1.0, kind="choice", guess=0.25) for i in range(3)),
            ItemOption("p.code", 0.0, minutes=5.0, kind="code", guess=0.02),
        ],
        "q": [ItemOption(f"q.c{i}", 0.0, minutes=1.0, kind="choice", guess=0.25) for i in range(4)],
    },
)


def test_a_hard_to_guess_item_is_worth_answering_on_a_half_learnt_skill() -> None:
    # Its right answer's rise is capped at 0.25 and its wrong answer's fall is not, but a
    # right answer makes it very likely that the learner knows the skill: the answer saves
    # answers toward the role, it is not lost progress.
    seen = SkillEvidence(
        families=frozenset({"p.c0", "p.c1"}),
        kinds=frozenset({"choice"}),
        seen_kinds=frozenset({"choice"}),
        cusum=2.9,
    )
    state = LearnerState(mastery={"p": 0.465}, attempts={"p": 4}, evidence={"p": seen})
    code = MIXED.items["p"][3]
    targets = dict(MIXED.targets)
    saved, p_right = expected_gain(MIXED, state, PolicyConfig(), targets, "p", code)
    assert saved > 0 and 0.3 < p_right < 0.6


def test_an_unfinished_skill_is_practised_before_any_maintenance() -> None:
    # Every choice item of "p" was just shown, so only the code item may come now: whatever
    # its value, the learner practises "p" rather than a review of a skill that cannot open.
    seen = SkillEvidence(
        families=frozenset({"p.c0", "p.c1"}),
        kinds=frozenset({"choice"}),
        seen_kinds=frozenset({"choice"}),
        cusum=2.9,
    )
    state = LearnerState(
        mastery={"p": 0.465},
        attempts={"p": 4},
        evidence={"p": seen},
        recent_items=("p.c2", "p.c1", "p.c0", "p.c2"),
        recent_skills=("p",) * 4,
    )
    for cfg in (PolicyConfig(), PolicyConfig(reviews=False), PolicyConfig(max_step=0.05)):
        nxt = choose_activity(MIXED, state, cfg)
        assert nxt is not None and nxt.kind == "practice"
        assert (nxt.skill_id, nxt.item_id) == ("p", "p.code")


def test_reason_names_the_target_a_prerequisite_leads_to() -> None:
    state = LearnerState(mastery={"a": 0.97, "d": 0.9}, attempts={"a": 4, "d": 3}, evidence={"d": PROVEN})
    choice = choose_activity(CUR, state)
    assert choice is not None and choice.skill_id == "b" and choice.toward == "c"


def test_no_items_means_no_activity() -> None:
    empty = build_curriculum({"a": []}, {"a": 0.8}, items={})
    assert choose_activity(empty, LearnerState()) is None


def test_expected_items_shrink_as_mastery_grows() -> None:
    cur = CUR.params("a")
    values = [expected_items_to_target(m, 0.8, cur) for m in (0.1, 0.3, 0.5, 0.7, 0.79)]
    assert all(a > b for a, b in zip(values, values[1:], strict=False)) and values[-1] > 0
    assert expected_items_to_target(0.8, 0.8, cur) == 0.0
    assert expected_items_to_target(0.2, 0.8, cur, prerequisites_known=0.3) > values[0]


def test_plan_orders_prerequisites_first_and_replans_after_progress() -> None:
    plan = plan_path(CUR, LearnerState())
    order = [s.skill_id for s in plan.steps]
    assert order.index("a") < order.index("b") < order.index("c") and order.index("a") < order.index("d")
    assert plan.items > 0 and plan.minutes > plan.items  # lesson minutes included
    # the low end: a learner who already knows every skill needs the evidence, not the learning
    assert 0 < plan.items_if_known < plan.items and 0 < plan.minutes_if_known < plan.minutes
    assert plan.items_if_known == pytest.approx(sum(s.items_if_known for s in plan.steps))

    # the lesson's minutes are weighted by the chance that the answers before it are all wrong
    # (two under the default rule), and are all counted once they send the learner to it
    def lesson_minutes(p: PathPlan) -> float:
        step = next(s for s in p.steps if s.skill_id == "a")
        return step.minutes - step.items * CUR.mean_minutes("a")

    once = LearnerState(mastery={"a": 0.1}, attempts={"a": 1}, history={"a": [False]})
    twice = LearnerState(mastery={"a": 0.05}, attempts={"a": 2}, history={"a": [False, False]})
    right = LearnerState(mastery={"a": 0.3}, attempts={"a": 1}, history={"a": [True]})
    assert lesson_minutes(plan_path(CUR, twice)) == pytest.approx(5.0)
    assert 0 < lesson_minutes(plan) < lesson_minutes(plan_path(CUR, once)) < 5.0
    assert lesson_minutes(plan_path(CUR, right)) == 0.0
    assert lesson_minutes(plan_path(CUR, once, PolicyConfig(lesson_after=1))) == pytest.approx(5.0)
    assert plan.steps[0].open and not next(s for s in plan.steps if s.skill_id == "c").open
    later = plan_path(
        CUR, LearnerState(mastery={"a": 0.99, "d": 0.9}, attempts={"a": 5, "d": 4}, evidence={"d": PROVEN})
    )
    assert [s.skill_id for s in later.steps] == ["b", "c"] and {s.skill_id for s in later.met} == {"a", "d"}
    assert later.items < plan.items


def test_plan_lists_due_reviews_first() -> None:
    state = LearnerState(mastery={"a": 0.99}, attempts={"a": 5}, retrievability={"a": 0.5})
    plan = plan_path(CUR, state)
    assert plan.steps[0].skill_id == "a" and plan.steps[0].status == "review"


def test_unreachable_target_names_the_missing_skill() -> None:
    holes = build_curriculum(GRAPH, {"c": 0.8}, items={k: v for k, v in BANK.items() if k != "b"})
    with pytest.raises(UnreachableTarget, match=r"no practice items for b \(needed for c\)"):
        plan_path(holes, LearnerState())


def test_first_policy_still_works() -> None:
    picked = choose_skill(["a", "b"], GRAPH, {"a": 0.3}, {"a": 0.8, "b": 0.8}, 0.6, {"a", "b"})
    assert picked == ("a", "frontier")
    option, p = choose_item(BANK["a"], 0.7, [], {}, 0.7)
    assert option.item_id == "a.1" and p == pytest.approx(0.7)


def test_every_role_of_the_default_pack_gets_a_valid_choice() -> None:
    # speed is measured in bench/policy.py, not here
    pack = load_pack(DEFAULT_PACK)
    bank = {i.id for i in pack.items}
    for role in pack.roles:
        cur = curriculum_for_role(pack, role.id)
        state = LearnerState(
            mastery={s: 0.5 for s in cur.skills},
            attempts={s: 3 for s in cur.skills},
            retrievability={s: 0.85 for s in cur.skills},
            history={s: [True, False, False] for s in cur.skills},
        )
        choice = choose_activity(cur, state)
        assert choice is not None and choice.item_id in bank and choice.skill_id in cur.skills


def test_simulation_is_reproducible_and_reaches_targets() -> None:
    pack = load_pack(DEFAULT_PACK)
    cur = curriculum_for_role(pack, "ai-literate-professional")
    one = simulate_learner(cur, "ai-literate-professional", "ours", 3, seed=11)
    two = simulate_learner(cur, "ai-literate-professional", "ours", 3, seed=11)
    assert one == two and one.reached and one.items > 0 and 0 <= one.retention <= one.true_recall_at_stop <= 1
    outcomes = simulate(
        pack, policies=("ours", "lowest_mastery"), learners=4, seed=1, roles=["ai-literate-professional"]
    )
    rows = {s.policy: s for s in summarise(outcomes)}
    assert set(rows) == {"ours", "lowest_mastery"} and all(r.learners == 4 for r in rows.values())
    assert rows["lowest_mastery"].mean_lessons == 0 and rows["lowest_mastery"].mean_reviews == 0
    assert paired_item_ratio(outcomes, "ours", "lowest_mastery") > 0


def test_the_oracle_bound_only_teaches_what_is_missing_and_learnable() -> None:
    pack = load_pack(DEFAULT_PACK)
    cur = curriculum_for_role(pack, "data-annotation-lead")
    for index in range(3):
        oracle = simulate_learner(cur, "data-annotation-lead", "oracle", index, seed=5)
        oatutor = simulate_learner(cur, "data-annotation-lead", "oatutor", index, seed=5)
        assert oracle.reached and oatutor.reached
        # it never leaves a target unknown, so its recall at the stop is that of known skills
        assert oracle.true_recall_at_stop > 0.5


def test_prerequisite_belief_follows_the_dependants_answers() -> None:
    from learnloop.science.kt.bkt import BKTParams
    from learnloop.science.policy import prerequisite_posterior

    params = BKTParams()
    assert prerequisite_posterior([], 0.85, params, 0.25) == 0.85
    # the slower the skills are learnt, the longer a dependant's wrong answers are explained by
    # the dependant itself; either way they end up doubting the prerequisite
    for learn, lengths in ((params.p_learn, (4, 8, 16, 32, 64)), (0.15, (1, 4, 8, 16))):
        p = BKTParams(p_learn=learn)
        wrongs = [prerequisite_posterior([False] * n, 0.85, p, 0.25) for n in lengths]
        assert all(x > y for x, y in zip(wrongs, wrongs[1:], strict=False)) and wrongs[-1] < 0.5, learn
    assert prerequisite_posterior([True, True, True], 0.85, params, 0.25) >= 0.85
    for prior in (0.0, 1.0):  # certainty is not revised, and nothing is NaN
        assert prerequisite_posterior([False] * 5, prior, params, 0.25) == prior


def test_failing_a_skill_sends_the_learner_back_to_its_prerequisite() -> None:
    seen = frozenset({"lesson.a"})
    base = {"mastery": {"a": 0.85, "b": 0.2}, "attempts": {"a": 4, "b": 8}, "lessons_seen": seen}
    stuck = LearnerState(**base, history={"a": [True] * 4, "b": [False] * 8})  # type: ignore[arg-type]
    choice = choose_activity(CUR, stuck)
    assert choice is not None and (choice.skill_id, choice.reason) == ("a", "revisit")
    # the same learner without the failures, or with diagnosis off, stays on the frontier
    fresh = choose_activity(CUR, LearnerState(**base, history={"a": [True] * 4}))  # type: ignore[arg-type]
    assert fresh is not None and fresh.skill_id in {"b", "d"}
    off = choose_activity(CUR, stuck, PolicyConfig(diagnose_prerequisites=False))
    assert off is not None and off.skill_id in {"b", "d"}
    # the path shows the doubted prerequisite first, as a revisit
    first = plan_path(CUR, stuck).steps[0]
    assert (first.skill_id, first.status) == ("a", "revisit")
    assert plan_path(CUR, LearnerState(**base)).steps[0].status != "revisit"  # type: ignore[arg-type]


def test_the_live_models_prediction_sets_the_success_zone() -> None:
    seen = frozenset({"lesson.a"})
    state = LearnerState(mastery={"a": 0.5}, attempts={"a": 1}, lessons_seen=seen)
    by_bkt = choose_activity(CUR, state)
    weak = choose_activity(CUR, replace(state, p_correct={"a": 0.35}))
    strong = choose_activity(CUR, replace(state, p_correct={"a": 0.97}))
    assert by_bkt is not None and weak is not None and strong is not None
    assert weak.predicted_success is not None and strong.predicted_success is not None
    # a weak prediction sends the learner to the easiest item, a strong one to the hardest
    assert (weak.item_id, strong.item_id) == ("a.0", "a.2")
    assert weak.predicted_success < strong.predicted_success


def test_every_kind_is_met_by_the_deadline_not_forced_on_a_skill_proven_sooner() -> None:
    from learnloop.science.evidence import mastery_step

    bank = {
        "a": [
            *(ItemOption(f"a.c{i}", 0.0, minutes=1.0, kind="choice", guess=0.25) for i in range(30)),
            ItemOption("a.text", 0.0, minutes=3.0, kind="text", guess=0.1),
            ItemOption("a.code", 0.0, minutes=6.0, kind="code", guess=0.02),
        ]
    }
    cur = build_curriculum({"a": []}, {"a": 0.8}, items=bank)
    params = cur.params("a")

    def run(cfg: PolicyConfig, right: bool, answers: int) -> list[str]:
        shown: list[str] = []
        ev, m = SkillEvidence(), params.p_init
        for _ in range(answers):
            state = LearnerState(
                mastery={"a": m},
                attempts={"a": len(shown)},
                recent_items=tuple(reversed(shown)),
                recent_skills=tuple("a" for _ in shown),
                evidence={"a": ev},
                lessons_seen=frozenset(),
            )
            if skill_met(cur, state, cfg, "a", 0.8):
                break
            activity = choose_activity(cur, state, cfg)
            assert activity is not None and activity.item_id is not None
            option = next(o for o in bank["a"] if o.item_id == activity.item_id)
            shown.append(option.item_id)
            ev = ev.fold(
                family=option.family_id, kind=option.kind, correct=right, params=params, guess=option.guess
            )
            m = mastery_step(m, right, params, option.guess)
        return shown

    def kinds(shown: list[str]) -> set[str]:
        return {item.split(".")[1] if item.split(".")[1] in ("text", "code") else "choice" for item in shown}

    # one who keeps failing meets every kind within the skill's first 30 answers
    assert kinds(run(PolicyConfig(), False, 30)) == {"choice", "text", "code"}
    # one who answers right is not sent to the slow kinds before their value per minute says
    # so (the earlier rule, kinds_after=2, sent every kind from the second answer on); the
    # evidence rule's open answer still comes before the skill is met
    proven, early = run(PolicyConfig(), True, 30), run(PolicyConfig(kinds_after=2), True, 30)
    assert {"text", "code"} <= kinds(early[:4]) and kinds(proven[:3]) == {"choice"}
    assert kinds(proven) & {"text", "code"} and len(proven) < 30
