"""Bayesian knowledge tracing (Corbett & Anderson 1995): online form and the fitted estimator.

Each skill is a two-state hidden Markov model: unknown/known with P(L0) initial mastery,
P(T) learning per opportunity, P(F) forgetting, P(G) guess and P(S) slip. ``BKT`` fits
these by EM (``bkt_em.py``), optionally with forgetting (Khajah et al. 2016) and per-item
guess/slip (KT-IDEM, Pardos & Heffernan 2011).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from learnloop.science.kt.base import (
    ResponseLog,
    check_label,
    check_log,
    predict_without_repeats,
    sequence_key,
    without_repeats,
)
from learnloop.science.kt.bkt_em import (
    EStep,
    emission_likelihoods,
    forward,
    make_em_data,
    random_params,
    run_em,
)
from learnloop.science.kt.packing import pack_sequences

#: ``(log, emit, n_skills, n_emit) -> EStep``: an E-step over ``log`` computed elsewhere.
EStepFactory = Callable[[ResponseLog, NDArray[np.int64], int, int], EStep]


@dataclass(frozen=True)
class BKTParams:
    """BKT's parameters. The defaults are the product's before an organisation's log is fitted
    (``learnloop fit kt``): ``p_learn`` 0.08 was chosen on the validation worlds of
    ``bench/validity.py`` (``bench/results/validity_validation_targets.json``: of the
    candidates that keep the practice policy ahead of OATutor's rule in every validation
    world, the one whose cold-start path estimate is nearest the answers learners needed)."""

    p_init: float = 0.2
    p_learn: float = 0.08
    p_guess: float = 0.2
    p_slip: float = 0.1
    p_forget: float = 0.0

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BKTParams:
        return cls(**{k: float(v) for k, v in data.items() if k in cls.__dataclass_fields__})


def bkt_predict(p_known: float, params: BKTParams) -> float:
    """P(correct) on the next opportunity given P(known) before it."""
    return p_known * (1.0 - params.p_slip) + (1.0 - p_known) * params.p_guess


def bkt_update(p_known: float, correct: bool, params: BKTParams) -> float:
    """Posterior P(known) after observing one answer, then one learning/forgetting step."""
    if correct:
        num = p_known * (1.0 - params.p_slip)
        den = num + (1.0 - p_known) * params.p_guess
    else:
        num = p_known * params.p_slip
        den = num + (1.0 - p_known) * (1.0 - params.p_guess)
    posterior = num / den if den > 0 else p_known
    return posterior * (1.0 - params.p_forget) + (1.0 - posterior) * params.p_learn


def bkt_log_likelihood(answers: Sequence[bool], params: BKTParams) -> float:
    """Log-probability of one skill's answers (oldest first) under BKT from its prior."""
    p_known, total = params.p_init, 0.0
    for correct in answers:
        p = min(max(bkt_predict(p_known, params), 1e-9), 1.0 - 1e-9)
        total += math.log(p if correct else 1.0 - p)
        p_known = bkt_update(p_known, correct, params)
    return total


