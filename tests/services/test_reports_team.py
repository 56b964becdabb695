"""Team analytics: the figures, the privacy threshold, direct-report consent and org scoping."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pytest

from learnloop.errors import Forbidden, NotFound
from learnloop.science.kt.bkt import BKTParams
from learnloop.services import mastery, reports_snapshots, reports_team
from learnloop.services.context import AppContext
from learnloop.services.reports import practice_to_target, week_start
from learnloop.services.reports_learner import learner_report
from learnloop.services.reports_snapshots import ensure_weekly_snapshots
from learnloop.services.reports_team import team_report
from learnloop.store.models import User, utcnow
from tests.services.report_builders import (
    Org,
    add_user,
    make_org,
    set_history,
    set_mastery,
    targets_on_mastery_alone,
    viewer,
)

# Mini pack, role "builder": basics.prompts at level 2 (0.8) and apps.rag at level 1 (0.6).
BEHIND = {"basics.prompts": 0.5, "apps.rag": 0.9}
READY = {"basics.prompts": 0.9, "apps.rag": 0.7}


@pytest.fixture(autouse=True)
def _targets_on_mastery_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    targets_on_mastery_alone(monkeypatch)  # the product's rule is tested on its own below


def _org_with_teams(ctx: AppContext, name: str = "Org A", big: int = 6, small: int = 3) -> Org:
    org = make_org(ctx, name)
    add_user(ctx, org, "boss", role="manager", team="Big", target_role=None)
    for i in range(big):
        add_user(ctx, org, f"big{i}", team="Big", manager="boss", consent=i % 2 == 0)
        set_mastery(ctx, org, f"big{i}", READY if i == 0 else BEHIND)
    for i in range(small):
        add_user(ctx, org, f"small{i}", team="Small", consent=True)
        set_mastery(ctx, org, f"small{i}", BEHIND)
    return org


def test_gap_report_counts_blocked_people_and_hours(ctx: AppContext) -> None:
    org = _org_with_teams(ctx)
    report = team_report(ctx, viewer(ctx, org, "boss"))
    gaps = {(g.role_id, g.skill_id): g for g in report.gaps}
    prompts = gaps[("builder", "basics.prompts")]
    assert (prompts.holders, prompts.blocked) == (9, 8)  # everyone but big0 is below 0.8
    assert ("builder", "apps.rag") not in gaps  # 0.9 and 0.7 both meet the 0.6 target
    # BKT defaults (no forgetting): log(0.2 / 0.5) / log(1 - learn) answers of 1-minute items.
    per_person = math.log(0.2 / 0.5) / math.log(1 - BKTParams().p_learn) / 60
    assert prompts.hours_per_person == pytest.approx(per_person, abs=0.01)
    assert prompts.mean_gap == pytest.approx(0.3)
    readiness = report.readiness[0]
    assert (readiness.holders, readiness.ready, readiness.close, readiness.far) == (9, 1, 0, 8)


def test_heatmap_hides_groups_under_the_threshold(ctx: AppContext) -> None:
    org = _org_with_teams(ctx)
    report = team_report(ctx, viewer(ctx, org, "boss"))
    rows = {row.team_name: row for row in report.heatmap}
    assert [s.id for s in report.skills] == ["basics.prompts", "apps.rag"]
    big, small = rows["Big"], rows["Small"]
    assert not big.suppressed and big.cells[0].share_met == pytest.approx(1 / 6, abs=1e-3)
    assert small.suppressed and all(c.suppressed and c.share_met is None for c in small.cells)

    only_small = team_report(ctx, viewer(ctx, org, "boss"), team_id=org.teams["Small"])
    assert only_small.notes == ["small_group"]
    assert only_small.gaps == []
    assert only_small.readiness[0].ready is None and only_small.readiness[0].suppressed
    assert all(p.suppressed and p.blocked is None for p in only_small.trend)


def test_threshold_is_a_setting(ctx: AppContext) -> None:
    org = _org_with_teams(ctx)
    ctx.settings.report_min_group = 3
    small = team_report(ctx, viewer(ctx, org, "boss"), team_id=org.teams["Small"])
    assert not small.readiness[0].suppressed and small.readiness[0].far == 3


def test_names_only_for_consenting_direct_reports(ctx: AppContext) -> None:
    org = _org_with_teams(ctx)
    boss = viewer(ctx, org, "boss")
    names = {p.name for row in team_report(ctx, boss).readiness for p in row.people}
    assert names == {"Big0", "Big2", "Big4"}  # consenting direct reports; small* consent but report to no one
    assert learner_report(ctx, boss, org.users["big2"]).name == "Big2"
    for hidden in ("big1", "small0"):
        with pytest.raises(NotFound):
            learner_report(ctx, boss, org.users[hidden])

    add_user(ctx, org, "admin", role="admin", target_role=None)
    admin_sees = {p.name for row in team_report(ctx, viewer(ctx, org, "admin")).readiness for p in row.people}
    assert admin_sees == {"Big0", "Big2", "Big4", "Small0", "Small1", "Small2"}


def test_learners_and_instructors_cannot_open_team_reports(ctx: AppContext) -> None:
    org = _org_with_teams(ctx)
    add_user(ctx, org, "teacher", role="instructor", target_role=None)
    for key in ("big1", "teacher"):
        with pytest.raises(Forbidden):
            team_report(ctx, viewer(ctx, org, key))


def test_manager_of_one_organisation_cannot_see_another(ctx: AppContext) -> None:
    org_a = _org_with_teams(ctx, "Org A")
    org_b = _org_with_teams(ctx, "Org B", big=7, small=0)
    boss_a = viewer(ctx, org_a, "boss")
    report = team_report(ctx, boss_a)
    assert report.org_name == "Org A" and report.people == 10
    assert {t.name for t in report.teams} == {"Big", "Small"} and all(
        t.id in org_a.teams.values() for t in report.teams
    )
    with pytest.raises(NotFound):
        team_report(ctx, boss_a, team_id=org_b.teams["Big"])
    with pytest.raises(NotFound):
        learner_report(ctx, boss_a, org_b.users["big0"])
    names = {p.name for row in report.readiness for p in row.people}
    assert names == {"Big0", "Big2", "Big4"}


def test_empty_team_role_without_holders_and_no_answers_are_stated(ctx: AppContext) -> None:
    org = make_org(ctx, "Fresh")
    add_user(ctx, org, "boss", role="manager", target_role=None)
    add_user(ctx, org, "idle", team="Quiet", target_role=None)
    boss = viewer(ctx, org, "boss")
    everyone = team_report(ctx, boss)
    assert everyone.notes == ["no_roles", "no_answers"]
    assert everyone.readiness[0].holders == 0 and everyone.gaps == [] and everyone.trend[-1].suppressed

    with ctx.session() as session:
        from learnloop.services.auth import get_or_create_team

        empty_id = get_or_create_team(session, org.id, "Empty").id
    empty = team_report(ctx, boss, team_id=empty_id)
    assert empty.notes == ["empty_team"] and empty.people == 0 and empty.heatmap[0].people == 0

    for i in range(5):
        add_user(ctx, org, f"new{i}", team="Quiet")
    quiet = team_report(ctx, boss, team_id=org.teams["Quiet"])
    assert quiet.notes == ["no_answers"]
    assert quiet.readiness[0].far == 5 and quiet.gaps[0].blocked == 5


def test_deleted_members_are_left_out(ctx: AppContext) -> None:
    org = _org_with_teams(ctx)
    with ctx.session() as session:
        user = session.get(User, org.users["big2"])
        assert user is not None
        user.deleted_at = utcnow()
    boss = viewer(ctx, org, "boss")
    report = team_report(ctx, boss)
    assert report.readiness[0].holders == 8
    assert "Big2" not in {p.name for row in report.readiness for p in row.people}
    with pytest.raises(NotFound):
        learner_report(ctx, boss, org.users["big2"])


def test_unknown_role_filter_is_not_found(ctx: AppContext) -> None:
    org = _org_with_teams(ctx)
    with pytest.raises(NotFound):
        team_report(ctx, viewer(ctx, org, "boss"), role_id="astronaut")


def test_trend_is_stored_once_per_week_from_history(ctx: AppContext) -> None:
    org = make_org(ctx, "History")
    add_user(ctx, org, "boss", role="manager", target_role=None)
    this_week = week_start(utcnow())
    for i in range(5):
        add_user(ctx, org, f"l{i}", team="T")
        # Week -3: everyone far behind; week -2: two catch up; week -1: all five ready.
        steps = [
            (this_week - timedelta(weeks=3, hours=-i - 1), 0.3),
            (this_week - timedelta(weeks=2, hours=-i - 1), 0.9 if i < 2 else 0.4),
            (this_week - timedelta(weeks=1, hours=-i - 1), 0.95),
        ]
        set_history(ctx, org, f"l{i}", "basics.prompts", steps)
        set_mastery(ctx, org, f"l{i}", {"apps.rag": 0.7}, at=this_week - timedelta(weeks=3, hours=-i - 1))
    boss = viewer(ctx, org, "boss")
    report = team_report(ctx, boss)
    weeks = [(p.week_start, p.blocked, p.ready) for p in report.trend]
    assert weeks == [
        (this_week - timedelta(weeks=3), 5, 0),
        (this_week - timedelta(weeks=2), 3, 2),
        (this_week - timedelta(weeks=1), 0, 5),
        (this_week, 0, 5),
    ]
    assert report.trend[-1].current and not report.trend[0].current
    assert ensure_weekly_snapshots(ctx, org.id) == 0  # stored weeks are not computed again


def test_practice_to_target_solves_the_expected_bkt_recurrence() -> None:
    learn, forget = np.array([0.2]), np.array([0.05])
    m, steps = 0.1, 0
    while m < 0.7:
        m = m * (1 - forget[0]) + (1 - m) * learn[0]
        steps += 1
    n = practice_to_target(np.array([0.1]), np.array([0.7]), learn, forget)[0]
    assert steps - 1 < n <= steps
    assert practice_to_target(np.array([0.9]), np.array([0.7]), learn, forget)[0] == 0
    # With forgetting, mastery levels off at T / (T + F) = 0.8: a 0.95 target is out of reach.
    assert practice_to_target(np.array([0.1]), np.array([0.95]), learn, forget)[0] == 200


def test_reports_agree_on_sqlite_and_postgresql(any_ctx: AppContext) -> None:
    """The raw-cursor reads, JSON choice extraction and snapshots work on both backends."""
    from learnloop.services.reports_items import item_report

    org = make_org(any_ctx, "Both")
    add_user(any_ctx, org, "boss", role="admin", target_role=None)
    this_week = week_start(utcnow())
    for i in range(5):
        add_user(any_ctx, org, f"l{i}", team="T", consent=True)
        set_history(
            any_ctx,
            org,
            f"l{i}",
            "basics.prompts",
            [(this_week - timedelta(weeks=2), 0.3), (this_week - timedelta(days=3), 0.9 if i else 0.5)],
        )
    boss = viewer(any_ctx, org, "boss")
    report = team_report(any_ctx, boss)
    assert [(p.blocked, p.ready) for p in report.trend] == [(10, 0), (6, 0), (6, 0)]
    gaps = {g.skill_id: g.blocked for g in report.gaps}
    assert gaps == {"basics.prompts": 1, "apps.rag": 5} and len(report.readiness[0].people) == 5
    assert learner_report(any_ctx, boss, org.users["l1"]).targets_met == 1
    items = item_report(any_ctx, boss)
    assert next(r for r in items.items if r.item_id == "basics.tokens.count").attempts == 10


def test_ready_needs_evidence_and_the_manager_sees_what_backs_it(
    ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reports_team, "evidence_rule", mastery.evidence_rule)  # the product's rule
    org = _org_with_teams(ctx)
    report = team_report(ctx, viewer(ctx, org, "boss"))
    readiness = report.readiness[0]
    # big0's mastery reaches every target, but one answer on one item is no evidence
    assert readiness.ready == 0
    shown = {p.name: p for p in readiness.people}
    assert shown["Big0"].status != "ready" and shown["Big0"].met < shown["Big0"].total
    assert shown["Big0"].practice_answers == 2 and shown["Big0"].distinct_items == 1
    assert shown["Big0"].last_check_on is None


def test_weekly_trend_counts_ready_with_the_evidence_rule_as_the_dashboard_does(
    ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stored weeks and the live week agree: mastery at the target on one item's answers is not
    "ready" in any week, under the product's rule."""
    for module in (reports_team, reports_snapshots):
        monkeypatch.setattr(module, "evidence_rule", mastery.evidence_rule)
    org = make_org(ctx, "Evidence")
    add_user(ctx, org, "boss", role="manager", target_role=None)
    this_week = week_start(utcnow())
    for i in range(5):
        add_user(ctx, org, f"l{i}", team="T")
        set_history(
            ctx,
            org,
            f"l{i}",
            "basics.prompts",
            [
                (this_week - timedelta(weeks=2, hours=-i - 1), 0.95),
                (this_week - timedelta(weeks=1, hours=-i - 1), 0.97),
            ],
        )
        set_mastery(ctx, org, f"l{i}", {"apps.rag": 0.9}, at=this_week - timedelta(weeks=2, hours=-i - 1))
    report = team_report(ctx, viewer(ctx, org, "boss"))
    assert [p.ready for p in report.trend] == [0, 0, 0]
    assert [p.blocked for p in report.trend] == [10, 10, 10]
