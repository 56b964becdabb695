"""Concurrent and repeated requests on a real server, on SQLite and PostgreSQL.

Requests are fired at once from threads (a barrier releases them together) against uvicorn
serving the app, so the handlers really run side by side on the database. The guarantees come
from the database (the learner's lock, a presentation id unique per answer), not from locks in
this process, so they hold across worker processes too.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select

from learnloop.content.loader import load_pack
from learnloop.server import create_app
from learnloop.services.context import AppContext
from learnloop.store.models import Assessment, PendingItem, Response
from tests.conftest import MINI_PACK, answer_payload, http_learner

PACK = load_pack(MINI_PACK)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(any_ctx: AppContext) -> Iterator[str]:
    port = _free_port()
    config = uvicorn.Config(create_app(any_ctx), host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=30)


def _post(
    url: str, body: dict[str, Any], headers: dict[str, str]
) -> Callable[[httpx.Client], httpx.Response]:
    return lambda client: client.post(url, json=body, headers=headers)


def _get(url: str, headers: dict[str, str]) -> Callable[[httpx.Client], httpx.Response]:
    return lambda client: client.get(url, headers=headers)


def _at_once(calls: list[Callable[[httpx.Client], httpx.Response]]) -> list[httpx.Response]:
    """Run ``calls`` in parallel threads, each on its own connection, released together."""
    barrier = threading.Barrier(len(calls))

    def one(call: Callable[[httpx.Client], httpx.Response]) -> httpx.Response:
        with httpx.Client(timeout=120) as client:
            barrier.wait()
            return call(client)

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(one, calls))


def _no_server_error(responses: list[httpx.Response]) -> None:
    for r in responses:
        assert r.status_code < 500, r.text


def _rebuild_check(url: str) -> None:
    """``learnloop rebuild --check``: the derived state equals a replay of the log."""
    done = subprocess.run(
        [sys.executable, "-m", "learnloop.cli", "rebuild", "--check"],
        capture_output=True,
        text=True,
        env={**os.environ, "LEARNLOOP_DATABASE_URL": url, "LEARNLOOP_DEFAULT_PACK": str(MINI_PACK)},
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "equals the live state" in done.stdout


def test_concurrent_next_and_answers_count_once(server: str, any_ctx: AppContext) -> None:
    h = http_learner(server, "race@example.org")
    for round_no in range(6):
        # Two tabs, a reload...: eight next requests at once show one presentation.
        shown = _at_once([_get(f"{server}/api/v1/practice/next", h)] * 8)
        _no_server_error(shown)
        assert all(r.status_code == 200 for r in shown), [r.text for r in shown]
        assert len({(r.json()["item"]["id"], r.json()["presentation_id"]) for r in shown}) == 1
        presented = shown[0].json()
        item = PACK.item(presented["item"]["id"])
        body: dict[str, Any] = {"item_id": item.id, "answer": answer_payload(item, round_no % 3 != 0)}
        if round_no % 2 == 0:  # the client names the presentation (the web form always does)
            body["presentation_id"] = presented["presentation_id"]
        # Ten identical answers at once (a double click, retries), with next requests among them.
        calls = [_post(f"{server}/api/v1/practice/answer", body, h)] * 10
        calls += [_get(f"{server}/api/v1/practice/next", h)] * 3
        replies = _at_once(calls)
        _no_server_error(replies)
        answers = [r for r in replies[:10] if r.status_code == 200]
        assert answers, [r.text for r in replies[:10]]
        # every accepted copy got the feedback of the one stored answer
        assert len({r.json()["response_id"] for r in answers}) == 1
        assert len({(r.json()["correct"], r.json()["score"]) for r in answers}) == 1
        if "presentation_id" in body:
            assert len(answers) == 10
        else:  # a copy arriving after the item was answered cannot tell it apart from a new answer
            assert all(r.status_code == 409 for r in replies[:10] if r.status_code != 200)
        with any_ctx.session() as session:
            stored = session.scalar(select(func.count()).select_from(Response))
            assert stored == round_no + 1
        # a late retry of a named presentation is answered the same, and still stored once
        if "presentation_id" in body:
            again = httpx.post(f"{server}/api/v1/practice/answer", json=body, headers=h, timeout=60)
            assert (
                again.status_code == 200 and again.json()["response_id"] == answers[0].json()["response_id"]
            )
            changed = {**body, "answer": answer_payload(item, round_no % 3 == 0)}
            if changed["answer"] != body["answer"]:
                other = httpx.post(f"{server}/api/v1/practice/answer", json=changed, headers=h, timeout=60)
                assert other.status_code == 409, other.text
    with any_ctx.session() as session:
        assert session.scalar(select(func.count()).select_from(Response)) == 6
        assert session.scalar(select(func.count()).select_from(PendingItem)) <= 1
    _rebuild_check(any_ctx.settings.database_url)


def test_concurrent_hints_and_check_answers(server: str, any_ctx: AppContext) -> None:
    h = http_learner(server, "check@example.org")
    shown = httpx.get(f"{server}/api/v1/practice/next", headers=h, timeout=60).json()
    item = PACK.item(shown["item"]["id"])
    hints = _at_once([_post(f"{server}/api/v1/practice/hint", {"item_id": item.id}, h)] * len(item.hints))
    _no_server_error(hints)
    assert sorted(r.json()["level"] for r in hints) == list(range(1, len(item.hints) + 1))

    started = _at_once([_post(f"{server}/api/v1/checks", {"role_id": "builder"}, h)] * 4)
    _no_server_error(started)
    assert len({r.json()["next"]["assessment_id"] for r in started}) == 1
    state = started[0].json()
    for _ in range(3):
        check_id, question = state["next"]["assessment_id"], PACK.item(state["next"]["item"]["id"])
        body = {"item_id": question.id, "answer": answer_payload(question, True)}
        replies = _at_once([_post(f"{server}/api/v1/checks/{check_id}/answer", body, h)] * 8)
        _no_server_error(replies)
        assert all(r.status_code == 200 for r in replies), [r.text for r in replies]
        assert len({r.text for r in replies}) == 1  # the same next question for every copy
        state = replies[0].json()
        if state["status"] != "in_progress":
            break
    with any_ctx.session() as session:
        row = session.execute(select(Assessment)).scalar_one()
        stored = session.scalar(select(func.count()).select_from(Response).where(Response.context == "check"))
        assert stored == len(row.administered) == len(row.responses)
        assert stored >= 1
    _rebuild_check(any_ctx.settings.database_url)
