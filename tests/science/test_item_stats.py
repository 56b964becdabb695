"""Classical item analysis: the statistics against scipy and the flags on planted misbehaviour."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from learnloop.science.item_stats import (
    KEY_SUSPECT,
    NEGATIVE_DISCRIMINATION,
    TOO_EASY,
    TOO_HARD,
    analyse_items,
    first_attempts,
    flag_items,
    grouped_median,
)


def _cohort(n_users: int = 200, n_items: int = 6, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Rasch-like answers: everyone answers every item once, in random order."""
    rng = np.random.default_rng(seed)
    ability = rng.normal(0, 1, n_users)
    difficulty = np.linspace(-1, 1, n_items)
    users = np.repeat(np.arange(n_users), n_items)
    items = np.tile(np.arange(n_items), n_users)
    order = rng.permutation(users.size)
    users, items = users[order], items[order]
    p = 1 / (1 + np.exp(-(ability[users] - difficulty[items])))
    correct = (rng.random(users.size) < p).astype(float)
    return users, items, correct, ability


def test_p_value_and_point_biserial_match_scipy_on_rest_scores() -> None:
    users, items, correct, _ = _cohort()
    result = analyse_items(items, users, correct, 6)
    for i in range(6):
        mine = items == i
        assert result.p_value[i] == pytest.approx(correct[mine].mean())
        # Rest score: each learner's share correct on the other five items.
        per_user = np.bincount(users, weights=correct, minlength=200)
        rest = (per_user[users[mine]] - correct[mine]) / 5
        expected = stats.pointbiserialr(correct[mine], rest).statistic
        assert result.point_biserial[i] == pytest.approx(expected, abs=1e-9)
    assert (result.point_biserial > 0.1).all()  # every item measures the same ability
    assert np.allclose(result.exposure, 1.0)


def test_only_first_attempts_are_scored_but_all_are_counted() -> None:
    users = np.array([0, 0, 0, 1, 1])
    items = np.array([0, 0, 0, 0, 1])
    correct = np.array([0.0, 1.0, 1.0, 1.0, 1.0])
    assert first_attempts(users, items).tolist() == [True, False, False, True, True]
    result = analyse_items(items, users, correct, 2, min_answers=1)
    assert result.attempts.tolist() == [4, 1]
    assert result.respondents.tolist() == [2, 1]
    assert result.p_value[0] == pytest.approx(0.5)
    assert result.exposure.tolist() == [1.0, 0.5]


def test_flags_negative_discrimination_extremes_and_a_wrong_key() -> None:
    users, items, correct, ability = _cohort(n_users=300, n_items=4, seed=1)
    n = users.size
    # Item 4: the strongest learners get it wrong and pick option 2; the key is option 0.
    strong = ability > np.median(ability)
    extra_users = np.arange(300)
    extra_correct = (~strong).astype(float)
    # Items 5 and 6: everyone right, everyone wrong.
    users = np.concatenate([users, extra_users, extra_users, extra_users])
    items = np.concatenate([items, np.full(300, 4), np.full(300, 5), np.full(300, 6)])
    correct = np.concatenate([correct, extra_correct, np.ones(300), np.zeros(300)])
    choice = np.full(users.size, -1)
    choice[n : n + 300] = np.where(strong, 2, 0)
    key = np.array([-1, -1, -1, -1, 0, -1, -1])
    result = analyse_items(items, users, correct, 7, choice=choice, key=key, n_choices=3)
    flags = flag_items(result, min_respondents=30)
    assert flags[:4] == [[], [], [], []]
    assert NEGATIVE_DISCRIMINATION in flags[4] and KEY_SUSPECT in flags[4]
    assert result.suspect_choice[4] == 2
    assert result.upper_choice_counts[4, 2] > result.upper_choice_counts[4, 0]
    assert flags[5] == [TOO_EASY] and flags[6] == [TOO_HARD]
    assert np.isnan(result.point_biserial[5])  # no variance, no correlation
    assert result.to_dict()["flags"] == flags


def test_too_few_respondents_are_not_judged() -> None:
    users = np.arange(10)
    items = np.zeros(10, dtype=int)
    result = analyse_items(items, users, np.ones(10), 1)
    assert flag_items(result, min_respondents=30) == [[]]


def test_grouped_median_matches_numpy_and_ignores_nan() -> None:
    rng = np.random.default_rng(4)
    group = rng.integers(0, 5, 101)
    values = rng.normal(size=101)
    values[::7] = np.nan
    medians = grouped_median(group, values, 6)
    for g in range(5):
        assert medians[g] == pytest.approx(np.nanmedian(values[group == g]))
    assert np.isnan(medians[5])


def test_empty_log_gives_empty_statistics() -> None:
    result = analyse_items(np.array([], dtype=int), np.array([], dtype=int), np.array([]), 3)
    assert result.attempts.tolist() == [0, 0, 0]
    assert np.isnan(result.p_value).all()
    assert flag_items(result) == [[], [], []]
