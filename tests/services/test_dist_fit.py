"""Item calibration on a Dask LocalCluster: the EM's expected counts summed over partitions
give the single-process fit (items within 0.01), and bad input is refused clearly."""

from __future__ import annotations

import numpy as np
import pytest

from learnloop.errors import InvalidInput
from learnloop.science.irt import IRTModel
from tests.conftest import need_module


def _responses(seed: int = 3, people: int = 1500, items: int = 15) -> np.ndarray:
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=people)
    a, b = rng.uniform(0.7, 2.0, items), rng.normal(size=items)
    x = (rng.random((people, items)) < 1 / (1 + np.exp(-a * (theta[:, None] - b)))).astype(float)
    x[rng.random(x.shape) < 0.3] = np.nan  # learners answer some of the items
    return x


def test_partitioned_em_on_a_local_cluster_equals_the_single_process_fit() -> None:
    need_module("distributed")
    from learnloop.services import dist_fit

    x = _responses()
    single = IRTModel(model="2pl").fit(x)
    with dist_fit.cluster("local", n_workers=2, processes=False) as client:
        fitted = dist_fit.fit_irt(client, dist_fit.row_blocks(x, 4), "2pl")
        with pytest.raises(InvalidInput):
            dist_fit.fit_irt(client, [x[:, :5], x[:, :6]], "2pl")  # different items per block
    assert fitted.converged_ and single.converged_
    assert np.abs(fitted.a_ - single.a_).max() < 0.01
    assert np.abs(fitted.b_ - single.b_).max() < 0.01
    assert fitted.log_likelihood_ == pytest.approx(single.log_likelihood_, rel=1e-6)
    assert [len(b) for b in dist_fit.row_blocks(x, 4)] == [375] * 4
    with pytest.raises(InvalidInput):
        dist_fit.row_blocks(x, 0)
