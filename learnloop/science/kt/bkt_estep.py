"""The E-step of BKT's Baum-Welch, compiled with Numba: one forward-backward pass per
(learner, skill) sequence that adds the expected counts of the M-step as it goes.

The time-major numpy form (``packing.py``) pays one Python step per time step, and on
logs with a few very long sequences those steps are nearly empty; here each sequence runs
its own tight loop instead, for every random restart in the same visit of its rows.
``bkt_em`` imports it only inside a fit, so that importing ``learnloop.science.kt`` (to
predict or update online) does not load Numba.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numba import njit
from numpy.typing import NDArray


def _compiled(fn: Callable[..., Any]) -> Any:
    """Compiled once and cached on disk, or per process where no cache folder is writable
    (a read-only install without a home folder or ``NUMBA_CACHE_DIR``: Numba refuses to
    cache there rather than compile)."""
    try:
        return njit(cache=True, nogil=True)(fn)
    except RuntimeError:
        return njit(nogil=True)(fn)


# Rows of the per-skill count table ``skill_counts[restart, row, skill]``.
INIT_KNOWN = 0  # gamma_0(known) on each sequence's first answer
LEARNED = 1  # xi(unknown -> known)
UNKNOWN_BEFORE_NEXT = 2  # gamma_t(unknown) on answers followed by another
FORGOT = 3  # xi(known -> unknown)
KNOWN_BEFORE_NEXT = 4  # gamma_t(known) on answers followed by another
LOG_LIKELIHOOD = 5  # sum of log P(answer_t | earlier answers)
UNKNOWN = 6  # gamma_t(unknown) on every answer
UNKNOWN_RIGHT = 7  # gamma_t(unknown) on right answers
N_SKILL_COUNTS = 8
# Rows of the per-emission-unit table ``emit_counts[restart, row, unit]``.
EMIT_UNKNOWN = 0
EMIT_UNKNOWN_RIGHT = 1
N_EMIT_COUNTS = 2


@_compiled
def expected_counts(
    starts: NDArray[np.int64],
    seq_skill: NDArray[np.int64],
    emit: NDArray[np.int64],
    correct: NDArray[np.int8],
    init: NDArray[np.float64],
    learn: NDArray[np.float64],
    forget: NDArray[np.float64],
    guess: NDArray[np.float64],
    slip: NDArray[np.float64],
    active: NDArray[np.bool_],
    max_len: int,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Expected counts of every restart under its parameters (``init, learn, forget`` are
    (R, skills), ``guess, slip`` (R, units)); rows are grouped by sequence, sequence ``s``
    being ``starts[s]:starts[s + 1]`` on skill ``seq_skill[s]``. Sequences of skills not
    ``active`` are skipped and count zero.

    Scaled forward (Rabiner 1989, eqs. 19-20, 91): post_t(j) = P(state j | answers to t)
    and c_t = P(answer_t | earlier answers). Scaled backward (eqs. 24-25, 92) with
    e_j(t) = b_j(o_t) beta_t(j) / c_t: gamma_t(j) = post_t(j) beta_t(j) and
    xi_{t-1}(i -> j) = post_{t-1}(i) a_ij e_j(t) (eqs. 37-38)."""
    r_count = init.shape[0]
    skill_counts = np.zeros((r_count, N_SKILL_COUNTS, init.shape[1]))
    emit_counts = np.zeros((r_count, N_EMIT_COUNTS, guess.shape[1]))
    post_known = np.empty(max_len)
    post_unknown = np.empty(max_len)
    inv_scale = np.empty(max_len)
    for s in range(len(starts) - 1):
        a, b = starts[s], starts[s + 1]
        k = seq_skill[s]
        if not active[k]:
            continue
        for r in range(r_count):
            lrn, fgt = learn[r, k], forget[r, k]
            # Both states' probabilities are carried, never one as 1 minus the other: after
            # a long run of right answers P(unknown) is far below 1e-16, and a later run of
            # wrong answers multiplies it back up, so its relative precision matters.
            pk, pu = init[r, k], 1.0 - init[r, k]
            loglik, lik = 0.0, 1.0
            for t in range(b - a):
                u = emit[a + t]
                if correct[a + t] > 0:
                    lk, lu = 1.0 - slip[r, u], guess[r, u]
                else:
                    lk, lu = slip[r, u], 1.0 - guess[r, u]
                qk, qu = pk * lk, pu * lu
                c = qk + qu
                inv = 1.0 / c
                qk, qu = qk * inv, qu * inv
                post_known[t], post_unknown[t], inv_scale[t] = qk, qu, inv
                # log prod c_t, one log per run of factors (each c_t >= min(guess, slip)).
                lik *= c
                if lik < 1e-200:
                    loglik += np.log(lik)
                    lik = 1.0
                pk, pu = qk * (1.0 - fgt) + qu * lrn, qu * (1.0 - lrn) + qk * fgt
            loglik += np.log(lik)
            beta0 = beta1 = 1.0
            learned = forgot = from_unknown = from_known = unknown = unknown_right = 0.0
            for t in range(b - a - 1, -1, -1):
                u = emit[a + t]
                right = correct[a + t] > 0
                if right:
                    lk, lu = 1.0 - slip[r, u], guess[r, u]
                else:
                    lk, lu = slip[r, u], 1.0 - guess[r, u]
                g0 = post_unknown[t] * beta0
                unknown += g0
                emit_counts[r, EMIT_UNKNOWN, u] += g0
                if right:
                    unknown_right += g0
                    emit_counts[r, EMIT_UNKNOWN_RIGHT, u] += g0
                if t < b - a - 1:
                    from_unknown += g0
                    from_known += post_known[t] * beta1
                e0 = lu * inv_scale[t] * beta0
                e1 = lk * inv_scale[t] * beta1
                if t > 0:
                    learned += post_unknown[t - 1] * lrn * e1
                    forgot += post_known[t - 1] * fgt * e0
                    beta0 = (1.0 - lrn) * e0 + lrn * e1
                    beta1 = fgt * e0 + (1.0 - fgt) * e1
                else:
                    skill_counts[r, INIT_KNOWN, k] += post_known[0] * beta1
            skill_counts[r, LEARNED, k] += learned
            skill_counts[r, UNKNOWN_BEFORE_NEXT, k] += from_unknown
            skill_counts[r, FORGOT, k] += forgot
            skill_counts[r, KNOWN_BEFORE_NEXT, k] += from_known
            skill_counts[r, LOG_LIKELIHOOD, k] += loglik
            skill_counts[r, UNKNOWN, k] += unknown
            skill_counts[r, UNKNOWN_RIGHT, k] += unknown_right
    return skill_counts, emit_counts
