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


def make_em_data(packed: PackedSequences, correct: NDArray[np.int8], skill: IntArray,
                 emit: IntArray, n_skills: int, n_emit: int) -> EMData:
    n = len(packed.order)
    has_next = np.zeros(n)
    for t in range(packed.n_steps - 1):
        start = int(packed.offsets[t])
        has_next[start:start + int(packed.sizes[t + 1])] = 1.0
    n_first = int(packed.sizes[0]) if packed.n_steps else 0
    o = packed.order
    obs = correct[o].astype(np.float64)
    sk, em = skill[o], emit[o]
    return EMData(packed=packed, obs=obs, skill=sk, emit=em, n_skills=n_skills, n_emit=n_emit,
                  n_first=n_first, has_next=has_next,
                  seq_per_skill=np.bincount(sk[:n_first], minlength=n_skills).astype(np.float64),
                  rows_per_emit=np.bincount(em, minlength=n_emit).astype(np.float64),
                  wrong_per_emit=np.bincount(em, weights=1.0 - obs, minlength=n_emit))


@dataclass
class HMMParams:
    """Parameters of ``R`` restarts: ``init, learn, forget`` are (R, n_skills); ``guess, slip``
    are (R, n_emit)."""

    init: FloatArray
    learn: FloatArray
    forget: FloatArray
    guess: FloatArray
    slip: FloatArray


def emission_likelihoods(obs: FloatArray, guess_row: FloatArray, slip_row: FloatArray
                         ) -> tuple[FloatArray, FloatArray]:
    """P(answer | known) and P(answer | unknown) per row."""
    lik_known = np.where(obs > 0.5, 1.0 - slip_row, slip_row)
    lik_unknown = np.where(obs > 0.5, guess_row, 1.0 - guess_row)
    return lik_known, lik_unknown


def forward(packed: PackedSequences, lik_known: FloatArray, lik_unknown: FloatArray,
            init_row: FloatArray, learn_row: FloatArray, forget_row: FloatArray
            ) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Scaled forward pass (Rabiner 1989, eqs. 19-20 with scaling, eq. 91). Returns, per row,
    P(known) before the answer (the prediction prior), P(known | answers so far) after it,
    and the scale c_t = P(answer_t | earlier answers)."""
    shape = lik_known.shape
    prior = np.empty(shape)
    post = np.empty(shape)
    scale = np.empty(shape)
    stay = 1.0 - forget_row - learn_row  # p_t = learn + post_{t-1} * (1 - forget - learn)
    diff = lik_known - lik_unknown  # c_t = lik_unknown + p_t * (lik_known - lik_unknown)
    sizes, offsets = packed.sizes, packed.offsets
    for t in range(packed.n_steps):
        a, b = int(offsets[t]), int(offsets[t + 1])
        p = prior[:, a:b]
        if t == 0:
            p[...] = init_row[:, a:b]
        else:
            pa = int(offsets[t - 1])
            np.multiply(post[:, pa:pa + int(sizes[t])], stay[:, a:b], out=p)
            p += learn_row[:, a:b]
        c = scale[:, a:b]
        np.multiply(p, diff[:, a:b], out=c)
        c += lik_unknown[:, a:b]
        q = post[:, a:b]
        np.multiply(p, lik_known[:, a:b], out=q)
        q /= c
    return prior, post, scale


def backward(packed: PackedSequences, lik_known: FloatArray, lik_unknown: FloatArray,
             learn_row: FloatArray, forget_row: FloatArray, post: FloatArray, scale: FloatArray
             ) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Scaled backward pass (Rabiner 1989, eqs. 24-25, 37, 92). Returns gamma_t(known) per
    row and the expected transitions xi(unknown->known), xi(known->unknown) into each row
    from the row before it."""
    shape = lik_known.shape
    beta0 = np.ones(shape)
    beta1 = np.ones(shape)
    # e_j = b_j(o_{t+1}) beta_{t+1}(j) / c_{t+1}, filled in step by step from the end.
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
        b0 = beta0[:, a:a + m]
        np.multiply(learn_row[:, na:nb], d, out=b0)
        b0 += e0n
        b1 = beta1[:, a:a + m]
        np.multiply(forget_row[:, na:nb], d, out=b1)
        np.subtract(e1n, b1, out=b1)
    # Rows at step 0 have no predecessor; their e values are unused (masked in the M-step).
    xi01 = (1.0 - _shift_post(packed, post)) * learn_row * e1
    xi10 = _shift_post(packed, post) * forget_row * e0
    gamma1 = post * beta1
    return gamma1, xi01, xi10


