"""Skill checks agree with themselves: the overall and the domain scores come from one model,
the overall lies within the domains' range or the page says why, the starting point comes from
a well-measured domain, and every domain shows its standard error and whether it is precise.
Each rule is pinned on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest

from learnloop.services import assessment
from learnloop.services.context import AppContext
from tests.services.test_assessment import PACK, _take_check


@pytest.mark.parametrize("ability", [-1.5, 0.0, 2.5])
def test_overall_within_the_domains_or_explained(ai_any_ctx: AppContext, ability: float) -> None:
    result = _take_check(ai_any_ctx, f"c{ability}@example.org", ability, seed=int(10 * ability) + 50)
    scores = [d.score for d in result.domains]
    inside = min(scores) <= result.score <= max(scores)
    assert inside or result.overall_note  # outside only with the reason shown
    assert inside == (result.overall_note is None)
    for d in result.domains:
        assert d.se > 0 and d.precise == (d.se <= assessment.SE_TARGET * assessment.SCALE_UNIT + 0.05)
        assert d.well_measured == (d.items >= assessment.MIN_DOMAIN_ITEMS)
    well = [d for d in result.domains if d.well_measured]
    assert well and result.start_skill_id is not None
    # the starting point lies in the weakest of the well-measured domains
    chosen = PACK.skill(result.start_skill_id).domain
    assert min(well, key=lambda d: (d.score, -d.items)).domain_id == chosen


def test_i_dont_know_counts_as_wrong_and_is_stored_as_such(ai_any_ctx: AppContext) -> None:
    from sqlalchemy import select

    from learnloop.errors import InvalidInput
    from learnloop.services import auth
    from learnloop.store.models import Response

    user = auth.signup(ai_any_ctx, email="idk@example.org", name="I", password="tidal-ferry-quartz-81").user
    state = assessment.start(ai_any_ctx, user, "ai-product-manager")
    assert state.next is not None
    first = state.next.item["id"]
    with pytest.raises(InvalidInput):  # not a way to smuggle other fields past the checks
        assessment.answer(
            ai_any_ctx, user, state.next.assessment_id, first, {"dont_know": True, "value": "x"}
        )
    after = assessment.answer(ai_any_ctx, user, state.next.assessment_id, first, {"dont_know": True})
    assert after.next is not None and after.next.number == 2
    with ai_any_ctx.session() as session:
        row = session.execute(select(Response).where(Response.user_id == user.id)).scalar_one()
        assert row.item_id == first and row.correct is False and row.answer == {"dont_know": True}


def test_content_is_balanced_over_item_kinds(ai_any_ctx: AppContext) -> None:
    from collections import Counter

    from sqlalchemy import select

    from learnloop.store.models import Response

    _take_check(ai_any_ctx, "kinds@example.org", 0.5, seed=7)
    with ai_any_ctx.session() as session:
        kinds = Counter(session.execute(select(Response.kind).where(Response.context == "check")).scalars())
    total = sum(kinds.values())
    # within each domain the share is split evenly over its kinds: neither kind dominates
    assert set(kinds) == {"choice", "numeric"}
    assert kinds["numeric"] <= 0.6 * total and kinds["choice"] >= 0.4 * total
