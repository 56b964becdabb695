"""Answers against retention: shifted role targets, reading a curve, matched comparisons."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from learnloop.content.loader import load_pack
from learnloop.science.policy import ItemOption, build_curriculum, logit
from learnloop.science.simulation import simulate
from learnloop.science.tradeoff import (
    CurvePoint,
    curve,
    items_at_retention,
    matched_comparison,
    shift_role_targets,
)

DEFAULT_PACK = Path(__file__).resolve().parents[2] / "packs" / "ai_era"


def test_a_shift_moves_the_role_targets_only() -> None:
    bank = {s: [ItemOption(f"{s}.0", 0.0, minutes=1.0)] for s in "abc"}
    cur = build_curriculum({"a": [], "b": ["a"], "c": ["b"]}, {"c": 0.8}, items=bank)
    stricter = shift_role_targets(cur, 1.0)
    assert logit(stricter.targets["c"]) == pytest.approx(logit(0.8) + 1.0)
    assert stricter.targets["a"] == cur.targets["a"] and stricter.targets["b"] == cur.targets["b"]
    assert shift_role_targets(cur, 0.0) is cur
    assert shift_role_targets(cur, -2.0).targets["c"] < 0.8


def test_a_curve_is_read_between_the_points_that_bracket_the_retention() -> None:
    points = [CurvePoint(1.0, 200.0, 0.7), CurvePoint(0.0, 100.0, 0.5), CurvePoint(0.5, 120.0, 0.6)]
    assert items_at_retention(points, 0.55) == pytest.approx(110.0)
    assert items_at_retention(points, 0.65) == pytest.approx(160.0)
    assert items_at_retention(points, 0.7) == pytest.approx(200.0)
    assert math.isnan(items_at_retention(points, 0.8)) and math.isnan(items_at_retention(points, 0.4))


def test_a_policy_needing_half_the_answers_for_the_same_retention_saves_half() -> None:
    # the baseline needs twice our answers at every retention; learners differ, so the
    # bootstrap has something to resample
    # (answers, retention, minutes): ours also takes a lesson's 30 minutes more per learner
    ours = {
        -1.0: [(40.0 + k, 0.40 + 0.01 * k, 70.0 + k) for k in range(10)],
        0.0: [(60.0 + k, 0.60 + 0.01 * k, 90.0 + k) for k in range(10)],
    }
    base = {
        0.0: [(2 * (40.0 + k), 0.40 + 0.01 * k, 2 * (40.0 + k)) for k in range(10)],
        1.0: [(2 * (60.0 + k), 0.60 + 0.01 * k, 2 * (60.0 + k)) for k in range(10)],
        2.0: [(2 * (90.0 + k), 0.70 + 0.01 * k, 2 * (90.0 + k)) for k in range(10)],
    }
    runs = {"ours": ours, "base": base}
    assert [p.shift for p in curve(runs, "base")] == [0.0, 1.0, 2.0]
    c = matched_comparison(runs, "ours", "base", resamples=200)
    assert c.reduction_at_policy_retention == pytest.approx(0.5)
    assert c.reduction_at_baseline_retention == pytest.approx(0.5)
    low, high = c.ci_at_policy_retention
    assert low <= 0.5 <= high
    minutes = matched_comparison(runs, "ours", "base", measure="minutes", resamples=50)
    assert minutes.reduction_at_policy_retention == pytest.approx(1 - 94.5 / 129.0)
    assert minutes.reduction_at_baseline_retention == pytest.approx(1 - 74.5 / 89.0)


def test_stricter_role_targets_buy_recall_and_retention() -> None:
    """A shift of the role targets is honoured and buys what it should: more true recall when the
    learners stop and more 30-day retention. (Answers no longer rise with it in this world: since
    a target also needs evidence (distinct items, an open-kind answer, evidence against guessing),
    the evidence rather than the mastery level sets how many answers a target takes.)"""
    pack = load_pack(DEFAULT_PACK)
    role = ["ai-literate-professional"]
    default = simulate(pack, policies=("oatutor",), learners=12, seed=2, roles=role)
    strict = simulate(pack, policies=("oatutor",), learners=12, seed=2, roles=role, target_shift=2.0)
    assert {o.target_shift for o in strict} == {2.0} and {o.target_shift for o in default} == {0.0}
    assert sum(o.true_recall_at_stop for o in strict) > sum(o.true_recall_at_stop for o in default)
    assert sum(o.retention for o in strict) > sum(o.retention for o in default)
