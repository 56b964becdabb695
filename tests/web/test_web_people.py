"""People admin and settings pages: forms with CSRF, lists to choose from, messages in English
and Chinese; consent and reporting lines set in the pages show up in the manager's view."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from learnloop.services.auth import create_organisation, create_user
from learnloop.services.context import AppContext

PASSWORD = "violet-harbour-57-lantern"


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def _login(client: TestClient, email: str) -> str:
    client.cookies.clear()
    page = client.get("/login")
    r = client.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": _csrf(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return _csrf(client.get("/settings").text)


def _people(ctx: AppContext) -> dict[str, int]:
    ids = {}
    with ctx.session() as session:
        org = create_organisation(session, "Acme")
        for key, role in (("admin", "admin"), ("boss", "manager"), ("ann", "learner")):
            ids[key] = create_user(
                session,
                org_id=org.id,
                email=f"{key}@acme.example",
                name=f"{key.title()} Acme",
                password=PASSWORD,
                role=role,
            ).id
    return ids


def test_people_page_teams_manager_consent_and_the_managers_view(client: TestClient, ctx: AppContext) -> None:
    ids = _people(ctx)
    token = _login(client, "admin@acme.example")
    assert client.post("/admin/teams", data={"name": "Blue"}).status_code == 403  # no CSRF token
    client.post("/admin/teams", data={"name": "Blue", "csrf_token": token})
    dup = client.post("/admin/teams", data={"name": "BLUE", "csrf_token": token})
    assert dup.status_code == 409 and "already exists" in dup.text
    page = client.get("/admin/people")
    team_id = re.search(r'<option value="(\d+)"[^>]*>Blue</option>', page.text).group(1)
    r = client.post(f"/admin/people/{ids['ann']}/team", data={"team_id": team_id, "csrf_token": token})
    assert r.status_code == 200
    r = client.post(
        f"/admin/people/{ids['ann']}/manager", data={"manager_id": str(ids["boss"]), "csrf_token": token}
    )
    assert r.status_code == 200
    bad = client.post(f"/admin/people/{ids['ann']}/manager", data={"manager_id": "x1", "csrf_token": token})
    assert bad.status_code == 422 and "Choose an entry" in bad.text
    row = client.get("/admin/people", params={"q": "ann"}).text
    assert (
        "Members found: 1" in row and "selected>Blue</option>" in row and "selected>Boss Acme</option>" in row
    )
    # the old organisation page offers the same teams as a list, not a free-text box
    assert (
        'name="team" aria-label' in client.get("/admin").text
        and '<option value="Blue"' in client.get("/admin").text
    )

    # Ann consents on her settings page; the manager's individual view follows
    ann_token = _login(client, "ann@acme.example")
    settings = client.get("/settings").text
    assert "Your manager is Boss Acme." in settings and "You do not share" in settings
    client.post("/settings/consent", data={"share": "yes", "csrf_token": ann_token})
    assert "You share your own progress" in client.get("/settings").text
    _login(client, "boss@acme.example")
    assert client.get(f"/reports/learners/{ids['ann']}").status_code == 200
    ann_token = _login(client, "ann@acme.example")
    client.post("/settings/consent", data={"share": "no", "csrf_token": ann_token})
    _login(client, "boss@acme.example")
    assert client.get(f"/reports/learners/{ids['ann']}").status_code == 404


def test_deactivate_in_the_page_ends_the_session(client: TestClient, ctx: AppContext) -> None:
    ids = _people(ctx)
    from fastapi.testclient import TestClient as Client

    ann = Client(client.app)
    page = ann.get("/login")
    ann.post(
        "/login", data={"email": "ann@acme.example", "password": PASSWORD, "csrf_token": _csrf(page.text)}
    )
    assert ann.get("/settings").status_code == 200
    token = _login(client, "admin@acme.example")
    client.post(f"/admin/people/{ids['ann']}/deactivate", data={"csrf_token": token})
    assert ann.get("/settings", follow_redirects=False).status_code == 303  # back to the login page
    listed = client.get("/admin/people", params={"status": "deactivated"}).text
    assert "Ann Acme" in listed and "Reactivate" in listed


def test_import_page_lists_problems_in_chinese(client: TestClient, ctx: AppContext) -> None:
    _people(ctx)
    token = _login(client, "admin@acme.example")
    client.get("/lang/zh_CN")
    bad = "email,name,team\nx@acme.example,X,Nowhere\nx@acme.example,Y,\n"
    r = client.post("/admin/people/import", data={"csv_text": bad, "action": "check", "csrf_token": token})
    assert r.status_code == 200 and "第 2 行" in r.text and "第 3 行" in r.text
    r = client.post("/admin/people/import", data={"csv_text": bad, "action": "import", "csrf_token": token})
    assert r.status_code == 422 and "未导入" in r.text
    good = "email,name\nnew@acme.example,New\n"
    r = client.post("/admin/people/import", data={"csv_text": good, "action": "import", "csrf_token": token})
    assert r.status_code == 200 and "已导入 1" in r.text
