"""Skill checks over the JSON API."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from learnloop.deps import api_user, get_ctx
from learnloop.services import assessment
from learnloop.services.auth import CurrentUser
from learnloop.services.context import AppContext

router = APIRouter(prefix="/api/v1/checks", tags=["skill check"])


class StartIn(BaseModel):
    role_id: str = Field(max_length=80)


class CheckAnswerIn(BaseModel):
    item_id: str = Field(max_length=80)
    answer: dict[str, Any]


@router.post("", response_model=assessment.CheckState, status_code=201)
def start(
    body: StartIn, ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)
) -> assessment.CheckState:
    """Start (or resume) an adaptive skill check for a role: at most 25 questions."""
    return assessment.start(ctx, user, body.role_id)


@router.get("", response_model=list[assessment.CheckResult])
def history(
    ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)
) -> list[assessment.CheckResult]:
    return assessment.history(ctx, user)


@router.get("/{assessment_id}", response_model=assessment.CheckState)
def state(
    assessment_id: int, ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)
) -> assessment.CheckState:
    """The current question, or the result once the check is finished."""
    return assessment.result(ctx, user, assessment_id)


@router.post("/{assessment_id}/answer", response_model=assessment.CheckState)
def answer(
    assessment_id: int,
    body: CheckAnswerIn,
    ctx: AppContext = Depends(get_ctx),
    user: CurrentUser = Depends(api_user),
) -> assessment.CheckState:
    """Answer the current question; the reply never says whether it was right."""
    return assessment.answer(ctx, user, assessment_id, body.item_id, body.answer)
