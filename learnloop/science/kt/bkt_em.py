"""Baum-Welch (EM) for Bayesian knowledge tracing, vectorised over skills, sequences and restarts.

Every (learner, skill) sequence is a two-state HMM, state 1 = skill known (Corbett &
Anderson 1995). Rows are packed time-major (``packing.py``) so each step of the scaled
forward-backward recursions (Rabiner 1989, eqs. 92-93 and the scaled gamma/xi of section
V.A) is one numpy operation over every sequence and every random restart at once; the
M-step sums the expected counts per skill (or per item for guess/slip, as KT-IDEM, Pardos
& Heffernan 2011) with ``np.bincount``.

Arrays named ``*_row`` are laid out ``(restarts, packed rows)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from learnloop.science.kt.packing import PackedSequences

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

EPS = 1e-6


@dataclass
class EMData:
    """One fit's data in packed order. Step 0 (the first answer of every sequence) is the
    prefix ``[:n_first]``; every later row has a predecessor in its sequence."""

    packed: PackedSequences
    obs: FloatArray  # (N,) 0/1 as float
    skill: IntArray  # (N,)
    emit: IntArray  # (N,) skill code, or item code with per-item guess/slip
    n_skills: int
    n_emit: int
    n_first: int
    has_next: FloatArray  # (N,) 1.0 where the row is followed by another of its sequence
    seq_per_skill: FloatArray  # (n_skills,) sequences per skill
    rows_per_emit: FloatArray  # (n_emit,)
    wrong_per_emit: FloatArray  # (n_emit,) wrong answers per emission unit
    emit_answer: IntArray  # (N,) 2 * emit + answer, an index into (unit, answer) tables


def make_em_data(
    packed: PackedSequences,
    correct: NDArray[np.int8],
    skill: IntArray,
    emit: IntArray,
    n_skills: int,
    n_emit: int,
) -> EMData:
    n = len(packed.order)
    has_next = np.zeros(n)
    for t in range(packed.n_steps - 1):
        start = int(packed.offsets[t])
        has_next[start : start + int(packed.sizes[t + 1])] = 1.0
    n_first = int(packed.sizes[0]) if packed.n_steps else 0
    o = packed.order
    obs = correct[o].astype(np.float64)
    sk, em = skill[o], emit[o]
    return EMData(
        packed=packed,
        obs=obs,
        skill=sk,
        emit=em,
        n_skills=n_skills,
        n_emit=n_emit,
        n_first=n_first,
        has_next=has_next,
        seq_per_skill=np.bincount(sk[:n_first], minlength=n_skills).astype(np.float64),
        rows_per_emit=np.bincount(em, minlength=n_emit).astype(np.float64),
        wrong_per_emit=np.bincount(em, weights=1.0 - obs, minlength=n_emit).astype(np.float64),
        emit_answer=2 * em + correct[o].astype(np.int64),
    )


@dataclass
class HMMParams:
    """Parameters of ``R`` restarts: ``init, learn, forget`` are (R, n_skills); ``guess, slip``
    are (R, n_emit)."""

    init: FloatArray
    learn: FloatArray
    forget: FloatArray
    guess: FloatArray
    slip: FloatArray


def emission_likelihoods(
    obs: FloatArray, guess_row: FloatArray, slip_row: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """P(answer | known) and P(answer | unknown) per row."""
    lik_known = np.where(obs > 0.5, 1.0 - slip_row, slip_row)
    lik_unknown = np.where(obs > 0.5, guess_row, 1.0 - guess_row)
    return lik_known, lik_unknown


def forward(
    packed: PackedSequences,
    lik_known: FloatArray,
    lik_unknown: FloatArray,
    init_first: FloatArray,
    learn_row: FloatArray,
    forget_row: FloatArray | None,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Scaled forward pass (Rabiner 1989, eqs. 19-20 with the scaling of eq. 91).

    ``init_first`` holds P(L0) for the step-0 rows. Returns, per row, P(known) before the
    answer (the prediction prior), P(known | answers so far) after it, and the scale
    c_t = P(answer_t | earlier answers)."""
    shape = lik_known.shape
    prior = np.empty(shape)
    post = np.empty(shape)
    scale = np.empty(shape)
    # p_t = learn + post_{t-1} * (1 - forget - learn);  c_t = lik_unknown + p_t * (lik_known - lik_unknown)
    stay = 1.0 - learn_row if forget_row is None else 1.0 - forget_row - learn_row
    diff = lik_known - lik_unknown
    sizes, offsets = packed.sizes, packed.offsets
    for t in range(packed.n_steps):
        a, b = int(offsets[t]), int(offsets[t + 1])
        p = prior[:, a:b]
        if t == 0:
            p[...] = init_first
        else:
            pa = int(offsets[t - 1])
            np.multiply(post[:, pa : pa + int(sizes[t])], stay[:, a:b], out=p)
            p += learn_row[:, a:b]
        c = scale[:, a:b]
        np.multiply(p, diff[:, a:b], out=c)
        c += lik_unknown[:, a:b]
        q = post[:, a:b]
        np.multiply(p, lik_known[:, a:b], out=q)
        q /= c
    return prior, post, scale


