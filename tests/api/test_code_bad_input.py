"""Bad code input over the API: a clear 4xx or a graded failure, never a 500; only the attempt
is stored."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from learnloop.sandbox.judge import Sandbox
from learnloop.services.context import AppContext
from learnloop.store.models import PendingItem, Response, User

ITEM = "basics.prompts.code"


def _learner_on_code_item(client: TestClient, ctx: AppContext) -> tuple[dict[str, str], str]:
    r = client.post(
        "/api/v1/auth/signup",
        json={"email": "k@example.org", "name": "K", "password": "tidal-ferry-quartz-81"},
    )
    headers = {"Authorization": f"Bearer {r.json()['token']}"}
    client.cookies.clear()
    assert client.post("/api/v1/enrolment", json={"role_id": "builder"}, headers=headers).status_code == 200
    with ctx.session() as session:
        user_id = session.scalar(select(User.id).where(User.email == "k@example.org"))
        session.add(PendingItem(user_id=user_id, item_id=ITEM, reason="next_step:", presentation_id="p-k"))
    return headers, "p-k"


def _stored(ctx: AppContext) -> int:
    with ctx.session() as session:
        return int(session.scalar(select(func.count()).select_from(Response)) or 0)


def test_bad_code_gets_a_clear_error_and_nothing_is_stored(
    client: TestClient, ctx: AppContext, sandbox: Sandbox
) -> None:
    headers, pid = _learner_on_code_item(client, ctx)

    def post(code: object) -> dict:
        body = {"item_id": ITEM, "presentation_id": pid, "answer": {"code": code}}
        return client.post("/api/v1/practice/answer", json=body, headers=headers)

    nul = post("def fill(t, v):\x00    return t\n")
    assert nul.status_code == 422 and "NUL" in str(nul.json()["error"])
    big = post("x = 1\n" * 15_000)  # over the answer limit
    assert big.status_code == 413 and "limit" in big.json()["error"]["message"]
    huge = post("x = 1\n" * 50_000)  # over the request body limit
    assert huge.status_code == 413 and "bytes" in huge.json()["error"]["message"]
    assert post(["not", "a", "string"]).status_code == 422
    assert post("   \n").status_code == 422
    raw = client.post(
        "/api/v1/practice/answer",
        content=b'{"item_id": "' + ITEM.encode() + b'", "answer": {"code": "\xff\xfe bad"}}',
        headers={**headers, "Content-Type": "application/json"},
    )
    assert 400 <= raw.status_code < 500 and "error" in raw.json()
    assert _stored(ctx) == 0, "a refused answer stores nothing"
    # control characters are code that does not compile: graded wrong with the reason
    graded = post("def fill(t, v):\x01\n    return t\n")
    assert graded.status_code == 200, graded.text
    body = graded.json()
    assert body["correct"] is False and any("SyntaxError" in m for m in body["messages"])
    assert _stored(ctx) == 1
