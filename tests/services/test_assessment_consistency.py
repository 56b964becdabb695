"""Skill checks agree with themselves: the overall and the domain scores come from one model,
the overall lies within the domains' range or the page says why, the starting point comes from
a well-measured domain, and every domain shows its standard error and whether it is precise."""

from __future__ import annotations

import pytest

from learnloop.services import assessment
from learnloop.services.context import AppContext
from tests.services.test_assessment import PACK, _take_check


@pytest.mark.parametrize("ability", [-1.5, 0.0, 2.5])
def test_overall_within_the_domains_or_explained(ai_ctx: AppContext, ability: float) -> None:
    result = _take_check(ai_ctx, f"c{ability}@example.org", ability, seed=int(10 * ability) + 50)
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
