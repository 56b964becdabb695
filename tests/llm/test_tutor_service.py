"""Tutor conversations: offline replies grounded in lessons, hints that count, storage and deletion."""

from __future__ import annotations

from pathlib import Path

import pytest

from learnloop.errors import Forbidden, InvalidInput, NotFound
from learnloop.services import practice, tutoring
from learnloop.store.models import PendingItem
from tests.llm.conftest import make_ctx, make_user


@pytest.fixture
def ctx(tmp_path: Path):  # type: ignore[no-untyped-def]
    # Words-only retrieval keeps these tests independent of the embedding model.
    return make_ctx(tmp_path, llm_embed="openai_compat")


def test_offline_reply_cites_a_lesson_gives_the_next_hint_and_asks(ctx) -> None:  # type: ignore[no-untyped-def]
    user = make_user(ctx)
    presented = practice.next_item(ctx, user)
    item_id = presented.item["id"]
    conv = tutoring.ask(ctx, user, "I am stuck, can you help?", item_id=item_id)
    reply = conv.messages[-1]
    assert reply.role == "tutor" and reply.provider == "offline"
    assert reply.citations and reply.citations[0].lesson_id == "lesson.tokens"
    assert "[1]" in reply.content
    assert reply.content.rstrip().endswith("?")
    with ctx.session() as session:
        item = ctx.active_pack(session).item(item_id)
        pending = session.get(PendingItem, user.id)
        assert pending is not None and pending.hints_shown == 1  # the tutor's hint counts as a hint used
    assert item.hints[0] in reply.content
    again = tutoring.ask(ctx, user, "Another hint?", conversation_id=conv.id)
    assert item.hints[1] in again.messages[-1].content
    assert len(again.messages) == 4


def test_tutor_refuses_during_a_skill_check(ctx) -> None:  # type: ignore[no-untyped-def]
    user = make_user(ctx)
    with pytest.raises(Forbidden):
        tutoring.ask(ctx, user, "What is the answer?", lesson_id="lesson.tokens", in_assessment=True)


def test_bad_questions_are_rejected(ctx) -> None:  # type: ignore[no-untyped-def]
    user = make_user(ctx)
    with pytest.raises(InvalidInput):
        tutoring.ask(ctx, user, "   ", lesson_id="lesson.tokens")
    with pytest.raises(InvalidInput):
        tutoring.ask(ctx, user, "x" * 5000, lesson_id="lesson.tokens")
    with pytest.raises(NotFound):
        tutoring.ask(ctx, user, "Hello?", item_id="no.such.item")
    with pytest.raises(NotFound):
        tutoring.ask(ctx, user, "Hello?", lesson_id="no.such.lesson")


def test_conversations_are_private_listed_and_deletable(ctx) -> None:  # type: ignore[no-untyped-def]
    ada = make_user(ctx)
    bob = make_user(ctx, email="bob@example.org")
    conv = tutoring.ask(ctx, ada, "What is a token?", lesson_id="lesson.tokens")
    assert [c.id for c in tutoring.conversations(ctx, ada)] == [conv.id]
    assert tutoring.conversations(ctx, bob) == []
    with pytest.raises(NotFound):
        tutoring.conversation(ctx, bob, conv.id)
    with pytest.raises(NotFound):
        tutoring.delete_conversation(ctx, bob, conv.id)
    tutoring.delete_conversation(ctx, ada, conv.id)
    assert tutoring.conversations(ctx, ada) == []
    with pytest.raises(NotFound):
        tutoring.conversation(ctx, ada, conv.id)


def test_tutor_api_and_panel(ctx) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from learnloop.server import create_app

    make_user(ctx)
    with TestClient(create_app(ctx)) as client:
        token = client.post(
            "/api/v1/auth/login", json={"email": "ada@example.org", "password": "correct horse"}
        ).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        r = client.post(
            "/api/v1/tutor/ask",
            json={"question": "What is a token?", "lesson_id": "lesson.tokens"},
            headers=headers,
        )
        assert r.status_code == 200, r.text
        conv_id = r.json()["id"]
        assert client.post("/api/v1/tutor/ask", json={"question": ""}, headers=headers).status_code == 422
        assert (
            client.post(
                "/api/v1/tutor/ask", json={"question": "hi", "in_assessment": True}, headers=headers
            ).status_code
            == 403
        )
        stream = client.post(
            "/api/v1/tutor/ask/stream",
            json={"question": "More?", "conversation_id": conv_id},
            headers=headers,
        )
        assert stream.status_code == 200 and "event: done" in stream.text
        assert (
            len(client.get(f"/api/v1/tutor/conversations/{conv_id}", headers=headers).json()["messages"]) == 4
        )
        panel = client.get("/tutor/panel?lesson_id=lesson.tokens", headers=headers)
        assert panel.status_code == 200 and "What is a token?" in panel.text
        assert client.delete(f"/api/v1/tutor/conversations/{conv_id}", headers=headers).status_code == 204
        assert client.get(f"/api/v1/tutor/conversations/{conv_id}", headers=headers).status_code == 404
