"""`learnloop fit irt` per organisation: each organisation's item calibration is fitted on its own
learners' answers only and read only by its own skill checks and item report; the pack's items
are shared, their fitted parameters are not."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import select

from learnloop.errors import LearnloopError, NotFound
from learnloop.services.assessment import calibrated_params
from learnloop.services.calibration import fit_irt, fit_irt_each, irt_kind
from learnloop.services.context import AppContext
from learnloop.services.reports_items import item_report
from learnloop.store.models import ModelParams, Response
from tests.services.report_builders import Org, add_user, make_org, viewer

LEARNERS = 30


def _scorable(ctx: AppContext, org: Org) -> list[tuple[str, str, list[str]]]:
    with ctx.session() as session:
        pack = ctx.active_pack(session, org.id).pack
    return [(i.id, i.kind, list(i.skills)) for i in pack.items if i.kind in ("choice", "numeric")][:4]


def _answers(ctx: AppContext, org: Org, easy_first: bool, seed: int) -> None:
    """LEARNERS learners of graded ability; the first item is easy and the second hard where
    ``easy_first``, the other way round otherwise."""
    rng = random.Random(seed)
    items = _scorable(ctx, org)
    add_user(ctx, org, "teacher", role="instructor", target_role=None)
    for n in range(LEARNERS):
        user_id = add_user(ctx, org, f"l{n}")
        ability = n / LEARNERS
        with ctx.session() as session:
            for k, (item_id, kind, skills) in enumerate(items):
                hardness = [0.1, 0.8, 0.4, 0.5][k]
                if not easy_first and k < 2:
                    hardness = 0.9 - hardness
                right = (ability > hardness) != (rng.random() < 0.1)
                session.add(
                    Response(
                        org_id=org.id,
                        user_id=user_id,
                        item_id=item_id,
                        skills=skills,
                        kind=kind,
                        context="practice",
                        answer={},
                        correct=right,
                        score=float(right),
                        hints_used=0,
                    )
                )


def test_each_organisation_is_calibrated_on_its_own_answers(ctx: AppContext) -> None:
    a, b, empty = make_org(ctx, "Org A"), make_org(ctx, "Org B"), make_org(ctx, "Org C")
    _answers(ctx, a, easy_first=True, seed=1)
    first, second = (i for i, _, _ in _scorable(ctx, a)[:2])
    alone = fit_irt(ctx, a.id, min_responses=10)
    with ctx.session() as session:
        a_alone = dict(
            session.scalars(select(ModelParams.params).where(ModelParams.kind == irt_kind(a.id))).one()
        )

    _answers(ctx, b, easy_first=False, seed=2)
    runs = {r.org_id: r for r in fit_irt_each(ctx, min_responses=10)}
    assert runs[empty.id].summary is None and "no answers" in str(runs[empty.id].skipped)
    with pytest.raises(LearnloopError, match="no answers"):
        fit_irt(ctx, empty.id)
    with pytest.raises(NotFound):
        fit_irt(ctx, 10_000)
    fit_a, fit_b = runs[a.id].summary, runs[b.id].summary
    assert fit_a is not None and fit_b is not None
    # org B's answers never enter org A's fit: refitted with them in the log, A's is unchanged
    assert (fit_a.learners, fit_a.responses) == (alone.learners, alone.responses) == (LEARNERS, 4 * LEARNERS)
    with ctx.session() as session:
        rows = session.scalars(select(ModelParams).where(ModelParams.kind == irt_kind(a.id))).all()
        assert len(rows) == 2 and rows[-1].params == a_alone
        params_a, params_b = calibrated_params(session, a.id), calibrated_params(session, b.id)
        assert calibrated_params(session, empty.id) == {}  # authored parameters
    assert params_a[first]["n"] == params_b[first]["n"] == LEARNERS
    # different logs, different fits: the first item is easy in A and hard in B, the second the reverse
    assert params_a[first]["b"] < params_b[first]["b"]
    assert params_a[second]["b"] > params_b[second]["b"]
    # each organisation's item report shows its own calibration
    for org, params in ((a, params_a), (b, params_b)):
        row = next(r for r in item_report(ctx, viewer(ctx, org, "teacher")).items if r.item_id == first)
        assert row.irt_source == "calibrated" and row.irt_b == pytest.approx(params[first]["b"], abs=1e-3)


def test_cli_fits_one_organisation_or_each(ctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from learnloop.cli import app
    from learnloop.config import get_settings

    a, empty = make_org(ctx, "Org A"), make_org(ctx, "Org C")
    _answers(ctx, a, easy_first=True, seed=1)
    monkeypatch.setenv("LEARNLOOP_DATABASE_URL", ctx.settings.database_url)
    monkeypatch.setenv("LEARNLOOP_DEFAULT_PACK", str(ctx.settings.default_pack))
    get_settings.cache_clear()
    try:
        each = CliRunner().invoke(app, ["fit", "irt", "--min-responses", "10"])
        assert each.exit_code == 0, each.output
        assert f"Org A (#{a.id}): 2pl: {LEARNERS} learners" in each.output
        assert f"Org C (#{empty.id}): skipped:" in each.output
        one = CliRunner().invoke(app, ["fit", "irt", "--org", str(empty.id)])
        assert one.exit_code == 2 and "no answers" in one.output
        unknown = CliRunner().invoke(app, ["fit", "irt", "--org", "10000"])
        assert unknown.exit_code == 2 and "10000" in unknown.output
    finally:
        get_settings.cache_clear()
    with ctx.session() as session:
        kinds = set(session.scalars(select(ModelParams.kind).where(ModelParams.kind.like("irt%"))))
    assert kinds == {irt_kind(a.id)}
