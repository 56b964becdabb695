"""Logistic knowledge tracing: PFA, Best-LR and DAS3H in one sparse model.

P(correct) = sigmoid(b + beta_item + beta_skill + gamma_skill log(1 + wins on skill)
+ rho_skill log(1 + fails on skill) + w . shared history features): the item and skill
difficulties of IRT/DAS3H (Choffin et al. 2019, eq. 3), PFA's skill-specific learning
rates on successes and failures (Pavlik et al. 2009, eq. 2) in Best-LR's log(1 + count)
form (Gervet et al. 2020), and the shared counters of ``features.py``. With ``item_prior``
one more column holds each item's smoothed log-odds of success in the training log (an item
rating, the Elo-style difficulty estimate of Pelanek 2016, here taken from counts), computed
out of fold for the training rows so that no row reads its own label. With
``skill_transfer`` a learned skill-by-skill matrix weighs the learner's wins and fails on
every other skill (the cross-skill influence DKT learns, Piech et al. 2015, section 5,
here as an additive factor). With ``FeatureSpec.ability_decays`` every item and every skill
gets its own slope on the learner's recent log-odds of success at each decay
(``recent_ability``): a two-parameter (2PL) item's discrimination, Birnbaum 1968, on an
ability read off the recent answers instead of estimated per learner. The weights are a
ridge-penalised maximum likelihood fit by L-BFGS on a scipy.sparse design.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.optimize import minimize

from learnloop.science.kt.base import (
    Answers,
    AnswerUpdates,
    ResponseLog,
    answers_of,
    check_log,
    predict_without_repeats,
    without_repeats,
)
from learnloop.science.kt.features import (
    FeatureSpec,
    HistoryCounts,
    LearnerCounters,
    LearnerState,
    RecentAnswer,
    as_state,
    dense_features,
    dense_row,
    history_counts,
    recent_ability,
    stack_counts,
    transfer_entries,
)

State = LearnerState | dict[str, Any]

FloatArray = NDArray[np.float64]


class LogisticKT(AnswerUpdates[LearnerState]):
    """Sparse logistic regression on item/skill difficulty and the learner's history.

    Skills and items never seen in training get zero difficulty offsets (the population
    average the intercept carries) and no skill-specific learning rates; a new learner
    starts from zero counts, so the prediction is the population's for a first attempt.

    Every feature of a row reads the learner's earlier *answers* only
    (``ResponseLog.answer``): the rows of one multi-skill answer never see each other, in
    fitting, in ``predict_proba`` and online (``update_answer`` folds all of an answer's
    skills at once). A row repeating a skill its answer already lists is left out of the
    fit and gets its twin's prediction.
    """

    kind = "logistic"

    def __init__(
        self,
        *,
        features: FeatureSpec | None = None,
        item_difficulty: bool = True,
        skill_learning_rates: bool = True,
        skill_transfer: bool | None = None,
        max_transfer_skills: int = 300,
        pair_last: bool | None = None,
        pair_lags: int = 2,
        item_learning_rates: bool = False,
        l2: float = 1.0,
        l2_transfer: float = 100.0,
        l2_pair: float = 3.0,
        item_prior: bool = False,
        item_prior_smooth: float = 20.0,
        item_prior_folds: int = 5,
        l2_ability: float = 3.0,
        max_iter: int = 300,
        tol: float = 1e-6,
    ) -> None:
        self.features = features if features is not None else FeatureSpec()
        self.item_difficulty = item_difficulty
        self.skill_learning_rates = skill_learning_rates
        self.skill_transfer = skill_transfer
        self.max_transfer_skills = max_transfer_skills
        self.l2_transfer = l2_transfer
        self.pair_last = pair_last
        self.pair_lags = pair_lags
        self.item_learning_rates = item_learning_rates
        self.l2_pair = l2_pair
        self.item_prior = item_prior
        self.item_prior_smooth = item_prior_smooth
        self.item_prior_folds = item_prior_folds
        self.l2_ability = l2_ability
        # per fold, the item priors from the other folds' learners; only while fitting
        self._fold_prior_: FloatArray | None = None
        self.l2 = l2
        self.max_iter = max_iter
        self.tol = tol

    # -- design --------------------------------------------------------------------------------

    def _layout(self) -> tuple[int, int, int, int, int, int]:
        """Column offsets: skill one-hot, item one-hot, skill wins, skill fails, transfer
        (wins block then fails block, K x K each), last-answer pairs (right block then wrong
        block, K x K each, see ``_pair_offset``), item wins then item fails (Q each, with
        ``item_learning_rates``, see ``_item_rate_offset``), dense (``n_dense_`` columns),
        then the item prior (one column, with ``item_prior``)."""
        k, q = self.n_skills_, self.n_items_ if self.item_difficulty else 0
        r = k if self.skill_learning_rates else 0
        o_transfer = 1 + k + q + 2 * r
        o_pair = o_transfer + (2 * k * k if self.transfer_ else 0)
        return (
            1,
            1 + k,
            1 + k + q,
            1 + k + q + r,
            o_transfer,
            o_pair + self._pair_size() + (2 * q if self._item_rates() else 0),
        )

    def _item_rates(self) -> bool:
        return self.item_learning_rates and self.item_difficulty and self.n_items_ > 0

    def _pair_size(self) -> int:
        return 2 * self.n_skills_**2 * self.pair_lags if self.pair_ else 0

    def _item_rate_offset(self) -> int:
        return self._pair_offset() + self._pair_size()

    def _pair_offset(self) -> int:
        k = self.n_skills_
        return self._layout()[4] + (2 * k * k if self.transfer_ else 0)

    def _design(self, log: ResponseLog) -> sp.csr_matrix:
        n = len(log)
        if n == 0:
            width = self._ability_width() * len(self.features.ability_decays)
            return sp.csr_matrix((0, self._layout()[5] + self.n_dense_ + int(self.prior_) + width))
        h = history_counts(
            self.features, log, max(self.n_skills_, int(log.skill.max()) + 1), self.with_windows_
        )
        dense = dense_features(self.features, h, self.with_windows_) if n else np.zeros((0, self.n_dense_))
        o_skill, o_item, o_wins, o_fails, o_transfer, o_dense = self._layout()
        rows = np.arange(n)
        parts_r, parts_c, parts_v = [rows], [np.zeros(n, dtype=np.int64)], [np.ones(n)]
        known_skill = log.skill < self.n_skills_
        rs, ks = rows[known_skill], log.skill[known_skill]
        parts_r.append(rs)
        parts_c.append(o_skill + ks)
        parts_v.append(np.ones(len(rs)))
        if self.item_difficulty and log.item is not None:
            known_item = log.item < self.n_items_
            parts_r.append(rows[known_item])
            parts_c.append(o_item + log.item[known_item])
            parts_v.append(np.ones(int(known_item.sum())))
        if self.skill_learning_rates:
            s_wins, s_attempts = np.asarray(h.skill_wins), np.asarray(h.skill_attempts)
            wins = np.log1p(s_wins[known_skill])
            fails = np.log1p(s_attempts[known_skill] - s_wins[known_skill])
            parts_r += [rs, rs]
            parts_c += [o_wins + ks, o_fails + ks]
            parts_v += [wins, fails]
        groups = answers_of(log)
        if self.transfer_:
            k = self.n_skills_
            t_rows, other, t_wins, t_fails = transfer_entries(
                log.user,
                log.skill,
                log.correct.astype(np.float64),
                max(k, int(log.skill.max()) + 1),
                groups.index,
            )
            ok = (log.skill[t_rows] < k) & (other < k)
            t_rows, other, t_wins, t_fails = t_rows[ok], other[ok], t_wins[ok], t_fails[ok]
            col = o_transfer + log.skill[t_rows] * k + other
            parts_r += [t_rows, t_rows]
            parts_c += [col, col + k * k]
            parts_v += [t_wins, t_fails]
        if self.pair_:
            k = self.n_skills_
            for lag in range(1, self.pair_lags + 1):
                p_rows, prev_skill, prev_correct, weight = _previous_answer(log, groups, lag)
                ok = (prev_skill < k) & (log.skill[p_rows] < k)
                col = (
                    self._pair_offset()
                    + 2 * k * k * (lag - 1)
                    + (1 - prev_correct[ok]) * k * k
                    + log.skill[p_rows[ok]] * k
                    + prev_skill[ok]
                )
                parts_r.append(p_rows[ok])
                parts_c.append(col)
                parts_v.append(weight[ok])
        if self._item_rates() and log.item is not None:
            q = self.n_items_
            known_item = log.item < q
            ri, qi = rows[known_item], log.item[known_item]
            i_wins = np.asarray(h.item_wins)[known_item]
            i_fails = np.asarray(h.item_attempts)[known_item] - i_wins
            o_item_rate = self._item_rate_offset()
            parts_r += [ri, ri]
            parts_c += [o_item_rate + qi, o_item_rate + q + qi]
            parts_v += [np.log1p(i_wins), np.log1p(i_fails)]
        d = dense.shape[1]
        parts_r.append(np.repeat(rows, d))
        parts_c.append(np.tile(np.arange(d) + o_dense, n))
        parts_v.append(dense.ravel())
        if self.prior_:
            parts_r.append(rows)
            parts_c.append(np.full(n, o_dense + d, dtype=np.int64))
            parts_v.append(self._prior_column(log))
        o_ability = o_dense + d + int(self.prior_)
        width = self._ability_width()
        for j, ability in enumerate(recent_ability(h)):
            base = o_ability + j * width
            parts_r.append(rs)
            parts_c.append(base + ks)
            parts_v.append(np.asarray(ability)[known_skill])
            if self.item_difficulty and log.item is not None and self.n_items_:
                known_item = log.item < self.n_items_
                parts_r.append(rows[known_item])
                parts_c.append(base + self.n_skills_ + log.item[known_item])
                parts_v.append(np.asarray(ability)[known_item])
        return sp.csr_matrix(
            (np.concatenate(parts_v), (np.concatenate(parts_r), np.concatenate(parts_c))),
            shape=(n, o_ability + width * len(self.features.ability_decays)),
        )

    def _ability_width(self) -> int:
        """Columns per ability decay: a slope per skill, then one per item."""
        return self.n_skills_ + self.n_items_

    def _prior_column(self, log: ResponseLog) -> FloatArray:
        """Each row's item prior: the item's log-odds of success in the training log, out of
        the row's own fold while fitting (``_fold_prior_``, set by ``_prepare`` and dropped by
        ``_unpack``; a row's fold follows its learner, so a design built block by block, as
        ``services/dist_fit.py`` does, is the same); an unknown item, or none, gets the mean."""
        n = len(log)
        if log.item is None:
            return np.full(n, self.prior_mean_)
        known = (log.item >= 0) & (log.item < self.n_items_)
        item = np.where(known, log.item, 0)
        fold_prior = getattr(self, "_fold_prior_", None)
        if fold_prior is not None:
            values = fold_prior[_fold_of(log.user, len(fold_prior)), item]
        else:
            values = self.item_prior_[item]
        return np.where(known, values, self.prior_mean_)

    # -- fitting -------------------------------------------------------------------------------

    def fit(self, log: ResponseLog) -> LogisticKT:
        log, penalty = self._prepare(log)
        x = self._design(log)
        y = log.correct.astype(np.float64)
        self.coef_ = _fit_ridge_logistic(x, y, penalty, self.max_iter, self.tol)
        self._unpack()
        return self

    def _prepare(self, log: ResponseLog) -> tuple[ResponseLog, FloatArray]:
        """Set the design's layout from ``log``; return ``log`` less repeated rows (what is fitted)
        and the ridge penalty per column. (``services/dist_fit.py`` fits the same on blocks.)"""
        check_log(log)
        log = without_repeats(log)
        n = len(log)
        self.n_skills_ = int(log.skill.max()) + 1 if n else 0
        self.n_items_ = (
            int(log.item.max()) + 1 if (n and log.item is not None and self.item_difficulty) else 0
        )
        self.with_windows_ = log.timestamp is not None and bool(self.features.windows)
        self.transfer_ = (
            self.skill_transfer
            if self.skill_transfer is not None
            else self.n_skills_ <= self.max_transfer_skills
        )
        self.pair_ = (
            self.pair_last if self.pair_last is not None else self.n_skills_ <= self.max_transfer_skills
        )
        self.dense_names_ = self.features.dense_names(self.with_windows_)
        self.n_dense_ = len(self.dense_names_)
        self.prior_ = bool(self.item_prior and self.n_items_ > 0 and log.item is not None)
        if self.prior_ and log.item is not None:
            g = answers_of(log)
            item, right = log.item[g.first], log.correct[g.first].astype(np.float64)
            self.item_prior_, self.prior_mean_ = _item_logits(
                item, right, self.n_items_, self.item_prior_smooth
            )
            fold = _fold_of(log.user[g.first], self.item_prior_folds)
            self._fold_prior_ = np.stack(
                [
                    _item_logits(item[fold != f], right[fold != f], self.n_items_, self.item_prior_smooth)[0]
                    for f in range(self.item_prior_folds)
                ]
            )
        _, _, _, _, o_transfer, o_dense = self._layout()
        n_ability = self._ability_width() * len(self.features.ability_decays)
        penalty = np.full(o_dense + self.n_dense_ + int(self.prior_) + n_ability, self.l2)
        if n_ability:
            penalty[-n_ability:] = self.l2_ability
        # The K x K transfer block has many weakly identified weights: it gets its own, stronger penalty.
        penalty[o_transfer:o_dense] = self.l2_transfer
        if self.pair_:
            penalty[self._pair_offset() : self._item_rate_offset()] = self.l2_pair
        penalty[0] = 0.0
        return log, penalty

    def _unpack(self) -> None:
        o_skill, o_item, o_wins, o_fails, o_transfer, o_dense = self._layout()
        c = self.coef_
        k = self.n_skills_
        self.intercept_ = float(c[0])
        self.skill_difficulty_ = c[o_skill : o_skill + k]
        self.item_difficulty_ = c[o_item:o_wins]
        r = k if self.skill_learning_rates else 0
        self.skill_win_rate_ = c[o_wins : o_wins + r]
        self.skill_fail_rate_ = c[o_fails : o_fails + r]
        if self.transfer_:
            self.transfer_wins_ = c[o_transfer : o_transfer + k * k].reshape(k, k)
            self.transfer_fails_ = c[o_transfer + k * k : o_transfer + 2 * k * k].reshape(k, k)
        if self.pair_:
            o_pair = self._pair_offset()
            # pair_[lag - 1, 0 right / 1 wrong, skill now, skill then]
            self.pair_weights_ = c[o_pair : o_pair + self._pair_size()].reshape(self.pair_lags, 2, k, k)
        if self._item_rates():
            o_ir, q = self._item_rate_offset(), self.n_items_
            self.item_win_rate_ = c[o_ir : o_ir + q]
            self.item_fail_rate_ = c[o_ir + q : o_ir + 2 * q]
        self.dense_coef_ = c[o_dense : o_dense + self.n_dense_]
        self.prior_coef_ = float(c[o_dense + self.n_dense_]) if self.prior_ else 0.0
        o_ability, width = o_dense + self.n_dense_ + int(self.prior_), self._ability_width()
        decays = len(self.features.ability_decays)
        # shaped by the decay count, not -1: an empty log has no skills or items (width 0)
        slopes = c[o_ability : o_ability + width * decays].reshape(decays, width)
        # [decay, skill] and [decay, item]: slopes on recent_ability
        self.ability_skill_, self.ability_item_ = slopes[:, :k], slopes[:, k:]
        self._ability_lists = (self.ability_skill_.T.tolist(), self.ability_item_.T.tolist())
        self._fold_prior_ = None  # fitting is over: rows read the whole training log's prior
        if self.prior_:
            self._item_prior_list = [float(v) for v in self.item_prior_]
        # Plain-float copies: the online path adds a few dozen terms, where numpy scalars cost more.
        self._dense_coef_list = [float(v) for v in self.dense_coef_]
        self._skill_difficulty_list = [float(v) for v in self.skill_difficulty_]
        self._skill_win_rate_list = [float(v) for v in self.skill_win_rate_]
        self._skill_fail_rate_list = [float(v) for v in self.skill_fail_rate_]
        if self.transfer_:
            self._transfer_lists = (self.transfer_wins_.tolist(), self.transfer_fails_.tolist())
        self._counter = LearnerCounters(self.features, self.with_windows_)

    def predict_proba(self, log: ResponseLog) -> FloatArray:
        """P(correct) per row from the learner's earlier rows only."""
        check_log(log)
        if len(log) == 0:
            return np.zeros(0)
        return predict_without_repeats(log, lambda kept: _sigmoid(self._design(kept) @ self.coef_))

    # -- online --------------------------------------------------------------------------------

    def _counters(self) -> LearnerCounters:
        return self._counter

    def initial_state(self) -> dict[str, Any]:
        """A new learner's state as JSON (``LearnerState.to_dict``); every online method takes
        that dict (any stored version, see ``LearnerState.from_dict``) or a ``LearnerState``."""
        return self._counters().initial().to_dict()

    def predict_next(
        self, state: State, skill: int, item: int | None = None, timestamp: float | None = None
    ) -> float:
        typed = as_state(state)
        h = self._counters().counts(typed, skill, item, timestamp)
        z = self.logit_next(typed, skill, item, h, dense_row(self.features, h, self.with_windows_))
        return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))

    def logit_next(
        self, typed: LearnerState, skill: int, item: int | None, h: HistoryCounts, x: list[float]
    ) -> float:
        """``predict_next``'s log-odds from the learner's counters ``h`` and their ``dense_row``
        ``x`` (for a model that reads the same counters, as ``GBDTKT``, without counting twice)."""
        z = self.intercept_ + sum(c * v for c, v in zip(self._dense_coef_list, x, strict=True))
        if self.features.ability_decays:
            ability = recent_ability(h, math.log)
            if 0 <= skill < self.n_skills_:
                z += sum(a * v for a, v in zip(self._ability_lists[0][skill], ability, strict=True))
            if item is not None and self.item_difficulty and 0 <= item < self.n_items_:
                z += sum(a * v for a, v in zip(self._ability_lists[1][item], ability, strict=True))
        if 0 <= skill < self.n_skills_:
            z += self._skill_difficulty_list[skill]
            if self.skill_learning_rates:
                wins = float(h.skill_wins)
                z += self._skill_win_rate_list[skill] * math.log1p(wins)
                z += self._skill_fail_rate_list[skill] * math.log1p(float(h.skill_attempts) - wins)
            if self.transfer_:
                z += self._transfer_term(typed, skill)
            if self.pair_:
                for lag, past in enumerate(typed.recent[: self.pair_lags]):
                    weights = self.pair_weights_[lag, 0 if past["correct"] >= 0.5 else 1, skill]
                    share = 1.0 / len(past["skills"])
                    for then in past["skills"]:
                        if 0 <= then < self.n_skills_:
                            z += share * float(weights[then])
        if self.prior_:
            known = item is not None and 0 <= item < self.n_items_
            z += self.prior_coef_ * (
                self._item_prior_list[item] if known and item is not None else self.prior_mean_
            )
        if item is not None and self.item_difficulty and 0 <= item < self.n_items_:
            z += float(self.item_difficulty_[item])
            if self._item_rates():
                i_wins = float(h.item_wins)
                z += float(self.item_win_rate_[item]) * math.log1p(i_wins)
                z += float(self.item_fail_rate_[item]) * math.log1p(float(h.item_attempts) - i_wins)
        return z

    def predict_all(self, state: State, timestamp: float | None = None) -> FloatArray:
        """``predict_next(state, s)`` for every skill code ``s`` (an average item), in one pass:
        the learner's counters are read per skill, then every term is a vector over skills (the
        K x K transfer block a matrix-vector product). What a policy scoring every skill needs."""
        k = self.n_skills_
        counters = self._counters()
        typed = as_state(state)
        h = stack_counts([counters.counts(typed, s, None, timestamp) for s in range(k)])
        z = self.intercept_ + dense_features(self.features, h, self.with_windows_) @ self.dense_coef_
        z = z + self.skill_difficulty_
        if self.features.ability_decays:
            # one learner: the same recent abilities for every skill, each skill's own slopes
            ability = np.asarray(recent_ability(h), dtype=np.float64)  # [decay, skill]
            z = z + np.sum(self.ability_skill_ * ability, axis=0)
        if self.prior_:
            z = z + self.prior_coef_ * self.prior_mean_  # an average item
        wins = np.asarray(h.skill_wins, dtype=np.float64)
        attempts = np.asarray(h.skill_attempts, dtype=np.float64)
        if self.skill_learning_rates:
            z += self.skill_win_rate_ * np.log1p(wins) + self.skill_fail_rate_ * np.log1p(attempts - wins)
        if self.transfer_:
            # other skills' counts; a skill never answered has log(1 + 0) = 0, as in _transfer_term
            log_wins, log_fails = np.log1p(wins), np.log1p(attempts - wins)
            z += self.transfer_wins_ @ log_wins + self.transfer_fails_ @ log_fails
            z -= np.diag(self.transfer_wins_) * log_wins + np.diag(self.transfer_fails_) * log_fails
        if self.pair_:
            for lag, past in enumerate(typed.recent[: self.pair_lags]):
                share = 1.0 / len(past["skills"])
                for then in past["skills"]:
                    if 0 <= then < k:
                        z += share * self.pair_weights_[lag, 0 if past["correct"] >= 0.5 else 1, :, then]
        return _sigmoid(z)

    def _transfer_term(self, state: LearnerState, skill: int) -> float:
        z = 0.0
        row_w, row_f = self._transfer_lists[0][skill], self._transfer_lists[1][skill]
        k, log1p = self.n_skills_, math.log1p
        for key, counts in state.skills.items():
            other = int(key)
            if other != skill and other < k:
                wins = counts["wins"]
                z += row_w[other] * log1p(wins) + row_f[other] * log1p(counts["attempts"] - wins)
        return z

    def _typed(self, state: State) -> LearnerState:
        return as_state(state)

    def _fold_answer(
        self, typed: LearnerState, skills: list[int], correct: int, item: int | None, timestamp: float | None
    ) -> None:
        """One answer into the counters and the recent answers of the pair features.
        O(number of features and skills of the answer)."""
        self._counters().update(typed, skills, correct, item, timestamp)
        if self.pair_:
            # the last pair_lags answers, most recent first
            now = RecentAnswer(skills=list(dict.fromkeys(int(s) for s in skills)), correct=float(correct))
            typed.recent = [now, *typed.recent][: self.pair_lags]

    # -- persistence ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "hyper": {
                "features": self.features.to_dict(),
                "item_difficulty": self.item_difficulty,
                "skill_learning_rates": self.skill_learning_rates,
                "skill_transfer": self.skill_transfer,
                "max_transfer_skills": self.max_transfer_skills,
                "l2": self.l2,
                "l2_transfer": self.l2_transfer,
                "pair_last": self.pair_last,
                "pair_lags": self.pair_lags,
                "item_learning_rates": self.item_learning_rates,
                "l2_pair": self.l2_pair,
                "item_prior": self.item_prior,
                "item_prior_smooth": self.item_prior_smooth,
                "item_prior_folds": self.item_prior_folds,
                "l2_ability": self.l2_ability,
                "max_iter": self.max_iter,
                "tol": self.tol,
            },
            "n_skills": self.n_skills_,
            "n_items": self.n_items_,
            "with_windows": self.with_windows_,
            "transfer": self.transfer_,
            "pair": self.pair_,
            "dense_names": self.dense_names_,
            "prior": self.prior_,
            "item_prior": [float(v) for v in self.item_prior_] if self.prior_ else [],
            "prior_mean": self.prior_mean_ if self.prior_ else 0.0,
            "coef": [float(v) for v in self.coef_],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LogisticKT:
        hyper = dict(data["hyper"])
        hyper["features"] = FeatureSpec.from_dict(hyper["features"])
        hyper.setdefault("item_prior", False)  # stored before the item prior existed
        model = cls(**hyper)
        model.n_skills_ = int(data["n_skills"])
        model.n_items_ = int(data["n_items"])
        model.with_windows_ = bool(data["with_windows"])
        model.transfer_ = bool(data["transfer"])
        model.pair_ = bool(data.get("pair", False))
        model.dense_names_ = list(data["dense_names"])
        model.n_dense_ = len(model.dense_names_)
        model.prior_ = bool(data.get("prior", False))
        if model.prior_:
            model.item_prior_ = np.asarray(data["item_prior"], dtype=np.float64)
            model.prior_mean_ = float(data["prior_mean"])
        model.coef_ = np.asarray(data["coef"], dtype=np.float64)
        model._unpack()
        return model


