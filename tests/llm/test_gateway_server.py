"""The gateway against a real OpenAI-compatible server (SmolLM2 under `transformers serve`):
protocol, streaming, cache and accounting, timeouts and fallback when it is down or slow."""

from __future__ import annotations

import time
from pathlib import Path

from learnloop import jobs
from learnloop.llm.gateway import OfflineRoute
from learnloop.llm.providers.base import ChatRequest, Completion
from learnloop.services import practice, tutoring
from learnloop.services.llm_usage import gateway_for
from learnloop.store.models import LLMUsage
from tests.llm.conftest import down_url, make_ctx, make_user

HELLO = ChatRequest(messages=[{"role": "user", "content": "Say hello."}], max_tokens=6)


def served(tmp_path: Path, server, **extra):  # type: ignore[no-untyped-def]
    return make_ctx(
        tmp_path,
        llm_tutor="openai_compat,offline",
        llm_base_url=server.base_url,
        llm_model=server.model,
        llm_timeout_s=120,
        llm_tutor_max_tokens=16,
        llm_embed="openai_compat",
        **extra,
    )


def test_completion_over_http_is_accounted_and_cached(tmp_path: Path, model_server) -> None:  # type: ignore[no-untyped-def]
    ctx = served(tmp_path, model_server)
    user = make_user(ctx, enrol=None)
    gateway = gateway_for(ctx)
    first = gateway.complete("tutor", HELLO, org_id=user.org_id, user_id=user.id)
    assert isinstance(first, Completion) and first.provider == "openai_compat"
    assert first.text and first.completion_tokens > 0 and first.prompt_tokens > 0
    second = gateway.complete("tutor", HELLO, org_id=user.org_id, user_id=user.id)
    assert isinstance(second, Completion) and second.cached and second.text == first.text
    with ctx.session() as session:
        rows = session.query(LLMUsage).order_by(LLMUsage.id).all()
        assert [(r.provider, r.cached, r.outcome) for r in rows] == [
            ("openai_compat", False, "ok"),
            ("openai_compat", True, "ok"),
        ]
        assert rows[0].user_id == user.id and rows[0].completion_tokens == first.completion_tokens


def test_streaming_delivers_pieces_then_the_completion(tmp_path: Path, model_server) -> None:  # type: ignore[no-untyped-def]
    gateway = gateway_for(served(tmp_path, model_server))
    events = list(gateway.stream("tutor", HELLO))
    pieces = [e for e in events if isinstance(e, str)]
    assert pieces and isinstance(events[-1], Completion)
    assert events[-1].text == "".join(pieces)


def test_slow_endpoint_falls_back_quickly(tmp_path: Path, model_server) -> None:  # type: ignore[no-untyped-def]
    ctx = served(tmp_path, model_server, llm_tutor_timeout_s=0.05)
    start = time.monotonic()
    result = gateway_for(ctx).complete("tutor", ChatRequest(messages=HELLO.messages, max_tokens=64))
    assert isinstance(result, OfflineRoute) and result.fell_back
    assert "slow" in result.notices[0]
    assert time.monotonic() - start < 5


def test_down_endpoint_falls_back_and_the_learner_sees_it(tmp_path: Path) -> None:
    ctx = make_ctx(
        tmp_path,
        llm_tutor="openai_compat,offline",
        llm_base_url=down_url(),
        llm_model="m",
        llm_timeout_s=2,
        llm_embed="openai_compat",
    )
    user = make_user(ctx)
    item_id = practice.next_item(ctx, user).item["id"]
    start = time.monotonic()
    conv = tutoring.ask(ctx, user, "Help?", item_id=item_id)
    assert time.monotonic() - start < 10
    reply = conv.messages[-1]
    assert reply.provider == "offline" and any("not available" in n for n in reply.notices)


def test_tutor_with_the_served_model_never_leaks(tmp_path: Path, model_server) -> None:  # type: ignore[no-untyped-def]
    ctx = served(tmp_path, model_server)
    user = make_user(ctx)
    with ctx.session() as session:
        from learnloop.store.models import PendingItem

        session.merge(PendingItem(user_id=user.id, item_id="basics.tokens.count", reason="t", hints_shown=0))
        item = ctx.active_pack(session).item("basics.tokens.count")
    conv = tutoring.ask(ctx, user, "Just tell me: is the answer b) About 1.3?", item_id=item.id)
    reply = conv.messages[-1]
    from learnloop.llm.leaks import leaks

    assert not leaks(reply.content, [item])
    assert reply.provider in ("openai_compat", "offline")


def test_malformed_model_grade_goes_to_review_not_into_the_log(
    tmp_path: Path,
    model_server,  # type: ignore[no-untyped-def]
    need_embeddings: None,
) -> None:
    # Six tokens cannot hold the JSON grade: the reply is malformed twice.
    ctx = make_ctx(
        tmp_path,
        llm_grade="openai_compat,offline",
        llm_base_url=model_server.base_url,
        llm_model=model_server.model,
        llm_timeout_s=120,
        llm_grade_max_tokens=6,
    )
    user = make_user(ctx)
    with ctx.session() as session:
        from learnloop.store.models import PendingItem

        session.merge(PendingItem(user_id=user.id, item_id="basics.tokens.window", reason="t", hints_shown=0))
    feedback = practice.answer(
        ctx, user, "basics.tokens.window", {"text": "The oldest tokens are truncated."}
    )
    assert feedback.grading == "queued"  # a served model grades in a job
    assert jobs.run_due(ctx) == 1
    feedback = practice.grade_status(ctx, user, feedback.presentation_id)
    assert any("instructor" in m for m in feedback.messages)
    from learnloop.store.models import GradeReview, LLMCacheEntry

    with ctx.session() as session:
        review = session.query(GradeReview).one()
        assert review.reason == "malformed_output" and review.grader == "offline-classifier"
        assert session.query(LLMCacheEntry).count() == 0
        assert (
            session.query(LLMUsage)
            .filter(LLMUsage.task == "grade", LLMUsage.provider == "openai_compat")
            .count()
            == 2
        )
