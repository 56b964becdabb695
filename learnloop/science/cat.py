"""Computerised adaptive testing over a calibrated dichotomous item bank.

A :class:`CATEngine` holds the bank and the rules; a :class:`CATSession` is one examinee's
test: it picks the next item (maximum Fisher information or posterior-weighted
Kullback-Leibler information), applies exposure control (randomesque or Sympson-Hetter)
and content balancing over skills, updates an EAP ability on a fixed grid after every
answer, and says when to stop (standard error target, minimum and maximum length).
Pure numerics: the caller stores administered items and answers and can rebuild a session
from them with :meth:`CATEngine.resume`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypedDict

import numpy as np
from numpy.typing import ArrayLike, NDArray

from learnloop.science.irt import item_information, prob, quadrature

Array = NDArray[np.float64]
Selection = Literal["fisher", "kl"]
Exposure = Literal["none", "randomesque", "sympson-hetter"]
StopReason = Literal["se_target", "max_items", "bank_exhausted"]
SERule = Literal["posterior", "information"]

_EPS = 1e-12


class CATSessionDict(TypedDict):
    """JSON form of a session: enough to rebuild it with :meth:`CATEngine.resume`."""

    administered: list[int]
    responses: list[int]
    passed_over: list[int]


@dataclass
class CATSimulation:
    """Outcome of :meth:`CATEngine.simulate`: one entry per simulee, exposure per item."""

    true_theta: Array
    theta: Array
    se: Array  # posterior SD
    stopping_se: Array  # the SE the stopping rule used (equals se for se_rule="posterior")
    test_length: NDArray[np.int64]
    stop_reason: list[str]
    administered: list[list[int]]
    exposure: Array  # share of simulees who saw each item

    @property
    def rmse(self) -> float:
        return float(np.sqrt(np.mean((self.theta - self.true_theta) ** 2)))


class CATEngine:
    """Adaptive test rules over a bank of 1PL/2PL/3PL items.

    Parameters
    ----------
    a, b, c: item slopes, difficulties and lower asymptotes (c defaults to 0).
    skills: skill index (0..K-1) of each item, for content balancing.
    skill_targets: target share of the test per skill (K values summing to 1); when given,
        each item comes from the skill furthest behind its target (Kingsbury & Zara 1989).
    selection: ``"fisher"`` (maximum information at the EAP, Lord 1980 ch. 10) or ``"kl"``
        (posterior-weighted Kullback-Leibler information, Chang & Ying 1996).
    exposure: ``"randomesque"`` picks at random among the ``randomesque_size`` best items
        (Kingsbury & Zara 1989); ``"sympson-hetter"`` administers the chosen item with
        probability ``exposure_parameters[j]`` (Sympson & Hetter 1985), see
        :func:`sympson_hetter_parameters`.
    se_target, min_items, max_items: stop once the standard error is at most ``se_target``
        after at least ``min_items`` items, or at ``max_items``.
    se_rule: ``"posterior"`` (the EAP posterior SD, which counts the prior) or
        ``"information"`` (1 / sqrt(test information at the EAP), Lord 1980 ch. 5,
        as many CAT programs report; slightly longer tests).
    """

    def __init__(
        self,
        a: ArrayLike,
        b: ArrayLike,
        c: ArrayLike | None = None,
        *,
        skills: ArrayLike | None = None,
        skill_targets: ArrayLike | None = None,
        selection: Selection = "fisher",
        exposure: Exposure = "none",
        randomesque_size: int = 5,
        exposure_parameters: ArrayLike | None = None,
        se_target: float = 0.3,
        se_rule: SERule = "posterior",
        min_items: int = 1,
        max_items: int = 30,
        n_quadrature: int = 61,
        prior_mean: float = 0.0,
        prior_sd: float = 1.0,
        random_state: int | None = None,
    ) -> None:
        self.a = np.atleast_1d(np.asarray(a, dtype=float))
        self.b = np.atleast_1d(np.asarray(b, dtype=float))
        self.c = np.zeros_like(self.b) if c is None else np.atleast_1d(np.asarray(c, dtype=float))
        n_items = self.b.size
        if not self.a.size == self.c.size == n_items:
            raise ValueError("a, b and c must have one value per item")
        if selection not in ("fisher", "kl"):
            raise ValueError(f"selection must be 'fisher' or 'kl', got {selection!r}")
        if exposure not in ("none", "randomesque", "sympson-hetter"):
            raise ValueError(f"exposure must be 'none', 'randomesque' or 'sympson-hetter', got {exposure!r}")
        if not 1 <= min_items <= max_items:
            raise ValueError("need 1 <= min_items <= max_items")
        self.selection = selection
        self.exposure = exposure
        self.randomesque_size = randomesque_size
        self.exposure_parameters = (
            np.ones(n_items) if exposure_parameters is None else np.asarray(exposure_parameters, dtype=float)
        )
        self.se_target = se_target
        if se_rule not in ("posterior", "information"):
            raise ValueError(f"se_rule must be 'posterior' or 'information', got {se_rule!r}")
        self.se_rule = se_rule
        self.min_items = min_items
        self.max_items = max_items
        self.prior_mean = prior_mean
        self.prior_sd = prior_sd
        self.random_state = random_state
        self.skills, self.skill_targets = _content_plan(skills, skill_targets, n_items)
        self.nodes, weights = quadrature(n_quadrature, prior_mean, prior_sd)
        self.log_prior = np.log(weights)
        p = np.clip(prob(self.nodes, self.a, self.b, self.c).T, _EPS, 1.0 - _EPS)  # (J, Q)
        self.log_p, self.log_q = np.log(p), np.log1p(-p)
        self._seeds = np.random.SeedSequence(random_state)

    @property
    def n_items(self) -> int:
        return int(self.b.size)

    def new_session(self, random_state: int | np.random.Generator | None = None) -> CATSession:
        """Start a test. Sessions started in turn from one engine draw independent, reproducible
        random streams (for randomesque and Sympson-Hetter) unless ``random_state`` is given."""
        rng = (
            random_state
            if isinstance(random_state, np.random.Generator)
            else np.random.default_rng(self._seeds.spawn(1)[0] if random_state is None else random_state)
        )
        return CATSession(self, rng)

    def resume(self, state: CATSessionDict, random_state: int | None = None) -> CATSession:
        """Rebuild a session from stored answers (the posterior is recomputed exactly)."""
        session = self.new_session(random_state)
        session.passed_over.update(int(j) for j in state["passed_over"])
        for item, correct in zip(state["administered"], state["responses"], strict=True):
            session.record(int(item), int(correct))
        return session

    def simulate(
        self, true_theta: ArrayLike, random_state: int | None = None, oracle: bool = False
    ) -> CATSimulation:
        """Run one simulated test per true ability, answers drawn from the model.

        ``oracle=True`` picks items at the true ability instead of the estimate: the best a
        selection rule could do, a yardstick for test length.
        """
        thetas = np.atleast_1d(np.asarray(true_theta, dtype=float))
        answer_rng = np.random.default_rng(random_state)
        sessions: list[CATSession] = []
        for theta in thetas:
            session = self.new_session(np.random.default_rng(answer_rng.integers(2**63)))
            while (item := session.next_item(at_theta=theta if oracle else None)) is not None:
                p_right = prob(theta, self.a[item], self.b[item], self.c[item])[0]
                session.record(item, int(answer_rng.random() < p_right))
            sessions.append(session)
        counts = np.zeros(self.n_items)
        for session in sessions:
            counts[session.administered] += 1
        return CATSimulation(
            true_theta=thetas,
            theta=np.array([s.theta for s in sessions]),
            se=np.array([s.se for s in sessions]),
            stopping_se=np.array([s.stopping_se for s in sessions]),
            test_length=np.array([len(s.administered) for s in sessions], dtype=np.int64),
            stop_reason=[str(s.stop_reason) for s in sessions],
            administered=[list(s.administered) for s in sessions],
            exposure=counts / max(len(sessions), 1),
        )


def _content_plan(
    skills: ArrayLike | None, targets: ArrayLike | None, n_items: int
) -> tuple[NDArray[np.int64] | None, Array | None]:
    if targets is None:
        return (None if skills is None else np.asarray(skills, dtype=np.int64)), None
    if skills is None:
        raise ValueError("skill_targets needs skills: the skill index of each item")
    skill_arr = np.asarray(skills, dtype=np.int64)
    target_arr = np.asarray(targets, dtype=float)
    if skill_arr.shape != (n_items,) or skill_arr.min() < 0 or skill_arr.max() >= target_arr.size:
        raise ValueError("skills must give each item an index into skill_targets")
    if (target_arr < 0).any() or target_arr.sum() <= 0:
        raise ValueError("skill_targets must be non-negative with a positive sum")
    return skill_arr, target_arr / target_arr.sum()


@dataclass
class CATSession:
    """One examinee's adaptive test: ask :meth:`next_item`, then :meth:`record` the answer."""

    engine: CATEngine
    rng: np.random.Generator
    administered: list[int] = field(default_factory=list)
    responses: list[int] = field(default_factory=list)
    passed_over: set[int] = field(default_factory=set)  # declined by Sympson-Hetter
    theta: float = 0.0
    se: float = 1.0
    stop_reason: StopReason | None = None

    def __post_init__(self) -> None:
        self._log_post = self.engine.log_prior.copy()
        self._available = np.ones(self.engine.n_items, dtype=bool)
        self._update_estimate()

    def record(self, item: int, correct: int) -> None:
        """Add one answer: grid posterior times P or 1 - P (Bock & Mislevy 1982), then EAP."""
        if not self._available[item]:
            raise ValueError(f"item {item} was already administered")
        self.administered.append(item)
        self.responses.append(int(bool(correct)))
        self._available[item] = False
        self._log_post += self.engine.log_p[item] if correct else self.engine.log_q[item]
        self._update_estimate()

    def _update_estimate(self) -> None:
        post = np.exp(self._log_post - self._log_post.max())
        post /= post.sum()
        self._posterior = post
        self.theta = float(post @ self.engine.nodes)
        self.se = float(np.sqrt(max(post @ self.engine.nodes**2 - self.theta**2, 0.0)))

    @property
    def stopping_se(self) -> float:
        """The standard error the stopping rule uses (see ``CATEngine.se_rule``)."""
        engine = self.engine
        if engine.se_rule == "posterior" or not self.administered:
            return self.se
        items = self.administered
        info = item_information(self.theta, engine.a[items], engine.b[items], engine.c[items]).sum()
        return float(1.0 / np.sqrt(info)) if info > 0 else float("inf")

    def should_stop(self) -> bool:
        """Stopping rules, checked before each item; sets :attr:`stop_reason`."""
        engine, n = self.engine, len(self.administered)
        if n >= engine.max_items:
            self.stop_reason = "max_items"
        elif n >= engine.min_items and self.stopping_se <= engine.se_target:
            self.stop_reason = "se_target"
        elif not self._available.any():
            self.stop_reason = "bank_exhausted"
        return self.stop_reason is not None

    def next_item(self, at_theta: float | None = None) -> int | None:
        """The next item to give, or None when the test should stop.

        ``at_theta`` selects at a given ability instead of the current estimate (simulation).
        """
        if self.should_stop():
            return None
        eligible = self._eligible_items()
        scores = self._criterion(eligible, self.theta if at_theta is None else at_theta)
        return self._apply_exposure_control(eligible, scores)

    def _eligible_items(self) -> NDArray[np.intp]:
        """Unseen items, not declined by Sympson-Hetter, in the skill furthest behind target."""
        free = self._available.copy()
        if self.passed_over:
            declined = np.zeros_like(free)
            declined[list(self.passed_over)] = True
            if (free & ~declined).any():  # if every unseen item was declined, allow them again
                free &= ~declined
        engine = self.engine
        if engine.skill_targets is not None and engine.skills is not None:
            counts = np.bincount(engine.skills[self.administered], minlength=engine.skill_targets.size)
            shares = counts / max(len(self.administered), 1)
            deficit = engine.skill_targets - shares
            has_items = np.bincount(engine.skills[free], minlength=engine.skill_targets.size) > 0
            deficit = np.where(has_items & (engine.skill_targets > 0), deficit, -np.inf)
            if np.isfinite(deficit).any():
                # most-behind skill; ties go to the larger target (Kingsbury & Zara 1989)
                order = np.lexsort((-engine.skill_targets, -deficit))
                free &= engine.skills == order[0]
        return np.flatnonzero(free)

    def _criterion(self, items: NDArray[np.intp], theta: float) -> Array:
        engine = self.engine
        if engine.selection == "fisher":
            return item_information(theta, engine.a[items], engine.b[items], engine.c[items])
        # KL_j = sum_q post(theta_q) KL(P_j(theta) || P_j(theta_q)) (Chang & Ying 1996,
        # integrated against the posterior as in Chen, Ankenmann & Chang 2000)
        p_hat = np.clip(prob(theta, engine.a[items], engine.b[items], engine.c[items]), _EPS, 1 - _EPS)
        kl = p_hat[:, None] * (np.log(p_hat)[:, None] - engine.log_p[items]) + (1 - p_hat)[:, None] * (
            np.log1p(-p_hat)[:, None] - engine.log_q[items]
        )
        return kl @ self._posterior

    def _apply_exposure_control(self, items: NDArray[np.intp], scores: Array) -> int:
        engine = self.engine
        order = items[np.argsort(-scores, kind="stable")]
        if engine.exposure == "randomesque":
            return int(self.rng.choice(order[: engine.randomesque_size]))
        if engine.exposure == "sympson-hetter":
            for item in order:
                if self.rng.random() <= engine.exposure_parameters[item]:
                    return int(item)
                self.passed_over.add(int(item))
        return int(order[0])

    def to_dict(self) -> CATSessionDict:
        return CATSessionDict(
            administered=list(self.administered),
            responses=list(self.responses),
            passed_over=sorted(self.passed_over),
        )


