"""Item analysis for instructors: statistics, flags with the item to open, coverage, scoping."""

from __future__ import annotations

import random

import pytest

from learnloop.errors import Forbidden
from learnloop.services.calibration import irt_kind
from learnloop.services.context import AppContext
from learnloop.services.reports_items import item_report
from learnloop.store.models import ModelParams, Response, User, utcnow
from tests.services.report_builders import Org, add_user, make_org, viewer

# Mini pack: apps.rag.why is a choice item with options a, b, c and key b.
MISKEYED = "apps.rag.why"


def _answer(
    ctx: AppContext, org: Org, key: str, item_id: str, correct: bool, choice: str | None = None
) -> None:
    with ctx.session() as session:
        session.add(
            Response(
                org_id=org.id,
                user_id=org.users[key],
                item_id=item_id,
                skills=["basics.tokens"],
                kind="choice" if choice else "numeric",
                answer={"choice": choice} if choice else {"value": 1},
                correct=correct,
                score=float(correct),
                hints_used=0,
                duration_ms=40_000,
                created_at=utcnow(),
            )
        )


def _cohort(ctx: AppContext, name: str, n: int = 40, seed: int = 5) -> Org:
    """Learners of graded ability; on the miskeyed item the stronger half picks option c."""
    rng = random.Random(seed)
    org = make_org(ctx, name)
    add_user(ctx, org, "teacher", role="instructor", target_role=None)
    for i in range(n):
        key = f"l{i}"
        add_user(ctx, org, key)
        strength = i / n
        items = (
            "basics.tokens.cost",
            "basics.tokens.window",
            "basics.prompts.code",
            "basics.tokens.count",
            "basics.prompts.role",
        )
        for k, item in enumerate(items):
            for _ in range(
                2
            ):  # the item is harder the later it comes; one answer in ten is a slip or a guess
                _answer(ctx, org, key, item, (strength > 0.15 * (k + 1)) != (rng.random() < 0.1))
        strong = strength >= 0.5
        _answer(ctx, org, key, MISKEYED, not strong, "c" if strong else "b")
    return org


def test_flags_point_to_the_miskeyed_item(ctx: AppContext) -> None:
    org = _cohort(ctx, "Org A")
    report = item_report(ctx, viewer(ctx, org, "teacher"))
    row = next(r for r in report.flagged if r.item_id == MISKEYED)
    assert {"key_suspect", "negative_discrimination"} <= set(row.flags)
    assert (row.key, row.suspect_option) == ("b", "c")
    assert row.respondents == 40 and row.p_value == pytest.approx(0.5)
    assert row.median_seconds == pytest.approx(40.0)
    assert next(o for o in row.options if o.option == "c").upper_count > 0
    sound = next(r for r in report.items if r.item_id == "basics.tokens.cost")
    assert sound.point_biserial is not None and sound.point_biserial > 0.2 and not sound.flags
    assert sound.attempts == 80 and sound.respondents == 40 and sound.exposure == pytest.approx(1.0)
    assert report.answers == 440 and report.learners == 40 and not report.window_full


def test_statistics_stay_inside_the_organisation(ctx: AppContext) -> None:
    org_a = _cohort(ctx, "Org A")
    _cohort(ctx, "Org B", n=35, seed=9)
    report = item_report(ctx, viewer(ctx, org_a, "teacher"))
    assert report.learners == 40
    assert next(r for r in report.items if r.item_id == MISKEYED).attempts == 40


def test_deleted_members_answers_are_left_out(ctx: AppContext) -> None:
    org = _cohort(ctx, "Org A")
    with ctx.session() as session:
        user = session.get(User, org.users["l0"])
        assert user is not None
        user.deleted_at = utcnow()
    assert item_report(ctx, viewer(ctx, org, "teacher")).learners == 39


def test_calibrated_irt_parameters_are_shown(ctx: AppContext) -> None:
    org = _cohort(ctx, "Org A", n=5)
    teacher = viewer(ctx, org, "teacher")
    with ctx.session() as session:  # the layout of services.calibration
        session.add(
            ModelParams(
                kind=irt_kind(org.id),
                params={"model": "2pl", "items": {MISKEYED: {"a": 1.4, "b": -0.3, "c": 0.0, "n": 5}}},
                n_responses=5,
            )
        )
    report = item_report(ctx, teacher)
    row = next(r for r in report.items if r.item_id == MISKEYED)
    assert (row.irt_a, row.irt_b, row.irt_source) == (1.4, -0.3, "calibrated")
    assert report.calibrated_at is not None
    assert next(r for r in report.items if r.item_id == "basics.tokens.cost").irt_source is None
    with ctx.session() as session:  # IRTModel.to_dict with the item ids beside it
        session.add(
            ModelParams(
                kind=irt_kind(org.id),
                params={"model": "2pl", "item_ids": [MISKEYED], "a": [0.9], "b": [0.2], "c": [0.0]},
                n_responses=5,
            )
        )
    recalibrated = next(r for r in item_report(ctx, teacher).items if r.item_id == MISKEYED)
    assert (recalibrated.irt_a, recalibrated.irt_b) == (
        0.9,
        0.2,
    )  # a new calibration makes the analysis stale


def test_coverage_names_thin_skills(ctx: AppContext) -> None:
    org = make_org(ctx, "Empty")
    add_user(ctx, org, "teacher", role="instructor", target_role=None)
    report = item_report(ctx, viewer(ctx, org, "teacher"))
    assert report.answers == 0 and report.flagged == [] and report.first_answer_at is None
    coverage = {c.skill_id: c for c in report.coverage}
    assert coverage["basics.tokens"].items == 3 and coverage["basics.tokens"].flags == []
    assert coverage["apps.rag"].flags == ["few_items", "no_lesson"] and coverage["apps.rag"].roles == 1


def test_learners_cannot_open_item_analysis(ctx: AppContext) -> None:
    org = make_org(ctx, "Org A")
    add_user(ctx, org, "learner")
    with pytest.raises(Forbidden):
        item_report(ctx, viewer(ctx, org, "learner"))


def test_stored_analysis_is_reused_until_stale(ctx: AppContext) -> None:
    org = _cohort(ctx, "Org A", n=6)
    teacher = viewer(ctx, org, "teacher")
    first = item_report(ctx, teacher)
    assert item_report(ctx, teacher).computed_at == first.computed_at  # nothing new: the stored one
    _answer(ctx, org, "l0", "basics.tokens.cost", True)
    again = item_report(ctx, teacher)  # a small log is analysed again on every new answer
    assert again.answers == first.answers + 1 and again.newer_answers == 0


def test_large_logs_wait_for_five_percent_more_answers() -> None:
    from learnloop.services.reports_items import _stale

    assert not _stale(1_000_000, 0) and not _stale(1_000_000, 49_999) and _stale(1_000_000, 50_000)
    assert _stale(1_000, 1)
