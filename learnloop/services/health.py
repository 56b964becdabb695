"""Readiness of the parts a request needs, for ``/healthz``: the database answers a query."""

from __future__ import annotations

from sqlalchemy import text

from learnloop.services.context import AppContext


def database_problem(ctx: AppContext) -> str | None:
    """None when the database answers ``SELECT 1``; else the kind of failure (never its message,
    which may carry the connection string)."""
    try:
        with ctx.session() as session:
            session.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to reach the database means not ready
        return type(exc).__name__
    return None
