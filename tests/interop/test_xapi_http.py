"""The LRS settings over HTTP: admins only, bad input a 422 with a message, the password never
echoed, each organisation its own settings; a lesson read over the API queues a statement."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from learnloop.services.auth import create_organisation, create_user
from learnloop.services.context import AppContext
from learnloop.store.models_interop import XapiOutbox
from tests.api.test_api_org_scoping import _login

SETTINGS = {
    "endpoint": "http://127.0.0.1:9/xAPI/",  # nothing listens: the worker's tries fail fast
    "username": "lrs",
    "password": "s3cret-lrs-password",
    "home_page": "https://learn.example.org",
}


def _org_people(ctx: AppContext) -> None:
    with ctx.session() as session:
        for tag in ("a", "b"):
            org = create_organisation(session, f"Org {tag.upper()}")
            for role in ("admin", "learner"):
                create_user(
                    session, org_id=org.id, email=f"{role}@{tag}.example", name=role, password="password-123",
                    role=role,
                )  # fmt: skip


def test_lrs_settings_over_the_api(client: TestClient, ctx: AppContext) -> None:
    _org_people(ctx)
    admin_a, admin_b = _login(client, "admin@a.example"), _login(client, "admin@b.example")
    learner_a = _login(client, "learner@a.example")
    assert client.put("/api/v1/interop/xapi", json=SETTINGS, headers=learner_a).status_code == 403
    bad = client.put(
        "/api/v1/interop/xapi", json={**SETTINGS, "endpoint": "file:///etc/passwd"}, headers=admin_a
    )
    assert bad.status_code == 422 and "URL" in bad.json()["error"]["message"]
    bad = client.put("/api/v1/interop/xapi", json={**SETTINGS, "actor_mode": "name"}, headers=admin_a)
    assert bad.status_code == 422
    ok = client.put("/api/v1/interop/xapi", json=SETTINGS, headers=admin_a)
    assert ok.status_code == 200, ok.text
    assert ok.json()["password_set"] is True and SETTINGS["password"] not in ok.text
    assert client.get("/api/v1/interop/xapi", headers=admin_b).json()["endpoint"] == ""  # org B: its own
    # a lesson read by a learner of org A is queued for org A's LRS, and only then
    assert client.get("/api/v1/lessons/lesson.tokens", headers=learner_a).status_code == 200
    with ctx.session() as session:
        rows = list(session.scalars(select(XapiOutbox)))
        assert [(r.event, r.statement["verb"]["id"]) for r in rows] == [
            ("lesson", "http://adlnet.gov/expapi/verbs/experienced")
        ]
    assert client.get("/api/v1/interop/xapi", headers=admin_a).json()["pending"] == 1


def _page_login(client: TestClient, email: str) -> str:
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    r = client.post(
        "/login",
        data={"email": email, "password": "password-123", "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    page = client.get("/admin/standards/xapi")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def test_lrs_settings_page(client: TestClient, ctx: AppContext) -> None:
    _org_people(ctx)
    csrf = _page_login(client, "admin@a.example")
    page = client.get("/admin/standards/xapi")
    assert page.status_code == 200 and "xAPI" in page.text
    form = {**SETTINGS, "enabled": "1", "actor_mode": "account", "csrf_token": csrf}
    bad = client.post("/admin/standards/xapi", data={**form, "home_page": "nope"})
    assert bad.status_code == 422 and "URL" in bad.text
    ok = client.post("/admin/standards/xapi", data=form, follow_redirects=False)
    assert ok.status_code == 303
    page = client.get("/admin/standards/xapi")
    assert SETTINGS["password"] not in page.text and SETTINGS["endpoint"] in page.text
    client.get("/lang/zh_CN")
    zh = client.get("/admin/standards/xapi")
    assert zh.status_code == 200 and "学习记录" in zh.text


def test_learners_cannot_open_the_lrs_page(client: TestClient, ctx: AppContext) -> None:
    _org_people(ctx)
    _login_page_only(client, "learner@a.example")
    assert client.get("/admin/standards/xapi").status_code == 403


def _login_page_only(client: TestClient, email: str) -> None:
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    client.post("/login", data={"email": email, "password": "password-123", "csrf_token": token.group(1)})
