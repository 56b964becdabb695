"""Simulated response logs with known generating parameters."""

from __future__ import annotations

import numpy as np
import pytest

from learnloop.science.kt import BKTParams, ResponseLog


def simulate_bkt(
    params: list[BKTParams],
    n_users: int,
    length: int,
    seed: int,
    n_items_per_skill: int = 0,
    item_spread: float = 0.0,
) -> ResponseLog:
    """Learners answering random skills under per-skill BKT; with items, each item shifts the
    guess/slip odds by a fixed difficulty (so item identity carries signal)."""
    rng = np.random.default_rng(seed)
    n_skills = len(params)
    rows = n_users * length
    user = np.repeat(np.arange(n_users), length)
    skill = rng.integers(0, n_skills, rows)
    item = (
        (skill * n_items_per_skill + rng.integers(0, n_items_per_skill, rows)) if n_items_per_skill else None
    )
    difficulty = rng.normal(0, item_spread, n_skills * max(n_items_per_skill, 1))
    correct = np.zeros(rows, dtype=np.int8)
    known: dict[tuple[int, int], bool] = {}
    for i in range(rows):
        u, s = int(user[i]), int(skill[i])
        p = params[s]
        k = known.get((u, s))
        if k is None:
            k = bool(rng.random() < p.p_init)
        base = (1.0 - p.p_slip) if k else p.p_guess
        if item is not None:
            logit = np.log(base / (1 - base)) - difficulty[int(item[i])]
            base = 1.0 / (1.0 + np.exp(-logit))
        correct[i] = int(rng.random() < base)
        if not k:
            k = bool(rng.random() < p.p_learn)
        known[(u, s)] = k
    timestamp = np.cumsum(rng.exponential(600.0, rows)).astype(np.float64)
    return ResponseLog(
        user=user.astype(np.int64),
        skill=skill.astype(np.int64),
        correct=correct,
        item=None if item is None else item.astype(np.int64),
        timestamp=timestamp,
    )


TRUE_PARAMS = [
    BKTParams(0.3, 0.15, 0.2, 0.1),
    BKTParams(0.5, 0.05, 0.25, 0.05),
    BKTParams(0.1, 0.3, 0.15, 0.15),
    BKTParams(0.2, 0.1, 0.1, 0.2),
]


@pytest.fixture(scope="session")
def bkt_log() -> ResponseLog:
    return simulate_bkt(TRUE_PARAMS, n_users=1500, length=40, seed=1)


@pytest.fixture(scope="session")
def item_log() -> ResponseLog:
    return simulate_bkt(TRUE_PARAMS, n_users=400, length=40, seed=2, n_items_per_skill=15, item_spread=1.5)


def replay(model, log: ResponseLog) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Predictions from the online path, learner by learner: every row of an answer from the
    state before it (``predict_next``), then the whole answer folded in (``update_answer``)."""
    states: dict[int, dict] = {}
    out = np.empty(len(log))
    answer = log.answer if log.answer is not None else np.arange(len(log))
    i = 0
    while i < len(log):
        j = i + 1
        while j < len(log) and answer[j] == answer[i]:
            j += 1
        u = int(log.user[i])
        state = states.setdefault(u, model.initial_state())
        item = None if log.item is None else int(log.item[i])
        ts = None if log.timestamp is None else float(log.timestamp[i])
        for r in range(i, j):
            out[r] = model.predict_next(state, int(log.skill[r]), item, ts)
        model.update_answer(state, [int(s) for s in log.skill[i:j]], int(log.correct[i]), item, ts)
        i = j
    return out
