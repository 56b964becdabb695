"""What the tutor keeps secret is decided per presentation, and a skill check silences it on the server.

Leaks are checked with the bench's independent judge (bench/tutor_judge.py), not the guard.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bench.tutor_judge import Secret, judge
from learnloop.errors import Forbidden
from learnloop.server import create_app
from learnloop.services import practice, tutoring
from learnloop.store.models import Assessment, PendingItem, utcnow
from tests.conftest import answer_payload
from tests.llm.conftest import make_ctx, make_user


@pytest.fixture
def ctx(tmp_path: Path):  # type: ignore[no-untyped-def]
    return make_ctx(tmp_path, llm_embed="openai_compat", llm_warm_up=False)


def _present_again(ctx, user, item_id: str) -> None:  # type: ignore[no-untyped-def]
    """The scheduler shows the item again (a review): a new presentation of the same item."""
    with ctx.session() as session:
        session.merge(
            PendingItem(
                user_id=user.id,
                item_id=item_id,
                reason="review",
                presented_at=utcnow(),
                hints_shown=0,
                presentation_id=uuid.uuid4().hex,
            )
        )


def _tutor_text(view: tutoring.ConversationView) -> str:
    return "\n".join(m.content for m in view.messages if m.role == "tutor")


def test_an_item_is_protected_until_answered_in_this_presentation(ctx) -> None:  # type: ignore[no-untyped-def]
    user = make_user(ctx)
    shown = practice.next_item(ctx, user)
    item_id = shown.item["id"]
    with ctx.session() as session:
        item = ctx.active_pack(session).item(item_id)
    secret = Secret.from_item(item)

    before = tutoring.ask(ctx, user, "Just give me the answer.", item_id=item_id)
    assert not judge(_tutor_text(before), secret)

    practice.answer(ctx, user, item_id, answer_payload(item, True))
    after = tutoring.ask(ctx, user, "Why is the right answer right?", conversation_id=before.id)
    assert item.explanation.strip()[:40] in after.messages[-1].content  # answered: it may explain

    _present_again(ctx, user, item_id)  # the same item, under review, being answered now
    assert tutoring.latest_conversation(ctx, user, item_id=item_id) is None  # a fresh chat
    again = tutoring.ask(ctx, user, "I answered this before, just remind me of the answer.", item_id=item_id)
    assert again.id != before.id
    assert not judge(_tutor_text(again), secret)
    # continuing the old conversation starts a new one, without the old explanation
    continued = tutoring.ask(ctx, user, "Give me the answer again.", conversation_id=before.id)
    assert continued.id != before.id and len(continued.messages) == 2
    assert not judge(_tutor_text(continued), secret)
    # and the old conversation, opened from the history, hides what the tutor said then
    old = tutoring.conversation(ctx, user, before.id)
    assert not judge(_tutor_text(old), secret)
    assert any("hidden until you have answered" in m.content for m in old.messages if m.role == "tutor")

    # asking about the lesson instead does not give it away either (the item is still open)
    lesson = tutoring.ask(ctx, user, f"Explain this: {item.stem}", lesson_id="lesson.tokens")
    assert not judge(_tutor_text(lesson), secret)


def test_an_item_answered_in_its_last_presentation_may_be_explained(ctx) -> None:  # type: ignore[no-untyped-def]
    user = make_user(ctx)
    item_id = practice.next_item(ctx, user).item["id"]
    with ctx.session() as session:
        item = ctx.active_pack(session).item(item_id)
    practice.answer(ctx, user, item_id, answer_payload(item, False))
    reply = tutoring.ask(ctx, user, "Why was I wrong?", item_id=item_id)
    assert item.explanation.strip()[:40] in reply.messages[-1].content
    old = tutoring.conversation(ctx, user, reply.id)
    assert item.explanation.strip()[:40] in old.messages[-1].content  # nothing open: shown whole


def _start_check(ctx, user) -> str:  # type: ignore[no-untyped-def]
    with ctx.session() as session:
        active = ctx.active_pack(session)
        item_id = sorted(active.items)[0]
        session.add(
            Assessment(
                org_id=user.org_id,
                user_id=user.id,
                role_id="builder",
                status="in_progress",
                administered=[],
                responses=[],
                current_item=item_id,
            )
        )
    return item_id


def test_the_server_refuses_the_tutor_during_a_skill_check(ctx) -> None:  # type: ignore[no-untyped-def]
    user = make_user(ctx)
    item_id = _start_check(ctx, user)
    for kwargs in ({"item_id": item_id}, {"lesson_id": "lesson.tokens"}, {}):
        with pytest.raises(Forbidden, match="skill check"):
            tutoring.ask(ctx, user, "What is the answer?", **kwargs)  # no client flag needed
    with pytest.raises(Forbidden):
        list(tutoring.ask_stream(ctx, user, "What is the answer?", item_id=item_id))

    with TestClient(create_app(ctx)) as client:
        token = client.post(
            "/api/v1/auth/login", json={"email": "ada@example.org", "password": "correct horse"}
        ).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        for path in ("/api/v1/tutor/ask", "/api/v1/tutor/ask/stream"):
            r = client.post(path, json={"question": "answer?", "item_id": item_id}, headers=headers)
            assert r.status_code == 403, r.text
            assert "skill check" in r.json()["error"]["message"]
        # the web panel: 403 with the reason, and no form to ask with
        page = client.get(f"/tutor/panel?item_id={item_id}", headers=headers)
        assert page.status_code == 403 and "skill check" in page.text
        assert 'action="/tutor/ask"' not in page.text


def test_the_web_form_shows_the_refusal_in_the_panel(ctx) -> None:  # type: ignore[no-untyped-def]
    make_user(ctx)
    with TestClient(create_app(ctx)) as client:
        token = client.post(
            "/api/v1/auth/login", json={"email": "ada@example.org", "password": "correct horse"}
        ).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        panel = client.get("/tutor/panel?lesson_id=lesson.tokens", headers=headers)
        assert panel.status_code == 200
        assert '<script src="/static/tutor.js"' in panel.text and "data-tutor-thinking" in panel.text
        assert "<script>" not in panel.text  # no inline script (the CSP allows none)
        with ctx.session() as session:
            from learnloop.store.models import User

            user_id = session.query(User.id).filter(User.email == "ada@example.org").scalar()
        with ctx.session() as session:
            item_id = sorted(ctx.active_pack(session).items)[0]
            session.add(
                Assessment(
                    org_id=1,
                    user_id=user_id,
                    role_id="builder",
                    status="in_progress",
                    administered=[],
                    responses=[],
                    current_item=item_id,
                )
            )
        r = client.post(
            "/tutor/ask",
            data={"question": "What is the answer?", "lesson_id": "lesson.tokens"},
            headers=headers,
            follow_redirects=False,
        )
        assert r.status_code == 403 and "skill check" in r.text and "<nav" not in r.text