def backward(
    packed: PackedSequences,
    lik_known: FloatArray,
    lik_unknown: FloatArray,
    learn_row: FloatArray,
    forget_row: FloatArray | None,
    post: FloatArray,
    scale: FloatArray,
) -> tuple[FloatArray, FloatArray, FloatArray | None]:
    """Scaled backward pass (Rabiner 1989, eqs. 24-25, 37-38 with the scaling of eq. 92).

    Returns gamma_t(known) per row and the expected transitions xi(unknown -> known) and
    xi(known -> unknown, None without forgetting) into each row from the row before it
    (meaningless on step-0 rows, which the M-step skips)."""
    shape = lik_known.shape
    beta0 = np.ones(shape)
    beta1 = np.ones(shape)
    # e_j(t) = b_j(o_t) beta_t(j) / c_t; beta_t is final once step t + 1 has been folded in.
    e0 = lik_unknown / scale
    e1 = lik_known / scale
    sizes, offsets = packed.sizes, packed.offsets
    for t in range(packed.n_steps - 2, -1, -1):
        a = int(offsets[t])
        na, nb = int(offsets[t + 1]), int(offsets[t + 2])
        m = int(sizes[t + 1])
        e0n, e1n = e0[:, na:nb], e1[:, na:nb]
        e0n *= beta0[:, na:nb]
        e1n *= beta1[:, na:nb]
        d = e1n - e0n
        b0 = beta0[:, a : a + m]
        np.multiply(learn_row[:, na:nb], d, out=b0)
        b0 += e0n  # (1 - learn) e0 + learn e1
        if forget_row is not None:
            b1 = beta1[:, a : a + m]
            np.multiply(forget_row[:, na:nb], d, out=b1)
            np.subtract(e1n, b1, out=b1)  # forget e0 + (1 - forget) e1
        else:
            beta1[:, a : a + m] = e1n
    prev_post = _previous_post(packed, post)
    xi01 = (1.0 - prev_post) * learn_row * e1
    xi10 = prev_post * forget_row * e0 if forget_row is not None else None
    gamma1 = post * beta1
    return gamma1, xi01, xi10


def _previous_post(packed: PackedSequences, post: FloatArray) -> FloatArray:
    """For every row, P(known | answers so far) at the previous row of its sequence
    (zero on step-0 rows, where no transition leads in)."""
    out = np.zeros_like(post)
    sizes, offsets = packed.sizes, packed.offsets
    for t in range(1, packed.n_steps):
        a, b, pa = int(offsets[t]), int(offsets[t + 1]), int(offsets[t - 1])
        out[:, a:b] = post[:, pa : pa + int(sizes[t])]
    return out


def _sum_by(index: IntArray, n: int, values: FloatArray) -> FloatArray:
    """Sums of ``values`` (R, M) grouped by ``index`` (M,) into (R, n)."""
    r = values.shape[0]
    if r == 1:
        return np.bincount(index, weights=values[0], minlength=n).astype(np.float64)[None, :]
    flat = (np.arange(r)[:, None] * n + index[None, :]).ravel()
    return np.bincount(flat, weights=values.ravel(), minlength=r * n).astype(np.float64).reshape(r, n)