@dataclass(frozen=True)
class LearnRatePrior:
    """How fast one learner learns, as factors on every skill's P(T) with prior weights: a
    small mixture that each learner's own answers update (:meth:`posterior`). Learners differ
    in speed far more than one P(T) can say before an organisation's log is fitted (the
    validity bench's worlds learn 0.04 to 0.35 per answer), so the path's first estimate is the
    mixture's expectation and, after the first answers, the expectation under the learner's
    posterior. ``LearnRatePrior()`` is a point mass at factor 1: the parameters as they are."""

    factors: tuple[float, ...] = (1.0,)
    weights: tuple[float, ...] = (1.0,)

    def __post_init__(self) -> None:
        if not self.factors or len(self.factors) != len(self.weights):
            raise ValueError("a learning-rate prior needs one weight per factor")
        if min(self.factors) <= 0.0 or min(self.weights) <= 0.0:
            raise ValueError("learning-rate factors and weights must be positive")

    def scaled(self, params: BKTParams) -> tuple[BKTParams, ...]:
        """``params`` with P(T) times each factor (at most 0.95)."""
        return tuple(replace(params, p_learn=min(params.p_learn * f, 0.95)) for f in self.factors)

    def posterior(self, answers: Iterable[tuple[BKTParams, Sequence[bool]]]) -> tuple[float, ...]:
        """The weights given the learner's answers: ``(skill's parameters, its answers oldest
        first)`` per skill; each factor's prior weight times the BKT likelihood of every
        skill's answers with P(T) scaled by it, normalised."""
        total = sum(self.weights)
        if len(self.factors) == 1:
            return (1.0,)
        logs = [math.log(w / total) for w in self.weights]
        for params, seq in answers:
            if not seq:
                continue
            for k, scaled in enumerate(self.scaled(params)):
                logs[k] += bkt_log_likelihood(seq, scaled)
        top = max(logs)
        raw = [math.exp(x - top) for x in logs]
        norm = sum(raw)
        return tuple(r / norm for r in raw)

    def mean_factor(self, weights: Sequence[float] | None = None) -> float:
        w = self.weights if weights is None else weights
        return sum(f * x for f, x in zip(self.factors, w, strict=True)) / sum(w)


#: the learning-rate prior of the path's estimate before an organisation's log is fitted
#: (``learnloop fit kt``; after it, the fitted rates as they are): factors on the default
#: P(T) 0.08 and their weights, chosen on the validation worlds of ``bench/validity.py``
#: (``--validation --parts path``, ``bench/results/validity_validation_path.json``: of seven
#: candidates, the smallest mean |log ratio| of the estimate to the answers needed, first and
#: after 30 answers, over six validation worlds learning 0.04 to 0.35; after 30 answers within
#: 25% in five of six, against three with the default rate alone)
COLD_START_LEARN_PRIOR = LearnRatePrior(factors=(0.5, 1.0, 2.0, 4.0), weights=(1.0, 1.0, 1.0, 1.0))


def learn_prior_for(fitted: bool) -> LearnRatePrior:
    """The path estimate's learning-rate prior: :data:`COLD_START_LEARN_PRIOR` while nothing
    is fitted, the fitted rates as they are once ``learnloop fit kt`` has run."""
    return LearnRatePrior() if fitted else COLD_START_LEARN_PRIOR


