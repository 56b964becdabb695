"""Answers against retention: comparing practice policies at a matched 30-day retention.

A policy's answers to "reach the role target" depend on how much evidence the target asks
for: a stricter target costs answers and buys retention (fewer learners are let go with a
skill they only seemed to have). Two policies at their default targets therefore differ in
both at once, and "fewer answers at equal or better retention" is a statement about their
*curves*: each policy is run with the role targets shifted on the logit scale
(:func:`shift_role_targets`), giving points (mean answers, mean retention); the answers a
policy needs for a given retention are read off its curve by linear interpolation between
the two points that bracket it (:func:`items_at_retention`). This is the iso-outcome
comparison spaced-repetition schedulers are judged by (workload at equal retention, as in
the FSRS simulator), applied to the role target. Both directions are reported: the
baseline moved to our retention, and ours moved to the baseline's.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from learnloop.science.curriculum import Curriculum
from learnloop.science.policy import logit, sigmoid


def shift_role_targets(cur: Curriculum, shift: float) -> Curriculum:
    """The same curriculum with every role target moved by ``shift`` logits (clipped inside
    (0, 1)); the unlock levels of the prerequisites stay as they are."""
    if shift == 0.0:
        return cur
    targets = {s: sigmoid(logit(v) + shift) if s in cur.role_targets else v for s, v in cur.targets.items()}
    return replace(cur, targets=targets)


@dataclass(frozen=True)
class CurvePoint:
    """One policy at one target shift, over the same simulated learners."""

    shift: float
    #: mean answers per learner (a learner stopped by the time budget counts what was spent)
    items: float
    #: mean true probability of recalling the role's target skills 30 days after the stop
    retention: float
    #: mean study minutes per learner (answers and lessons)
    minutes: float = math.nan

    def cost(self, measure: str) -> float:
        return self.items if measure == "items" else self.minutes


def items_at_retention(points: Sequence[CurvePoint], retention: float, measure: str = "items") -> float:
    """Mean answers (or ``measure="minutes"``) the policy needs for ``retention``: linear
    interpolation between the first two points (in order of target shift) whose retentions
    bracket it; NaN when the curve does not reach it."""
    ordered = sorted(points, key=lambda p: p.shift)
    for low, high in zip(ordered, ordered[1:], strict=False):
        lo, hi = sorted((low.retention, high.retention))
        if lo <= retention <= hi:
            if hi == lo:
                return min(low.cost(measure), high.cost(measure))
            w = (retention - low.retention) / (high.retention - low.retention)
            return low.cost(measure) + w * (high.cost(measure) - low.cost(measure))
    for p in ordered:
        if p.retention == retention:
            return p.cost(measure)
    return math.nan


@dataclass(frozen=True)
class MatchedComparison:
    """``policy`` against ``baseline`` at a matched retention (both directions)."""

    policy: str
    baseline: str
    #: "items" (answers) or "minutes"
    measure: str
    #: 1 - ours / baseline's answers, the baseline read at our default retention
    reduction_at_policy_retention: float
    #: the same, ours read at the baseline's default retention
    reduction_at_baseline_retention: float
    #: 95% percentile-bootstrap intervals over learners (NaN bounds when a resample leaves the curve)
    ci_at_policy_retention: tuple[float, float]
    ci_at_baseline_retention: tuple[float, float]


#: per policy: target shift -> per learner (answers, retention, minutes), the same learners in
#: every list
Runs = Mapping[str, Mapping[float, Sequence[tuple[float, float, float]]]]


def curve(runs: Runs, policy: str, learners: Sequence[int] | None = None) -> list[CurvePoint]:
    """The policy's points over the given learners (positions in the run lists; all by default)."""
    out = []
    for shift, rows in sorted(runs[policy].items()):
        chosen = [rows[i] for i in learners] if learners is not None else list(rows)
        out.append(
            CurvePoint(
                shift=shift,
                items=sum(r[0] for r in chosen) / len(chosen),
                retention=sum(r[1] for r in chosen) / len(chosen),
                minutes=sum(r[2] for r in chosen) / len(chosen),
            )
        )
    return out


def _reductions(ours: Sequence[CurvePoint], base: Sequence[CurvePoint], measure: str) -> tuple[float, float]:
    own = next(p for p in ours if p.shift == 0.0)
    theirs = next(p for p in base if p.shift == 0.0)
    at_ours = items_at_retention(base, own.retention, measure)
    at_theirs = items_at_retention(ours, theirs.retention, measure)
    return 1 - own.cost(measure) / at_ours, 1 - at_theirs / theirs.cost(measure)


def _percentiles(values: Sequence[float], low: float = 2.5, high: float = 97.5) -> tuple[float, float]:
    finite = [v for v in values if not math.isnan(v)]
    if len(finite) < len(values) * 0.95:  # too many resamples fell off the curve to say
        return math.nan, math.nan
    lo, hi = np.percentile(finite, [low, high], method="nearest")
    return float(lo), float(hi)


def matched_comparison(
    runs: Runs,
    policy: str,
    baseline: str,
    *,
    measure: str = "items",
    resamples: int = 1000,
    random_state: int = 0,
) -> MatchedComparison:
    """Both matched-retention reductions of ``measure`` ("items" or "minutes"), with a paired
    bootstrap over learners (the same resampled people for both policies and every shift)."""
    n = len(next(iter(runs[policy].values())))
    point = _reductions(curve(runs, policy), curve(runs, baseline), measure)
    rng = random.Random(random_state)
    at_ours, at_theirs = [], []
    for _ in range(resamples):
        sample = [int(rng.random() * n) for _ in range(n)]
        a, b = _reductions(curve(runs, policy, sample), curve(runs, baseline, sample), measure)
        at_ours.append(a)
        at_theirs.append(b)
    return MatchedComparison(
        policy=policy,
        baseline=baseline,
        measure=measure,
        reduction_at_policy_retention=point[0],
        reduction_at_baseline_retention=point[1],
        ci_at_policy_retention=_percentiles(at_ours),
        ci_at_baseline_retention=_percentiles(at_theirs),
    )