def _previous_answer(
    log: ResponseLog, groups: Answers, lag: int = 1
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], FloatArray]:
    """The skills of the same learner's answer ``lag`` answers earlier, per row: entries
    (row, skill then, correct then 0/1, weight 1 / that answer's number of skills)."""
    first = groups.first
    a_user = log.user[first]
    n_a = len(first)
    order = np.argsort(a_user, kind="stable")
    prev = np.full(n_a, -1, dtype=np.int64)
    if n_a > lag:
        same = a_user[order[lag:]] == a_user[order[:-lag]]
        prev[order[lag:]] = np.where(same, order[:-lag], -1)
    row_prev = prev[groups.index]
    rows = np.flatnonzero(row_prev >= 0)
    p = row_prev[rows]
    size = groups.size[p]
    rep_rows = np.repeat(rows, size)
    offs = np.arange(int(size.sum())) - np.repeat(np.cumsum(size) - size, size)
    then = np.repeat(first[p], size) + offs
    weight = 1.0 / np.repeat(size, size).astype(np.float64)
    return rep_rows, log.skill[then].astype(np.int64), log.correct[then].astype(np.int64), weight


def _item_logits(
    item: NDArray[np.int64], right: FloatArray, n_items: int, smooth: float
) -> tuple[FloatArray, float]:
    """Per item, the log-odds of (right answers + smooth * mean) / (answers + smooth): the
    rate shrunk toward the log's mean by ``smooth`` pseudo-answers; and the mean's log-odds."""
    mean = float(np.clip(right.mean(), 1e-3, 1 - 1e-3)) if len(right) else 0.5
    n = np.bincount(item, minlength=n_items)[:n_items].astype(np.float64)
    w = np.bincount(item, weights=right, minlength=n_items)[:n_items]
    rate = np.clip((w + smooth * mean) / (n + smooth), 1e-3, 1 - 1e-3)
    return np.log(rate / (1 - rate)), math.log(mean / (1 - mean))