def m_step(
    data: EMData,
    params: HMMParams,
    gamma1: FloatArray,
    xi01: FloatArray,
    xi10: FloatArray | None,
    max_guess: float,
    max_slip: float,
    item_prior: float,
) -> HMMParams:
    """Expected-count updates (Rabiner 1989, eqs. 40a-c).

    Clipping guess and slip to their bounds is the exact constrained M-step: each is a
    Bernoulli likelihood, concave in the parameter, so the bounded maximiser is the clipped
    unbounded one and EM stays monotone (the bounds are Baker et al. 2008's guard against
    degenerate BKT fits)."""
    k, n0 = data.n_skills, data.n_first
    gamma0 = 1.0 - gamma1
    init = _safe_div(_sum_by(data.skill[:n0], k, gamma1[:, :n0]), data.seq_per_skill, params.init)
    later = data.skill[n0:]
    learn = _safe_div(
        _sum_by(later, k, xi01[:, n0:]), _sum_by(data.skill, k, gamma0 * data.has_next), params.learn
    )
    forget = params.forget
    if xi10 is not None:
        forget = _safe_div(
            _sum_by(later, k, xi10[:, n0:]), _sum_by(data.skill, k, gamma1 * data.has_next), params.forget
        )
    e = data.n_emit
    g0 = _sum_by(data.emit, e, gamma0)
    g0_right = _sum_by(data.emit, e, gamma0 * data.obs)
    g1 = data.rows_per_emit - g0
    g1_wrong = data.wrong_per_emit - (g0 - g0_right)
    if item_prior > 0:
        # KT-IDEM with shrinkage: each item's guess/slip is pulled toward its skill's value
        # by ``item_prior`` pseudo-answers (the MAP update under a Beta prior).
        base_guess, base_slip = _skill_guess_slip_per_emit(data, gamma0)
        g0_right, g0 = g0_right + item_prior * base_guess, g0 + item_prior
        g1_wrong, g1 = g1_wrong + item_prior * base_slip, g1 + item_prior
    guess = np.clip(_safe_div(g0_right, g0, params.guess), EPS, max_guess)
    slip = np.clip(_safe_div(g1_wrong, g1, params.slip), EPS, max_slip)
    return HMMParams(
        init=np.clip(init, EPS, 1 - EPS),
        learn=np.clip(learn, EPS, 1 - EPS),
        forget=np.clip(forget, 0.0, 1 - EPS),
        guess=guess,
        slip=slip,
    )