class BKT:
    """Per-skill BKT fitted by Baum-Welch over all skills and restarts at once.

    ``max_guess`` and ``max_slip`` bound the emission parameters; the default 0.5 keeps
    P(correct | known) > P(correct | unknown), ruling out the "inverted" degenerate fits
    (Baker, Corbett & Aleven 2008); 0.3 is the stricter bound some tutors use.

    Skills never seen in training (and new learners) start from ``default_``, the
    answer-weighted mean of the fitted skills' parameters, so an unseen skill gets the
    population's prior mastery rather than an error. With ``item_guess_slip`` each item
    seen in training has its own guess and slip, shrunk toward its skill's by
    ``item_prior`` pseudo-answers; unseen items use the skill's.
    """

    kind = "bkt"

    def __init__(
        self,
        *,
        fit_forget: bool = False,
        item_guess_slip: bool = False,
        item_prior: float = 5.0,
        max_guess: float = 0.5,
        max_slip: float = 0.5,
        restarts: int = 5,
        max_iter: int = 100,
        tol: float = 1e-6,
        random_state: int | None = 0,
    ) -> None:
        self.fit_forget = fit_forget
        self.item_guess_slip = item_guess_slip
        self.item_prior = item_prior
        self.max_guess = max_guess
        self.max_slip = max_slip
        self.restarts = restarts
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.item_guess_: NDArray[np.float64] | None = None
        self.item_slip_: NDArray[np.float64] | None = None
        self.seen_item_: NDArray[np.bool_] | None = None

    # -- fitting -------------------------------------------------------------------------

    def fit(self, log: ResponseLog, *, estep_for: EStepFactory | None = None) -> BKT:
        """Fit on ``log``. ``estep_for(log, emit, n_skills, n_emit)`` gives an E-step that
        computes the expected counts elsewhere (``services/dist_fit.py``: blocks of learners on
        a Dask cluster); ``log`` is the one the fit uses (repeats removed), ``emit`` its rows'
        emission units (skill or item codes)."""
        check_log(log)
        log = without_repeats(log)  # a skill listed twice in one answer is one observation
        n_skills = int(log.skill.max()) + 1 if len(log) else 0
        use_items = self.item_guess_slip and log.item is not None
        n_items = int(log.item.max()) + 1 if use_items and log.item is not None and len(log) else 0
        emit = log.item if use_items and log.item is not None else log.skill
        n_emit = n_items if use_items else n_skills
        data = make_em_data(
            sequence_key(log.user, log.skill, n_skills),
            log.correct,
            log.skill.astype(np.int64),
            emit.astype(np.int64),
            n_skills,
            n_emit,
        )
        rng = np.random.default_rng(self.random_state)
        start = random_params(
            rng, max(self.restarts, 1), n_skills, n_emit, self.fit_forget, self.max_guess, self.max_slip
        )
        emit_skill = _majority_skill(emit, log.skill, n_emit) if use_items else np.arange(n_skills)
        estep = estep_for(log, emit.astype(np.int64), n_skills, n_emit) if estep_for else None
        params, _, self.n_iter_ = run_em(
            data,
            start,
            emit_skill,
            self.fit_forget,
            self.max_guess,
            self.max_slip,
            self.item_prior if use_items else 0.0,
            self.max_iter,
            self.tol,
            estep=estep,
        )
        self.init_, self.learn_, self.forget_ = params.init[0], params.learn[0], params.forget[0]
        answers = np.bincount(log.skill, minlength=n_skills).astype(np.float64)
        self.seen_skill_ = answers > 0
        if use_items and log.item is not None:
            self.item_guess_, self.item_slip_ = params.guess[0], params.slip[0]
            self.seen_item_ = emit_skill >= 0
            # Skill-level guess/slip for unseen items: answer-weighted mean over the skill's items.
            w = np.bincount(log.item, minlength=n_items).astype(np.float64)
            self.guess_ = _weighted_by_group(self.item_guess_, w, emit_skill, n_skills, 0.2)
            self.slip_ = _weighted_by_group(self.item_slip_, w, emit_skill, n_skills, 0.1)
        else:
            self.guess_, self.slip_ = params.guess[0], params.slip[0]
            self.item_guess_ = self.item_slip_ = None
            self.seen_item_ = None
        self.default_ = self._population_default(answers)
        self._fill_unseen()
        return self

    def _population_default(self, answers: NDArray[np.float64]) -> BKTParams:
        if answers.sum() <= 0:
            return BKTParams()
        w = answers / answers.sum()
        return BKTParams(
            p_init=float(w @ self.init_),
            p_learn=float(w @ self.learn_),
            p_guess=float(w @ self.guess_),
            p_slip=float(w @ self.slip_),
            p_forget=float(w @ self.forget_),
        )

    def _fill_unseen(self) -> None:
        d, unseen = self.default_, ~self.seen_skill_
        self.init_[unseen], self.learn_[unseen], self.forget_[unseen] = d.p_init, d.p_learn, d.p_forget
        self.guess_[unseen], self.slip_[unseen] = d.p_guess, d.p_slip

    # -- batch prediction ----------------------------------------------------------------

    def _row_params(
        self, skill: NDArray[np.int64], item: NDArray[np.int64] | None
    ) -> tuple[NDArray[np.float64], ...]:
        d = self.default_
        known = skill < len(self.init_)
        s = np.where(known, skill, 0)

        def pick(arr: NDArray[np.float64], fallback: float) -> NDArray[np.float64]:
            return np.where(known, arr[s] if len(arr) else fallback, fallback)

        guess, slip = pick(self.guess_, d.p_guess), pick(self.slip_, d.p_slip)
        if (
            item is not None
            and self.item_guess_ is not None
            and self.item_slip_ is not None
            and self.seen_item_ is not None
        ):
            ok = item < len(self.item_guess_)
            it = np.where(ok, item, 0)
            ok &= self.seen_item_[it]
            guess = np.where(ok, self.item_guess_[it], guess)
            slip = np.where(ok, self.item_slip_[it], slip)
        return (
            pick(self.init_, d.p_init),
            pick(self.learn_, d.p_learn),
            pick(self.forget_, d.p_forget),
            guess,
            slip,
        )

    def predict_proba(self, log: ResponseLog) -> NDArray[np.float64]:
        """P(correct) per row from the rows before it of the same learner and skill (an
        answer's rows are on distinct skills, so none reads another; a row repeating a skill of
        its answer gets its twin's prediction)."""
        check_log(log)
        if len(log) == 0:
            return np.zeros(0)
        return predict_without_repeats(log, self._predict_rows)

    def _predict_rows(self, log: ResponseLog) -> NDArray[np.float64]:
        key_base = max(int(log.skill.max()) + 1, len(self.init_))
        packed = pack_sequences(sequence_key(log.user, log.skill, key_base))
        o = packed.order
        init, learn, forget, guess, slip = self._row_params(
            log.skill[o], None if log.item is None else log.item[o]
        )
        lk, lu = emission_likelihoods(log.correct[o][None, :].astype(np.float64), guess[None], slip[None])
        n0 = int(packed.sizes[0])
        prior, _, _ = forward(packed, lk, lu, init[None, :n0], learn[None], forget[None])
        pred_packed = prior[0] * (1.0 - slip) + (1.0 - prior[0]) * guess
        out = np.empty(len(log))
        out[o] = pred_packed
        return out

    # -- online ----------------------------------------------------------------------------

    def skill_params(self, skill: int, item: int | None = None) -> BKTParams:
        if 0 <= skill < len(self.init_):
            p = BKTParams(
                p_init=float(self.init_[skill]),
                p_learn=float(self.learn_[skill]),
                p_guess=float(self.guess_[skill]),
                p_slip=float(self.slip_[skill]),
                p_forget=float(self.forget_[skill]),
            )
        else:
            p = self.default_
        if (
            item is not None
            and self.item_guess_ is not None
            and self.item_slip_ is not None
            and self.seen_item_ is not None
            and 0 <= item < len(self.item_guess_)
            and self.seen_item_[item]
        ):
            p = BKTParams(
                p_init=p.p_init,
                p_learn=p.p_learn,
                p_guess=float(self.item_guess_[item]),
                p_slip=float(self.item_slip_[item]),
                p_forget=p.p_forget,
            )
        return p

    def initial_state(self) -> dict[str, Any]:
        return {"known": {}}

    def mastery(self, state: dict[str, Any], skill: int) -> float:
        """P(skill known) now; the skill's prior mastery if the learner never practised it."""
        known = state["known"].get(str(skill))
        return float(known) if known is not None else self.skill_params(skill).p_init

    def predict_next(
        self, state: dict[str, Any], skill: int, item: int | None = None, timestamp: float | None = None
    ) -> float:
        return bkt_predict(self.mastery(state, skill), self.skill_params(skill, item))

    def update(
        self,
        state: dict[str, Any],
        skill: int,
        correct: int,
        item: int | None = None,
        timestamp: float | None = None,
    ) -> dict[str, Any]:
        """Fold one answer into ``state`` (in place, also returned)."""
        check_label(correct)
        params = self.skill_params(skill, item)
        state["known"][str(skill)] = bkt_update(self.mastery(state, skill), bool(correct), params)
        return state

    def update_answer(
        self,
        state: dict[str, Any],
        skills: list[int],
        correct: int,
        item: int | None = None,
        timestamp: float | None = None,
    ) -> dict[str, Any]:
        """Fold one answer on several skills: each skill is its own chain, so this is
        ``update`` per distinct skill (no skill's update reads another's)."""
        for skill in dict.fromkeys(skills):
            self.update(state, skill, correct, item, timestamp)
        return state

    # -- persistence -----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON form. ``default`` and ``skills`` (code -> BKTParams dict) are the layout the
        product's mastery service reads."""
        skills = {
            str(k): self.skill_params(k).to_dict() for k in range(len(self.init_)) if self.seen_skill_[k]
        }
        out: dict[str, Any] = {
            "kind": self.kind,
            "hyper": {
                "fit_forget": self.fit_forget,
                "item_guess_slip": self.item_guess_slip,
                "item_prior": self.item_prior,
                "max_guess": self.max_guess,
                "max_slip": self.max_slip,
                "restarts": self.restarts,
                "max_iter": self.max_iter,
                "tol": self.tol,
                "random_state": self.random_state,
            },
            "n_skills": len(self.init_),
            "default": self.default_.to_dict(),
            "skills": skills,
        }
        if self.item_guess_ is not None and self.item_slip_ is not None and self.seen_item_ is not None:
            out["items"] = {
                str(i): [float(self.item_guess_[i]), float(self.item_slip_[i])]
                for i in np.flatnonzero(self.seen_item_)
            }
            out["n_items"] = len(self.item_guess_)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BKT:
        model = cls(**data.get("hyper", {}))
        model.default_ = BKTParams.from_dict(data["default"])
        n = int(data["n_skills"])
        d = model.default_
        model.init_ = np.full(n, d.p_init)
        model.learn_ = np.full(n, d.p_learn)
        model.forget_ = np.full(n, d.p_forget)
        model.guess_ = np.full(n, d.p_guess)
        model.slip_ = np.full(n, d.p_slip)
        model.seen_skill_ = np.zeros(n, dtype=bool)
        for key, raw in data["skills"].items():
            k, p = int(key), BKTParams.from_dict(raw)
            model.init_[k], model.learn_[k], model.forget_[k] = p.p_init, p.p_learn, p.p_forget
            model.guess_[k], model.slip_[k] = p.p_guess, p.p_slip
            model.seen_skill_[k] = True
        model.item_guess_ = model.item_slip_ = None
        model.seen_item_ = None
        if "items" in data:
            m = int(data["n_items"])
            model.item_guess_, model.item_slip_ = np.zeros(m), np.zeros(m)
            model.seen_item_ = np.zeros(m, dtype=bool)
            for key, (g, s) in data["items"].items():
                i = int(key)
                model.item_guess_[i], model.item_slip_[i], model.seen_item_[i] = g, s, True
        return model


def _majority_skill(item: NDArray[np.int64], skill: NDArray[np.int64], n_items: int) -> NDArray[np.int64]:
    """The skill each item is most often answered under (-1 for items never answered)."""
    out = np.full(n_items, -1, dtype=np.int64)
    if len(item) == 0:
        return out
    pairs, counts = np.unique(np.stack([item, skill]), axis=1, return_counts=True)
    order = np.lexsort((counts, pairs[0]))  # within an item, the largest count comes last
    items, skills = pairs[0][order], pairs[1][order]
    last = np.r_[items[1:] != items[:-1], True]
    out[items[last]] = skills[last]
    return out


def _weighted_by_group(
    values: NDArray[np.float64],
    weight: NDArray[np.float64],
    group: NDArray[np.int64],
    n_groups: int,
    fallback: float,
) -> NDArray[np.float64]:
    ok = group >= 0
    num = np.bincount(group[ok], weights=(values * weight)[ok], minlength=n_groups)
    den = np.bincount(group[ok], weights=weight[ok], minlength=n_groups)
    return np.where(den > 0, num / np.maximum(den, 1e-300), fallback)
