"""JSON API of the model features: tutor, grade reviews, item drafts, usage and budgets."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from learnloop.api.envelope import ErrorEnvelope
from learnloop.deps import api_user, get_ctx
from learnloop.errors import LearnloopError
from learnloop.services import authoring, grading, llm_usage, tutoring
from learnloop.services.auth import CurrentUser
from learnloop.services.context import AppContext

router = APIRouter(prefix="/api/v1")

#: routes that wait for a model: with no offline fallback in the task's route
#: (``LEARNLOOP_LLM_<TASK>``) and every provider failing, they answer 503
MODEL_ERRORS: dict[int | str, dict[str, object]] = {
    503: {"model": ErrorEnvelope, "description": "the model service is unavailable (no offline fallback)"}
}


class AskIn(BaseModel):
    question: str = Field(max_length=tutoring.MAX_QUESTION_CHARS)
    item_id: str | None = Field(default=None, max_length=80)
    lesson_id: str | None = Field(default=None, max_length=80)
    conversation_id: int | None = None
    #: set by a skill check: the tutor refuses while it runs
    in_assessment: bool = False


class DecisionIn(BaseModel):
    correct: bool
    score: float | None = Field(default=None, ge=0, le=1)


class GenerateIn(BaseModel):
    skill_id: str = Field(max_length=80)
    count: int = Field(default=3, ge=1, le=authoring.MAX_DRAFTS)


class ApproveIn(BaseModel):
    item_yaml: str | None = Field(default=None, max_length=20_000)


class BudgetIn(BaseModel):
    monthly_usd: float = Field(ge=0, lt=1e7)


@router.post("/tutor/ask", response_model=tutoring.ConversationView, tags=["tutor"], responses=MODEL_ERRORS)
def ask(
    body: AskIn, ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)
) -> tutoring.ConversationView:
    """Ask the tutor about an item or lesson; returns the conversation with the reply."""
    return tutoring.ask(
        ctx,
        user,
        body.question,
        item_id=body.item_id,
        lesson_id=body.lesson_id,
        conversation_id=body.conversation_id,
        in_assessment=body.in_assessment,
    )


@router.post(
    "/tutor/ask/stream",
    tags=["tutor"],
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "`delta` events with checked text, then one `done` event "
            "with the saved conversation (or, should the model fail after the first event, one "
            "`error` event with the error envelope)",
        },
        **MODEL_ERRORS,
    },
)
def ask_stream(
    body: AskIn, ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)
) -> Response:
    """The tutor's reply as server-sent events, released a sentence at a time."""
    events = tutoring.ask_stream(
        ctx,
        user,
        body.question,
        item_id=body.item_id,
        lesson_id=body.lesson_id,
        conversation_id=body.conversation_id,
        in_assessment=body.in_assessment,
    )

    # the first event is awaited here, so that a model that cannot answer at all (503) or a spent
    # budget (429) is an error answer with its status, not a 200 whose stream breaks off
    first = next(events, None)

    def sse() -> Iterator[str]:
        try:
            for event in itertools.chain([] if first is None else [first], events):
                if isinstance(event, str):
                    yield f"event: delta\ndata: {json.dumps({'text': event}, ensure_ascii=False)}\n\n"
                else:
                    yield f"event: done\ndata: {json.dumps(tutoring.as_dict(event), ensure_ascii=False)}\n\n"
        except LearnloopError as exc:  # the headers are sent: the error goes into the stream
            envelope = {"error": {"code": exc.code, "message": exc.message, "details": exc.details}}
            yield f"event: error\ndata: {json.dumps(envelope, ensure_ascii=False)}\n\n"

    return StreamingResponse(sse(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


@router.get("/tutor/conversations", response_model=list[tutoring.ConversationSummary], tags=["tutor"])
def conversations(
    ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)
) -> list[tutoring.ConversationSummary]:
    return tutoring.conversations(ctx, user)


@router.get(
    "/tutor/conversations/{conversation_id}", response_model=tutoring.ConversationView, tags=["tutor"]
)
def conversation(
    conversation_id: int, ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)
) -> tutoring.ConversationView:
    return tutoring.conversation(ctx, user, conversation_id)


@router.delete("/tutor/conversations/{conversation_id}", status_code=204, tags=["tutor"])
def delete_conversation(
    conversation_id: int, ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)
) -> Response:
    tutoring.delete_conversation(ctx, user, conversation_id)
    return Response(status_code=204)