def _shift_post(packed: PackedSequences, post: FloatArray) -> FloatArray:
    """For every row, P(known | answers so far) at the previous row of its sequence
    (zero at the first row, where no transition leads in)."""
    out = np.zeros_like(post)
    sizes, offsets = packed.sizes, packed.offsets
    for t in range(1, packed.n_steps):
        a, b, pa = int(offsets[t]), int(offsets[t + 1]), int(offsets[t - 1])
        out[:, a:b] = post[:, pa:pa + int(sizes[t])]
    return out


def _sum_by(index: IntArray, n: int, values: FloatArray) -> FloatArray:
    """Row sums of ``values`` (R, N) grouped by ``index`` (N,) into (R, n)."""
    r = values.shape[0]
    flat = (np.arange(r)[:, None] * n + index[None, :]).ravel()
    return np.bincount(flat, weights=values.ravel(), minlength=r * n).reshape(r, n)


def m_step(data: EMData, params: HMMParams, gamma1: FloatArray, xi01: FloatArray, xi10: FloatArray,
           fit_forget: bool, max_guess: float, max_slip: float, item_prior: float) -> HMMParams:
    """Expected-count updates (Rabiner 1989, eqs. 40a-c). Clipping guess and slip to their
    bounds is the exact constrained M-step: each is a Bernoulli likelihood, concave in the
    parameter, so the bounded maximiser is the clipped unbounded one and EM stays monotone."""
    k = data.n_skills
    gamma0 = 1.0 - gamma1
    first = data.is_first
    n_first = np.bincount(data.skill[first], minlength=k)[None, :]
    init = _safe_div(_sum_by(data.skill[first], k, gamma1[:, first]), n_first, params.init)
    src = data.has_next
    # xi is stored on the row a transition leads into; its source row is the one before.
    dst = _shift_to_next(data)
    learn = _safe_div(_sum_by(data.skill[dst], k, xi01[:, dst]),
                      _sum_by(data.skill[src], k, gamma0[:, src]), params.learn)
    if fit_forget:
        forget = _safe_div(_sum_by(data.skill[dst], k, xi10[:, dst]),
                           _sum_by(data.skill[src], k, gamma1[:, src]), params.forget)
    else:
        forget = params.forget
    obs = data.obs[None, :]
    e = data.n_emit
    guess_num = _sum_by(data.emit, e, gamma0 * obs)
    guess_den = _sum_by(data.emit, e, gamma0)
    slip_num = _sum_by(data.emit, e, gamma1 * (1.0 - obs))
    slip_den = _sum_by(data.emit, e, gamma1)
    if item_prior > 0:
        # KT-IDEM with shrinkage: each item's guess/slip is pulled toward its skill's value
        # by ``item_prior`` pseudo-answers (a Beta prior's MAP update).
        sk_guess = _safe_div(_sum_by(data.skill, k, gamma0 * obs), _sum_by(data.skill, k, gamma0),
                             np.full((gamma1.shape[0], k), 0.2))
        sk_slip = _safe_div(_sum_by(data.skill, k, gamma1 * (1.0 - obs)), _sum_by(data.skill, k, gamma1),
                            np.full((gamma1.shape[0], k), 0.1))
        w = np.bincount(data.emit, minlength=e)[None, :]
        base_guess = _safe_div(_sum_by(data.emit, e, sk_guess[:, data.skill]), w, params.guess)
        base_slip = _safe_div(_sum_by(data.emit, e, sk_slip[:, data.skill]), w, params.slip)
        guess_num = guess_num + item_prior * base_guess
        guess_den = guess_den + item_prior
        slip_num = slip_num + item_prior * base_slip
        slip_den = slip_den + item_prior
    guess = np.clip(_safe_div(guess_num, guess_den, params.guess), EPS, max_guess)
    slip = np.clip(_safe_div(slip_num, slip_den, params.slip), EPS, max_slip)
    return HMMParams(init=np.clip(init, EPS, 1 - EPS), learn=np.clip(learn, EPS, 1 - EPS),
                     forget=np.clip(forget, 0.0, 1 - EPS), guess=guess, slip=slip)


