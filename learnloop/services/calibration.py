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