def sympson_hetter_parameters(
    engine: CATEngine,
    thetas: ArrayLike,
    r_max: float = 0.3,
    n_rounds: int = 8,
    random_state: int | None = None,
) -> Array:
    """Exposure-control parameters K_j by iterated simulation (Sympson & Hetter 1985).

    Each round simulates the population with the current K and sets
    K_j = min(1, r_max / P(selected_j)), so that P(administered_j) = K_j P(selected_j) <= r_max
    (Hetter & Sympson 1997). ``thetas`` is a sample from the target population.
    """
    k = np.ones(engine.n_items)
    thetas = np.atleast_1d(np.asarray(thetas, dtype=float))
    for round_ in range(n_rounds):
        trial = _with_exposure(engine, k)
        selected = np.zeros(engine.n_items)
        rng = np.random.default_rng(None if random_state is None else random_state + round_)
        for theta in thetas:
            session = trial.new_session(np.random.default_rng(rng.integers(2**63)))
            seen_here: set[int] = set()
            while (item := session.next_item()) is not None:
                # every item offered before this one was selected and then declined
                seen_here.update(session.passed_over)
                seen_here.add(item)
                correct = rng.random() < prob(theta, engine.a[item], engine.b[item], engine.c[item])[0]
                session.record(item, int(correct))
            selected[list(seen_here)] += 1
        p_selected = selected / thetas.size
        k = np.where(p_selected > r_max, r_max / np.maximum(p_selected, _EPS), 1.0)
    return k


def _with_exposure(engine: CATEngine, k: Array) -> CATEngine:
    return CATEngine(
        engine.a,
        engine.b,
        engine.c,
        skills=engine.skills,
        skill_targets=engine.skill_targets,
        selection=engine.selection,
        exposure="sympson-hetter",
        exposure_parameters=k,
        se_target=engine.se_target,
        se_rule=engine.se_rule,
        min_items=engine.min_items,
        max_items=engine.max_items,
        n_quadrature=engine.nodes.size,
        prior_mean=engine.prior_mean,
        prior_sd=engine.prior_sd,
        random_state=engine.random_state,
    )
