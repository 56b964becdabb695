"""Classical item analysis: p-value, point-biserial, exposure, time, distractors and flags.

Everything is vectorised over a response log given as parallel arrays (one entry per
answer, oldest first). Within each learner-item pair only the first attempt is scored,
as in a fixed-form test: later attempts come after feedback and measure learning, not the
item. Each learner's ability is their proportion correct over their other first attempts
(the corrected item-total, or rest score), so an item is not correlated with itself.

References: Crocker & Algina (1986), *Introduction to Classical and Modern Test Theory*,
ch. 14 (p-value, point-biserial, upper-lower groups); Kelley (1939) for the upper 27%.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypedDict

import numpy as np
from numpy.typing import ArrayLike, NDArray

Array = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: Flag codes, in the order a page lists them.
NEGATIVE_DISCRIMINATION = "negative_discrimination"
TOO_EASY = "too_easy"
TOO_HARD = "too_hard"
KEY_SUSPECT = "key_suspect"


class ItemAnalysisDict(TypedDict):
    """JSON form of :class:`ItemAnalysis` (lists per item; NaN as None)."""

    attempts: list[int]
    respondents: list[int]
    p_value: list[float | None]
    point_biserial: list[float | None]
    exposure: list[float | None]
    median_seconds: list[float | None]
    upper_n: list[int]
    upper_choice_counts: list[list[int]]
    suspect_choice: list[int]
    flags: list[list[str]]


@dataclass
class ItemAnalysis:
    """Per-item statistics; arrays are indexed by item, NaN where there is no data."""

    attempts: IntArray
    respondents: IntArray
    p_value: Array
    point_biserial: Array
    exposure: Array
    median_seconds: Array
    #: learners in the upper group who answered the item (first attempts)
    upper_n: IntArray
    #: (items, choices): first-attempt choices of the upper group
    upper_choice_counts: IntArray
    #: the distractor the upper group prefers to the key, else -1
    suspect_choice: IntArray
    flags: list[list[str]] = field(default_factory=list)

    def to_dict(self) -> ItemAnalysisDict:
        def floats(values: Array) -> list[float | None]:
            return [None if np.isnan(v) else float(v) for v in values]

        return ItemAnalysisDict(
            attempts=self.attempts.tolist(),
            respondents=self.respondents.tolist(),
            p_value=floats(self.p_value),
            point_biserial=floats(self.point_biserial),
            exposure=floats(self.exposure),
            median_seconds=floats(self.median_seconds),
            upper_n=self.upper_n.tolist(),
            upper_choice_counts=self.upper_choice_counts.tolist(),
            suspect_choice=self.suspect_choice.tolist(),
            flags=[list(f) for f in self.flags],
        )


def first_attempts(user: ArrayLike, item: ArrayLike) -> NDArray[np.bool_]:
    """True for each answer that is the learner's first on that item (arrays in time order)."""
    u = np.asarray(user, dtype=np.int64)
    i = np.asarray(item, dtype=np.int64)
    if u.size == 0:
        return np.zeros(0, dtype=bool)
    pair = u * (int(i.max()) + 1) + i
    _, first_index = np.unique(pair, return_index=True)
    mask = np.zeros(u.size, dtype=bool)
    mask[first_index] = True
    return mask


def rest_scores(user: IntArray, correct: Array, min_answers: int = 2) -> Array:
    """Each answer's learner's proportion correct over their *other* answers (NaN if too few)."""
    n_users = int(user.max()) + 1 if user.size else 0
    total = np.bincount(user, minlength=n_users).astype(float)
    right = np.bincount(user, weights=correct, minlength=n_users)
    others = total[user] - 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        rest = (right[user] - correct) / others
    rest[total[user] < max(min_answers, 2)] = np.nan
    return rest


def grouped_correlation(group: IntArray, x: Array, y: Array, n_groups: int) -> Array:
    """Pearson correlation of x and y within each group (NaN when a side has no variance)."""
    ok = ~(np.isnan(x) | np.isnan(y))
    g, xs, ys = group[ok], x[ok], y[ok]

    def total(weights: Array | None = None) -> Array:
        return np.bincount(g, weights=weights, minlength=n_groups).astype(float)

    n, sx, sy = total(), total(xs), total(ys)
    sxx, syy, sxy = total(xs * xs), total(ys * ys), total(xs * ys)
    cov = n * sxy - sx * sy
    var = (n * sxx - sx * sx) * (n * syy - sy * sy)
    out = np.full(n_groups, np.nan)
    good = (n >= 2) & (var > 1e-12)
    out[good] = cov[good] / np.sqrt(var[good])
    return out


def grouped_median(group: IntArray, values: Array, n_groups: int) -> Array:
    """Median of values within each group, ignoring NaN (NaN for an empty group)."""
    ok = ~np.isnan(values)
    g, v = group[ok], values[ok]
    out = np.full(n_groups, np.nan)
    if g.size == 0:
        return out
    order = np.lexsort((v, g))
    g, v = g[order], v[order]
    counts = np.bincount(g, minlength=n_groups)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    has = counts > 0
    lo = starts[has] + (counts[has] - 1) // 2
    hi = starts[has] + counts[has] // 2
    out[has] = (v[lo] + v[hi]) / 2.0
    return out


