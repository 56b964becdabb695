"""Reports over the API and as pages: org scoping, roles, privacy, exports and plain bad input."""

from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient

from learnloop.services.context import AppContext
from tests.services.report_builders import (
    PASSWORD,
    Org,
    add_user,
    make_org,
    set_mastery,
    targets_on_mastery_alone,
)

BEHIND = {"basics.prompts": 0.5, "apps.rag": 0.9}


@pytest.fixture(autouse=True)
def _targets_on_mastery_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    targets_on_mastery_alone(monkeypatch)  # mastery is written directly: the arithmetic only


def _org(ctx: AppContext, name: str, people: int) -> Org:
    org = make_org(ctx, name)
    add_user(ctx, org, "boss", role="manager", team="Core", target_role=None)
    add_user(ctx, org, "teacher", role="instructor", target_role=None)
    for i in range(people):
        add_user(ctx, org, f"l{i}", team="Core", manager="boss", consent=True)
        set_mastery(ctx, org, f"l{i}", BEHIND)
    return org


def _login(client: TestClient, org: Org, key: str) -> dict[str, str]:
    email = f"{key}@{org.name.lower().replace(' ', '')}.example"
    r = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    client.cookies.clear()
    return {"Authorization": f"Bearer {r.json()['token']}"}


def test_manager_of_org_a_cannot_see_org_b(client: TestClient, ctx: AppContext) -> None:
    org_a, org_b = _org(ctx, "Org A", 6), _org(ctx, "Org B", 8)
    boss_a = _login(client, org_a, "boss")
    report = client.get("/api/v1/reports/team", headers=boss_a).json()
    assert (
        report["org_name"] == "Org A" and report["people"] == 8
    )  # six learners, the manager, the instructor
    assert {p["id"] for row in report["readiness"] for p in row["people"]} == {
        org_a.users[f"l{i}"] for i in range(6)
    }
    assert (
        client.get(f"/api/v1/reports/team?team_id={org_b.teams['Core']}", headers=boss_a).status_code == 404
    )
    assert client.get(f"/api/v1/reports/learners/{org_b.users['l0']}", headers=boss_a).status_code == 404
    assert client.get(f"/api/v1/reports/learners/{org_a.users['l0']}", headers=boss_a).status_code == 200
    teacher_a = _login(client, org_a, "teacher")
    assert client.get("/api/v1/reports/items", headers=teacher_a).json()["learners"] == 6
    # The same from the other side: org B's manager sees org B only.
    boss_b = _login(client, org_b, "boss")
    assert client.get("/api/v1/reports/team", headers=boss_b).json()["people"] == 10


def test_roles_decide_which_reports_open(client: TestClient, ctx: AppContext) -> None:
    org = _org(ctx, "Org A", 5)
    learner = _login(client, org, "l0")
    assert client.get("/api/v1/reports/me", headers=learner).json()["targets_total"] == 2
    assert client.get("/api/v1/reports/team", headers=learner).status_code == 403
    assert client.get("/api/v1/reports/items", headers=learner).status_code == 403
    assert client.get(f"/api/v1/reports/learners/{org.users['l1']}", headers=learner).status_code == 404
    assert client.get("/api/v1/reports/team").status_code == 401


def test_small_groups_come_back_as_nulls(client: TestClient, ctx: AppContext) -> None:
    org = _org(ctx, "Org A", 4)
    report = client.get("/api/v1/reports/team", headers=_login(client, org, "boss")).json()
    assert report["suppressed"] and report["notes"] == ["small_group"]
    assert report["readiness"][0]["ready"] is None and report["gaps"] == []
    assert all(cell["share_met"] is None for row in report["heatmap"] for cell in row["cells"])


def _page_login(client: TestClient, org: Org, key: str) -> None:
    email = f"{key}@{org.name.lower().replace(' ', '')}.example"
    token = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD}).json()["token"]
    client.cookies.set("learnloop_session", token)


def test_csv_and_pdf_exports_carry_the_page_figures(client: TestClient, ctx: AppContext) -> None:
    org = _org(ctx, "Org A", 6)
    _page_login(client, org, "boss")
    page = client.get("/reports/team")
    assert page.status_code == 200 and 'data-gap="builder/basics.prompts"' in page.text
    gaps = list(csv.DictReader(io.StringIO(client.get("/reports/team.csv?table=gaps").text)))
    assert [(g["skill_id"], g["blocked"], g["holders"]) for g in gaps] == [("basics.prompts", "6", "6")]
    heat = client.get(f"/reports/team.csv?table=heatmap&team={org.teams['Core']}")
    assert heat.headers["content-type"].startswith("text/csv") and "Core" in heat.text
    pdf = client.get("/reports/team.pdf")
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF-")
    assert client.get("/reports/team.csv?table=salaries").status_code == 422


def test_bad_filters_and_empty_teams_are_plain_pages(client: TestClient, ctx: AppContext) -> None:
    org = _org(ctx, "Org A", 6)
    add_user(ctx, org, "loner", team="Solo", target_role=None)
    _page_login(client, org, "boss")
    assert "team id" in client.get("/reports/team?team=abc").text
    assert client.get("/reports/team?team=99999").status_code == 404
    assert client.get("/reports/team?role=astronaut").status_code == 404
    solo = client.get(f"/reports/team?team={org.teams['Solo']}")
    assert solo.status_code == 200 and 'data-note="no_roles"' in solo.text
    me = client.get("/reports/me")
    assert me.status_code == 200 and 'data-note="no_answers"' in me.text
