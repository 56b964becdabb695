"""Logistic knowledge tracing on a Dask LocalCluster: each block of learners builds its rows of
the design and gives its loss and gradient per L-BFGS step; summed in the driver they give the
single-process fit. And ``fit_kt(model="logistic", dask=...)`` stores the same weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from learnloop.errors import InvalidInput
from learnloop.science.kt.base import ResponseLog
from learnloop.science.kt.logistic import LogisticKT
from tests.conftest import need_module


def _log(seed: int = 11, learners: int = 150, skills: int = 5, items_per_skill: int = 3) -> ResponseLog:
    """Learners who improve with practice, in time order, some answers on two skills at once."""
    rng = np.random.default_rng(seed)
    ease = rng.normal(0, 0.8, skills * items_per_skill)
    rows: list[tuple[int, int, int, int, float, int]] = []
    events: list[tuple[float, int]] = []
    for u in range(learners):
        t = float(rng.uniform(0, 1e5))
        for _ in range(int(rng.integers(6, 20))):
            t += float(rng.exponential(3600))
            events.append((t, u))
    skill_wins = np.zeros((learners, skills))
    for answer, (t, u) in enumerate(sorted(events)):
        k = int(rng.integers(skills))
        item = k * items_per_skill + int(rng.integers(items_per_skill))
        p = 1 / (1 + np.exp(-(ease[item] - 0.5 + 0.4 * np.log1p(skill_wins[u, k]))))
        right = int(rng.random() < p)
        tagged = [k] if rng.random() < 0.8 else [k, (k + 1) % skills]
        for s in tagged:
            rows.append((u, s, item, right, t, answer))
            skill_wins[u, s] += right
    user, skill, item, correct, ts, ans = (np.array(c) for c in zip(*rows, strict=True))
    return ResponseLog(
        user=user.astype(np.int64),
        skill=skill.astype(np.int64),
        correct=correct.astype(np.int8),
        item=item.astype(np.int64),
        timestamp=ts.astype(np.float64),
        answer=ans.astype(np.int64),
    )


def test_logistic_kt_on_a_local_cluster_equals_the_single_process_fit() -> None:
    need_module("distributed")
    from learnloop.services import dist_fit

    log = _log()
    single = LogisticKT().fit(log)
    with dist_fit.cluster("local", n_workers=2, processes=False) as client:
        spread = dist_fit.fit_logistic(client, log, 3)
    assert spread.coef_.shape == single.coef_.shape and single.transfer_ and single.pair_
    assert np.abs(spread.coef_ - single.coef_).max() < 1e-3
    assert np.abs(spread.predict_proba(log) - single.predict_proba(log)).max() < 1e-4
    # the fit learned something: practice raises the odds on every skill
    assert np.abs(single.coef_[1:]).max() > 0.1 and single.intercept_ != 0.0
    with pytest.raises(InvalidInput):
        dist_fit.learner_blocks(log, 0)


def test_the_blocks_hold_whole_learners_in_log_order() -> None:
    from learnloop.services import dist_fit

    log = _log(learners=20)
    blocks = dist_fit.learner_blocks(log, 3)
    assert sum(len(b) for b in blocks) == len(log)
    owners = [set(b.user.tolist()) for b in blocks]
    assert all(not (a & b) for i, a in enumerate(owners) for b in owners[i + 1 :])
    for b in blocks:
        assert b.answer is not None and (np.diff(b.answer) >= 0).all()


def test_fit_kt_logistic_with_dask_stores_the_single_process_weights(tmp_path: Path) -> None:
    """``learnloop fit kt --model logistic --dask local`` end to end."""
    need_module("distributed")
    from learnloop.services.calibration import fit_kt
    from learnloop.store.models import ModelParams
    from tests.conftest import MINI_PACK, _make_ctx
    from tests.test_kt_live import _simulate_log

    ctx = _make_ctx(f"sqlite:///{tmp_path / 'kt.db'}", MINI_PACK)
    _simulate_log(ctx, learners=12, answers=15, seed=5)
    stored = []
    for dask in (None, "local"):  # the same log fitted twice: each fit stores a row
        summary = fit_kt(ctx, model="logistic", dask=dask, partitions=3)
        assert summary.model == "logistic"
        with ctx.session() as session:
            row = session.scalars(
                select(ModelParams).where(ModelParams.kind.like("kt.org.%")).order_by(ModelParams.id)
            ).all()[-1]
            stored.append(np.array(row.params["params"]["coef"]))
    single, spread = stored
    assert single.shape == spread.shape and np.abs(single).max() > 0
    assert np.abs(single - spread).max() < 1e-3