def _fold_of(user: NDArray[np.int64], folds: int) -> NDArray[np.int64]:
    """A learner's fold for the out-of-fold item prior: a fixed hash of the learner id."""
    h = (np.asarray(user).astype(np.uint64) * np.uint64(2654435761)) % np.uint64(2**32)
    return (h % np.uint64(max(folds, 1))).astype(np.int64)


def _sigmoid(z: FloatArray) -> FloatArray:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * z)), dtype=np.float64)


def _fit_ridge_logistic(
    x: sp.csr_matrix, y: FloatArray, penalty: FloatArray, max_iter: int, tol: float
) -> FloatArray:
    """argmin_w sum_i [log(1 + e^{z_i}) - y_i z_i] + 1/2 sum_j penalty_j (S_j w_j)^2 with z = X w, by
    L-BFGS with the exact gradient X^T (p - y). Each column is first divided by the root
    mean square of its non-zero values (S holds those scales): one-hot columns keep scale 1,
    count columns come to the same footing, which conditions the problem without
    weakening the penalty on rare columns."""
    n, d = x.shape
    scale = column_scale(*column_stats(x))
    data = ScaledRows(x, y, scale)
    return minimize_ridge(data.loss_grad, d, penalty, n, float(y.sum()), scale, max_iter, tol)


