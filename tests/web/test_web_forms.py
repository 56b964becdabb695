"""Web pages: forms need their CSRF token; errors are pages with a message, not crashes."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def _signup(client: TestClient) -> str:
    page = client.get("/signup")
    r = client.post(
        "/signup",
        data={
            "name": "Lin",
            "email": "lin@example.org",
            "password": "long-enough",
            "csrf_token": _csrf(page.text),
        },
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/roles"
    return _csrf(client.get("/roles").text)


def test_signup_without_csrf_is_refused(client: TestClient) -> None:
    client.get("/signup")
    r = client.post("/signup", data={"name": "X", "email": "x@example.org", "password": "long-enough"})
    assert r.status_code == 403 and "expired" in r.text


def test_signup_errors_keep_the_form(client: TestClient) -> None:
    page = client.get("/signup")
    r = client.post(
        "/signup",
        data={"name": "X", "email": "not-an-email", "password": "short", "csrf_token": _csrf(page.text)},
    )
    assert r.status_code == 422 and "valid email" in r.text and 'value="X"' in r.text


def test_practice_flow_in_pages(client: TestClient) -> None:
    token = _signup(client)
    assert client.post("/roles", data={"role_id": "builder"}).status_code == 403  # no CSRF token
    r = client.post("/roles", data={"role_id": "builder", "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    page = client.get("/practice")
    assert page.status_code == 200 and 'data-item-id="basics.tokens' in page.text
    item_id = re.search(r'data-item-id="([^"]+)"', page.text).group(1)
    hint = client.post("/practice/hint", data={"item_id": item_id, "csrf_token": token})
    assert hint.status_code == 200 and "Hint 1" in hint.text
    wrong_kind = client.post("/practice/answer", data={"item_id": item_id, "csrf_token": token})
    assert wrong_kind.status_code == 422 and "needs the field" in wrong_kind.text
    skills = client.get("/skills")
    assert "Target role: Builder" in skills.text


def test_learner_gets_forbidden_page_for_admin(client: TestClient) -> None:
    _signup(client)
    r = client.get("/admin")
    assert r.status_code == 403 and "role does not allow" in r.text


def test_anonymous_is_sent_to_login_and_unknown_pages_are_404(client: TestClient) -> None:
    r = client.get("/practice", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/practice"
    assert client.get("/no/such/page").status_code == 404
    assert client.get("/api/v1/no/such").json()["error"]["code"] == "http_error"
