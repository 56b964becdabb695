"""BKT fitted by EM recovers the parameters that generated the data, and its online form
replays the batch predictions exactly; the compiled E-step's counts are the exact posterior
expectations, and EM never lowers the likelihood."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from learnloop.science.kt import BKT, ResponseLog, bkt_estep
from learnloop.science.kt.base import sequence_key
from learnloop.science.kt.bkt_em import HMMParams, m_step, make_em_data, random_params, select_restart
from learnloop.science.kt.bkt_estep import N_EMIT_COUNTS, N_SKILL_COUNTS
from tests.science.kt.conftest import TRUE_PARAMS, replay, simulate_bkt


def test_em_recovers_known_parameters(bkt_log: ResponseLog) -> None:
    model = BKT(restarts=4, random_state=0).fit(bkt_log)
    for k, true in enumerate(TRUE_PARAMS):
        got = model.skill_params(k)
        assert abs(got.p_init - true.p_init) < 0.05, (k, got, true)
        assert abs(got.p_learn - true.p_learn) < 0.05, (k, got, true)
        assert abs(got.p_guess - true.p_guess) < 0.04, (k, got, true)
        assert abs(got.p_slip - true.p_slip) < 0.04, (k, got, true)


def test_em_log_likelihood_beats_the_generating_parameters_start(bkt_log: ResponseLog) -> None:
    """EM is monotone: the fit is at least as likely as the conventional starting point."""
    fitted = BKT(restarts=1, max_iter=200).fit(bkt_log)
    start = BKT(restarts=1, max_iter=0).fit(bkt_log)
    y = bkt_log.correct

    def loglik(model: BKT) -> float:
        p = model.predict_proba(bkt_log)
        return float(np.sum(y * np.log(p) + (1 - y) * np.log(1 - p)))

    assert loglik(fitted) > loglik(start)


def test_online_update_equals_batch_prediction(bkt_log: ResponseLog) -> None:
    model = BKT(fit_forget=True, restarts=2).fit(bkt_log)
    small = ResponseLog(user=bkt_log.user[:3000], skill=bkt_log.skill[:3000], correct=bkt_log.correct[:3000])
    np.testing.assert_allclose(replay(model, small), model.predict_proba(small), rtol=0, atol=1e-12)


def test_per_item_guess_slip_is_online_consistent_and_round_trips() -> None:
    log = simulate_bkt(TRUE_PARAMS, n_users=200, length=30, seed=3, n_items_per_skill=5, item_spread=1.0)
    model = BKT(item_guess_slip=True, restarts=2).fit(log)
    assert model.item_guess_ is not None and np.all(model.item_guess_ <= model.max_guess + 1e-12)
    np.testing.assert_allclose(replay(model, log), model.predict_proba(log), atol=1e-12)
    again = BKT.from_dict(json.loads(json.dumps(model.to_dict())))
    np.testing.assert_array_equal(again.predict_proba(log), model.predict_proba(log))


def test_guess_and_slip_stay_within_bounds(bkt_log: ResponseLog) -> None:
    model = BKT(max_guess=0.15, max_slip=0.12).fit(bkt_log)
    assert np.all(model.guess_ <= 0.15 + 1e-12) and np.all(model.slip_ <= 0.12 + 1e-12)


def test_product_layout_of_to_dict(bkt_log: ResponseLog) -> None:
    """The mastery service reads ``default`` and ``skills`` as BKTParams dicts."""
    data = BKT(restarts=1).fit(bkt_log).to_dict()
    assert set(data["default"]) == {"p_init", "p_learn", "p_guess", "p_slip", "p_forget"}
    assert set(data["skills"]) == {"0", "1", "2", "3"}


def _enumerated_counts(
    seqs: list[tuple[int, list[int], list[int]]], params: HMMParams, n_skills: int, n_emit: int
) -> tuple[np.ndarray, np.ndarray]:
    """The E-step's tables by brute force: every hidden known/unknown path of every sequence,
    weighted by its joint probability with the answers."""
    skill_counts = np.zeros((N_SKILL_COUNTS, n_skills))
    emit_counts = np.zeros((N_EMIT_COUNTS, n_emit))
    for k, units, answers in seqs:
        init, learn, forget = params.init[0, k], params.learn[0, k], params.forget[0, k]
        trans = np.array([[1 - learn, learn], [forget, 1 - forget]])
        n = len(answers)
        paths, weights = list(itertools.product((0, 1), repeat=n)), []
        for path in paths:
            w = init if path[0] else 1 - init
            for t, state in enumerate(path):
                if t:
                    w *= trans[path[t - 1], state]
                g, s = params.guess[0, units[t]], params.slip[0, units[t]]
                p_right = 1 - s if state else g
                w *= p_right if answers[t] else 1 - p_right
            weights.append(w)
        total = sum(weights)
        skill_counts[bkt_estep.LOG_LIKELIHOOD, k] += np.log(total)
        for path, w in zip(paths, weights, strict=True):
            w /= total
            skill_counts[bkt_estep.INIT_KNOWN, k] += w * path[0]
            for t, state in enumerate(path):
                unknown = w * (1 - state)
                skill_counts[bkt_estep.UNKNOWN, k] += unknown
                skill_counts[bkt_estep.UNKNOWN_RIGHT, k] += unknown * answers[t]
                emit_counts[bkt_estep.EMIT_UNKNOWN, units[t]] += unknown
                emit_counts[bkt_estep.EMIT_UNKNOWN_RIGHT, units[t]] += unknown * answers[t]
                if t + 1 < n:
                    skill_counts[bkt_estep.UNKNOWN_BEFORE_NEXT, k] += unknown
                    skill_counts[bkt_estep.KNOWN_BEFORE_NEXT, k] += w * state
                    skill_counts[bkt_estep.LEARNED, k] += w * (1 - state) * path[t + 1]
                    skill_counts[bkt_estep.FORGOT, k] += w * state * (1 - path[t + 1])
    return skill_counts, emit_counts


def test_compiled_e_step_equals_enumeration_over_hidden_paths() -> None:
    """Forward-backward counts (with forgetting and per-item guess/slip) equal the sums over
    every hidden path, on short sequences where the paths can be listed."""
    rng = np.random.default_rng(5)
    n_skills, n_emit = 3, 5
    seqs = []
    for _ in range(12):
        n = int(rng.integers(1, 8))
        seqs.append(
            (int(rng.integers(n_skills)), rng.integers(0, n_emit, n).tolist(), rng.integers(0, 2, n).tolist())
        )
    params = HMMParams(
        init=rng.uniform(0.1, 0.9, (1, n_skills)),
        learn=rng.uniform(0.05, 0.5, (1, n_skills)),
        forget=rng.uniform(0.0, 0.2, (1, n_skills)),
        guess=rng.uniform(0.05, 0.4, (1, n_emit)),
        slip=rng.uniform(0.05, 0.3, (1, n_emit)),
    )
    starts = np.cumsum([0] + [len(a) for _, _, a in seqs])
    skill_counts, emit_counts = bkt_estep.expected_counts(
        starts,
        np.array([k for k, _, _ in seqs], dtype=np.int64),
        np.concatenate([u for _, u, _ in seqs]).astype(np.int64),
        np.concatenate([a for _, _, a in seqs]).astype(np.int8),
        params.init,
        params.learn,
        params.forget,
        params.guess,
        params.slip,
        np.ones(n_skills, dtype=bool),
        int(np.diff(starts).max()),
    )
    want_skill, want_emit = _enumerated_counts(seqs, params, n_skills, n_emit)
    np.testing.assert_allclose(skill_counts[0], want_skill, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(emit_counts[0], want_emit, rtol=1e-10, atol=1e-12)


def test_e_step_keeps_precision_after_a_long_mastered_run() -> None:
    """After 40 right answers P(unknown) is ~1e-33, far below what 1 - P(known) can hold;
    60 wrong answers then multiply it back to near 1. The log-likelihood must follow."""
    answers = np.array([1] * 40 + [0] * 60, dtype=np.int8)
    init, learn, guess, slip = 0.5, 0.3, 0.2, 0.1
    # Reference in log space: log P(known), log P(unknown) never meet 1 - x.
    lk, lu = np.log(init), np.log(1 - init)
    loglik = 0.0
    for a in answers:
        ek, eu = lk + np.log(1 - slip if a else slip), lu + np.log(guess if a else 1 - guess)
        c = np.logaddexp(ek, eu)
        loglik += c
        ek, eu = ek - c, eu - c
        lk, lu = np.logaddexp(ek, eu + np.log(learn)), eu + np.log(1 - learn)
    skill_counts, _ = bkt_estep.expected_counts(
        np.array([0, len(answers)], dtype=np.int64),
        np.zeros(1, dtype=np.int64),
        np.zeros(len(answers), dtype=np.int64),
        answers,
        np.full((1, 1), init),
        np.full((1, 1), learn),
        np.zeros((1, 1)),
        np.full((1, 1), guess),
        np.full((1, 1), slip),
        np.ones(1, dtype=bool),
        len(answers),
    )
    assert skill_counts[0, bkt_estep.LOG_LIKELIHOOD, 0] == pytest.approx(loglik, rel=1e-12)


def test_em_never_lowers_the_likelihood(item_log: ResponseLog) -> None:
    """Every E-step scores the previous M-step's parameters at least as likely (with
    forgetting and per-item guess/slip, all restarts side by side)."""
    n_skills, n_items = int(item_log.skill.max()) + 1, int(item_log.item.max()) + 1
    data = make_em_data(
        sequence_key(item_log.user, item_log.skill, n_skills),
        item_log.correct,
        item_log.skill,
        item_log.item,
        n_skills,
        n_items,
    )
    params = random_params(np.random.default_rng(0), 3, n_skills, n_items, True, 0.5, 0.5)
    last = np.full(3, -np.inf)
    for _ in range(30):
        skill_counts, emit_counts = bkt_estep.expected_counts(
            data.starts, data.seq_skill, data.emit, data.correct,
            params.init, params.learn, params.forget, params.guess, params.slip,
            np.ones(n_skills, dtype=bool), data.max_len,
        )  # fmt: skip
        ll = skill_counts[:, bkt_estep.LOG_LIKELIHOOD].sum(axis=1)
        assert np.all(ll >= last - 1e-9 * np.abs(ll))
        last = ll
        params = m_step(data, params, skill_counts, emit_counts, True, 0.5, 0.5, 0.0)


def test_restarts_tied_on_a_flat_likelihood_keep_the_first() -> None:
    """One answer per sequence cannot tell learning from guessing: every restart scores the
    same and the fit is restart 0's, whatever the rounding of the sums."""
    log = ResponseLog(
        user=np.arange(40, dtype=np.int64),
        skill=np.zeros(40, dtype=np.int64),
        correct=(np.arange(40) % 3 > 0).astype(np.int8),
    )
    assert BKT(restarts=5).fit(log).to_dict() == BKT(restarts=5).fit(log).to_dict()
    params = HMMParams(
        init=np.array([[0.3], [0.6]]),
        learn=np.array([[0.1], [0.2]]),
        forget=np.zeros((2, 1)),
        guess=np.array([[0.2], [0.3]]),
        slip=np.array([[0.1], [0.1]]),
    )
    chosen = select_restart(params, np.array([[-10.0], [-10.0 + 1e-12]]), np.arange(1))
    assert chosen.init[0, 0] == 0.3