def column_stats(x: sp.spmatrix) -> tuple[FloatArray, NDArray[np.int64]]:
    """Per column: the sum of squares and the number of non-zero values (they add over blocks
    of rows)."""
    xc = sp.csc_matrix(x)
    return np.asarray(xc.multiply(xc).sum(axis=0), dtype=np.float64).ravel(), np.diff(xc.indptr)


def column_scale(sq: FloatArray, nnz: NDArray[np.int64]) -> FloatArray:
    """The root mean square of each column's non-zero values (1 for the intercept and empty ones)."""
    scale = np.sqrt(sq / np.maximum(nnz, 1))
    scale[scale <= 0] = 1.0
    scale[0] = 1.0
    return scale


class ScaledRows:
    """Rows of the design with scaled columns: their unpenalised loss and its gradient."""

    def __init__(self, x: sp.spmatrix, y: FloatArray, scale: FloatArray) -> None:
        self.xs = sp.csr_matrix(x @ sp.diags(1.0 / scale))
        self.xt = self.xs.T.tocsr()
        self.y = y

    def loss_grad(self, w: FloatArray) -> tuple[float, FloatArray]:
        z = self.xs @ w
        loss = float(np.sum(np.logaddexp(0.0, z) - self.y * z))
        return loss, np.asarray(self.xt @ (_sigmoid(z) - self.y), dtype=np.float64)


