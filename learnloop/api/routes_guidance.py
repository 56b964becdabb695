"""Guidance over the JSON API: the learner's path to the role, and the organisation's memory fit."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from learnloop.deps import api_user, get_ctx
from learnloop.services import guidance
from learnloop.services.auth import CurrentUser
from learnloop.services.context import AppContext

router = APIRouter(prefix="/api/v1")


@router.get("/path", response_model=guidance.PathView, tags=["practice"])
def my_path(ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)) -> guidance.PathView:
    """The remaining skills to the target role in the order to learn them, with the answers and
    minutes each is expected to take, due reviews and the next activity. Re-planned from the
    current state on every call, so after every answer."""
    return guidance.my_path(ctx, user)


@router.post("/org/memory-parameters", response_model=guidance.MemoryFit, tags=["organisation"])
def fit_memory(
    ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)
) -> guidance.MemoryFit:
    """Fit the spaced-review (FSRS) parameters to the organisation's answers and re-derive its
    review cards (instructors, managers, admins; needs the fsrs optimizer extra on the server)."""
    return guidance.fit_memory(ctx, user)
