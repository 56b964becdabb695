"""The JSON error envelope every API error carries, declared once for the OpenAPI document."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    code: str = Field(description="machine-readable kind, e.g. invalid_input, unauthorized, rate_limited")
    message: str = Field(description="what went wrong, in the caller's language")
    details: list[str] = Field(default_factory=list, description="one line per problem, where useful")


class ErrorEnvelope(BaseModel):
    error: ErrorBody


_STATUSES = {
    400: "the request cannot be served as asked",
    401: "no valid login (session cookie or bearer token)",
    403: "the role does not allow this, or the CSRF check failed (cookie-authenticated writes)",
    404: "no such resource in the caller's organisation",
    409: "conflicts with the current state",
    413: "request body over the size limit",
    415: "unsupported media type (file uploads)",
    422: "the input is not valid (each problem in details)",
    429: "too many attempts; retry after the Retry-After header's seconds",
    503: "the database (or another part the request needs) is briefly unavailable; nothing was saved",
}

#: The error answers of every API route, as ``responses=`` for ``include_router``.
API_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorEnvelope, "description": text} for status, text in _STATUSES.items()
}
