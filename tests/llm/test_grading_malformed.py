"""Model grades that are not valid JSON, or lack a field: retried once, then an instructor
decides; the model's output never becomes the grade.

The model server here is a real HTTP server on loopback that answers the chat-completions
protocol with the replies a confused model gives; the gateway, the OpenAI client and the
grading service are the product's own.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from learnloop import jobs
from learnloop.services import grading, practice
from learnloop.store.models import GradeReview, PendingItem, Response
from tests.llm.conftest import make_ctx, make_user

ITEM_ID = "basics.tokens.window"
ANSWER = "The context window is full, so the earliest tokens are truncated."


class BadModel:
    """A chat-completions server whose replies come from a list (the last one repeats)."""

    def __init__(self, replies: list[str]):
        self.replies = replies
        self.requests: list[dict] = []  # type: ignore[type-arg]
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.requests.append(body)
                text = owner.replies[min(len(owner.requests), len(owner.replies)) - 1]
                payload = json.dumps(
                    {
                        "id": f"c{len(owner.requests)}",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body.get("model", "bad"),
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": text},
                            }
                        ],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> BadModel:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def bad_model(request: pytest.FixtureRequest) -> Iterator[BadModel]:
    with BadModel(request.param) as server:
        yield server


NOT_JSON = "Sure! The learner did well, full marks."
MISSING_FIELD = (
    '{"criteria": [{"id": "window", "met": true}, {"id": "truncation", "met": true}], "feedback": "ok"}'
)
UNKNOWN_CRITERION = '{"criteria": [{"id": "window", "met": true}], "confidence": 0.99, "feedback": ""}'
GOOD = (
    '{"criteria": [{"id": "window", "met": true}, {"id": "truncation", "met": true}],'
    ' "confidence": 0.95, "feedback": "Right."}'
)


@pytest.mark.parametrize(
    "bad_model",
    [[NOT_JSON], [MISSING_FIELD], [NOT_JSON, UNKNOWN_CRITERION]],
    indirect=True,
    ids=["not-json", "missing-field", "then-wrong-criteria"],
)
def test_malformed_model_grade_is_retried_once_then_reviewed(tmp_path: Path, bad_model: BadModel) -> None:
    ctx = make_ctx(
        tmp_path,
        llm_grade="openai_compat",
        llm_grade_base_url=bad_model.url,
        llm_grade_model="bad-model",
        llm_grade_timeout_s=10,
    )
    learner = make_user(ctx)
    with ctx.session() as session:
        session.merge(PendingItem(user_id=learner.id, item_id=ITEM_ID, reason="test", hints_shown=0))
    feedback = practice.answer(ctx, learner, ITEM_ID, {"text": ANSWER})
    # a model grades in a job (services/grading_jobs.py): "being graded", then the grade lands
    assert feedback.grading == "queued" and not bad_model.requests
    assert jobs.run_due(ctx) == 1
    feedback = practice.grade_status(ctx, learner, feedback.presentation_id)
    assert feedback.grading == "done"
    assert len(bad_model.requests) == 2  # the first try and one retry, no more
    assert any("instructor" in m for m in feedback.messages)
    with ctx.session() as session:
        review = session.query(GradeReview).one()
        assert review.reason == "malformed_output" and review.status == "pending"
        # the provisional grade is the offline grader's, never the model's
        assert not review.grader.startswith("model:")
        response = session.get(Response, feedback.response_id)
        assert response is not None and response.answer["text"] == ANSWER
    instructor = make_user(ctx, email="ines@example.org", role="instructor", enrol=None)
    assert [r.reason for r in grading.review_queue(ctx, instructor)] == ["malformed_output"]


@pytest.mark.parametrize("bad_model", [[NOT_JSON, GOOD]], indirect=True, ids=["bad-then-good"])
def test_a_good_retry_is_the_grade(tmp_path: Path, bad_model: BadModel) -> None:
    ctx = make_ctx(
        tmp_path,
        llm_grade="openai_compat",
        llm_grade_base_url=bad_model.url,
        llm_grade_model="bad-model",
        llm_grade_timeout_s=10,
        llm_review_confidence=0.5,
    )
    learner = make_user(ctx)
    outcome = grading.grade_answer(ctx, learner, ctx_item(ctx), {"text": ANSWER})
    assert len(bad_model.requests) == 2
    assert outcome.grader.startswith("model:") and outcome.correct


def ctx_item(ctx):  # type: ignore[no-untyped-def]
    with ctx.session() as session:
        return ctx.active_pack(session).item(ITEM_ID)
