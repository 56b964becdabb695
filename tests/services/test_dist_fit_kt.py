"""BKT's Baum-Welch on a Dask LocalCluster: the E-step's expected counts per block of learners,
summed, with the M-step in the driver, give the single-process fit; and ``fit_kt`` with
``dask`` stores the same parameters as without."""

from __future__ import annotations

import numpy as np
import pytest

from learnloop.errors import InvalidInput
from learnloop.science.kt.base import ResponseLog
from learnloop.science.kt.bkt import BKT
from learnloop.services.auth import default_organisation
from tests.conftest import need_module


def _log(seed: int = 5, learners: int = 240, skills: int = 4, items_per_skill: int = 3) -> ResponseLog:
    """Answers simulated from known BKT parameters, interleaved across skills in time."""
    rng = np.random.default_rng(seed)
    init, learn = rng.uniform(0.1, 0.5, skills), rng.uniform(0.05, 0.3, skills)
    guess, slip = rng.uniform(0.1, 0.25, skills), rng.uniform(0.05, 0.15, skills)
    rows: list[tuple[int, int, int, int]] = []
    for u in range(learners):
        known = rng.random(skills) < init
        for _ in range(int(rng.integers(8, 25))):
            k = int(rng.integers(skills))
            p = 1 - slip[k] if known[k] else guess[k]
            rows.append(
                (u, k, k * items_per_skill + int(rng.integers(items_per_skill)), int(rng.random() < p))
            )
            known[k] |= rng.random() < learn[k]
    user, skill, item, correct = (np.array(c) for c in zip(*rows, strict=True))
    return ResponseLog(
        user=user.astype(np.int64),
        skill=skill.astype(np.int64),
        correct=correct.astype(np.int8),
        item=item.astype(np.int64),
    )


@pytest.mark.parametrize("item_guess_slip", [False, True])
def test_bkt_em_on_a_local_cluster_equals_the_single_process_fit(item_guess_slip: bool) -> None:
    need_module("distributed")
    from learnloop.services import dist_fit

    log = _log()
    single = BKT(max_guess=0.3, max_slip=0.3, item_guess_slip=item_guess_slip).fit(log)
    with dist_fit.cluster("local", n_workers=2, processes=False) as client:
        spread = BKT(max_guess=0.3, max_slip=0.3, item_guess_slip=item_guess_slip).fit(
            log, estep_for=dist_fit.kt_estep(client, 3)
        )
    for name in ("init_", "learn_", "forget_", "guess_", "slip_"):
        assert np.abs(getattr(spread, name) - getattr(single, name)).max() < 1e-4, name
    if item_guess_slip:
        assert spread.item_guess_ is not None and single.item_guess_ is not None
        assert np.abs(spread.item_guess_ - single.item_guess_).max() < 1e-4
    assert spread.n_iter_ == single.n_iter_
    # the fit moved away from its start: the comparison is not of two untouched priors
    assert np.abs(single.learn_ - 0.1).max() > 0.01
    with pytest.raises(InvalidInput):
        dist_fit.kt_estep(None, 0)


def test_fit_kt_with_dask_stores_the_single_process_parameters(tmp_path: object) -> None:
    """``learnloop fit kt --dask local`` end to end: the same stored BKT as without ``--dask``."""
    need_module("distributed")
    from pathlib import Path

    from learnloop.services.calibration import MIN_SKILL_ANSWERS, MIN_SKILL_LEARNERS, fit_kt
    from learnloop.services.mastery import load_model
    from tests.conftest import MINI_PACK, _make_ctx
    from tests.test_kt_live import _simulate_log

    results = []
    for name, dask in (("single", None), ("dask", "local")):
        ctx = _make_ctx(f"sqlite:///{Path(str(tmp_path)) / (name + '.db')}", MINI_PACK)
        per = 2 * MIN_SKILL_ANSWERS // MIN_SKILL_LEARNERS
        _simulate_log(
            ctx, learners=MIN_SKILL_LEARNERS + 2, answers=per, seed=5, items=["basics.tokens.count"]
        )
        summary = fit_kt(ctx, model="bkt", dask=dask, partitions=3)
        with ctx.session() as session:
            results.append((summary.skills_fitted, load_model(session, default_organisation(session).id)))
    (fitted_single, single), (fitted_dask, spread) = results
    assert fitted_single == fitted_dask == 1
    mine, theirs = spread.per_skill["basics.tokens"], single.per_skill["basics.tokens"]
    for field in ("p_init", "p_learn", "p_slip"):
        assert getattr(mine, field) == pytest.approx(getattr(theirs, field), abs=1e-4), field
