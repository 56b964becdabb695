"""SCIM 2.0 endpoints under ``/scim/v2`` (RFC 7644), authenticated by the organisation's SCIM
bearer token. Errors are SCIM error documents (wired once in ``server._error``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from learnloop.deps import get_ctx
from learnloop.errors import InvalidInput
from learnloop.i18n import _
from learnloop.services.context import AppContext
from learnloop.services.people import scim

router = APIRouter(prefix="/scim/v2", tags=["scim"], include_in_schema=False)
SCIM_JSON = "application/scim+json"


def scim_org(request: Request) -> int:
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else None
    return scim.org_for_token(get_ctx(request), token)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/scim/v2"


def _answer(body: dict[str, Any], status: int = 200, location: bool = False) -> Response:
    headers = {"Location": body["meta"]["location"]} if location and "meta" in body else None
    return JSONResponse(body, status_code=status, media_type=SCIM_JSON, headers=headers)


async def _payload(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError:
        raise InvalidInput(_("The SCIM payload must be a JSON object.")) from None


async def _run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await run_in_threadpool(fn, *args, **kwargs)


@router.get("/ServiceProviderConfig")
def service_provider_config(request: Request, org: int = Depends(scim_org)) -> Response:
    return _answer(scim.service_provider_config(_base(request)))


@router.get("/ResourceTypes")
def resource_types(request: Request, org: int = Depends(scim_org)) -> Response:
    return _answer(scim.resource_types(_base(request)))


@router.get("/ResourceTypes/{type_id}")
def resource_type(type_id: str, request: Request, org: int = Depends(scim_org)) -> Response:
    return _answer(scim.resource_type(_base(request), type_id))


@router.get("/Schemas")
def schemas(request: Request, org: int = Depends(scim_org)) -> Response:
    return _answer(scim.schemas(_base(request)))


@router.get("/Schemas/{schema_id}")
def schema(schema_id: str, request: Request, org: int = Depends(scim_org)) -> Response:
    return _answer(scim.schema(_base(request), schema_id))


@router.post("/.search")
def search_everything(org: int = Depends(scim_org)) -> Response:
    scim.search_all()
    return Response(status_code=501)


@router.get("/Users")
def list_users(
    request: Request,
    filter: str | None = Query(None, max_length=500),
    startIndex: int | None = Query(None, ge=-(2**31), le=2**31),  # noqa: N803 - SCIM's names
    count: int | None = Query(None, ge=-(2**31), le=2**31),
    attributes: str | None = Query(None, max_length=2000),
    excludedAttributes: str | None = Query(None, max_length=2000),  # noqa: N803
    org: int = Depends(scim_org),
    ctx: AppContext = Depends(get_ctx),
) -> Response:
    params = scim.response_parameters(attributes, excludedAttributes)
    return _answer(
        scim.list_users(
            ctx, org, _base(request), filter=filter, start_index=startIndex, count=count, params=params
        )
    )


@router.post("/Users/.search")
async def search_users(
    request: Request, org: int = Depends(scim_org), ctx: AppContext = Depends(get_ctx)
) -> Response:
    return _answer(await _run(scim.search, ctx, org, _base(request), "Users", await _payload(request)))


@router.post("/Users")
async def create_user(
    request: Request, org: int = Depends(scim_org), ctx: AppContext = Depends(get_ctx)
) -> Response:
    body = await _run(scim.create_user, ctx, org, _base(request), await _payload(request))
    return _answer(body, 201, location=True)


@router.get("/Users/{user_id}")
def get_user(
    user_id: str,
    request: Request,
    attributes: str | None = Query(None, max_length=2000),
    excludedAttributes: str | None = Query(None, max_length=2000),  # noqa: N803
    org: int = Depends(scim_org),
    ctx: AppContext = Depends(get_ctx),
) -> Response:
    params = scim.response_parameters(attributes, excludedAttributes)
    return _answer(scim.get_user(ctx, org, _base(request), user_id, params))


@router.put("/Users/{user_id}")
async def replace_user(
    user_id: str, request: Request, org: int = Depends(scim_org), ctx: AppContext = Depends(get_ctx)
) -> Response:
    return _answer(await _run(scim.replace_user, ctx, org, _base(request), user_id, await _payload(request)))


@router.patch("/Users/{user_id}")
async def patch_user(
    user_id: str, request: Request, org: int = Depends(scim_org), ctx: AppContext = Depends(get_ctx)
) -> Response:
    return _answer(await _run(scim.patch_user, ctx, org, _base(request), user_id, await _payload(request)))


@router.delete("/Users/{user_id}", status_code=204)
def delete_user(user_id: str, org: int = Depends(scim_org), ctx: AppContext = Depends(get_ctx)) -> Response:
    scim.delete_user(ctx, org, user_id)
    return Response(status_code=204)


@router.get("/Groups")
def list_groups(
    request: Request,
    filter: str | None = Query(None, max_length=500),
    startIndex: int | None = Query(None, ge=-(2**31), le=2**31),  # noqa: N803 - SCIM's names
    count: int | None = Query(None, ge=-(2**31), le=2**31),
    attributes: str | None = Query(None, max_length=2000),
    excludedAttributes: str | None = Query(None, max_length=2000),  # noqa: N803
    org: int = Depends(scim_org),
    ctx: AppContext = Depends(get_ctx),
) -> Response:
    params = scim.response_parameters(attributes, excludedAttributes)
    return _answer(
        scim.list_groups(
            ctx, org, _base(request), filter=filter, start_index=startIndex, count=count, params=params
        )
    )


@router.post("/Groups/.search")
async def search_groups(
    request: Request, org: int = Depends(scim_org), ctx: AppContext = Depends(get_ctx)
) -> Response:
    return _answer(await _run(scim.search, ctx, org, _base(request), "Groups", await _payload(request)))


@router.post("/Groups")
async def create_group(
    request: Request, org: int = Depends(scim_org), ctx: AppContext = Depends(get_ctx)
) -> Response:
    body = await _run(scim.create_group, ctx, org, _base(request), await _payload(request))
    return _answer(body, 201, location=True)


@router.get("/Groups/{group_id}")
def get_group(
    group_id: str,
    request: Request,
    attributes: str | None = Query(None, max_length=2000),
    excludedAttributes: str | None = Query(None, max_length=2000),  # noqa: N803
    org: int = Depends(scim_org),
    ctx: AppContext = Depends(get_ctx),
) -> Response:
    params = scim.response_parameters(attributes, excludedAttributes)
    return _answer(scim.get_group(ctx, org, _base(request), group_id, params))


@router.put("/Groups/{group_id}")
async def replace_group(
    group_id: str, request: Request, org: int = Depends(scim_org), ctx: AppContext = Depends(get_ctx)
) -> Response:
    return _answer(
        await _run(scim.replace_group, ctx, org, _base(request), group_id, await _payload(request))
    )


@router.patch("/Groups/{group_id}")
async def patch_group(
    group_id: str, request: Request, org: int = Depends(scim_org), ctx: AppContext = Depends(get_ctx)
) -> Response:
    return _answer(await _run(scim.patch_group, ctx, org, _base(request), group_id, await _payload(request)))


@router.delete("/Groups/{group_id}", status_code=204)
def delete_group(group_id: str, org: int = Depends(scim_org), ctx: AppContext = Depends(get_ctx)) -> Response:
    scim.delete_group(ctx, org, group_id)
    return Response(status_code=204)
