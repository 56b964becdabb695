"""IRT calibration: recovery, agreement with R mirt on LSAT7, degenerate inputs, scoring."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from learnloop.science.irt import (
    IRTModel,
    eap,
    item_information,
    map_ability,
    person_fit_lz,
    prob,
)
from tests.conftest import need

DATA = Path(os.environ.get("LEARNLOOP_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data"))
LSAT7 = DATA / "irt" / "r-mirt-data" / "LSAT7.csv"
# R mirt 1.47, tests/testthat/test-01-mirtOne.R: expected LSAT7 2PL coefficients
R_A = np.array([0.988, 1.081, 1.706, 0.765, 0.736])
R_D = np.array([1.856, 0.808, 1.804, 0.486, 1.855])


def simulate(n_people: int, n_items: int, seed: int, c: float = 0.0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    a = rng.lognormal(0.0, 0.3, n_items)
    b = rng.normal(0.0, 1.0, n_items)
    theta = rng.normal(0.0, 1.0, n_people)
    p = prob(theta, a, b, np.full(n_items, c))
    return (rng.random(p.shape) < p).astype(float), a, b, theta


@pytest.fixture(scope="module")
def recovery() -> tuple[IRTModel, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x, a, b, theta = simulate(2000, 30, seed=11)
    return IRTModel("2pl").fit(x), x, a, b, theta


def test_2pl_recovers_generating_parameters(recovery) -> None:
    model, _, a, b, _ = recovery
    assert model.converged_
    assert np.corrcoef(model.a_, a)[0, 1] > 0.95
    assert np.corrcoef(model.b_, b)[0, 1] > 0.99
    assert np.sqrt(np.mean((model.a_ - a) ** 2)) < 0.1
    assert np.sqrt(np.mean((model.b_ - b) ** 2)) < 0.1
    np.testing.assert_allclose(model.d_, -model.a_ * model.b_)
    assert not [w for w in model.warnings_ if w.startswith("item ") or "converge" in w]


def test_1pl_shares_one_slope_and_recovers_difficulty() -> None:
    rng = np.random.default_rng(3)
    b = rng.normal(0, 1, 20)
    theta = rng.normal(0, 1, 1500)
    x = (rng.random((1500, 20)) < prob(theta, 1.4, b)).astype(float)
    model = IRTModel("1pl").fit(x)
    assert np.ptp(model.a_) == 0
    assert model.a_[0] == pytest.approx(1.4, abs=0.1)
    assert np.sqrt(np.mean((model.b_ - b) ** 2)) < 0.12


def test_3pl_keeps_guessing_near_truth_with_beta_prior() -> None:
    x, a, b, _ = simulate(2000, 20, seed=5, c=0.2)
    model = IRTModel("3pl").fit(x)
    assert np.all((model.c_ > 0.05) & (model.c_ < 0.4))
    assert abs(model.c_.mean() - 0.2) < 0.05
    assert np.corrcoef(model.b_, b)[0, 1] > 0.97


@pytest.mark.parametrize("priors", [{}, {"a_prior_sd": None, "d_prior_sd": None}], ids=["default", "ml"])
def test_lsat7_2pl_matches_r_mirt_within_001(priors) -> None:
    if not LSAT7.exists():
        need("LSAT7 data not found (set LEARNLOOP_DATA)")
    table = np.loadtxt(LSAT7, delimiter=",", skiprows=1)
    model = IRTModel("2pl", n_quadrature=41, **priors).fit(table[:, :5], sample_weight=table[:, 5])
    np.testing.assert_allclose(model.a_, R_A, atol=0.01)
    np.testing.assert_allclose(model.d_, R_D, atol=0.01)
    # the same data expanded row by row gives the same fit
    expanded = np.repeat(table[:, :5], table[:, 5].astype(int), axis=0)
    again = IRTModel("2pl", n_quadrature=41, **priors).fit(expanded)
    np.testing.assert_allclose(again.a_, model.a_, atol=2e-3)  # both within the EM tolerance
    assert again.log_likelihood_ == pytest.approx(model.log_likelihood_, abs=1e-3)


@pytest.mark.parametrize("name", ["1pl", "2pl", "3pl"])
def test_degenerate_inputs_give_finite_parameters_and_warnings(name) -> None:
    x, *_ = simulate(30, 8, seed=2)
    x[:, 0] = 1.0  # an item everybody got right
    x[:, 1] = 0.0  # an item nobody got right...
    x[0, :] = 1.0  # ...and an examinee with every answered item right
    x[0, 1] = np.nan
    x[1, 2:5] = np.nan  # missing answers
    x[2, :] = np.nan  # an examinee with no answers at all
    model = IRTModel(name, max_iter=200).fit(x)
    for values in (model.a_, model.b_, model.c_, model.d_):
        assert np.isfinite(values).all()
    text = " ".join(model.warnings_)
    assert "fewer than 50" in text
    assert "item 0" in text and "item 1" in text
    assert "answered no item" in text
    assert "every item correctly" in text
    if name != "1pl":
        assert model.a_[0] == pytest.approx(1.0)  # held at the prior median
    assert model.b_[0] < -2 and model.b_[1] > 2


def test_mask_equals_nan_for_missing(recovery) -> None:
    _, x, *_ = recovery
    x = x[:400].copy()
    rng = np.random.default_rng(0)
    hole = rng.random(x.shape) < 0.2
    with_nan = np.where(hole, np.nan, x)
    a = IRTModel("2pl").fit(with_nan)
    b = IRTModel("2pl").fit(x, mask=~hole)
    np.testing.assert_allclose(a.a_, b.a_)
    assert np.isfinite(a.a_).all() and np.isfinite(a.log_likelihood_)


def test_rejects_values_other_than_zero_one() -> None:
    with pytest.raises(ValueError, match="only 0, 1"):
        IRTModel().fit(np.array([[0, 1, 2], [1, 0, 1]]))


def test_eap_and_map_track_true_ability_with_honest_se(recovery) -> None:
    model, x, _, _, theta = recovery
    est, se = model.ability(x, "eap")
    est_map, se_map = model.ability(x, "map")
    assert np.corrcoef(est, theta)[0, 1] > 0.9
    assert np.corrcoef(est_map, est)[0, 1] > 0.99
    # posterior SD matches the actual error on average
    assert np.sqrt(np.mean((est - theta) ** 2)) == pytest.approx(np.sqrt(np.mean(se**2)), rel=0.15)
    assert np.all((se > 0) & (se < 1)) and np.all((se_map > 0) & (se_map < 1))


def test_eap_single_vector_and_empty_row_gives_prior() -> None:
    a, b = np.ones(3), np.zeros(3)
    theta, se = eap([1, 1, 1], a, b)
    assert theta[0] > 0.5
    theta, se = eap([np.nan, np.nan, np.nan], a, b)
    assert theta[0] == pytest.approx(0.0, abs=1e-9) and se[0] == pytest.approx(1.0, abs=1e-3)
    theta, se = map_ability([0, 0, 0], a, b)
    assert theta[0] < -0.5


def test_information_peaks_at_difficulty_for_2pl() -> None:
    grid = np.linspace(-3, 3, 601)
    info = item_information(grid, 1.5, 0.7)[:, 0]
    assert grid[np.argmax(info)] == pytest.approx(0.7, abs=0.01)
    assert info.max() == pytest.approx(1.5**2 / 4, rel=1e-4)


def test_3pl_information_equals_squared_slope_over_variance() -> None:
    theta = np.linspace(-2, 2, 9)
    a, b, c, h = 1.3, 0.4, 0.2, 1e-6
    slope = (prob(theta + h, a, b, c) - prob(theta - h, a, b, c))[:, 0] / (2 * h)
    p = prob(theta, a, b, c)[:, 0]
    np.testing.assert_allclose(item_information(theta, a, b, c)[:, 0], slope**2 / (p * (1 - p)), rtol=1e-6)


def test_person_fit_flags_reversed_pattern(recovery) -> None:
    model, x, *_ = recovery
    order = np.argsort(model.b_)
    aberrant = np.zeros(x.shape[1])
    aberrant[order[-10:]] = 1  # only the hardest items right
    lz = model.person_fit(np.vstack([x[:200], aberrant]))
    assert lz[-1] < -3
    assert abs(np.nanmean(lz[:200])) < 0.5
    assert np.isnan(person_fit_lz([[np.nan] * 3], [0.0], np.ones(3), np.zeros(3)))[0]


def test_item_fit_near_one_for_model_data(recovery) -> None:
    model, x, *_ = recovery
    fit = model.item_fit(x)
    assert np.all(np.abs(fit["infit"] - 1) < 0.15)
    assert np.all(np.abs(fit["outfit"] - 1) < 0.3)


def test_to_dict_round_trips_through_json(recovery) -> None:
    model, x, *_ = recovery
    clone = IRTModel.from_dict(json.loads(json.dumps(model.to_dict())))
    np.testing.assert_allclose(clone.a_, model.a_)
    np.testing.assert_allclose(clone.predict_proba(0.3), model.predict_proba(0.3))
    assert clone.n_iter_ == model.n_iter_


def test_fit_is_deterministic(recovery) -> None:
    _, x, *_ = recovery
    one = IRTModel("2pl", random_state=1).fit(x[:500])
    two = IRTModel("2pl", random_state=2).fit(x[:500])
    np.testing.assert_array_equal(one.a_, two.a_)
