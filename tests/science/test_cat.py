"""Adaptive test engine: stopping rules, exposure control, content balancing, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from learnloop.science.cat import CATEngine, sympson_hetter_parameters
from learnloop.science.irt import eap


@pytest.fixture(scope="module")
def bank() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(42)
    return rng.uniform(1.0, 2.5, 120), rng.normal(0.0, 1.2, 120)


@pytest.fixture(scope="module")
def thetas() -> np.ndarray:
    return np.random.default_rng(7).normal(0.0, 1.0, 150)


def test_stops_at_se_target_or_max_length(bank, thetas) -> None:
    a, b = bank
    engine = CATEngine(a, b, se_target=0.3, max_items=15, random_state=0)
    sim = engine.simulate(thetas, random_state=1)
    for length, se, reason in zip(sim.test_length, sim.se, sim.stop_reason, strict=True):
        assert length <= 15
        if reason == "se_target":
            assert se <= 0.3
        else:
            assert reason == "max_items" and length == 15
    assert sim.rmse < 0.4
    assert sim.stop_reason.count("se_target") > 0.9 * thetas.size


def test_information_se_rule_stops_later_than_posterior_sd(bank, thetas) -> None:
    a, b = bank
    posterior = CATEngine(a, b, max_items=30, random_state=0).simulate(thetas[:60], random_state=1)
    engine = CATEngine(a, b, max_items=30, se_rule="information", random_state=0)
    session = engine.new_session()
    while (item := session.next_item()) is not None:
        session.record(item, 1 if len(session.administered) % 2 else 0)
    assert session.stop_reason == "se_target" and session.stopping_se <= 0.3 < session.se + 0.05
    longer = engine.simulate(thetas[:60], random_state=1)
    assert longer.test_length.mean() > posterior.test_length.mean()


def test_min_length_and_max_length_are_honoured(bank) -> None:
    a, b = bank
    long_min = CATEngine(a, b, se_target=0.9, min_items=6, max_items=8).simulate([0.0, 1.0], random_state=0)
    assert set(long_min.test_length.tolist()) == {6}
    capped = CATEngine(a, b, se_target=0.01, max_items=4).simulate([0.0], random_state=0)
    assert capped.test_length[0] == 4 and capped.stop_reason == ["max_items"]


def test_bank_exhaustion_stops_the_test() -> None:
    engine = CATEngine([1.0, 1.0, 1.0], [0.0, 1.0, -1.0], se_target=0.01, max_items=10)
    sim = engine.simulate([0.5], random_state=0)
    assert sim.test_length[0] == 3 and sim.stop_reason == ["bank_exhausted"]


def test_session_ability_equals_batch_eap(bank) -> None:
    a, b = bank
    engine = CATEngine(a, b, max_items=10, random_state=0)
    session = engine.new_session()
    rng = np.random.default_rng(3)
    while (item := session.next_item()) is not None:
        session.record(item, int(rng.random() < 0.6))
    responses = np.full(a.size, np.nan)
    responses[session.administered] = session.responses
    theta, se = eap(responses, a, b, n_quadrature=61)
    assert session.theta == pytest.approx(theta[0], abs=1e-9)
    assert session.se == pytest.approx(se[0], abs=1e-9)
    resumed = engine.resume(session.to_dict())
    assert resumed.theta == pytest.approx(session.theta)
    with pytest.raises(ValueError, match="already administered"):
        session.record(session.administered[0], 1)


def test_first_item_is_most_informative_at_prior_mean(bank) -> None:
    a, b = bank
    session = CATEngine(a, b).new_session()
    first = session.next_item()
    p = 1 / (1 + np.exp(a * b))
    assert first == int(np.argmax(a**2 * p * (1 - p)))  # 2PL information a^2 P Q at theta = 0


def test_kl_selection_reaches_similar_precision(bank, thetas) -> None:
    a, b = bank
    fisher = CATEngine(a, b, max_items=30, random_state=0).simulate(thetas, random_state=1)
    kl = CATEngine(a, b, max_items=30, selection="kl", random_state=0).simulate(thetas, random_state=1)
    assert abs(kl.test_length.mean() - fisher.test_length.mean()) < 1.5
    assert kl.rmse < 0.4


def test_randomesque_lowers_maximum_exposure(bank, thetas) -> None:
    a, b = bank
    plain = CATEngine(a, b, max_items=20, random_state=0).simulate(thetas, random_state=1)
    spread = CATEngine(a, b, max_items=20, exposure="randomesque", randomesque_size=6, random_state=0)
    sim = spread.simulate(thetas, random_state=1)
    assert plain.exposure.max() == pytest.approx(1.0)  # same first item for everybody
    assert sim.exposure.max() < 0.7
    first_items = [items[0] for items in sim.administered]
    assert len(set(first_items)) == 6  # the opening item is drawn among the 6 best
    assert max(first_items.count(j) for j in set(first_items)) / len(first_items) < 0.3


def test_sympson_hetter_bounds_exposure(bank, thetas) -> None:
    a, b = bank
    engine = CATEngine(a, b, max_items=12, random_state=0)
    k = sympson_hetter_parameters(engine, thetas, r_max=0.25, n_rounds=5, random_state=3)
    assert np.all((k > 0) & (k <= 1)) and (k < 1).any()
    controlled = CATEngine(
        a, b, max_items=12, exposure="sympson-hetter", exposure_parameters=k, random_state=0
    )
    fresh = np.random.default_rng(99).normal(0, 1, 150)
    sim = controlled.simulate(fresh, random_state=4)
    assert sim.exposure.max() <= 0.35  # r_max 0.25 plus sampling noise on 150 simulees
    assert engine.simulate(fresh, random_state=4).exposure.max() > 0.9


def test_content_balancing_honours_target_proportions(bank, thetas) -> None:
    a, b = bank
    skills = np.arange(a.size) % 3
    targets = [0.5, 0.3, 0.2]
    engine = CATEngine(
        a, b, skills=skills, skill_targets=targets, se_target=0.01, max_items=20, random_state=0
    )
    sim = engine.simulate(thetas[:40], random_state=2)
    for items in sim.administered:
        shares = np.bincount(skills[items], minlength=3) / len(items)
        np.testing.assert_allclose(shares, targets, atol=0.051)


def test_content_balancing_moves_on_when_a_skill_runs_out() -> None:
    a = np.ones(6)
    b = np.zeros(6)
    skills = np.array([0, 1, 1, 1, 1, 1])
    engine = CATEngine(a, b, skills=skills, skill_targets=[0.5, 0.5], se_target=0.01, max_items=5)
    sim = engine.simulate([0.0], random_state=0)
    assert sim.test_length[0] == 5 and skills[sim.administered[0]].tolist().count(0) == 1


def test_same_seed_same_tests(bank, thetas) -> None:
    a, b = bank

    def run(seed: int):
        engine = CATEngine(a, b, exposure="randomesque", max_items=15, random_state=seed)
        return engine.simulate(thetas[:50], random_state=seed)

    one, two, other = run(5), run(5), run(6)
    assert one.administered == two.administered
    np.testing.assert_array_equal(one.theta, two.theta)
    assert one.administered != other.administered


def test_invalid_configuration_is_rejected(bank) -> None:
    a, b = bank
    with pytest.raises(ValueError):
        CATEngine(a, b, selection="random")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        CATEngine(a, b, skill_targets=[0.5, 0.5])
    with pytest.raises(ValueError):
        CATEngine(a, b, min_items=5, max_items=3)
