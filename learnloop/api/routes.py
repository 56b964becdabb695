"""The JSON API under ``/api/v1``: the same learning loop as the web pages."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from learnloop.deps import SESSION_COOKIE, api_user, get_ctx, session_token
from learnloop.services import auth, item_bank, organisation, packs, practice
from learnloop.services.auth import CurrentUser, LoginResult
from learnloop.services.context import AppContext

router = APIRouter(prefix="/api/v1")


class SignupIn(BaseModel):
    email: str = Field(max_length=254)
    name: str = Field(max_length=200)
    password: str = Field(max_length=200)
    join_code: str = Field(default="", max_length=60)
    locale: str = Field(default="en", max_length=10)


class LoginIn(BaseModel):
    email: str = Field(max_length=254)
    password: str = Field(max_length=200)


class EnrolIn(BaseModel):
    role_id: str = Field(max_length=80)


class AnswerIn(BaseModel):
    item_id: str = Field(max_length=80)
    answer: dict[str, Any] = Field(
        description='{"choice": "b"} | {"value": 0.5} | {"text": "..."} | {"code": "..."}'
    )
    presentation_id: str | None = Field(
        default=None,
        max_length=36,
        description="the presentation_id of practice/next: a repeated answer is then not counted twice",
    )


class HintIn(BaseModel):
    item_id: str = Field(max_length=80)


class ItemOut(BaseModel):
    item: dict[str, Any]


class LessonOut(BaseModel):
    id: str
    title: str
    skills: list[str]
    minutes: float
    body_markdown: str
    #: the language of title and body: the caller's UI language, or the pack's base language
    #: where the lesson has no translation
    language: str


@router.post("/auth/signup", response_model=LoginResult, status_code=201, tags=["auth"])
def signup(body: SignupIn, ctx: AppContext = Depends(get_ctx)) -> LoginResult:
    """Create a learner account and log in; use the returned token as a bearer token."""
    return auth.signup(
        ctx,
        email=body.email,
        name=body.name,
        password=body.password,
        join_code=body.join_code,
        locale=body.locale,
    )


@router.post("/auth/login", response_model=LoginResult, tags=["auth"])
def login(body: LoginIn, ctx: AppContext = Depends(get_ctx)) -> LoginResult:
    return auth.login(ctx, email=body.email, password=body.password)


@router.post("/auth/logout", status_code=204, tags=["auth"])
def logout(
    request: Request, ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)
) -> Response:
    token, _ = session_token(request)
    if token:
        auth.logout(ctx, token)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/me", response_model=CurrentUser, tags=["auth"])
def me(user: CurrentUser = Depends(api_user)) -> CurrentUser:
    return user


@router.get("/roles", response_model=list[practice.RoleView], tags=["practice"])
def roles(
    ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)
) -> list[practice.RoleView]:
    return practice.list_roles(ctx)


@router.post("/enrolment", response_model=practice.RoleView, tags=["practice"])
def enrol(
    body: EnrolIn, ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)
) -> practice.RoleView:
    """Choose (or change) the learner's target role."""
    return practice.enrol(ctx, user, body.role_id)


@router.get(
    "/practice/next",
    response_model=practice.PresentedItem,
    tags=["practice"],
    responses={422: {"description": "the skill is unknown, or not on the path to the learner's role"}},
)
def next_item(
    ctx: AppContext = Depends(get_ctx),
    user: CurrentUser = Depends(api_user),
    skill: str | None = Query(None, max_length=120, description="practise this skill (its best item)"),
) -> practice.PresentedItem:
    """The item to work on now; the same item is returned until it is answered. With ``skill``,
    the next new item comes from that skill."""
    return practice.next_item(ctx, user, focus=skill or None)


@router.post("/practice/hint", response_model=practice.HintView, tags=["practice"])
def hint(
    body: HintIn, ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)
) -> practice.HintView:
    return practice.hint(ctx, user, body.item_id)


@router.post("/practice/answer", response_model=practice.Feedback, tags=["practice"])
def answer(
    body: AnswerIn, ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)
) -> practice.Feedback:
    """Score the answer to the current item; returns feedback and the mastery change."""
    return practice.answer(ctx, user, body.item_id, body.answer, presentation_id=body.presentation_id)


class RevealIn(BaseModel):
    presentation_id: str = Field(min_length=1, max_length=36)


@router.post("/practice/reveal", response_model=practice.Feedback, tags=["practice"])
def reveal(
    body: RevealIn, ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)
) -> practice.Feedback:
    """Give up the attempts left at a code item: its presentation ends and the solution is shown."""
    return practice.reveal(ctx, user, body.presentation_id)


@router.get("/mastery", response_model=practice.SkillMap, tags=["practice"])
def mastery(ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)) -> practice.SkillMap:
    return practice.skill_map(ctx, user.id)


@router.get("/lessons/{lesson_id}", response_model=LessonOut, tags=["content"])
def lesson(
    lesson_id: str, ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)
) -> LessonOut:
    found = packs.lesson(ctx, lesson_id, reader=user)
    return LessonOut(**found.model_dump(exclude={"skill_names"}))


@router.get("/health", tags=["operations"])
def health() -> dict[str, str]:
    return {"status": "ok"}


class MemberUpdate(BaseModel):
    role: str | None = Field(default=None, max_length=20)
    team: str | None = Field(default=None, max_length=200)


@router.get("/org", response_model=organisation.OrgOverview, tags=["organisation"])
def org_overview(
    ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)
) -> organisation.OrgOverview:
    """The caller's organisation: join code, teams and members (admins only)."""
    return organisation.overview(ctx, user)


@router.patch("/org/members/{user_id}", response_model=organisation.Member, tags=["organisation"])
def update_member(
    user_id: int,
    body: MemberUpdate,
    ctx: AppContext = Depends(get_ctx),
    user: CurrentUser = Depends(api_user),
) -> organisation.Member:
    return organisation.update_member(ctx, user, user_id, role=body.role, team=body.team)


@router.get("/items", response_model=list[item_bank.ItemRow], tags=["content"])
def items(
    ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)
) -> list[item_bank.ItemRow]:
    """Every item of the active pack with attempts and share correct in your organisation."""
    return item_bank.item_rows(ctx, user)


@router.get("/packs/active/translations", response_model=packs.TranslationStatus, tags=["content"])
def translations(
    ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)
) -> packs.TranslationStatus:
    """How complete each language of the active pack is, and how many items and lessons were
    served in the base language for want of a translation since the server started (admins)."""
    user.require("admin")
    return packs.translation_status(ctx)


@router.get("/items/{item_id}", tags=["content"])
def item(
    item_id: str, ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)
) -> dict[str, Any]:
    """The full item with key, rubric and tests (instructors and admins)."""
    return item_bank.item_detail(ctx, user, item_id)
