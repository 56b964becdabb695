"""Ability scoring and fit statistics under calibrated IRT items: EAP and MAP abilities with
standard errors, the marginal log-likelihood, person fit lz and item infit/outfit."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import logsumexp

from learnloop.science.irt_base import (
    EPS,
    MAX_STEP,
    Array,
    Responses,
    as_items,
    as_responses,
    grid_log_likelihood,
    log_pq,
    posterior,
    prob,
    quadrature,
)

# --------------------------------------------------------------------------- ability scoring


def marginal_log_likelihood(
    responses: ArrayLike,
    a: ArrayLike,
    b: ArrayLike,
    c: ArrayLike | None = None,
    n_quadrature: int = 201,
    mask: ArrayLike | None = None,
    sample_weight: ArrayLike | None = None,
) -> float:
    """log of prod_n integral P(x_n | theta) phi(theta) dtheta over a fine grid (Bock & Aitkin 1981).

    A yardstick for comparing item parameters from different programs: their own reported
    log-likelihoods depend on their quadrature.
    """
    a_arr, b_arr, c_arr = as_items(a, b, c)
    data = as_responses(responses, mask, sample_weight)
    nodes, w = quadrature(n_quadrature)
    log_p, log_q = log_pq(a_arr, -a_arr * b_arr, c_arr, nodes)
    ll = grid_log_likelihood(data, log_p, log_q) + np.log(w)
    return float(data.weight @ logsumexp(ll, axis=1))


def eap(
    responses: ArrayLike,
    a: ArrayLike,
    b: ArrayLike,
    c: ArrayLike | None = None,
    n_quadrature: int = 61,
    prior_mean: float = 0.0,
    prior_sd: float = 1.0,
) -> tuple[Array, Array]:
    """Expected a posteriori ability and posterior SD (Bock & Mislevy 1982).

    ``responses``: (N, J) or (J,) of 0/1 with NaN for unanswered items. Returns arrays of
    shape (N,) (or (1,) for a single vector); an examinee with no answers gets the prior.
    """
    a_arr, b_arr, c_arr = as_items(a, b, c)
    data = as_responses(responses)
    nodes, w = quadrature(n_quadrature, prior_mean, prior_sd)
    post = posterior(data, a_arr, -a_arr * b_arr, c_arr, nodes, np.log(w))
    mean = post @ nodes
    var = post @ nodes**2 - mean**2
    return mean, np.sqrt(np.maximum(var, 0.0))


def map_ability(
    responses: ArrayLike,
    a: ArrayLike,
    b: ArrayLike,
    c: ArrayLike | None = None,
    prior_mean: float = 0.0,
    prior_sd: float = 1.0,
    max_iter: int = 50,
    tol: float = 1e-6,
) -> tuple[Array, Array]:
    """Maximum a posteriori ability by Fisher scoring, started at the EAP; SE from the
    posterior information 1 / sqrt(I(theta) + 1 / sd^2) (Baker & Kim 2004, ch. 7; Mislevy 1986).
    """
    a_arr, b_arr, c_arr = as_items(a, b, c)
    data = as_responses(responses)
    theta, _ = eap(responses, a_arr, b_arr, c_arr, prior_mean=prior_mean, prior_sd=prior_sd)
    for _ in range(max_iter):
        grad, info = _ability_score(theta, data, a_arr, b_arr, c_arr)
        grad -= (theta - prior_mean) / prior_sd**2
        info += 1.0 / prior_sd**2
        step = np.clip(grad / info, -MAX_STEP, MAX_STEP)
        theta = theta + step
        if np.abs(step).max(initial=0.0) < tol:
            break
    _, info = _ability_score(theta, data, a_arr, b_arr, c_arr)
    return theta, 1.0 / np.sqrt(info + 1.0 / prior_sd**2)


def _ability_score(theta: Array, data: Responses, a: Array, b: Array, c: Array) -> tuple[Array, Array]:
    """Gradient of the log-likelihood in theta and the test information (Lord 1980, ch. 5)."""
    p = np.clip(prob(theta, a, b, c), EPS, 1.0 - EPS)
    s = (p - c) / (1.0 - c)
    dp = a * (1.0 - c) * s * (1.0 - s)
    grad = ((data.correct - data.observed * p) * dp / (p * (1.0 - p))).sum(axis=1)
    info = (data.observed * dp**2 / (p * (1.0 - p))).sum(axis=1)
    return grad, info


# --------------------------------------------------------------------------- fit statistics


def person_fit_lz(
    responses: ArrayLike, theta: ArrayLike, a: ArrayLike, b: ArrayLike, c: ArrayLike | None = None
) -> Array:
    """Standardised log-likelihood person fit lz (Drasgow, Levine & Williams 1985).

    Large negative values flag aberrant patterns; NaN where an examinee has no answers.
    """
    data = as_responses(responses)
    p = np.clip(prob(np.asarray(theta, dtype=float).reshape(-1), a, b, c), EPS, 1.0 - EPS)
    log_p, log_q = np.log(p), np.log1p(-p)
    l0 = (data.correct * log_p + (data.observed - data.correct) * log_q).sum(axis=1)
    expected = (data.observed * (p * log_p + (1.0 - p) * log_q)).sum(axis=1)
    variance = (data.observed * p * (1.0 - p) * (log_p - log_q) ** 2).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(variance > 0, (l0 - expected) / np.sqrt(variance), np.nan)


def item_fit_mean_squares(
    responses: ArrayLike, theta: ArrayLike, a: ArrayLike, b: ArrayLike, c: ArrayLike | None = None
) -> tuple[Array, Array]:
    """Infit and outfit mean squares per item (Wright & Masters 1982, ch. 5).

    Outfit is the mean squared standardised residual; infit weights it by the variance, so
    it is less driven by unexpected answers far from the item. Both are 1 under the model.
    """
    data = as_responses(responses)
    p = np.clip(prob(np.asarray(theta, dtype=float).reshape(-1), a, b, c), EPS, 1.0 - EPS)
    variance = p * (1.0 - p) * data.observed
    sq_resid = (data.correct - data.observed * p) ** 2
    n = data.observed.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        outfit = np.where(data.observed > 0, sq_resid / np.maximum(variance, EPS), 0.0).sum(axis=0) / n
        infit = sq_resid.sum(axis=0) / variance.sum(axis=0)
    return infit, outfit
