"""Calibrating the item bank from the response log (``learnloop fit irt``)."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel
from sqlalchemy import select

from learnloop.errors import LearnloopError
from learnloop.science.irt import IRTModel
from learnloop.services.context import AppContext
from learnloop.store.models import ModelParams, Response

#: An item keeps its authored difficulty until this many learners have answered it.
MIN_ITEM_RESPONSES = 30


class CalibrationSummary(BaseModel):
    model: str
    learners: int
    responses: int
    calibrated_items: int
    authored_items: int
    log_likelihood: float
    converged: bool
    warnings: list[str]


def fit_irt(ctx: AppContext, model: str = "2pl", min_responses: int = MIN_ITEM_RESPONSES) -> CalibrationSummary:
    """Fit an IRT model on every learner's first answer to each choice/numeric item."""
    if model not in ("1pl", "2pl", "3pl"):
        raise LearnloopError("model must be 1pl, 2pl or 3pl")
    with ctx.session() as session:
        active = ctx.active_pack(session)
        scorable = {i.id for i in active.pack.items if i.kind in ("choice", "numeric")}
        first: dict[tuple[int, str], bool] = {}
        for user_id, item_id, correct in session.execute(
            select(Response.user_id, Response.item_id, Response.correct).order_by(Response.id)
        ):
            if item_id in scorable:
                first.setdefault((user_id, item_id), bool(correct))
    users = sorted({u for u, _ in first})
    items = sorted({i for _, i in first})
    if not users or not items:
        raise LearnloopError("the response log has no answers to choice or numeric items yet")
    row_of = {u: k for k, u in enumerate(users)}
    col_of = {i: k for k, i in enumerate(items)}
    matrix = np.full((len(users), len(items)), np.nan)
    for (user_id, item_id), correct in first.items():
        matrix[row_of[user_id], col_of[item_id]] = float(correct)
    fitted = IRTModel(model=model).fit(matrix)  # type: ignore[arg-type]
    counts = np.sum(~np.isnan(matrix), axis=0)
    params = {
        item_id: {"a": round(float(fitted.a_[k]), 4), "b": round(float(fitted.b_[k]), 4),
                  "c": round(float(fitted.c_[k]), 4), "n": int(counts[k])}
        for item_id, k in col_of.items() if counts[k] >= min_responses
    }
    with ctx.session() as session:
        session.add(ModelParams(kind="irt", n_responses=len(first),
                                params={"model": model, "items": params, "warnings": fitted.warnings_}))
    return CalibrationSummary(model=model, learners=len(users), responses=len(first),
                              calibrated_items=len(params), authored_items=len(scorable) - len(params),
                              log_likelihood=round(float(fitted.log_likelihood_), 3),
                              converged=bool(fitted.converged_), warnings=list(fitted.warnings_))


class KTSummary(BaseModel):
    model: str
    learners: int
    answers: int
    skills_fitted: int
    auc_in_sample: float | None
    rebuilt_answers: int


def fit_kt(ctx: AppContext, max_guess: float = 0.3, max_slip: float = 0.3) -> KTSummary:
    """Fit per-skill BKT on the whole response log, store it, and rebuild mastery with it.

    Guess and slip are bounded (0.3 by default) so that mastery keeps its meaning, P(known),
    against the role targets. Rebuilding in the same transaction keeps the live mastery
    equal to a replay of the log under the stored parameters.
    """
    from learnloop.science.kt.base import ResponseLog
    from learnloop.science.kt.bkt import BKT
    from learnloop.science.kt.metrics import auc
    from learnloop.services.mastery import rebuild_all

    with ctx.session() as session:
        users: dict[int, int] = {}
        skills: dict[str, int] = {}
        rows_u, rows_s, rows_c = [], [], []
        for user_id, skill_list, correct in session.execute(
            select(Response.user_id, Response.skills, Response.correct).order_by(Response.user_id, Response.id)
        ):
            for skill_id in skill_list:
                rows_u.append(users.setdefault(user_id, len(users)))
                rows_s.append(skills.setdefault(skill_id, len(skills)))
                rows_c.append(int(bool(correct)))
        if not rows_u:
            raise LearnloopError("the response log is empty: nothing to fit yet")
        log = ResponseLog(user=np.array(rows_u, dtype=np.int64), skill=np.array(rows_s, dtype=np.int64),
                          correct=np.array(rows_c, dtype=np.int8))
        model = BKT(max_guess=max_guess, max_slip=max_slip).fit(log)
        fitted = model.to_dict()
        code_to_skill = {code: skill_id for skill_id, code in skills.items()}
        params = {"default": fitted["default"],
                  "skills": {code_to_skill[int(code)]: p for code, p in fitted["skills"].items()}}
        predictions = model.predict_proba(log)
        score = auc(log.correct, predictions) if len(set(rows_c)) > 1 else None
        session.add(ModelParams(kind="bkt", n_responses=len(rows_u), params=params))
        session.flush()
        replayed = rebuild_all(session)
    return KTSummary(model="bkt", learners=len(users), answers=len(rows_u), skills_fitted=len(params["skills"]),
                     auc_in_sample=round(float(score), 4) if score is not None else None,
                     rebuilt_answers=replayed)
