"""A learner's progress report: timeline, domains, credentials and due reviews."""

from __future__ import annotations

from datetime import timedelta

import pytest

from learnloop.services import guidance
from learnloop.services.context import AppContext
from learnloop.services.reports_learner import learner_report
from learnloop.store.models import utcnow
from tests.services.report_builders import add_user, make_org, set_history, viewer


def test_no_answers_and_no_role_is_a_plain_empty_report(ctx: AppContext) -> None:
    org = make_org(ctx, "Org A")
    add_user(ctx, org, "new", target_role=None)
    report = learner_report(ctx, viewer(ctx, org, "new"))
    assert (report.answers, report.role_id, report.timeline, report.domains, report.credentials) == (
        0,
        None,
        [],
        [],
        [],
    )
    assert report.is_self and not report.role_ready


def test_credentials_are_the_targets_met_with_when(ctx: AppContext) -> None:
    org = make_org(ctx, "Org A")
    add_user(ctx, org, "ada")
    start = utcnow() - timedelta(days=3)
    # basics.prompts needs 0.8: crossed on day 2, so earned then; apps.rag (0.6) never reached.
    set_history(
        ctx,
        org,
        "ada",
        "basics.prompts",
        [(start, 0.5), (start + timedelta(days=1), 0.85), (start + timedelta(days=2), 0.9)],
    )
    set_history(ctx, org, "ada", "apps.rag", [(start + timedelta(days=2), 0.4)])
    report = learner_report(ctx, viewer(ctx, org, "ada"))
    assert (report.targets_met, report.targets_total, report.answers) == (1, 2, 4)
    [credential] = report.credentials
    assert credential.skill_id == "basics.prompts" and credential.level == 2
    assert credential.earned_at == start + timedelta(days=1)
    domains = {d.domain_id: d for d in report.domains}
    # basics: tokens at the prior 0.2 (a prerequisite, needed at the unlock level 0.6) and prompts 0.9.
    assert domains["basics"].mastery == pytest.approx((0.2 + 0.9) / 2, abs=1e-3)
    assert domains["basics"].target == pytest.approx((0.6 + 0.8) / 2)
    basics = next(t for t in report.timeline if t.domain_id == "basics")
    assert [p.mastery for p in basics.points] == pytest.approx([0.35, 0.525, 0.55])


def test_due_reviews_come_from_the_scheduler_when_it_has_them(
    ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = make_org(ctx, "Org A")
    add_user(ctx, org, "ada")
    me = viewer(ctx, org, "ada")
    # No target role yet: the real scheduler has nothing due.
    first = learner_report(ctx, me)
    assert first.reviews_available and first.reviews == []

    due = [guidance.DueReview(skill_id="basics.tokens", name="Tokens", retrievability=0.61)]
    monkeypatch.setattr(guidance, "due_reviews", lambda ctx, user: due, raising=False)
    report = learner_report(ctx, me)
    assert report.reviews_available
    assert [(r.skill_id, r.skill_name, r.retrievability) for r in report.reviews] == [
        ("basics.tokens", "Tokens", 0.61)
    ]

    def broken(ctx: AppContext, user: object) -> list[object]:
        raise RuntimeError("scheduler down")

    monkeypatch.setattr(guidance, "due_reviews", broken, raising=False)
    report = learner_report(ctx, me)
    assert report.reviews_available and report.reviews == []
