"""Item response theory for dichotomous items: 1PL, 2PL and 3PL logistic models.

Items are calibrated by marginal maximum likelihood with the EM algorithm of Bock & Aitkin
(1981) on a fixed quadrature grid over a standard normal ability distribution, with weak
priors that keep every estimate finite (so strictly it is MAP-EM, Mislevy 1986). Ability
is scored by EAP or MAP with standard errors; items are checked with infit/outfit and
people with the lz statistic.

Shared response functions live in ``irt_base.py``, ability scoring and fit statistics in
``irt_scoring.py``; both are re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Self, TypedDict

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import expit

from learnloop.science.irt_base import (
    EPS,
    MAX_STEP,
    QUADRATURE_BOUND,
    Array,
    ModelName,
    Responses,
    as_responses,
    grid_log_likelihood,
    item_information,
    log_pq,
    prob,
    quadrature,
)
from learnloop.science.irt_scoring import (
    eap,
    item_fit_mean_squares,
    map_ability,
    marginal_log_likelihood,
    person_fit_lz,
)

__all__ = [
    "QUADRATURE_BOUND",
    "IRTModel",
    "IRTModelDict",
    "eap",
    "item_fit_mean_squares",
    "item_information",
    "map_ability",
    "marginal_log_likelihood",
    "person_fit_lz",
    "prob",
    "quadrature",
]

_MIN_RESPONDENTS = 50


class IRTModelDict(TypedDict):
    """JSON form of a fitted :class:`IRTModel`."""

    model: ModelName
    n_quadrature: int
    max_iter: int
    tol: float
    a_prior_sd: float | None
    d_prior_sd: float | None
    c_prior: list[float]
    a: list[float]
    b: list[float]
    c: list[float]
    log_likelihood: float
    n_iter: int
    warnings: list[str]


# --------------------------------------------------------------------------- estimator


@dataclass
class _Priors:
    a_sd: float | None  # log a ~ N(0, a_sd^2)
    d_sd: float | None  # d ~ N(0, d_sd^2)
    c_alpha: float  # c ~ Beta(c_alpha, c_beta)
    c_beta: float

    @property
    def c_mode(self) -> float:
        return (self.c_alpha - 1.0) / (self.c_alpha + self.c_beta - 2.0)


class IRTModel:
    """Unidimensional 1PL/2PL/3PL calibrated by marginal maximum likelihood (EM).

    - ``1pl``: one slope shared by all items (equivalent to a Rasch model with a free
      ability variance), one intercept per item.
    - ``2pl``: slope and intercept per item.
    - ``3pl``: adds a lower asymptote c per item with a Beta(``c_prior``) prior;
      the default Beta(5, 17) (mode 0.2) is BILOG-MG's Beta(20p + 1, 20(1 - p) + 1) with
      p = 1/5, for five-option items (Zimowski et al. 2003).

    Priors: log a ~ N(0, ``a_prior_sd``^2), d ~ N(0, ``d_prior_sd``^2); ``None`` turns one off
    (pure maximum likelihood). They matter only where the data say little.

    ``random_state`` is accepted for the common estimator interface; the EM itself is
    deterministic (start values come from classical item statistics).
    """

    def __init__(
        self,
        model: ModelName = "2pl",
        n_quadrature: int = 41,
        max_iter: int = 500,
        tol: float = 1e-4,
        a_prior_sd: float | None = 3.0,
        d_prior_sd: float | None = 5.0,
        c_prior: tuple[float, float] = (5.0, 17.0),
        random_state: int | None = None,
    ) -> None:
        self.model = model
        self.n_quadrature = n_quadrature
        self.max_iter = max_iter
        self.tol = tol
        self.a_prior_sd = a_prior_sd
        self.d_prior_sd = d_prior_sd
        self.c_prior = c_prior
        self.random_state = random_state

    # -- learned attributes, set by fit / from_dict
    a_: Array
    b_: Array
    c_: Array
    d_: Array
    log_likelihood_: float
    n_iter_: int
    converged_: bool
    warnings_: list[str]

    def fit(
        self, X: ArrayLike, mask: ArrayLike | None = None, sample_weight: ArrayLike | None = None
    ) -> Self:
        """Calibrate the items on an examinee x item 0/1 matrix (NaN or mask False = unanswered).

        ``sample_weight`` counts each row, e.g. the frequencies of a response-pattern table.
        """
        if self.model not in ("1pl", "2pl", "3pl"):
            raise ValueError(f"model must be '1pl', '2pl' or '3pl', got {self.model!r}")
        if self.n_quadrature < 5:
            raise ValueError("n_quadrature must be at least 5")
        data = as_responses(X, mask, sample_weight)
        self.warnings_ = []
        data = self._drop_empty_rows(data)
        frozen = self._check_items(data)
        priors = _Priors(self.a_prior_sd, self.d_prior_sd, *map(float, self.c_prior))
        nodes, w = quadrature(self.n_quadrature)
        log_w = np.log(w)
        log_a, d, logit_c = _start_values(data, self.model, priors)
        if self.model != "1pl":
            log_a[frozen > 0] = 0.0  # the prior median a = 1
        self.converged_ = False
        self.n_iter_ = 0
        # single precision halves the cost of the two big matrix products; the posterior
        # weights need far less than float32's 7 digits. Reported values use float64.
        data32 = Responses(
            data.correct.astype(np.float32), data.observed.astype(np.float32), data.weight, data.complete
        )
        for iteration in range(1, self.max_iter + 1):
            _, r, n = _e_step(data32, np.exp(log_a), d, expit(logit_c) * (self.model == "3pl"), nodes, log_w)
            new = _m_step(log_a, d, logit_c, nodes, r, n, priors, self.model, frozen)
            change = max(np.abs(new[i] - old).max() for i, old in enumerate((log_a, d, logit_c)))
            log_a, d, logit_c = new
            self.n_iter_ = iteration
            if change < self.tol:
                self.converged_ = True
                break
        if not self.converged_:
            self.warnings_.append(f"EM did not converge in {self.max_iter} iterations (tol={self.tol})")
        self._store(log_a, d, logit_c, priors, frozen)
        self.log_likelihood_, _, _ = _e_step(data, self.a_, self.d_, self.c_, nodes, log_w)
        return self

    # -- input checks: record what cannot be estimated instead of failing

    def _drop_empty_rows(self, data: Responses) -> Responses:
        answered = data.observed.sum(axis=1) > 0
        if not answered.all():
            dropped = data.weight[~answered].sum()
            self.warnings_.append(f"{dropped:g} examinees answered no item and were ignored")
            data = Responses(
                data.correct[answered], data.observed[answered], data.weight[answered], data.complete
            )
        n_people = data.weight.sum()
        if n_people < _MIN_RESPONDENTS:
            self.warnings_.append(
                f"only {n_people:g} respondents (fewer than {_MIN_RESPONDENTS}): estimates lean on the priors"
            )
        n_answered = data.observed.sum(axis=1)
        n_right = data.correct.sum(axis=1)
        for label, flag in (("every", n_right == n_answered), ("no", n_right == 0)):
            count = data.weight[flag].sum()
            if count:
                self.warnings_.append(
                    f"{count:g} examinees answered {label} item correctly: their ability rests on the prior"
                )
        return data

    def _check_items(self, data: Responses) -> Array:
        """Items whose slope (and asymptote) cannot be estimated: held at prior values."""
        n = data.weight @ data.observed
        right = data.weight @ data.correct
        frozen = np.zeros(data.correct.shape[1], dtype=bool)
        for j in range(frozen.size):
            if n[j] == 0:
                reason = "has no answers"
            elif right[j] == n[j]:
                reason = f"was answered correctly by all {n[j]:g} respondents"
            elif right[j] == 0:
                reason = f"was answered wrongly by all {n[j]:g} respondents"
            else:
                continue
            frozen[j] = True
            self.warnings_.append(
                f"item {j} {reason}: slope (and guessing) held at the prior value, intercept set by the prior"
            )
        return frozen.astype(float)

    def _store(self, log_a: Array, d: Array, logit_c: Array, priors: _Priors, frozen: Array) -> None:
        a = np.exp(log_a)
        c = expit(logit_c) if self.model == "3pl" else np.zeros_like(d)
        bad = ~(np.isfinite(a) & np.isfinite(d) & np.isfinite(c))
        for j in np.flatnonzero(bad):
            self.warnings_.append(f"item {j}: estimate was not finite; reset to prior values")
        a = np.where(bad, 1.0, a)
        d = np.where(bad, 0.0, d)
        c = np.where(bad, priors.c_mode if self.model == "3pl" else 0.0, c)
        self.a_, self.d_, self.c_ = a, d, c
        self.b_ = -d / a

    # -- scoring with the fitted items

    def predict_proba(self, theta: ArrayLike) -> Array:
        """P(correct) for each ability in ``theta`` and each item, shape theta.shape + (J,)."""
        return prob(theta, self.a_, self.b_, self.c_)

    def item_information(self, theta: ArrayLike) -> Array:
        return item_information(theta, self.a_, self.b_, self.c_)

    def ability(self, X: ArrayLike, method: Literal["eap", "map"] = "eap") -> tuple[Array, Array]:
        """Ability and its standard error for each row of ``X`` (NaN = unanswered)."""
        if method == "eap":
            return eap(X, self.a_, self.b_, self.c_, n_quadrature=max(self.n_quadrature, 61))
        if method == "map":
            return map_ability(X, self.a_, self.b_, self.c_)
        raise ValueError(f"method must be 'eap' or 'map', got {method!r}")

    def person_fit(self, X: ArrayLike) -> Array:
        """lz per examinee at the MAP ability."""
        theta, _ = self.ability(X, "map")
        return person_fit_lz(X, theta, self.a_, self.b_, self.c_)

    def item_fit(self, X: ArrayLike) -> dict[str, Array]:
        """Infit and outfit mean squares per item at the EAP abilities."""
        theta, _ = self.ability(X, "eap")
        infit, outfit = item_fit_mean_squares(X, theta, self.a_, self.b_, self.c_)
        return {"infit": infit, "outfit": outfit}

    # -- serialisation

    def to_dict(self) -> IRTModelDict:
        return IRTModelDict(
            model=self.model,
            n_quadrature=self.n_quadrature,
            max_iter=self.max_iter,
            tol=self.tol,
            a_prior_sd=self.a_prior_sd,
            d_prior_sd=self.d_prior_sd,
            c_prior=[float(v) for v in self.c_prior],
            a=self.a_.tolist(),
            b=self.b_.tolist(),
            c=self.c_.tolist(),
            log_likelihood=float(self.log_likelihood_),
            n_iter=int(self.n_iter_),
            warnings=list(self.warnings_),
        )

    @classmethod
    def from_dict(cls, data: IRTModelDict | dict[str, Any]) -> IRTModel:
        name = str(data["model"])
        if name not in ("1pl", "2pl", "3pl"):
            raise ValueError(f"unknown IRT model {name!r}")
        model = cls(
            model=name,  # type: ignore[arg-type]
            n_quadrature=data["n_quadrature"],
            max_iter=data["max_iter"],
            tol=data["tol"],
            a_prior_sd=data["a_prior_sd"],
            d_prior_sd=data["d_prior_sd"],
            c_prior=(float(data["c_prior"][0]), float(data["c_prior"][1])),
        )
        model.a_ = np.asarray(data["a"], dtype=float)
        model.b_ = np.asarray(data["b"], dtype=float)
        model.c_ = np.asarray(data["c"], dtype=float)
        model.d_ = -model.a_ * model.b_
        model.log_likelihood_ = float(data["log_likelihood"])
        model.n_iter_ = int(data["n_iter"])
        model.converged_ = True
        model.warnings_ = list(data["warnings"])
        return model


# --------------------------------------------------------------------------- EM internals


def _start_values(data: Responses, model: str, priors: _Priors) -> tuple[Array, Array, Array]:
    """Classical start values: slope from the item-rest correlation, intercept from the
    proportion correct. a = r / sqrt(1 - r^2) for a biserial r (Lord & Novick 1968, sec. 16.10),
    here the item-rest point-biserial (it errs low, harmless for a start), times 1.7 for the
    logistic scale; E[expit(a theta + d)] ~ expit(d / sqrt(1 + pi a^2 / 8))
    for theta ~ N(0, 1) (MacKay 1992) inverted for d."""
    w = data.weight[:, None]
    n = (w * data.observed).sum(axis=0)
    p = ((w * data.correct).sum(axis=0) + 0.5) / (n + 1.0)
    c0 = priors.c_mode if model == "3pl" else 0.0
    p_star = np.clip((p - c0) / (1.0 - c0), 0.02, 0.98)
    rest = (data.correct.sum(axis=1, keepdims=True) - data.correct) / np.maximum(
        data.observed.sum(axis=1, keepdims=True) - data.observed, 1.0
    )
    r = np.array(
        [_weighted_corr(data.correct[:, j], rest[:, j], w[:, 0] * data.observed[:, j]) for j in range(p.size)]
    )
    r = np.clip(np.nan_to_num(r, nan=0.3), 0.05, 0.9)
    if model == "1pl":
        r = np.full_like(r, r.mean())
    a0 = np.clip(1.7 * r / np.sqrt(1.0 - r**2), 0.3, 3.0)
    d0 = np.log(p_star / (1.0 - p_star)) * np.sqrt(1.0 + np.pi * a0**2 / 8.0)
    logit_c = np.full_like(p, np.log(c0 / (1.0 - c0)) if model == "3pl" else 0.0)
    return np.log(a0), d0, logit_c


def _weighted_corr(x: Array, y: Array, w: Array) -> float:
    total = w.sum()
    if total <= 0:
        return float("nan")
    mx, my = (w @ x) / total, (w @ y) / total
    cov = w @ ((x - mx) * (y - my))
    var = (w @ (x - mx) ** 2) * (w @ (y - my) ** 2)
    return float(cov / np.sqrt(var)) if var > 0 else float("nan")


def _e_step(
    data: Responses, a: Array, d: Array, c: Array, nodes: Array, log_w: Array
) -> tuple[float, Array, Array]:
    """Marginal log-likelihood and expected counts at the nodes (Bock & Aitkin 1981).

    r[j, q]: expected number answering item j correctly at node q; n[j, q]: expected number
    answering it at all.
    """
    log_p, log_q = log_pq(a, d, c, nodes)
    dtype = data.correct.dtype
    ll = grid_log_likelihood(data, log_p, log_q) + log_w.astype(dtype)
    peak = ll.max(axis=1, keepdims=True)
    post = np.exp(ll - peak)
    total = post.sum(axis=1, keepdims=True)
    marginal = float(data.weight @ (np.log(total[:, 0]) + peak[:, 0]).astype(float))
    post *= (data.weight[:, None] / total).astype(dtype)
    r = data.correct.T @ post
    n = np.broadcast_to(post.sum(axis=0), r.shape) if data.complete else data.observed.T @ post
    return marginal, r.astype(float), n.astype(float)


def _m_step(
    log_a: Array,
    d: Array,
    logit_c: Array,
    nodes: Array,
    r: Array,
    n: Array,
    priors: _Priors,
    model: str,
    frozen: Array,
    n_steps: int = 3,
) -> tuple[Array, Array, Array]:
    """Maximise the expected complete-data log posterior item by item by Fisher scoring.

    Per item and node, with S = expit(a theta + d) and P = c + (1 - c) S, the score for a
    parameter eta is sum_q (r - n P) / (P Q) dP/deta and the expected information
    sum_q n / (P Q) dP/deta dP/deta' (Baker & Kim 2004, ch. 6), here in
    (log a, d, logit c) so that a > 0 and 0 < c < 1 hold without bounds.
    """
    log_a, d, logit_c = log_a.copy(), d.copy(), logit_c.copy()
    n_par = 3 if model == "3pl" else 2
    free = np.ones((d.size, n_par))
    free[:, 0] = 1.0 - frozen
    if n_par == 3:
        free[:, 2] = 1.0 - frozen
    if model == "1pl":
        free[:, 0] = 0.0  # the shared slope is updated separately below
    for _ in range(n_steps):
        grad, info = _item_score(log_a, d, logit_c, nodes, r, n, priors, model)
        grad *= free
        info = (
            info * free[:, :, None] * free[:, None, :]
            + np.eye(n_par) * (1.0 - free)[:, :, None]
            + 1e-8 * np.eye(n_par)
        )
        step = np.linalg.solve(info, grad[:, :, None])[:, :, 0]
        step = np.clip(step, -MAX_STEP, MAX_STEP)
        if model == "1pl":
            grad_a, info_a = _shared_slope_score(log_a, d, nodes, r, n, priors, frozen == 0)
            log_a = log_a + np.clip(grad_a / info_a, -MAX_STEP, MAX_STEP)
        else:
            log_a = log_a + step[:, 0]
        d = d + step[:, 1]
        if n_par == 3:
            logit_c = logit_c + step[:, 2]
        if np.abs(step).max() < 1e-6:
            break
    return log_a, d, logit_c


def _shared_slope_score(
    log_a: Array, d: Array, nodes: Array, r: Array, n: Array, priors: _Priors, live: NDArray[np.bool_]
) -> tuple[float, float]:
    """Score and information of the 1PL common log-slope: item contributions summed."""
    a = np.exp(log_a[0])
    s = expit(a * nodes[None, :] + d[:, None])
    ds = a * nodes[None, :] * s * (1.0 - s)
    grad = float((((r - n * s) * a * nodes[None, :])[live]).sum())
    info = float(((n * ds * a * nodes[None, :])[live]).sum())
    if priors.a_sd is not None:
        grad -= log_a[0] / priors.a_sd**2
        info += 1.0 / priors.a_sd**2
    return grad, max(info, 1e-8)


def _item_score(
    log_a: Array, d: Array, logit_c: Array, nodes: Array, r: Array, n: Array, priors: _Priors, model: str
) -> tuple[Array, Array]:
    """Score (J, k) and expected information (J, k, k) of the log posterior for each item."""
    a = np.exp(log_a)[:, None]
    s = expit(a * nodes[None, :] + d[:, None])
    ds = s * (1.0 - s)
    if model == "3pl":
        c = expit(logit_c)[:, None]
        p = c + (1.0 - c) * s
        derivs = [(1.0 - c) * ds * a * nodes[None, :], (1.0 - c) * ds, (1.0 - s) * c * (1.0 - c)]
    else:
        p = s
        derivs = [ds * a * nodes[None, :], ds]
    pq = np.maximum(p * (1.0 - p), EPS)
    dp = np.stack(derivs, axis=-1)  # (J, Q, k)
    grad = np.einsum("jq,jqk->jk", (r - n * p) / pq, dp)
    info = np.einsum("jq,jqk,jql->jkl", n / pq, dp, dp)
    if priors.a_sd is not None:  # log a ~ N(0, a_sd^2)
        grad[:, 0] -= log_a / priors.a_sd**2
        info[:, 0, 0] += 1.0 / priors.a_sd**2
    if priors.d_sd is not None:  # d ~ N(0, d_sd^2)
        grad[:, 1] -= d / priors.d_sd**2
        info[:, 1, 1] += 1.0 / priors.d_sd**2
    if model == "3pl":  # Beta(alpha, beta) density of c, differentiated in logit c
        c1 = expit(logit_c)
        grad[:, 2] += (priors.c_alpha - 1.0) * (1.0 - c1) - (priors.c_beta - 1.0) * c1
        info[:, 2, 2] += (priors.c_alpha + priors.c_beta - 2.0) * c1 * (1.0 - c1)
    return grad, info