def minimize_ridge(
    data_loss_grad: Any,
    d: int,
    penalty: FloatArray,
    n: int,
    right: float,
    scale: FloatArray,
    max_iter: int,
    tol: float,
) -> FloatArray:
    """L-BFGS on ``data_loss_grad(w)`` (the rows' loss and gradient, summed over any blocks of
    rows) plus the ridge penalty, from the intercept at the log-odds of ``right / n``; returns
    the weights on the unscaled columns."""

    def loss_grad(w: FloatArray) -> tuple[float, FloatArray]:
        loss, grad = data_loss_grad(w)
        return float(loss + 0.5 * np.sum(penalty * w * w)), grad + penalty * w

    w0 = np.zeros(d)
    if n:
        mean = float(np.clip(right / n, 1e-3, 1 - 1e-3))
        w0[0] = math.log(mean / (1 - mean))
    with _one_blas_thread():
        res = minimize(
            loss_grad,
            w0,
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": max_iter, "ftol": tol, "gtol": 1e-5},
        )
    return np.asarray(res.x / scale, dtype=np.float64)


def _one_blas_thread() -> contextlib.AbstractContextManager[Any]:
    """L-BFGS-B's small dense updates run slower on several BLAS threads than on one (the
    threads spin against each other on a small machine); limit them when threadpoolctl is
    installed, else leave BLAS as it is."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")
