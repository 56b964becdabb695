"""Spaced review: every practised item is an FSRS card, scheduled by the ``fsrs`` library.

py-fsrs owns the memory model (stability, difficulty, retrievability, the next due date);
it is not re-implemented here. This module decides how an answer becomes an FSRS rating,
holds the scheduler's settings (per organisation once fitted), and fits those settings
from a review log with the library's optimizer, which needs torch and pandas and is
imported only when a fit is asked for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypedDict

from fsrs import Card, Rating, ReviewLog, Scheduler, State
from fsrs.scheduler import DEFAULT_PARAMETERS

#: Right, but slower than this multiple of the item's expected minutes: "Hard".
SLOW_FACTOR = 1.5
#: Right within this fraction of the item's expected minutes: "Easy".
FAST_FACTOR = 0.5
#: The py-fsrs optimizer returns its defaults below one mini-batch of reviews.
MIN_REVIEWS_TO_FIT = 512


def rating_for_answer(
    correct: bool, *, minutes: float, duration_s: float | None, hints_used: int = 0
) -> Rating:
    """The FSRS rating of one answer: wrong -> Again; right slowly or with hints -> Hard;
    right -> Good; right fast -> Easy. Slow and fast are relative to the item's authored
    ``minutes``; an answer without a duration counts as neither."""
    if not correct:
        return Rating.Again
    expected_s = max(minutes, 0.05) * 60.0
    if hints_used > 0 or (duration_s is not None and duration_s > SLOW_FACTOR * expected_s):
        return Rating.Hard
    if duration_s is not None and duration_s < FAST_FACTOR * expected_s:
        return Rating.Easy
    return Rating.Good


def as_utc(moment: datetime) -> datetime:
    """py-fsrs wants ``tzinfo`` to be exactly UTC; SQLite hands back naive UTC datetimes and
    PostgreSQL may hand back another UTC-equivalent zone object."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class MemoryParamsDict(TypedDict):
    parameters: list[float]
    desired_retention: float


@dataclass(frozen=True)
class MemoryParams:
    """FSRS weights (21 for FSRS-6) and the retention at which a card falls due."""

    parameters: tuple[float, ...] = tuple(DEFAULT_PARAMETERS)
    desired_retention: float = 0.9

    def to_dict(self) -> MemoryParamsDict:
        return {"parameters": list(self.parameters), "desired_retention": self.desired_retention}

    @classmethod
    def from_dict(cls, data: MemoryParamsDict) -> MemoryParams:
        return cls(
            parameters=tuple(float(x) for x in data["parameters"]),
            desired_retention=float(data.get("desired_retention", 0.9)),
        )


@dataclass(frozen=True)
class MemoryModel:
    """The product's FSRS scheduler.

    No intra-day learning steps: repetition within a session is the practice policy's job,
    so a card goes straight to day-scale intervals. No fuzz: a rebuild from the response
    log must reproduce the live cards exactly.
    """

    params: MemoryParams = field(default_factory=MemoryParams)
    scheduler: Scheduler = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "scheduler",
            Scheduler(
                parameters=self.params.parameters,
                desired_retention=self.params.desired_retention,
                learning_steps=(),
                relearning_steps=(),
                enable_fuzzing=False,
            ),
        )

    @property
    def desired_retention(self) -> float:
        return self.params.desired_retention

    @staticmethod
    def new_card(card_id: int = 0, at: datetime | None = None) -> Card:
        return Card(card_id=card_id, due=as_utc(at) if at else datetime(1970, 1, 1, tzinfo=UTC))

    def review(self, card: Card, rating: Rating, at: datetime, duration_ms: int | None = None) -> Card:
        reviewed, _log = self.scheduler.review_card(
            card, rating, review_datetime=as_utc(at), review_duration=duration_ms
        )
        return reviewed

    def retrievability(self, card: Card, at: datetime) -> float:
        """P(recall) now; 0 for a card never reviewed (the library's convention)."""
        return float(self.scheduler.get_card_retrievability(card, current_datetime=as_utc(at)))

    def is_due(self, card: Card, at: datetime) -> bool:
        return card.last_review is not None and as_utc(card.due) <= as_utc(at)

    def replay(self, reviews: Sequence[tuple[Rating, datetime]], card_id: int = 0) -> Card:
        """A card from its reviews in time order, as the live loop would have built it."""
        card = self.new_card(card_id)
        for rating, at in reviews:
            card = self.review(card, rating, at)
        return card


def card_lapses(state_before: State, rating: Rating) -> int:
    """1 when a review-state card is forgotten (a lapse in Anki's sense), else 0."""
    return int(state_before == State.Review and rating == Rating.Again)


class OptimizerUnavailable(RuntimeError):
    """The fsrs optimizer extra (torch, pandas, tqdm) is not installed."""


class MemoryOptimizer:
    """Fits FSRS weights to a review log with py-fsrs's optimizer (needs the ``optimizer`` extra).

    ``fit`` returns ``self`` with ``parameters_`` and ``n_reviews_``; ``fitted_`` is False
    when the log is too short to move the weights (the library then keeps its defaults).
    """

    def __init__(self, *, desired_retention: float = 0.9, verbose: bool = False) -> None:
        self.desired_retention = desired_retention
        self.verbose = verbose

    def fit(self, logs: Sequence[ReviewLog]) -> MemoryOptimizer:
        try:
            from fsrs.optimizer import Optimizer

            optimizer = Optimizer(list(logs))
        except ImportError as exc:
            raise OptimizerUnavailable(
                'fitting FSRS parameters needs torch and pandas: pip install "fsrs[optimizer]"'
            ) from exc
        parameters = [float(x) for x in optimizer.compute_optimal_parameters(verbose=self.verbose)]
        if not all(math.isfinite(x) for x in parameters):
            raise ValueError("the optimizer returned non-finite FSRS parameters")
        self.parameters_ = tuple(parameters)
        self.n_reviews_ = len(logs)
        self.fitted_ = self.parameters_ != tuple(DEFAULT_PARAMETERS)
        return self

    def params(self) -> MemoryParams:
        return MemoryParams(parameters=self.parameters_, desired_retention=self.desired_retention)
