"""People admin and consent over the JSON API: status codes, messages, scoping, revocation."""

from __future__ import annotations

from fastapi.testclient import TestClient

from learnloop.services.auth import create_organisation, create_user
from learnloop.services.context import AppContext

PASSWORD = "violet-harbour-57-lantern"


def _login(client: TestClient, email: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    client.cookies.clear()
    return {"Authorization": f"Bearer {r.json()['token']}"}


def _people(ctx: AppContext) -> dict[str, int]:
    ids = {}
    with ctx.session() as session:
        for org_name in ("Org A", "Org B"):
            org = create_organisation(session, org_name)
            tag = org_name[-1].lower()
            for key, role in (("admin", "admin"), ("boss", "manager"), ("ann", "learner")):
                user = create_user(
                    session,
                    org_id=org.id,
                    email=f"{key}@{tag}.example",
                    name=f"{key} {tag}",
                    password=PASSWORD,
                    role=role,
                )
                ids[f"{key}_{tag}"] = user.id
    return ids


def test_people_admin_over_the_api(client: TestClient, ctx: AppContext) -> None:
    ids = _people(ctx)
    admin = _login(client, "admin@a.example")
    ann = _login(client, "ann@a.example")
    team = client.post("/api/v1/teams", json={"name": "Blue"}, headers=admin)
    assert team.status_code == 201
    assert client.post("/api/v1/teams", json={"name": " blue "}, headers=admin).status_code == 409
    team_id = team.json()["id"]
    r = client.patch(
        f"/api/v1/people/{ids['ann_a']}",
        json={"team_id": team_id, "manager_id": ids["boss_a"]},
        headers=admin,
    )
    assert r.status_code == 200 and r.json()["team"] == "Blue" and r.json()["manager"] == "boss a"
    found = client.get("/api/v1/people", params={"q": "ann", "team_id": team_id}, headers=admin).json()
    assert [m["id"] for m in found["members"]] == [ids["ann_a"]] and found["total"] == 1
    # another organisation's people and teams are missing, not forbidden
    assert (
        client.patch(f"/api/v1/people/{ids['ann_b']}", json={"active": False}, headers=admin).status_code
        == 404
    )
    assert (
        client.patch(f"/api/v1/people/{ids['ann_a']}", json={"team_id": 999}, headers=admin).status_code
        == 404
    )
    assert client.patch(f"/api/v1/people/{ids['ann_a']}", json={}, headers=admin).status_code == 422
    assert client.get("/api/v1/people", params={"status": "gone"}, headers=admin).status_code == 422
    assert client.get("/api/v1/people", headers=ann).status_code == 403
    # deactivation: Ann's token stops working on the very next request
    assert client.get("/api/v1/me/consent", headers=ann).status_code == 200
    r = client.patch(f"/api/v1/people/{ids['ann_a']}", json={"active": False}, headers=admin)
    assert r.status_code == 200 and r.json()["active"] is False
    assert client.get("/api/v1/me/consent", headers=ann).status_code == 401
    refused = client.post("/api/v1/auth/login", json={"email": "ann@a.example", "password": PASSWORD})
    assert refused.status_code == 401 and "deactivated" in refused.json()["error"]["message"]
    client.patch(f"/api/v1/people/{ids['ann_a']}", json={"active": True}, headers=admin)
    assert client.get("/api/v1/me/consent", headers=_login(client, "ann@a.example")).status_code == 200


def test_consent_by_api_and_delegated_team_admin(client: TestClient, ctx: AppContext) -> None:
    ids = _people(ctx)
    admin = _login(client, "admin@a.example")
    ann = _login(client, "ann@a.example")
    team_id = client.post("/api/v1/teams", json={"name": "Blue"}, headers=admin).json()["id"]
    client.patch(
        f"/api/v1/people/{ids['ann_a']}",
        json={"team_id": team_id, "manager_id": ids["boss_a"]},
        headers=admin,
    )
    state = client.get("/api/v1/me/consent", headers=ann).json()
    assert state["granted"] is False and state["manager"] == "boss a"
    r = client.put("/api/v1/me/consent", json={"share_with_manager": True}, headers=ann)
    assert r.status_code == 200 and r.json()["granted"] is True and r.json()["changed_at"]
    assert (
        client.put("/api/v1/me/consent", json={"share_with_manager": "maybe"}, headers=ann).status_code == 422
    )
    # the manager's individual view follows the consent on the next request
    boss = _login(client, "boss@a.example")
    assert client.get(f"/api/v1/reports/learners/{ids['ann_a']}", headers=boss).status_code == 200
    client.put("/api/v1/me/consent", json={"share_with_manager": False}, headers=ann)
    assert client.get(f"/api/v1/reports/learners/{ids['ann_a']}", headers=boss).status_code == 404
    # delegation: the boss administers Blue only
    assert client.get("/api/v1/people", headers=boss).status_code == 403
    r = client.put(f"/api/v1/teams/{team_id}/admins/{ids['boss_a']}", headers=admin)
    assert r.status_code == 200 and [a["name"] for a in r.json()["admins"]] == ["boss a"]
    members = client.get("/api/v1/people", headers=boss).json()["members"]
    assert [m["id"] for m in members] == [ids["ann_a"]]
    assert client.post("/api/v1/teams", json={"name": "Mine"}, headers=boss).status_code == 403
    assert (
        client.patch(f"/api/v1/people/{ids['admin_a']}", json={"active": False}, headers=boss).status_code
        == 404
    )


def test_csv_import_over_the_api(client: TestClient, ctx: AppContext) -> None:
    _people(ctx)
    admin = _login(client, "admin@a.example")
    headers = {**admin, "Content-Type": "text/csv"}
    bad = b"email,name\nnew@a.example,New\nnew@a.example,Again\nbad,Bad\n"
    check = client.post("/api/v1/people/import", content=bad, headers=headers)
    assert check.status_code == 200 and len(check.json()["problems"]) == 2
    refused = client.post("/api/v1/people/import?dry_run=false", content=bad, headers=headers)
    assert refused.status_code == 422 and len(refused.json()["error"]["details"]) == 2
    assert client.get("/api/v1/people", params={"q": "new@"}, headers=admin).json()["total"] == 0
    latin = client.post(
        "/api/v1/people/import", content="email,name\nz@a.example,Zoë\n".encode("latin-1"), headers=headers
    )
    assert latin.status_code == 422 and "UTF-8" in latin.json()["error"]["message"]
    good = b"email,name\nnew@a.example,New\n"
    done = client.post("/api/v1/people/import?dry_run=false", content=good, headers=headers)
    assert done.status_code == 200 and done.json()["created"] == 1
    huge = b"email,name\n" + b"x@a.example,X\n" * 30000
    assert client.post("/api/v1/people/import", content=huge, headers=headers).status_code == 413


def test_role_and_team_change_together_or_not_at_all(client: TestClient, ctx: AppContext) -> None:
    ids = _people(ctx)
    admin = _login(client, "admin@a.example")
    refused = client.patch(
        f"/api/v1/org/members/{ids['ann_a']}", json={"role": "instructor", "team": "Typo"}, headers=admin
    )
    assert refused.status_code == 422 and "create it first" in refused.json()["error"]["message"]
    member = next(
        m for m in client.get("/api/v1/org", headers=admin).json()["members"] if m["id"] == ids["ann_a"]
    )
    assert member["role"] == "learner"  # the valid half was not written either
    assert client.patch(f"/api/v1/org/members/{ids['ann_a']}", json={}, headers=admin).status_code == 422