@router.delete("/tutor/conversations", tags=["tutor"])
def delete_all(ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)) -> dict[str, int]:
    return {"deleted": tutoring.delete_all_conversations(ctx, user)}


@router.get("/grading/reviews", response_model=list[grading.ReviewView], tags=["grading"])
def reviews(
    status: str = Query("pending", max_length=20),
    ctx: AppContext = Depends(get_ctx),
    user: CurrentUser = Depends(api_user),
) -> list[grading.ReviewView]:
    """Answers waiting for (or given) an instructor's grade (instructors)."""
    return grading.review_queue(ctx, user, status)


@router.post("/grading/reviews/{review_id}/decision", response_model=grading.ReviewView, tags=["grading"])
def decide(
    review_id: int,
    body: DecisionIn,
    ctx: AppContext = Depends(get_ctx),
    user: CurrentUser = Depends(api_user),
) -> grading.ReviewView:
    """The instructor's grade; it replaces the provisional one."""
    return grading.decide(ctx, user, review_id, body.correct, body.score)


@router.post(
    "/authoring/drafts",
    response_model=authoring.GenerationResult,
    status_code=201,
    tags=["authoring"],
    responses=MODEL_ERRORS,
)
def generate(
    body: GenerateIn, ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)
) -> authoring.GenerationResult:
    """Draft items for a skill from its lessons; they wait for review (instructors)."""
    return authoring.generate_drafts(ctx, user, body.skill_id, body.count)


@router.get("/authoring/drafts", response_model=list[authoring.DraftView], tags=["authoring"])
def drafts(
    status: str = Query("pending", max_length=20),
    ctx: AppContext = Depends(get_ctx),
    user: CurrentUser = Depends(api_user),
) -> list[authoring.DraftView]:
    return authoring.drafts(ctx, user, status)


@router.post("/authoring/drafts/{draft_id}/approve", response_model=authoring.DraftView, tags=["authoring"])
def approve(
    draft_id: int, body: ApproveIn, ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)
) -> authoring.DraftView:
    """Publish the draft (optionally edited, as YAML) in a new version of the active pack."""
    return authoring.approve(ctx, user, draft_id, body.item_yaml)


class SaveForReviewIn(BaseModel):
    item_yaml: str = Field(min_length=1, max_length=20_000)


@router.post(
    "/authoring/drafts/{draft_id}/save",
    response_model=authoring.DraftView,
    tags=["authoring"],
    responses={
        422: {
            "model": ErrorEnvelope,
            "description": "the edited item is not valid YAML, does not pass the pack's checks (each "
            "problem in details), or changes nothing",
        },
        409: {"model": ErrorEnvelope, "description": "the draft has already been reviewed"},
    },
)
def save_for_review(
    draft_id: int,
    body: SaveForReviewIn,
    ctx: AppContext = Depends(get_ctx),
    user: CurrentUser = Depends(api_user),
) -> authoring.DraftView:
    """Save your changes to a pending draft for review (instructors and admins), as the authoring
    page's "Save changes for review" does: checked as an approval is, and you become the writer
    of this version, so where the organisation requires a second reviewer someone else approves
    it. Sending the same version again answers the draft unchanged."""
    return authoring.save_edits(ctx, user, draft_id, body.item_yaml)


@router.post("/authoring/drafts/{draft_id}/reject", response_model=authoring.DraftView, tags=["authoring"])
def reject(
    draft_id: int, ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)
) -> authoring.DraftView:
    return authoring.reject(ctx, user, draft_id)


@router.get("/llm/usage", response_model=llm_usage.UsageReport, tags=["operations"])
def usage(ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)) -> llm_usage.UsageReport:
    """This month's model usage, cost and budget of your organisation (admins)."""
    return llm_usage.usage_report(ctx, user)


@router.put("/llm/budget", tags=["operations"])
def budget(
    body: BudgetIn, ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)
) -> dict[str, float | None]:
    """Set the monthly model budget in US dollars (0 removes it; admins)."""
    return {"monthly_usd": llm_usage.set_budget(ctx, user, body.monthly_usd)}


@router.put("/llm/quotas", response_model=llm_usage.Quotas, tags=["operations"])
def quotas(
    body: llm_usage.Quotas, ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)
) -> llm_usage.Quotas:
    """Set the monthly model quotas per member and per team, in tokens or US dollars (null or 0:
    none; admins). Usage against them is in ``GET /llm/usage`` (``teams``, ``top_users``)."""
    return llm_usage.set_quotas(ctx, user, body)
