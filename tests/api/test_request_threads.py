"""A server process runs at most ``request_threads`` route handlers at once (issue 18): anyio's
default is 40 threads a process, which at 50 learners took turns at the interpreter lock and
held more database connections than the pool kept (each burst opened new ones)."""

from __future__ import annotations

from anyio import to_thread
from fastapi.testclient import TestClient

from learnloop.server import create_app
from learnloop.services.context import AppContext


async def _tokens() -> float:
    return to_thread.current_default_thread_limiter().total_tokens


def test_the_handler_threads_are_the_settings(ctx: AppContext) -> None:
    for threads in (3, 8):
        limited = AppContext(settings=ctx.settings.model_copy(update={"request_threads": threads}))
        with TestClient(create_app(limited)) as client:
            assert client.portal is not None
            assert client.portal.call(_tokens) == threads
            assert client.get("/api/v1/health").status_code == 200