def analyse_items(
    item: ArrayLike,
    user: ArrayLike,
    correct: ArrayLike,
    n_items: int,
    *,
    choice: ArrayLike | None = None,
    key: ArrayLike | None = None,
    n_choices: int = 0,
    seconds: ArrayLike | None = None,
    upper_fraction: float = 0.27,
    min_answers: int = 5,
) -> ItemAnalysis:
    """Statistics per item from a response log in time order.

    ``item`` and ``user`` are dense indices, ``correct`` 0/1. For choice items ``choice`` is
    the chosen option's index (-1 for other kinds) and ``key`` the key's index per item
    (-1 when not a choice item). ``seconds`` is time on the item (NaN when unknown).
    Learners with fewer than ``min_answers`` first attempts have no ability estimate and do
    not enter the point-biserial or the upper group.
    """
    items = np.asarray(item, dtype=np.int64)
    users = np.asarray(user, dtype=np.int64)
    right = np.asarray(correct, dtype=float)
    attempts = np.bincount(items, minlength=n_items).astype(np.int64)[:n_items]
    first = first_attempts(users, items)
    fi, fu, fc = items[first], users[first], right[first]
    respondents = np.bincount(fi, minlength=n_items).astype(np.int64)[:n_items]
    with np.errstate(invalid="ignore", divide="ignore"):
        p_value = np.bincount(fi, weights=fc, minlength=n_items)[:n_items] / respondents
    active = np.unique(users).size
    exposure = respondents / active if active else np.full(n_items, np.nan)

    ability = rest_scores(fu, fc, min_answers) if fu.size else np.zeros(0)
    rpb = grouped_correlation(fi, fc, ability, n_items)

    secs = np.full(items.size, np.nan) if seconds is None else np.asarray(seconds, dtype=float)
    median_seconds = grouped_median(items, np.where(secs > 0, secs, np.nan), n_items)

    upper_n = np.zeros(n_items, dtype=np.int64)
    counts = np.zeros((n_items, max(n_choices, 1)), dtype=np.int64)
    suspect = np.full(n_items, -1, dtype=np.int64)
    if choice is not None and key is not None and n_choices > 0 and fu.size:
        chosen = np.asarray(choice, dtype=np.int64)[first]
        keys = np.asarray(key, dtype=np.int64)
        upper = _upper_group(fi, ability, n_items, upper_fraction)
        upper_n = np.bincount(fi[upper], minlength=n_items).astype(np.int64)[:n_items]
        pick = upper & (chosen >= 0)
        np.add.at(counts, (fi[pick], chosen[pick]), 1)
        suspect = _suspect_choices(counts, keys)

    return ItemAnalysis(
        attempts=attempts,
        respondents=respondents,
        p_value=p_value,
        point_biserial=rpb,
        exposure=exposure,
        median_seconds=median_seconds,
        upper_n=upper_n,
        upper_choice_counts=counts,
        suspect_choice=suspect,
    )


def _upper_group(item: IntArray, ability: Array, n_items: int, fraction: float) -> NDArray[np.bool_]:
    """Answers by the top ``fraction`` of each item's respondents by ability (Kelley's 27%)."""
    upper = np.zeros(item.size, dtype=bool)
    known = ~np.isnan(ability)
    idx = np.flatnonzero(known)
    if idx.size == 0:
        return upper
    # Sort each item's respondents by ability, best first; take the top share per item.
    order = idx[np.lexsort((-ability[idx], item[idx]))]
    groups = item[order]
    counts = np.bincount(groups, minlength=n_items)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.arange(order.size) - starts[groups]
    take = np.ceil(fraction * counts[groups]).astype(np.int64)
    upper[order[rank < take]] = True
    return upper


def _suspect_choices(counts: IntArray, key: IntArray) -> IntArray:
    """Per item, the distractor the upper group picks strictly more often than the key, else -1."""
    suspect = np.full(counts.shape[0], -1, dtype=np.int64)
    rows = np.flatnonzero(key >= 0)
    if rows.size == 0:
        return suspect
    key_counts = counts[rows, key[rows]]
    masked = counts[rows].copy()
    masked[np.arange(rows.size), key[rows]] = -1
    best = masked.argmax(axis=1)
    best_counts = masked[np.arange(rows.size), best]
    bad = best_counts > key_counts
    suspect[rows[bad]] = best[bad]
    return suspect


def flag_items(
    analysis: ItemAnalysis,
    *,
    min_respondents: int = 30,
    easy: float = 0.95,
    hard: float = 0.05,
    min_upper: int = 10,
) -> list[list[str]]:
    """Flag codes per item; items with too few respondents are not judged.

    Negative discrimination: point-biserial below zero. Almost all right or wrong: p-value
    above ``easy`` or below ``hard``. Answer-key suspicion: the upper group (at least
    ``min_upper`` learners) picks a distractor more often than the key.
    """
    flags: list[list[str]] = []
    for i in range(analysis.attempts.size):
        own: list[str] = []
        if analysis.respondents[i] >= min_respondents:
            if analysis.point_biserial[i] < 0:
                own.append(NEGATIVE_DISCRIMINATION)
            if analysis.p_value[i] > easy:
                own.append(TOO_EASY)
            elif analysis.p_value[i] < hard:
                own.append(TOO_HARD)
        if analysis.upper_n[i] >= min_upper and analysis.suspect_choice[i] >= 0:
            own.append(KEY_SUSPECT)
        flags.append(own)
    analysis.flags = flags
    return flags