def _shift_to_next(data: EMData) -> NDArray[np.bool_]:
    """Mask of rows that have a predecessor (every row except the first of a sequence)."""
    return ~data.is_first


def _safe_div(num: FloatArray, den: FloatArray | NDArray[np.int64], fallback: FloatArray) -> FloatArray:
    den_b = np.broadcast_to(den, num.shape)
    out = np.array(fallback, dtype=np.float64, copy=True)
    ok = den_b > 1e-12
    out[ok] = num[ok] / den_b[ok]
    return out


def random_params(rng: np.random.Generator, restarts: int, n_skills: int, n_emit: int,
                  fit_forget: bool, max_guess: float, max_slip: float) -> HMMParams:
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


def row_params(data: EMData, params: HMMParams) -> tuple[FloatArray, ...]:
    """Per-row (R, N) arrays: init, learn, forget (by skill) and guess, slip (by emit unit)."""
    s, e = data.skill, data.emit
    return (params.init[:, s], params.learn[:, s], params.forget[:, s],
            params.guess[:, e], params.slip[:, e])


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
    return HMMParams(init=params.init[best, cols][None], learn=params.learn[best, cols][None],
                     forget=params.forget[best, cols][None], guess=params.guess[emit_best, ecols][None],
                     slip=params.slip[emit_best, ecols][None])


def em_iterations(data: EMData, params: HMMParams, fit_forget: bool, max_guess: float, max_slip: float,
                  item_prior: float, max_iter: int, tol: float) -> tuple[HMMParams, FloatArray, int]:
    """Iterate EM from ``params`` (all restarts together) until the mean log-likelihood per
    answer improves by less than ``tol`` in every restart, or ``max_iter`` iterations.
    Returns the last parameters, their log-likelihood per (restart, skill) and the number of
    E-steps run."""
    n = max(len(data.obs), 1)
    last = np.full(params.init.shape[0], -np.inf)
    obs = data.obs[None, :]
    ll_skill = np.zeros_like(params.init)
    for it in range(1, max_iter + 2):
        init_r, learn_r, forget_r, guess_r, slip_r = row_params(data, params)
        lk, lu = emission_likelihoods(obs, guess_r, slip_r)
        _, post, scale = forward(data.packed, lk, lu, init_r, learn_r, forget_r)
        ll_skill = log_likelihood_by_skill(data, scale)
        ll = ll_skill.sum(axis=1) / n
        if it > max_iter or np.all(ll - last < tol):
            return params, ll_skill, it
        last = ll
        gamma1, xi01, xi10 = backward(data.packed, lk, lu, learn_r, forget_r, post, scale)
        params = m_step(data, params, gamma1, xi01, xi10, fit_forget, max_guess, max_slip, item_prior)
    return params, ll_skill, max_iter + 1


def run_em(data: EMData, params: HMMParams, emit_skill: IntArray, fit_forget: bool, max_guess: float,
           max_slip: float, item_prior: float, max_iter: int, tol: float, race_iter: int = 5
           ) -> tuple[HMMParams, FloatArray, int]:
    """EM with raced restarts: all restarts run ``race_iter`` iterations side by side, then
    each skill keeps its best restart and only that one runs on to convergence. Returns
    single-restart parameters (leading axis of length 1)."""
    its = 0
    if params.init.shape[0] > 1:
        params, ll_skill, its = em_iterations(data, params, fit_forget, max_guess, max_slip, item_prior,
                                              min(race_iter, max_iter), tol)
        params = select_restart(params, ll_skill, emit_skill)
    params, ll_skill, more = em_iterations(data, params, fit_forget, max_guess, max_slip, item_prior,
                                           max(max_iter - its, 0), tol)
    return params, ll_skill, its + more
