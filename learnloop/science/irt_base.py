"""Item response theory, shared pieces: the logistic response functions, the quadrature grid and
the response matrix with its grid log-likelihoods. Used by calibration (``irt.py``), ability
scoring (``irt_scoring.py``) and adaptive testing (``cat.py``).

Parameterisation: P(correct | theta) = c + (1 - c) / (1 + exp(-(a * theta + d))), the
slope-intercept form used by mirt; the difficulty form a * (theta - b) has b = -d / a.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import expit, logsumexp

Array = NDArray[np.float64]
ModelName = Literal["1pl", "2pl", "3pl"]

QUADRATURE_BOUND = 6.0  # grid over [-6, 6], as R mirt for one dimension
MAX_STEP = 1.0  # largest change of one parameter in one scoring step (log a, d, logit c)
EPS = 1e-12


# --------------------------------------------------------------------------- response functions


def as_items(a: ArrayLike, b: ArrayLike, c: ArrayLike | None) -> tuple[Array, Array, Array]:
    a_arr = np.atleast_1d(np.asarray(a, dtype=float))
    b_arr = np.atleast_1d(np.asarray(b, dtype=float))
    c_arr = np.zeros_like(b_arr) if c is None else np.atleast_1d(np.asarray(c, dtype=float))
    return np.broadcast_arrays(a_arr, b_arr, c_arr)  # type: ignore[return-value]


def prob(theta: ArrayLike, a: ArrayLike, b: ArrayLike, c: ArrayLike | None = None) -> Array:
    """P(correct) under the 3PL (Birnbaum 1968; Lord 1980, ch. 2); c = 0 gives the 2PL.

    ``theta`` of shape S and items of shape (J,) give shape S + (J,).
    """
    a_arr, b_arr, c_arr = as_items(a, b, c)
    t = np.asarray(theta, dtype=float)[..., None]
    return c_arr + (1.0 - c_arr) * expit(a_arr * (t - b_arr))


def item_information(theta: ArrayLike, a: ArrayLike, b: ArrayLike, c: ArrayLike | None = None) -> Array:
    """Fisher information of each item at ``theta`` (Birnbaum 1968; Lord 1980, ch. 5).

    I(theta) = a^2 * (Q / P) * ((P - c) / (1 - c))^2, which is a^2 P Q when c = 0.
    """
    a_arr, b_arr, c_arr = as_items(a, b, c)
    p = prob(theta, a_arr, b_arr, c_arr)
    p = np.clip(p, EPS, 1.0 - EPS)
    return a_arr**2 * ((1.0 - p) / p) * ((p - c_arr) / (1.0 - c_arr)) ** 2


def quadrature(n_points: int, mean: float = 0.0, sd: float = 1.0) -> tuple[Array, Array]:
    """Equally spaced nodes and normalised normal weights (Bock & Aitkin 1981)."""
    nodes = np.linspace(-QUADRATURE_BOUND, QUADRATURE_BOUND, n_points) * sd + mean
    log_w = -0.5 * ((nodes - mean) / sd) ** 2
    return nodes, np.exp(log_w - logsumexp(log_w))


# --------------------------------------------------------------------------- response data


@dataclass
class Responses:
    """Binary responses as float matrices ready for BLAS: 0 where missing."""

    correct: Array  # (N, J) 1 where answered correctly
    observed: Array  # (N, J) 1 where answered
    weight: Array  # (N,) frequency of each row
    complete: bool


def as_responses(x: ArrayLike, mask: ArrayLike | None = None, weight: ArrayLike | None = None) -> Responses:
    """Validate a 0/1 matrix with NaN (or ``mask`` False) marking unanswered items."""
    arr = np.asarray(x, dtype=float)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"responses must be a 2-D examinee x item matrix, got {arr.ndim} dimensions")
    observed = ~np.isnan(arr)
    if mask is not None:
        observed &= np.asarray(mask, dtype=bool).reshape(arr.shape)
    values = arr[observed]
    if values.size and not np.isin(values, (0.0, 1.0)).all():
        raise ValueError("responses must contain only 0, 1 and NaN for a missing answer")
    w = np.ones(arr.shape[0]) if weight is None else np.asarray(weight, dtype=float).reshape(-1)
    if w.shape[0] != arr.shape[0] or (w < 0).any():
        raise ValueError("sample_weight must be one non-negative number per examinee")
    correct = np.where(observed, arr, 0.0)
    return Responses(correct, observed.astype(float), w, bool(observed.all()))


def grid_log_likelihood(data: Responses, log_p: Array, log_q: Array) -> Array:
    """log P(responses_n | theta_q) for every examinee and node, shape (N, Q).

    log_p, log_q: (J, Q). Two matrix products; the complete-data case needs only one. Runs
    in the precision of ``data`` (float32 inside the EM loop, float64 for reported values).
    """
    dtype = data.correct.dtype
    ll = data.correct @ (log_p - log_q).astype(dtype)
    if data.complete:
        return ll + log_q.sum(axis=0).astype(dtype)
    return ll + data.observed @ log_q.astype(dtype)


def log_pq(a: Array, d: Array, c: Array, nodes: Array) -> tuple[Array, Array]:
    """log P and log(1 - P) at the nodes, shape (J, Q), computed without cancellation."""
    z = a[:, None] * nodes[None, :] + d[:, None]
    log_s = -np.logaddexp(0.0, -z)  # log expit(z)
    log_1ms = -np.logaddexp(0.0, z)  # log expit(-z)
    if not c.any():
        return log_s, log_1ms
    log_c = np.log(np.maximum(c, EPS))[:, None]
    log_p = np.logaddexp(log_c, np.log1p(-c)[:, None] + log_s)
    return log_p, np.log1p(-c)[:, None] + log_1ms


def posterior(data: Responses, a: Array, d: Array, c: Array, nodes: Array, log_w: Array) -> Array:
    log_p, log_q = log_pq(a, d, c, nodes)
    ll = grid_log_likelihood(data, log_p, log_q) + log_w
    return np.exp(ll - logsumexp(ll, axis=1, keepdims=True))
