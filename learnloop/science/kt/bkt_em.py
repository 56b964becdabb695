"""Baum-Welch (EM) for Bayesian knowledge tracing, over skills, sequences and restarts at once.

Every (learner, skill) sequence is a two-state HMM, state 1 = skill known (Corbett &
Anderson 1995). The E-step (``bkt_estep.py``, compiled) runs the scaled forward-backward
recursions (Rabiner 1989, section V.A) sequence by sequence for every random restart and
returns the expected counts; the M-step here turns them into parameters per skill (or per
item for guess/slip, as KT-IDEM, Pardos & Heffernan 2011). ``forward`` is the time-major
numpy form of the forward pass (``packing.py``), for batch prediction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from learnloop.science.kt.packing import PackedSequences, group_rows

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

EPS = 1e-6


@dataclass
class EMData:
    """One fit's data, rows grouped by (learner, skill) sequence in answer order: sequence
    ``s`` is rows ``starts[s]:starts[s + 1]``, on skill ``seq_skill[s]``."""

    starts: IntArray  # (S + 1,)
    seq_skill: IntArray  # (S,)
    correct: NDArray[np.int8]  # (N,)
    emit: IntArray  # (N,) skill code, or item code with per-item guess/slip
    n_skills: int
    n_emit: int
    max_len: int  # longest sequence
    seq_per_skill: FloatArray  # (n_skills,)
    rows_per_skill: FloatArray  # (n_skills,)
    wrong_per_skill: FloatArray  # (n_skills,)
    rows_per_emit: FloatArray  # (n_emit,)
    wrong_per_emit: FloatArray  # (n_emit,)
    # Distinct (unit, skill) pairs and their answers, to average skill-level values per unit.
    pair_emit: IntArray
    pair_skill: IntArray
    pair_rows: FloatArray
    # Independent HMM fits: skills linked through a shared emission unit form one component.
    component_of_skill: IntArray  # (n_skills,)
    component_of_emit: IntArray  # (n_emit,)
    rows_per_component: FloatArray


def make_em_data(
    sequence: IntArray,
    correct: NDArray[np.int8],
    skill: IntArray,
    emit: IntArray,
    n_skills: int,
    n_emit: int,
) -> EMData:
    """``sequence`` is one integer per row naming its (learner, skill) sequence."""
    order, starts = group_rows(sequence)
    seq_skill = skill[order[starts[:-1]]]
    rows_per_skill = np.bincount(skill, minlength=n_skills).astype(np.float64)
    wrong = 1.0 - correct.astype(np.float64)
    pair_key, pair_rows = np.unique(emit * max(n_skills, 1) + skill, return_counts=True)
    lengths = np.diff(starts)
    pair_emit, pair_skill = pair_key // max(n_skills, 1), pair_key % max(n_skills, 1)
    n_comp, component = connected_components(
        coo_matrix(
            (np.ones(len(pair_key)), (pair_skill, n_skills + pair_emit)),
            shape=(n_skills + n_emit, n_skills + n_emit),
        ),
        directed=False,
    )
    component_of_skill = component[:n_skills].astype(np.int64)
    return EMData(
        starts=starts,
        seq_skill=seq_skill,
        correct=np.ascontiguousarray(correct[order], dtype=np.int8),
        emit=np.ascontiguousarray(emit[order], dtype=np.int64),
        n_skills=n_skills,
        n_emit=n_emit,
        max_len=int(lengths.max()) if len(lengths) else 0,
        seq_per_skill=np.bincount(seq_skill, minlength=n_skills).astype(np.float64),
        rows_per_skill=rows_per_skill,
        wrong_per_skill=np.bincount(skill, weights=wrong, minlength=n_skills).astype(np.float64),
        rows_per_emit=np.bincount(emit, minlength=n_emit).astype(np.float64),
        wrong_per_emit=np.bincount(emit, weights=wrong, minlength=n_emit).astype(np.float64),
        pair_emit=pair_emit,
        pair_skill=pair_skill,
        pair_rows=pair_rows.astype(np.float64),
        component_of_skill=component_of_skill,
        component_of_emit=component[n_skills:].astype(np.int64),
        rows_per_component=np.bincount(component_of_skill, weights=rows_per_skill, minlength=n_comp).astype(
            np.float64
        ),
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
    c_t = P(answer_t | earlier answers). It carries P(known) alone, as the online
    ``bkt_update`` does, so batch predictions equal the online replay."""
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


