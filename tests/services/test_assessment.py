"""Skill checks: adaptive, at most 25 items with the default pack, answers never revealed."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sqlalchemy import func, select

from learnloop.content.loader import load_pack
from learnloop.errors import Conflict, InvalidInput
from learnloop.services import assessment, auth
from learnloop.services.context import AppContext
from learnloop.store.models import Response
from tests.conftest import DEFAULT_PACK

PACK = load_pack(DEFAULT_PACK)


def _answer_as(item_id: str, ability: float, rng: np.random.Generator) -> dict:
    item = PACK.item(item_id)
    p = 1 / (1 + math.exp(-(ability - item.difficulty)))
    right = rng.random() < p
    if item.kind == "choice":
        return {"choice": item.key if right else next(k for k in item.options or {} if k != item.key)}
    return {"value": item.answer if right else (item.answer or 0) + 1000}


def _keys(value: object) -> set[str]:
    """Every mapping key anywhere in ``value``."""
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def _take_check(ctx: AppContext, email: str, ability: float, seed: int) -> assessment.CheckResult:
    user = auth.signup(ctx, email=email, name="Test", password="tidal-ferry-quartz-81").user
    rng = np.random.default_rng(seed)
    state = assessment.start(ctx, user, "llm-app-engineer")
    steps = 0
    while state.next is not None:
        steps += 1
        assert steps <= 25
        payload = _answer_as(state.next.item["id"], ability, rng)
        state = assessment.answer(ctx, user, state.next.assessment_id, state.next.item["id"], payload)
        # no verdict and no explanation reach the learner during the check (field names, not
        # words: a stem may well say "explanation")
        assert not _keys(state.model_dump(mode="json")) & {"correct", "explanation", "key"}
    assert state.result is not None
    return state.result


def test_check_ends_within_25_items_and_orders_learners(ai_ctx: AppContext) -> None:
    strong = _take_check(ai_ctx, "strong@example.org", 2.0, 1)
    weak = _take_check(ai_ctx, "weak@example.org", -2.0, 2)
    for r in (strong, weak):
        assert r.items <= 25
        assert 0 <= r.low <= r.score <= r.high <= 300
        assert r.domains and all(0 <= d.score <= 300 for d in r.domains)
        assert r.start_skill_id is not None
    assert strong.score > weak.score + 50
    assert weak.percentile < 50 < strong.percentile


def test_wrong_item_or_payload_is_refused_and_nothing_stored(ai_ctx: AppContext) -> None:
    user = auth.signup(ai_ctx, email="x@example.org", name="X", password="tidal-ferry-quartz-81").user
    state = assessment.start(ai_ctx, user, "ai-product-manager")
    assert state.next is not None
    check_id, item_id = state.next.assessment_id, state.next.item["id"]
    with pytest.raises(Conflict):
        assessment.answer(ai_ctx, user, check_id, "ml.probability.bayes-not-current", {"choice": "a"})
    with pytest.raises(InvalidInput):
        assessment.answer(ai_ctx, user, check_id, item_id, {"choice": "zz", "value": "abc"})
    with ai_ctx.session() as session:
        assert session.scalar(select(func.count()).select_from(Response)) == 0
    # Resuming gives the same question.
    again = assessment.start(ai_ctx, user, "ai-product-manager")
    assert again.next is not None and again.next.item["id"] == item_id
    assert assessment.active_check(ai_ctx, user) == check_id


def test_percentile_against_organisation_once_enough_results(ai_ctx: AppContext) -> None:
    results = [_take_check(ai_ctx, f"p{k}@example.org", float(k) - 3, 10 + k) for k in range(6)]
    assert results[-1].percentile_basis == "organisation"
    assert results[0].percentile_basis == "calibration"