def test_each_skill_converges_as_if_fitted_alone(bkt_log: ResponseLog) -> None:
    """Skills are independent HMMs: a small skill fitted beside a large one stops where it
    stops alone, not when the large one's likelihood has settled."""
    small = (bkt_log.skill == 2) & (bkt_log.user < 60)
    keep = (bkt_log.skill == 0) | small
    joint = ResponseLog(user=bkt_log.user[keep], skill=bkt_log.skill[keep], correct=bkt_log.correct[keep])
    alone = ResponseLog(
        user=bkt_log.user[small],
        skill=np.zeros(int(small.sum()), dtype=np.int64),
        correct=bkt_log.correct[small],
    )
    got = BKT(restarts=1).fit(joint).skill_params(2)
    want = BKT(restarts=1).fit(alone).skill_params(0)
    for name, value in want.to_dict().items():
        assert getattr(got, name) == pytest.approx(value, abs=1e-9), name


def test_the_e_step_compiles_where_no_cache_folder_is_writable(monkeypatch: pytest.MonkeyPatch) -> None:
    import learnloop.science.kt.bkt_estep as estep

    real = estep.njit

    def no_cache_location(*args: object, **kwargs: object) -> object:
        if kwargs.get("cache"):  # what Numba raises on a read-only install without a home folder
            raise RuntimeError("cannot cache function 'f': no locator available for file 'f.py'")
        return real(*args, **kwargs)

    monkeypatch.setattr(estep, "njit", no_cache_location)
    compiled = estep._compiled(lambda x: x + 1)
    assert compiled(1) == 2 and hasattr(compiled, "py_func")