def _skill_guess_slip_per_emit(data: EMData, gamma0: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Skill-level guess and slip, averaged over each emission unit's rows."""
    k, e = data.n_skills, data.n_emit
    ones = np.ones_like(gamma0)
    sk_g0 = _sum_by(data.skill, k, gamma0)
    sk_guess = _safe_div(_sum_by(data.skill, k, gamma0 * data.obs), sk_g0, 0.2 * np.ones_like(sk_g0))
    sk_g1 = _sum_by(data.skill, k, ones) - sk_g0
    sk_wrong = _sum_by(data.skill, k, gamma0 * 0 + (1.0 - data.obs)) - (
        sk_g0 - _sum_by(data.skill, k, gamma0 * data.obs)
    )
    sk_slip = _safe_div(sk_wrong, sk_g1, 0.1 * np.ones_like(sk_g1))
    w = data.rows_per_emit[None, :]
    base_guess = _safe_div(
        _sum_by(data.emit, e, np.take(sk_guess, data.skill, axis=1)), w, 0.2 * np.ones((1, e))
    )
    base_slip = _safe_div(
        _sum_by(data.emit, e, np.take(sk_slip, data.skill, axis=1)), w, 0.1 * np.ones((1, e))
    )
    return base_guess, base_slip


def _safe_div(num: FloatArray, den: FloatArray, fallback: FloatArray) -> FloatArray:
    den_b = np.broadcast_to(den, num.shape)
    out = np.array(np.broadcast_to(fallback, num.shape), dtype=np.float64, copy=True)
    ok = den_b > 1e-12
    out[ok] = num[ok] / den_b[ok]
    return out


def random_params(
    rng: np.random.Generator,
    restarts: int,
    n_skills: int,
    n_emit: int,
    fit_forget: bool,
    max_guess: float,
    max_slip: float,
) -> HMMParams:
    """Starting points: restart 0 is a conventional BKT prior, the others are drawn at random."""
    r = restarts
    init = rng.uniform(0.05, 0.95, (r, n_skills))
    learn = rng.uniform(0.02, 0.4, (r, n_skills))
    forget = rng.uniform(0.0, 0.1, (r, n_skills)) if fit_forget else np.zeros((r, n_skills))
    guess = np.broadcast_to(rng.uniform(0.05, min(0.4, max_guess), (r, 1)), (r, n_emit)).copy()
    slip = np.broadcast_to(rng.uniform(0.05, min(0.3, max_slip), (r, 1)), (r, n_emit)).copy()
    init[0], learn[0], guess[0], slip[0] = 0.4, 0.1, min(0.2, max_guess), min(0.1, max_slip)
    if fit_forget:
        forget[0] = 0.02
    return HMMParams(init=init, learn=learn, forget=forget, guess=guess, slip=slip)


def row_params(
    data: EMData, params: HMMParams, fit_forget: bool
) -> tuple[FloatArray, FloatArray, FloatArray | None]:
    """Per-row (R, N) arrays by skill: init (step-0 rows only), learn, forget (None when
    not fitted)."""
    s = data.skill
    init_first = np.take(params.init, s[: data.n_first], axis=1)
    forget = np.take(params.forget, s, axis=1) if fit_forget else None
    return init_first, np.take(params.learn, s, axis=1), forget


def emission_tables(data: EMData, params: HMMParams) -> tuple[FloatArray, FloatArray]:
    """P(answer | known), P(answer | unknown) per row, looked up from a (unit, answer) table."""
    r, e = params.guess.shape
    known = np.empty((r, 2 * e))
    unknown = np.empty((r, 2 * e))
    known[:, 0::2], known[:, 1::2] = params.slip, 1.0 - params.slip
    unknown[:, 0::2], unknown[:, 1::2] = 1.0 - params.guess, params.guess
    return np.take(known, data.emit_answer, axis=1), np.take(unknown, data.emit_answer, axis=1)


def log_likelihood_by_skill(data: EMData, scale: FloatArray) -> FloatArray:
    return _sum_by(data.skill, data.n_skills, np.log(np.maximum(scale, 1e-300)))


def select_restart(params: HMMParams, ll_skill: FloatArray, emit_skill: IntArray) -> HMMParams:
    """Keep, for every skill, the restart with the highest log-likelihood. Skills are
    independent HMMs, so this is the best restart of each skill's own fit; an emission unit
    (item) follows the skill it is most often answered under."""
    best = np.argmax(ll_skill, axis=0)
    cols = np.arange(ll_skill.shape[1])
    emit_best = best[np.maximum(emit_skill, 0)]
    ecols = np.arange(len(emit_skill))
    return HMMParams(
        init=params.init[best, cols][None],
        learn=params.learn[best, cols][None],
        forget=params.forget[best, cols][None],
        guess=params.guess[emit_best, ecols][None],
        slip=params.slip[emit_best, ecols][None],
    )


def em_iterations(
    data: EMData,
    params: HMMParams,
    fit_forget: bool,
    max_guess: float,
    max_slip: float,
    item_prior: float,
    max_iter: int,
    tol: float,
) -> tuple[HMMParams, FloatArray, int]:
    """Iterate EM from ``params`` (all restarts together) until the mean log-likelihood per
    answer improves by less than ``tol`` in every restart, or ``max_iter`` iterations.
    Returns the last parameters, their log-likelihood per (restart, skill) and the number of
    E-steps run."""
    n = max(len(data.obs), 1)
    last = np.full(params.init.shape[0], -np.inf)
    ll_skill = np.zeros_like(params.init)
    for it in range(1, max_iter + 2):
        init_r, learn_r, forget_r = row_params(data, params, fit_forget)
        lk, lu = emission_tables(data, params)
        _, post, scale = forward(data.packed, lk, lu, init_r, learn_r, forget_r)
        ll_skill = log_likelihood_by_skill(data, scale)
        ll = ll_skill.sum(axis=1) / n
        if it > max_iter or np.all(ll - last < tol):
            return params, ll_skill, it
        last = ll
        gamma1, xi01, xi10 = backward(data.packed, lk, lu, learn_r, forget_r, post, scale)
        params = m_step(data, params, gamma1, xi01, xi10, max_guess, max_slip, item_prior)
    return params, ll_skill, max_iter + 1


def run_em(
    data: EMData,
    params: HMMParams,
    emit_skill: IntArray,
    fit_forget: bool,
    max_guess: float,
    max_slip: float,
    item_prior: float,
    max_iter: int,
    tol: float,
    race_iter: int = 5,
) -> tuple[HMMParams, FloatArray, int]:
    """EM with raced restarts: all restarts run ``race_iter`` iterations side by side, then
    each skill keeps its best restart and only that one runs on to convergence. Returns
    single-restart parameters (leading axis of length 1)."""
    its = 0
    if params.init.shape[0] > 1:
        params, ll_skill, its = em_iterations(
            data, params, fit_forget, max_guess, max_slip, item_prior, min(race_iter, max_iter), tol
        )
        params = select_restart(params, ll_skill, emit_skill)
    params, ll_skill, more = em_iterations(
        data, params, fit_forget, max_guess, max_slip, item_prior, max(max_iter - its, 0), tol
    )
    return params, ll_skill, its + more
