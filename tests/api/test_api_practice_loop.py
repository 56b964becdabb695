"""The learning loop over the JSON API: sign up, choose a role, practise, see mastery."""

from __future__ import annotations

from fastapi.testclient import TestClient


def _signup(client: TestClient, email: str = "ada@example.org") -> dict[str, str]:
    r = client.post("/api/v1/auth/signup", json={"email": email, "name": "Ada", "password": "correct horse"})
    assert r.status_code == 201, r.text
    client.cookies.clear()
    return {"Authorization": f"Bearer {r.json()['token']}"}


def _right_answer(client: TestClient, item: dict) -> dict:
    from learnloop.content.loader import load_pack
    from tests.conftest import MINI_PACK

    full = load_pack(MINI_PACK).item(item["id"])
    if full.kind == "choice":
        return {"choice": full.key}
    if full.kind == "numeric":
        return {"value": full.answer}
    if full.kind == "text":
        return {"text": full.reference_answers[0]}
    return {"code": full.solution}


def test_full_loop_moves_mastery(client: TestClient) -> None:
    h = _signup(client)
    assert client.get("/api/v1/practice/next", headers=h).status_code == 409  # no role yet
    assert client.post("/api/v1/enrolment", json={"role_id": "builder"}, headers=h).status_code == 200
    before = client.get("/api/v1/mastery", headers=h).json()
    nxt = client.get("/api/v1/practice/next", headers=h).json()
    # The first skill must be the root of the graph: prerequisites come first.
    assert nxt["skill_id"] == "basics.tokens"
    assert "key" not in nxt["item"] and "solution" not in nxt["item"] and "cases" not in nxt["item"]
    fb = client.post(
        "/api/v1/practice/answer",
        headers=h,
        json={"item_id": nxt["item"]["id"], "answer": _right_answer(client, nxt["item"])},
    ).json()
    assert fb["correct"] is True
    change = fb["mastery"][0]
    assert change["after"] > change["before"]
    after = client.get("/api/v1/mastery", headers=h).json()
    tokens_before = [s for d in before["domains"] for s in d["skills"] if s["skill_id"] == "basics.tokens"][0]
    tokens_after = [s for d in after["domains"] for s in d["skills"] if s["skill_id"] == "basics.tokens"][0]
    assert tokens_after["mastery"] > tokens_before["mastery"]
    assert tokens_after["attempts"] == 1


def test_same_item_until_answered_and_hints_escalate(client: TestClient) -> None:
    h = _signup(client)
    client.post("/api/v1/enrolment", json={"role_id": "builder"}, headers=h)
    first = client.get("/api/v1/practice/next", headers=h).json()
    again = client.get("/api/v1/practice/next", headers=h).json()
    assert first["item"]["id"] == again["item"]["id"]
    item_id = first["item"]["id"]
    h1 = client.post("/api/v1/practice/hint", json={"item_id": item_id}, headers=h).json()
    h2 = client.post("/api/v1/practice/hint", json={"item_id": item_id}, headers=h).json()
    assert (h1["level"], h2["level"]) == (1, 2)
    assert h1["hint"] != h2["hint"]


def test_bad_answers_get_clear_errors_and_store_nothing(client: TestClient, ctx) -> None:
    from sqlalchemy import func, select

    from learnloop.store.models import Response

    h = _signup(client)
    client.post("/api/v1/enrolment", json={"role_id": "builder"}, headers=h)
    item = client.get("/api/v1/practice/next", headers=h).json()["item"]
    cases = [
        ({"item_id": item["id"], "answer": {"wrong_field": 1}}, 422),
        ({"item_id": item["id"], "answer": {"choice": "zz", "value": "zz", "text": "", "code": ""}}, 422),
        ({"item_id": "no.such.item", "answer": {"choice": "a"}}, 404),
        ({"item_id": item["id"], "answer": "not an object"}, 422),
        ({"item_id": item["id"], "answer": {"text": "x" * 70_000, "choice": "x" * 70_000}}, 413),
    ]
    for body, status in cases:
        r = client.post("/api/v1/practice/answer", json=body, headers=h)
        assert r.status_code == status, (body, r.text)
        assert r.json()["error"]["message"]
    r = client.post(
        "/api/v1/practice/answer",
        content=b"\x00\xff\xfe binary",
        headers={**h, "content-type": "application/json"},
    )
    assert r.status_code == 422
    r = client.post(
        "/api/v1/practice/answer", content=b"x" * 300_000, headers={**h, "content-type": "application/json"}
    )
    assert r.status_code == 413
    with ctx.session() as session:
        assert session.scalar(select(func.count()).select_from(Response)) == 0
    # The server still serves.
    assert client.get("/api/v1/practice/next", headers=h).status_code == 200


def test_unknown_role_and_auth_errors(client: TestClient) -> None:
    assert client.get("/api/v1/me").status_code == 401
    h = _signup(client)
    r = client.post("/api/v1/enrolment", json={"role_id": "astronaut"}, headers=h)
    assert r.status_code == 404 and "astronaut" in r.json()["error"]["message"]
    dup = client.post(
        "/api/v1/auth/signup",
        json={"email": "ada@example.org", "name": "A", "password": "tidal-ferry-quartz-81"},
    )
    assert dup.status_code == 409
    bad = client.post("/api/v1/auth/login", json={"email": "ada@example.org", "password": "wrong-password"})
    assert bad.status_code == 401


def test_cookie_auth_needs_csrf_for_writes(client: TestClient) -> None:
    r = client.post(
        "/api/v1/auth/signup",
        json={"email": "c@example.org", "name": "C", "password": "tidal-ferry-quartz-81"},
    )
    token, csrf = r.json()["token"], r.json()["csrf_token"]
    client.cookies.set("learnloop_session", token)
    assert client.get("/api/v1/me").status_code == 200
    assert client.post("/api/v1/enrolment", json={"role_id": "builder"}).status_code == 403
    ok = client.post("/api/v1/enrolment", json={"role_id": "builder"}, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200


def test_openapi_documents_the_loop(client: TestClient) -> None:
    spec = client.get("/api/v1/openapi.json").json()
    for path in ("/api/v1/practice/next", "/api/v1/practice/answer", "/api/v1/mastery", "/api/v1/enrolment"):
        assert path in spec["paths"]


def test_uploads_are_refused_and_the_language_is_the_requests(client: TestClient) -> None:
    """The request setup (an ASGI middleware): a multipart POST is 415 before any route runs,
    and messages come in the language the request asks for (cookie, else Accept-Language)."""
    h = _signup(client, "upload@example.org")
    r = client.post("/api/v1/practice/answer", headers=h, files={"f": ("a.txt", b"x")})
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
    en = client.get("/api/v1/practice/next", headers=h)
    zh = client.get("/api/v1/practice/next", headers={**h, "Accept-Language": "zh-CN,zh;q=0.9"})
    assert en.status_code == zh.status_code == 409  # no role yet
    assert en.json()["error"]["message"] == "Choose a target role first."
    assert zh.json()["error"]["message"] != en.json()["error"]["message"]
