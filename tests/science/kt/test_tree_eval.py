"""The compiled walk of a LightGBM model's trees (``tree_eval.FlatTrees``, issue 19) gives
``Booster.predict``'s value on one row, missing values included, and refuses what it does not
read."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import need_module

need_module("lightgbm")

import lightgbm as lgb  # noqa: E402

from learnloop.science.kt.tree_eval import FlatTrees  # noqa: E402


def _data(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(3000, 5))
    x[rng.random(3000) < 0.2, 1] = np.nan  # missing values in training: NaN splits
    x[rng.random(3000) < 0.3, 2] = 0.0
    logit = 1.5 * x[:, 0] - np.nan_to_num(x[:, 1], nan=1.0) + x[:, 2] * x[:, 3]
    y = (rng.random(3000) < 1 / (1 + np.exp(-logit))).astype(np.float64)
    return x, y


@pytest.mark.parametrize("params", [{}, {"zero_as_missing": True}, {"use_missing": False}])
def test_one_row_equals_booster_predict(params: dict[str, object]) -> None:
    x, y = _data(0)
    booster = lgb.train(
        {"objective": "binary", "num_leaves": 15, "verbose": -1, "seed": 0, **params},
        lgb.Dataset(x, y),
        num_boost_round=40,
    )
    flat = FlatTrees(booster)
    probe, _ = _data(1)
    probe[:50, 0] = np.nan  # NaN where training had none
    probe[50:100, 2] = 0.0
    expected = booster.predict(probe)
    got = np.array([flat.predict(list(row)) for row in probe])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    scores = np.array([flat.score(list(row)) for row in probe[:20]])
    np.testing.assert_allclose(scores, booster.predict(probe[:20], raw_score=True), rtol=0, atol=1e-12)


def test_a_one_leaf_tree_and_a_sigmoid_are_read() -> None:
    x, y = _data(2)
    booster = lgb.train(
        {"objective": "binary", "sigmoid": 2.0, "min_data_in_leaf": 10**6, "verbose": -1},
        lgb.Dataset(x, y, params={"min_data_in_bin": 1}),
        num_boost_round=3,
    )
    flat = FlatTrees(booster)
    assert flat.nodes.shape == (0, 6)
    assert flat.predict(list(x[0])) == pytest.approx(float(booster.predict(x[:1])[0]), abs=1e-12)


def test_what_it_does_not_read_is_refused() -> None:
    x, y = _data(3)
    regression = lgb.train({"objective": "regression", "verbose": -1}, lgb.Dataset(x, y), num_boost_round=2)
    with pytest.raises(ValueError, match="binary"):
        FlatTrees(regression)
    xc = x.copy()
    xc[:, 4] = np.random.default_rng(0).integers(0, 6, len(x))
    yc = (xc[:, 4] % 2).astype(np.float64)
    categorical = lgb.train(
        {"objective": "binary", "verbose": -1},
        lgb.Dataset(xc, yc, categorical_feature=[4]),
        num_boost_round=2,
    )
    with pytest.raises(ValueError, match="numerical"):
        FlatTrees(categorical)
    flat = FlatTrees(lgb.train({"objective": "binary", "verbose": -1}, lgb.Dataset(x, y), num_boost_round=2))
    with pytest.raises(ValueError, match="5 features"):
        flat.predict([0.0, 1.0])
