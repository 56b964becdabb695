"""Spaced review through py-fsrs: ratings from answers, deterministic cards, lazy optimizer."""

from __future__ import annotations

import builtins
from datetime import UTC, datetime, timedelta, timezone

import pytest
from fsrs import Rating, ReviewLog, State
from fsrs.scheduler import DEFAULT_PARAMETERS

from learnloop.science.memory import (
    MemoryModel,
    MemoryOptimizer,
    MemoryParams,
    OptimizerUnavailable,
    as_utc,
    card_lapses,
    rating_for_answer,
)
from tests.conftest import need_module

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("correct", "duration_s", "hints", "expected"),
    [
        (False, 30.0, 0, Rating.Again),
        (False, 5.0, 0, Rating.Again),  # fast but wrong is still wrong
        (True, 60.0, 1, Rating.Hard),  # right with a hint
        (True, 200.0, 0, Rating.Hard),  # over 1.5x the item's two minutes
        (True, 100.0, 0, Rating.Good),
        (True, 50.0, 0, Rating.Easy),  # under half the expected time
        (True, None, 0, Rating.Good),  # no duration: neither slow nor fast
    ],
)
def test_answers_map_to_ratings(
    correct: bool, duration_s: float | None, hints: int, expected: Rating
) -> None:
    assert rating_for_answer(correct, minutes=2.0, duration_s=duration_s, hints_used=hints) == expected


def test_cards_go_to_day_intervals_and_fade() -> None:
    model = MemoryModel()
    card = model.review(model.new_card(), Rating.Good, T0)
    assert card.state == State.Review  # no intra-day learning steps
    assert card.due - T0 >= timedelta(days=1)
    assert model.retrievability(card, T0) == pytest.approx(1.0)
    later = [model.retrievability(card, T0 + timedelta(days=d)) for d in (1, 3, 10, 30)]
    assert all(a > b for a, b in zip(later, later[1:], strict=False))
    assert model.is_due(card, card.due) and not model.is_due(card, T0)


def test_better_answers_give_longer_intervals() -> None:
    model = MemoryModel()
    dues = [
        model.review(model.new_card(), r, T0).due
        for r in (Rating.Again, Rating.Hard, Rating.Good, Rating.Easy)
    ]
    assert dues == sorted(dues) and dues[0] < dues[-1]


def test_replay_is_deterministic_and_equals_live_reviews() -> None:
    model = MemoryModel()
    reviews = [
        (Rating.Good, T0),
        (Rating.Again, T0 + timedelta(days=3)),
        (Rating.Good, T0 + timedelta(days=4)),
    ]
    live = model.new_card()
    for rating, at in reviews:
        live = model.review(live, rating, at)
    assert model.replay(reviews).to_dict() == live.to_dict() == model.replay(reviews).to_dict()


def test_naive_and_other_utc_zones_are_accepted() -> None:
    model = MemoryModel()
    naive = model.review(model.new_card(), Rating.Good, T0.replace(tzinfo=None))
    other = model.review(model.new_card(), Rating.Good, T0.astimezone(timezone(timedelta(hours=8))))
    assert naive.to_dict() == other.to_dict()
    assert as_utc(T0.replace(tzinfo=None)).tzinfo is UTC


def test_lapse_counts_only_forgotten_review_cards() -> None:
    assert card_lapses(State.Review, Rating.Again) == 1
    assert card_lapses(State.Learning, Rating.Again) == 0
    assert card_lapses(State.Review, Rating.Good) == 0


def test_params_round_trip_and_bounds() -> None:
    params = MemoryParams(desired_retention=0.85)
    assert MemoryParams.from_dict(params.to_dict()) == params
    assert MemoryModel(params).desired_retention == 0.85
    with pytest.raises(ValueError, match="out of bounds"):
        MemoryModel(MemoryParams(parameters=(1000.0,) + tuple(DEFAULT_PARAMETERS[1:])))


def test_optimizer_missing_extra_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_optimizer(name: str, *args: object, **kwargs: object) -> object:
        if name == "fsrs.optimizer":
            raise ImportError("no torch")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_optimizer)
    with pytest.raises(OptimizerUnavailable, match="fsrs\\[optimizer\\]"):
        MemoryOptimizer().fit([])


def test_optimizer_keeps_defaults_on_a_short_log() -> None:
    need_module("torch")
    need_module("pandas")
    logs = [
        ReviewLog(card_id=c, rating=Rating.Good, review_datetime=T0 + timedelta(days=d), review_duration=None)
        for c in range(1, 6)
        for d in (0, 2, 7)
    ]
    fit = MemoryOptimizer().fit(logs)
    assert not fit.fitted_ and fit.parameters_ == tuple(DEFAULT_PARAMETERS) and fit.n_reviews_ == 15
