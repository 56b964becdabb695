"""The learner's path page: the plan to the target role, progress and due reviews."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from learnloop.deps import get_ctx
from learnloop.services import guidance
from learnloop.services.context import AppContext
from learnloop.web.render import render
from learnloop.web.routes import page_user

router = APIRouter(include_in_schema=False)


@router.get("/path")
def path_page(request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    user = page_user(request)
    return render(request, "path.html", plan=guidance.my_path(ctx, user))