#: The E-step as a function of the parameters and the skills still iterating: the expected counts
#: (restarts x count kind x skills, and x emission units) summed over every sequence. Sequences
#: are independent, so the sum over blocks of learners is the whole log's (``dist_fit.py`` sums
#: them over a Dask cluster).
EStep = Callable[[HMMParams, NDArray[np.bool_]], tuple[FloatArray, FloatArray]]


def expected_counts_of(
    data: EMData, params: HMMParams, active_skill: NDArray[np.bool_]
) -> tuple[FloatArray, FloatArray]:
    """The E-step's expected counts of ``data``'s sequences (a whole log or a block of learners)."""
    from learnloop.science.kt.bkt_estep import expected_counts

    skill_counts, emit_counts = expected_counts(
        data.starts,
        data.seq_skill,
        data.emit,
        data.correct,
        params.init,
        params.learn,
        params.forget,
        params.guess,
        params.slip,
        active_skill,
        data.max_len,
    )
    return skill_counts, emit_counts


def m_step(
    data: EMData,
    params: HMMParams,
    skill_counts: FloatArray,
    emit_counts: FloatArray,
    fit_forget: bool,
    max_guess: float,
    max_slip: float,
    item_prior: float,
) -> HMMParams:
    """Expected-count updates (Rabiner 1989, eqs. 40a-c) from the E-step's tables.

    Clipping guess and slip to their bounds is the exact constrained M-step: each is a
    Bernoulli likelihood, concave in the parameter, so the bounded maximiser is the clipped
    unbounded one and EM stays monotone (the bounds are Baker et al. 2008's guard against
    degenerate BKT fits)."""
    from learnloop.science.kt import bkt_estep as estep

    init = _safe_div(skill_counts[:, estep.INIT_KNOWN], data.seq_per_skill, params.init)
    learn = _safe_div(
        skill_counts[:, estep.LEARNED], skill_counts[:, estep.UNKNOWN_BEFORE_NEXT], params.learn
    )
    forget = params.forget
    if fit_forget:
        forget = _safe_div(
            skill_counts[:, estep.FORGOT], skill_counts[:, estep.KNOWN_BEFORE_NEXT], params.forget
        )
    g0, g0_right = emit_counts[:, estep.EMIT_UNKNOWN], emit_counts[:, estep.EMIT_UNKNOWN_RIGHT]
    g1 = data.rows_per_emit - g0
    g1_wrong = data.wrong_per_emit - (g0 - g0_right)
    if item_prior > 0:
        # KT-IDEM with shrinkage: each item's guess/slip is pulled toward its skill's value
        # by ``item_prior`` pseudo-answers (the MAP update under a Beta prior).
        base_guess, base_slip = _skill_guess_slip_per_emit(
            data, skill_counts[:, estep.UNKNOWN], skill_counts[:, estep.UNKNOWN_RIGHT]
        )
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


