"""The practice page of a code item: a wrong answer shows what failed and the same item again,
with the attempts left and a way to give up; the solution comes only at the end."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from learnloop.sandbox.judge import Sandbox
from learnloop.services.context import AppContext
from learnloop.store.models import PendingItem, User

ITEM = "basics.prompts.code"


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def test_wrong_code_can_be_retried_then_revealed(
    client: TestClient, ctx: AppContext, sandbox: Sandbox
) -> None:
    ctx.settings = ctx.settings.model_copy(update={"code_attempts": 2})
    page = client.get("/signup")
    client.post(
        "/signup",
        data={
            "name": "R",
            "email": "r@example.org",
            "password": "tidal-ferry-quartz-81",
            "csrf_token": _csrf(page.text),
        },
    )
    csrf = _csrf(client.get("/roles").text)
    client.post("/roles", data={"role_id": "builder", "csrf_token": csrf})
    with ctx.session() as session:
        user_id = session.scalar(select(User.id).where(User.email == "r@example.org"))
        session.query(PendingItem).filter(PendingItem.user_id == user_id).delete()
        session.add(PendingItem(user_id=user_id, item_id=ITEM, reason="next_step:", presentation_id="p-web"))
    shown = client.get("/practice")
    assert 'data-kind="code"' in shown.text and "/static/code-editor.js" in shown.text
    form = {"csrf_token": _csrf(shown.text), "item_id": ITEM, "presentation_id": "p-web"}
    first = client.post(
        "/practice/answer", data={**form, "code": "def fill(template, values):\n    return ''\n"}
    )
    assert first.status_code == 200
    assert "Not yet: try again." in first.text and "1 attempt left" in first.text
    assert "expected" in first.text and "return &#39;&#39;" in first.text  # their code is kept
    assert "Show the solution" in first.text
    assert "template.format(**values)" not in first.text, "the solution is not shown while attempts are left"
    revealed = client.post(
        "/practice/reveal", data={"csrf_token": form["csrf_token"], "presentation_id": "p-web"}
    )
    assert revealed.status_code == 200 and "template.format(**values)" in revealed.text
    assert client.get("/practice").text.count("p-web") == 0, "a new presentation follows"
