"""Roles and organisations: admins administer only their own organisation."""

from __future__ import annotations

from fastapi.testclient import TestClient

from learnloop.services.auth import create_organisation, create_user
from learnloop.services.context import AppContext


def _login(client: TestClient, email: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/login", json={"email": email, "password": "password-123"})
    assert r.status_code == 200, r.text
    client.cookies.clear()
    return {"Authorization": f"Bearer {r.json()['token']}"}


def _two_orgs(ctx: AppContext) -> dict[str, int]:
    ids = {}
    with ctx.session() as session:
        for org_name in ("Org A", "Org B"):
            org = create_organisation(session, org_name)
            tag = org_name[-1].lower()
            for role in ("admin", "instructor", "learner"):
                user = create_user(
                    session,
                    org_id=org.id,
                    email=f"{role}@{tag}.example",
                    name=f"{role} {tag}",
                    password="password-123",
                    role=role,
                )
                ids[f"{role}_{tag}"] = user.id
    return ids


def test_admin_sees_and_edits_only_own_org(client: TestClient, ctx: AppContext) -> None:
    ids = _two_orgs(ctx)
    admin_a = _login(client, "admin@a.example")
    assert client.post("/api/v1/teams", json={"name": "Blue"}, headers=admin_a).status_code == 201
    org = client.get("/api/v1/org", headers=admin_a).json()
    emails = {m["email"] for m in org["members"]}
    assert emails == {"admin@a.example", "instructor@a.example", "learner@a.example"}
    ok = client.patch(
        f"/api/v1/org/members/{ids['learner_a']}",
        json={"role": "instructor", "team": "Blue"},
        headers=admin_a,
    )
    assert ok.status_code == 200 and ok.json()["role"] == "instructor" and ok.json()["team"] == "Blue"
    other = client.patch(f"/api/v1/org/members/{ids['learner_b']}", json={"role": "admin"}, headers=admin_a)
    assert other.status_code == 404
    bad_role = client.patch(
        f"/api/v1/org/members/{ids['learner_a']}", json={"role": "emperor"}, headers=admin_a
    )
    assert bad_role.status_code == 422


def test_learners_cannot_administer_or_read_keys(client: TestClient, ctx: AppContext) -> None:
    _two_orgs(ctx)
    learner = _login(client, "learner@a.example")
    assert client.get("/api/v1/org", headers=learner).status_code == 403
    assert client.get("/api/v1/items", headers=learner).status_code == 403
    assert client.get("/api/v1/items/basics.tokens.count", headers=learner).status_code == 403
    instructor = _login(client, "instructor@a.example")
    full = client.get("/api/v1/items/basics.tokens.count", headers=instructor).json()
    assert full["key"] == "b"
    assert client.get("/api/v1/org", headers=instructor).status_code == 403
