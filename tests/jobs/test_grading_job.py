"""Grading with a served model is a job: the learner sees "being graded", mastery moves when
the grade lands, and a model that times out is tried again and then reviewed, never stored as
a grade. The model server is a real HTTP server on loopback speaking the chat-completions
protocol (slow or answering a valid grade); the gateway, the OpenAI client, the queue and the
grading service are the product's own. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from learnloop import jobs
from learnloop.config import Settings
from learnloop.errors import Conflict
from learnloop.services import auth, practice
from learnloop.services.context import AppContext
from learnloop.services.mastery import rebuild_all, snapshot
from learnloop.services.packs import import_pack
from learnloop.store.db import migrate
from learnloop.store.models import GradeReview, Job, Mastery, PendingItem, Response
from tests.conftest import MINI_PACK

ITEM_ID = "basics.tokens.window"
ANSWER = "The context window is full, so the earliest tokens are truncated."
GOOD = (
    '{"criteria": [{"id": "window", "met": true}, {"id": "truncation", "met": true}],'
    ' "confidence": 0.95, "feedback": "Right."}'
)


class ScriptedModel:
    """A chat-completions server: each request waits ``delay_s`` and answers ``reply``."""

    def __init__(self, delay_s: float, reply: str = GOOD):
        self.delay_s, self.reply, self.requests = delay_s, reply, 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.requests += 1
                time.sleep(owner.delay_s)
                payload = json.dumps(
                    {
                        "id": "c",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body.get("model", "m"),
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": owner.reply},
                            }
                        ],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
                    }
                ).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the client gave up waiting
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def slow_model() -> Iterator[ScriptedModel]:
    model = ScriptedModel(delay_s=3.0)
    yield model
    model.close()


@pytest.fixture
def good_model() -> Iterator[ScriptedModel]:
    model = ScriptedModel(delay_s=0.0)
    yield model
    model.close()


def _ctx(db_url: str, model: ScriptedModel) -> AppContext:
    settings = Settings(
        database_url=db_url,
        default_pack=MINI_PACK,
        llm_grade="openai_compat,offline",
        llm_grade_base_url=model.url,
        llm_grade_model="m",
        llm_grade_timeout_s=0.5,
        llm_retries=0,
        llm_cache=False,
        llm_review_confidence=0.5,
        jobs_max_attempts=2,
        jobs_backoff_s=0.2,
    )
    migrate(db_url)
    ctx = AppContext(settings=settings)
    import_pack(ctx, MINI_PACK)
    return ctx


def _learner(ctx: AppContext) -> auth.CurrentUser:
    user = auth.signup(ctx, email="ada@example.org", name="Ada", password="violet-harbour-57-lantern").user
    practice.enrol(ctx, user, "builder")
    return user


def _show(ctx: AppContext, user: auth.CurrentUser, item_id: str) -> str:
    with ctx.session() as session:
        session.merge(PendingItem(user_id=user.id, item_id=item_id, reason="test", hints_shown=0))
    with ctx.session() as session:
        pending = session.get(PendingItem, user.id)
        assert pending is not None
        return pending.presentation_id


def _rebuild_equals_live(ctx: AppContext) -> bool:
    with ctx.session() as session:
        before = snapshot(session)
        rebuild_all(session)
        session.flush()
        after = snapshot(session)
        session.rollback()
    return before == after


def test_a_timed_out_model_call_is_retried_then_reviewed_never_a_grade(
    db_url: str, slow_model: ScriptedModel
) -> None:
    ctx = _ctx(db_url, slow_model)
    user = _learner(ctx)
    presentation = _show(ctx, user, ITEM_ID)
    queued = practice.answer(ctx, user, ITEM_ID, {"text": ANSWER}, presentation_id=presentation)
    assert queued.grading == "queued" and queued.mastery == [] and queued.job_id
    assert any("being graded" in m for m in queued.messages)
    # the same answer posted again while it is being graded: the same "being graded", once
    again = practice.answer(ctx, user, ITEM_ID, {"text": ANSWER}, presentation_id=presentation)
    assert again.grading == "queued" and again.job_id == queued.job_id
    with pytest.raises(Conflict):
        practice.answer(ctx, user, ITEM_ID, {"text": "something else"}, presentation_id=presentation)

    assert jobs.run_due(ctx) == 1  # first try: the model times out
    with ctx.session() as session:
        job = session.get(Job, queued.job_id)
        assert job is not None and job.state == "retry" and job.attempts == 1
        assert "ModelUnavailable" in job.last_error
        # nothing is stored as a grade: no response, no review, no mastery
        assert session.scalars(select(Response)).all() == []
        assert session.scalars(select(GradeReview)).all() == []
        assert session.scalars(select(Mastery)).all() == []
    assert practice.grade_status(ctx, user, presentation).grading == "queued"

    time.sleep(0.3)
    assert jobs.run_due(ctx) == 1  # the last try: the model times out again -> offline + review
    assert slow_model.requests == 2
    landed = practice.grade_status(ctx, user, presentation)
    assert landed.grading == "done" and landed.response_id > 0
    assert any("instructor" in m for m in landed.messages)
    with ctx.session() as session:
        job = session.get(Job, queued.job_id)
        assert job is not None and job.state == "done"
        review = session.scalars(select(GradeReview)).one()
        assert review.reason == "model_unavailable" and review.response_id == landed.response_id
        assert not review.grader.startswith("model:")  # the offline grader's, provisional
        response = session.get(Response, landed.response_id)
        assert response is not None and response.presentation_id == presentation
    assert _rebuild_equals_live(ctx)


def test_the_grade_lands_and_moves_mastery_in_log_order(db_url: str, good_model: ScriptedModel) -> None:
    ctx = _ctx(db_url, good_model)
    user = _learner(ctx)
    presentation = _show(ctx, user, ITEM_ID)
    queued = practice.answer(ctx, user, ITEM_ID, {"text": ANSWER}, presentation_id=presentation)
    assert queued.grading == "queued" and good_model.requests == 0  # the request did not wait
    # the learner goes on while the grade is on its way: a choice item, scored in the request
    other = _show(ctx, user, "basics.prompts.role")
    right = practice.answer(ctx, user, "basics.prompts.role", {"choice": "a"}, presentation_id=other)
    assert right.grading == "done" and right.correct

    assert jobs.run_due(ctx) == 1
    landed = practice.grade_status(ctx, user, presentation)
    assert landed.grading == "done" and landed.correct and landed.score == 1.0
    assert [c.skill_id for c in landed.mastery] == ["basics.tokens"]
    assert landed.mastery[0].after > landed.mastery[0].before
    assert "Right." in landed.messages
    with ctx.session() as session:
        response = session.get(Response, landed.response_id)
        assert response is not None and response.correct and response.id > right.response_id
        assert session.scalars(select(GradeReview)).all() == []
    assert _rebuild_equals_live(ctx)
    # the same answer posted after the grade landed gets the stored feedback, not a new answer
    replay = practice.answer(ctx, user, ITEM_ID, {"text": ANSWER}, presentation_id=presentation)
    assert replay.grading == "done" and replay.response_id == landed.response_id


def test_the_offline_grader_stays_in_the_request(ctx: AppContext) -> None:
    assert ctx.settings.llm_grade == "offline"
    user = _learner(ctx)
    presentation = _show(ctx, user, ITEM_ID)
    feedback = practice.answer(ctx, user, ITEM_ID, {"text": ANSWER}, presentation_id=presentation)
    assert feedback.grading == "done" and feedback.response_id > 0 and feedback.job_id is None
    with ctx.session() as session:
        assert session.scalars(select(Job)).all() == []