def _skill_guess_slip_per_emit(
    data: EMData, unknown: FloatArray, unknown_right: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Skill-level guess and slip (from the expected unknown answers per skill, (R, skills)),
    averaged over each emission unit's rows."""
    sk_guess = _safe_div(unknown_right, unknown, np.full_like(unknown, 0.2))
    sk_known = data.rows_per_skill - unknown
    sk_slip = _safe_div(
        data.wrong_per_skill - (unknown - unknown_right), sk_known, np.full_like(unknown, 0.1)
    )
    r, e = unknown.shape[0], data.n_emit
    base_guess, base_slip = np.empty((r, e)), np.empty((r, e))
    for i in range(r):
        w_guess = np.bincount(
            data.pair_emit, weights=data.pair_rows * sk_guess[i, data.pair_skill], minlength=e
        )
        w_slip = np.bincount(
            data.pair_emit, weights=data.pair_rows * sk_slip[i, data.pair_skill], minlength=e
        )
        base_guess[i] = _safe_div(w_guess.astype(np.float64), data.rows_per_emit, np.full(e, 0.2))
        base_slip[i] = _safe_div(w_slip.astype(np.float64), data.rows_per_emit, np.full(e, 0.1))
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


def select_restart(params: HMMParams, ll_skill: FloatArray, emit_skill: IntArray) -> HMMParams:
    """Keep, for every skill, the restart with the highest log-likelihood. Skills are
    independent HMMs, so this is the best restart of each skill's own fit; an emission unit
    (item) follows the skill it is most often answered under. Restarts within rounding of
    the best are tied and the first of them wins, so that a flat likelihood (a skill whose
    sequences all have one answer cannot tell learning from guessing) gives the same fit
    whatever the order of the sums."""
    top = ll_skill.max(axis=0)
    best = np.argmax(ll_skill >= top - 1e-9 * (1.0 + np.abs(top)), axis=0)
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
    estep: EStep | None = None,
) -> tuple[HMMParams, FloatArray, int]:
    """Iterate EM from ``params`` (all restarts together), each independent component of
    skills (``EMData.component_of_skill``) until its log-likelihood per answer improves by
    less than ``tol`` in every restart, or ``max_iter`` iterations. A converged component
    keeps its parameters and leaves the E-step, as if fitted alone (as pyBKT fits each skill
    alone): a global criterion would stop small skills still far from their optimum, and
    iterating every skill until the slowest is done would waste the E-steps of the rest.
    Returns the last parameters, their log-likelihood per (restart, skill) and the number of
    E-steps run. ``estep`` (default: ``expected_counts_of(data, ...)``) computes the counts
    elsewhere, e.g. summed over blocks of learners; ``data`` then supplies only its totals."""
    from learnloop.science.kt.bkt_estep import LOG_LIKELIHOOD

    n_comp = len(data.rows_per_component)
    active = np.ones(n_comp, dtype=bool)
    last = np.full((params.init.shape[0], n_comp), -np.inf)
    skill_counts = emit_counts = None
    it = 0
    while True:
        it += 1
        active_skill = active[data.component_of_skill]
        if estep is None:
            fresh_skill, fresh_emit = expected_counts_of(data, params, active_skill)
        else:
            fresh_skill, fresh_emit = estep(params, active_skill)
        if skill_counts is None or emit_counts is None:
            skill_counts, emit_counts = fresh_skill, fresh_emit
        else:
            # Converged components keep the counts of their last E-step.
            skill_counts[:, :, active_skill] = fresh_skill[:, :, active_skill]
            active_emit = active[data.component_of_emit]
            emit_counts[:, :, active_emit] = fresh_emit[:, :, active_emit]
        ll_skill = skill_counts[:, LOG_LIKELIHOOD]
        ll = np.stack(
            [np.bincount(data.component_of_skill, weights=row, minlength=n_comp) for row in ll_skill]
        ).astype(np.float64)
        ll /= np.maximum(data.rows_per_component, 1.0)
        active &= ~np.all(ll - last < tol, axis=0)
        if it > max_iter or not active.any():
            return params, ll_skill, it
        last = ll
        new = m_step(data, params, skill_counts, emit_counts, fit_forget, max_guess, max_slip, item_prior)
        params = _keep_converged(new, params, active[data.component_of_skill], active[data.component_of_emit])


def _keep_converged(
    new: HMMParams, old: HMMParams, active_skill: NDArray[np.bool_], active_emit: NDArray[np.bool_]
) -> HMMParams:
    return HMMParams(
        init=np.where(active_skill, new.init, old.init),
        learn=np.where(active_skill, new.learn, old.learn),
        forget=np.where(active_skill, new.forget, old.forget),
        guess=np.where(active_emit, new.guess, old.guess),
        slip=np.where(active_emit, new.slip, old.slip),
    )


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
    estep: EStep | None = None,
) -> tuple[HMMParams, FloatArray, int]:
    """EM with raced restarts: all restarts run ``race_iter`` iterations side by side, then
    each skill keeps its best restart and only that one runs on to convergence. Returns
    single-restart parameters (leading axis of length 1)."""
    its = 0
    if params.init.shape[0] > 1:
        params, ll_skill, its = em_iterations(
            data, params, fit_forget, max_guess, max_slip, item_prior, min(race_iter, max_iter), tol, estep
        )
        params = select_restart(params, ll_skill, emit_skill)
    params, ll_skill, more = em_iterations(
        data, params, fit_forget, max_guess, max_slip, item_prior, max(max_iter - its, 0), tol, estep
    )
    return params, ll_skill, its + more
