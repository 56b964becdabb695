"""Claim: the spaced-review scheduler's retrievability predicts recall on a real review log.

    python -m bench.srs [--data $LEARNLOOP_DATA/srs/py-fsrs-revlog] [--train-share 0.8]

Data: one Anki learner's log from py-fsrs's tests (12,580 reviews of 1,205 cards). Protocol:
reviews sorted by time; FSRS parameters are fitted with py-fsrs's optimizer on the first
``train-share`` of the reviews only; then every card's whole history is replayed in time
order through ``learnloop.science.memory.MemoryModel`` (the product's scheduler: no
intra-day learning steps, no fuzz), and each review of the later period made at least one
day after the card's previous review is predicted by the card's retrievability just before
it (recall = any rating but Again). Same-day reviews are not scored, as in srs-benchmark.
Metrics: log loss, RMSE (bins) as srs-benchmark computes it (bins over interval, review
number and lapses, weighted by count), and AUC. Published figures from the srs-benchmark
README (9,999 Anki users, time-series split) are recorded next to ours for orientation: one
learner and one split are not that benchmark.
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from fsrs import Card, Rating, ReviewLog, Scheduler
from scipy.stats import rankdata

from bench._common import Record, data_dir, record, write_results
from learnloop.science.memory import MemoryModel, MemoryOptimizer, as_utc

DATASET = "srs/py-fsrs-revlog (1 learner, 12,580 reviews)"
SRS_BENCHMARK = "open-spaced-repetition/srs-benchmark README (9,999 users), via shared/data/README.md"
PUBLISHED = {"FSRS-6": {"log_loss": 0.3214, "auc": 0.706}, "SM-2": {"log_loss": 0.547, "auc": 0.600}}


@dataclass(frozen=True)
class Review:
    card_id: int
    rating: Rating
    at: datetime
    duration_ms: int | None


def load_reviews(folder: Path) -> list[Review]:
    path = next(folder.glob("*.csv"))
    with path.open(newline="") as fh:
        rows = [
            Review(
                int(r["card_id"]),
                Rating(int(r["review_rating"])),
                as_utc(datetime.fromisoformat(r["review_time"])),
                int(float(r["review_duration"])) if r.get("review_duration") else None,
            )
            for r in csv.DictReader(fh)
        ]
    return sorted(rows, key=lambda r: (r.at, r.card_id))


@dataclass
class Predictions:
    p: list[float]
    y: list[int]
    delta_days: list[int]
    review_number: list[int]
    lapses: list[int]


def predict(reviews: Sequence[Review], cutoff: datetime, scheduler: Scheduler, *, test: bool) -> Predictions:
    """Replay every card in time order; score reviews after ``cutoff`` (or before it when not ``test``)."""
    cards: dict[int, Card] = {}
    counts: dict[int, int] = defaultdict(int)
    lapses: dict[int, int] = defaultdict(int)
    out = Predictions([], [], [], [], [])
    for review in reviews:
        card = cards.get(review.card_id) or MemoryModel.new_card(review.card_id)
        if card.last_review is not None:
            days = (review.at - card.last_review).days
            in_split = review.at >= cutoff if test else review.at < cutoff
            if days >= 1 and in_split:
                out.p.append(float(scheduler.get_card_retrievability(card, current_datetime=review.at)))
                out.y.append(int(review.rating != Rating.Again))
                out.delta_days.append(days)
                out.review_number.append(counts[review.card_id] + 1)
                out.lapses.append(lapses[review.card_id])
            if days >= 1 and review.rating == Rating.Again:
                lapses[review.card_id] += 1
        cards[review.card_id], _ = scheduler.review_card(card, review.rating, review_datetime=review.at)
        counts[review.card_id] += 1
    return out


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    q = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))


def auc(p: np.ndarray, y: np.ndarray) -> float:
    """Mann-Whitney AUC with tied predictions counted half."""
    pos, neg = int(y.sum()), int(len(y) - y.sum())
    if pos == 0 or neg == 0:
        return math.nan
    ranks = rankdata(p)
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def _log_bin(x: np.ndarray, base: float, scale: float) -> np.ndarray:
    return np.round(scale * np.power(base, np.floor(np.log(np.maximum(x, 1e-9)) / np.log(base))), 2)


def rmse_bins(pred: Predictions) -> float:
    """srs-benchmark's RMSE (bins): reviews grouped by interval, review number and lapse count on
    log scales, then the count-weighted RMSE between mean prediction and mean recall per bin."""
    p, y = np.asarray(pred.p), np.asarray(pred.y, dtype=float)
    delta = _log_bin(np.asarray(pred.delta_days, dtype=float), 3.62, 2.48)
    number = _log_bin(np.asarray(pred.review_number, dtype=float), 1.89, 1.99).round(0)
    lapse_raw = np.asarray(pred.lapses, dtype=float)
    lapse = np.where(lapse_raw > 0, _log_bin(lapse_raw, 1.73, 1.65).round(0), 0.0)
    bins: dict[tuple[float, float, float], list[int]] = defaultdict(list)
    for index, key in enumerate(zip(delta, number, lapse, strict=True)):
        bins[key].append(index)
    weights = np.array([len(v) for v in bins.values()], dtype=float)
    errors = np.array([(p[v].mean() - y[v].mean()) ** 2 for v in bins.values()])
    return float(math.sqrt((errors * weights).sum() / weights.sum()))


def metrics(pred: Predictions) -> dict[str, float]:
    p, y = np.asarray(pred.p), np.asarray(pred.y)
    return {
        "log_loss": log_loss(p, y),
        "rmse_bins": rmse_bins(pred),
        "auc": auc(p, y),
        "n_scored": float(len(p)),
    }


def run(args: argparse.Namespace) -> Path:
    reviews = load_reviews(args.data)
    cut_index = int(len(reviews) * args.train_share)
    cutoff = reviews[cut_index].at
    train = [r for r in reviews if r.at < cutoff]
    protocol = (
        f"time-ordered split: fit on reviews before {cutoff.date()} ({len(train)} of {len(reviews)}), "
        f"score reviews >= 1 day after the previous one from then on"
    )
    logs = [
        ReviewLog(card_id=r.card_id, rating=r.rating, review_datetime=r.at, review_duration=r.duration_ms)
        for r in train
    ]
    start = time.perf_counter()
    fit = MemoryOptimizer(verbose=args.verbose).fit(logs)
    fit_seconds = time.perf_counter() - start
    product = MemoryModel()
    schedulers = {
        "learnloop.memory, FSRS-6 default parameters": product.scheduler,
        "learnloop.memory, FSRS-6 optimised on the training period": MemoryModel(fit.params()).scheduler,
        "fsrs.Scheduler() as shipped (1m/10m learning steps), default parameters": Scheduler(
            enable_fuzzing=False
        ),
    }
    records: list[Record] = []
    for method, scheduler in schedulers.items():
        for split, is_test in (("test", True), ("train", False)):
            for metric, value in metrics(predict(reviews, cutoff, scheduler, test=is_test)).items():
                name = metric if split == "test" else f"{metric}_in_sample"
                records.append(record(DATASET, protocol, method, name, value))
            if not args.in_sample:
                break
    records.append(
        record(
            DATASET, protocol, "learnloop.memory optimiser (py-fsrs Optimizer)", "fit_seconds", fit_seconds
        )
    )
    records.append(
        record(
            DATASET,
            protocol,
            "learnloop.memory optimiser (py-fsrs Optimizer)",
            "parameters_changed",
            int(fit.fitted_),
        )
    )
    for method, values in PUBLISHED.items():
        for metric, value in values.items():
            records.append(
                record(
                    "srs-benchmark (9,999 Anki users)",
                    "srs-benchmark time-series split",
                    method,
                    metric,
                    value,
                    peer=True,
                    source=SRS_BENCHMARK,
                )
            )
    path = write_results("srs", records, ["fsrs", "torch", "numpy", "scipy"])
    for r in records:
        print(f"{r['method'][:70]:<70} {r['metric']:<20} {r['value']}")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=data_dir() / "srs" / "py-fsrs-revlog")
    parser.add_argument("--train-share", type=float, default=0.8)
    parser.add_argument("--in-sample", action="store_true", help="also score the training period")
    parser.add_argument("--verbose", action="store_true")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
