"""Model quotas per member and per team, alongside the organisation's budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from learnloop.errors import InvalidInput
from learnloop.llm.gateway import BudgetSpent, OfflineRoute, UsageEvent
from learnloop.llm.providers.base import ChatRequest
from learnloop.services import auth, llm_usage
from learnloop.services.auth import CurrentUser, create_organisation, create_user
from learnloop.services.context import AppContext
from learnloop.services.llm_usage import DbLedger, gateway_for
from learnloop.services.people import teams
from tests.llm.conftest import down_url, make_ctx

REQUEST = ChatRequest(messages=[{"role": "user", "content": "hi"}], max_tokens=4)
PASSWORD = "violet-harbour-57-lantern"


def _use(ctx: AppContext, user: CurrentUser, tokens: int, cost: float = 0.0) -> None:
    DbLedger(ctx).record(
        UsageEvent(
            task="tutor",
            provider="openai_compat",
            model="m",
            org_id=user.org_id,
            user_id=user.id,
            prompt_tokens=tokens // 2,
            completion_tokens=tokens - tokens // 2,
            cost_usd=cost,
        )
    )


def _people(ctx: AppContext) -> dict[str, CurrentUser]:
    out = {}
    with ctx.session() as session:
        org = create_organisation(session, "Quota Org")
        other = create_organisation(session, "Other Org")
        admin = create_user(
            session, org_id=org.id, email="admin@q.example", name="Admin", password=PASSWORD, role="admin"
        )
        out["admin"] = auth._current(session, admin)
        stranger = create_user(session, org_id=other.id, email="x@o.example", name="X", password=PASSWORD)
        out["stranger"] = auth._current(session, stranger)
    team = teams.create_team(ctx, out["admin"], "Blue")
    with ctx.session() as session:
        for key in ("ann", "bob", "cat"):
            row = create_user(
                session,
                org_id=out["admin"].org_id,
                email=f"{key}@q.example",
                name=key.title(),
                password=PASSWORD,
                team_id=team.id,
            )
            out[key] = auth._current(session, row)
    return out


def test_member_and_team_quotas(tmp_path: Path) -> None:
    ctx = make_ctx(
        tmp_path,
        llm_tutor="openai_compat,offline",
        llm_grade="openai_compat",
        llm_base_url=down_url(),
        llm_model="m",
        llm_timeout_s=1,
    )
    people = _people(ctx)
    llm_usage.set_quotas(
        ctx, people["admin"], llm_usage.Quotas(user_monthly_tokens=100, team_monthly_tokens=250)
    )
    _use(ctx, people["ann"], 120)  # Ann is over her own quota; the team (120 of 250) is not

    result = gateway_for(ctx).complete(
        "tutor", REQUEST, org_id=people["ann"].org_id, user_id=people["ann"].id
    )
    assert (
        isinstance(result, OfflineRoute)
        and result.notices[0] == "Your personal model quota for this month is used up."
    )
    with pytest.raises(BudgetSpent) as refused:
        gateway_for(ctx).complete("grade", REQUEST, org_id=people["ann"].org_id, user_id=people["ann"].id)
    assert refused.value.status == 429 and "personal model quota" in refused.value.message

    # Bob, in the same team, is not refused by a quota (the model server is down: a failure notice)
    bob = gateway_for(ctx).complete("tutor", REQUEST, org_id=people["bob"].org_id, user_id=people["bob"].id)
    assert isinstance(bob, OfflineRoute) and not any("quota" in n for n in bob.notices)
    # ... until the team's quota is reached; then both are refused, each within their own quota
    _use(ctx, people["bob"], 90)
    assert llm_usage.quota_refusal_for(ctx, people["bob"]) is None
    _use(ctx, people["cat"], 45)  # team: 120 + 90 + 45 = 255 >= 250
    for key in ("bob", "cat"):
        with pytest.raises(BudgetSpent) as refused:
            gateway_for(ctx).complete("grade", REQUEST, org_id=people[key].org_id, user_id=people[key].id)
        assert "team's model quota" in refused.value.message
    # another organisation has no quotas
    assert llm_usage.quota_refusal_for(ctx, people["stranger"]) is None

    report = llm_usage.usage_report(ctx, people["admin"])
    assert report.quotas.user_monthly_tokens == 100 and report.quotas.team_monthly_tokens == 250
    assert [(t.name, t.tokens, t.over) for t in report.teams] == [("Blue", 255, True)]
    assert [(u.name, u.tokens, u.over) for u in report.top_users] == [
        ("Ann", 120, True),
        ("Bob", 90, False),
        ("Cat", 45, False),
    ]

    with pytest.raises(InvalidInput):
        llm_usage.set_quotas(ctx, people["admin"], llm_usage.Quotas(team_monthly_usd=-1))


def test_quota_page_and_api(client, ctx: AppContext) -> None:  # type: ignore[no-untyped-def]
    people = _people(ctx)
    r = client.post("/api/v1/auth/login", json={"email": "admin@q.example", "password": PASSWORD})
    client.cookies.clear()
    headers = {"Authorization": f"Bearer {r.json()['token']}"}
    r = client.put(
        "/api/v1/llm/quotas", json={"user_monthly_usd": 2.5, "team_monthly_tokens": 1000}, headers=headers
    )
    assert r.status_code == 200 and r.json()["team_monthly_tokens"] == 1000
    assert (
        client.put("/api/v1/llm/quotas", json={"user_monthly_tokens": -5}, headers=headers).status_code == 422
    )
    _use(ctx, people["ann"], 40, 0.01)
    page = client.get("/admin/llm", headers=headers)
    assert (
        page.status_code == 200 and "Blue" in page.text and "Ann" in page.text and 'value="1000"' in page.text
    )
    login = client.get("/login")
    csrf = login.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    assert (
        client.post(
            "/login", data={"email": "admin@q.example", "password": PASSWORD, "csrf_token": csrf}
        ).status_code
        == 200
    )
    page = client.get("/admin/llm")
    csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    form = {
        "csrf_token": csrf,
        "user_monthly_tokens": "500",
        "user_monthly_usd": "",
        "team_monthly_tokens": "",
        "team_monthly_usd": "3",
    }
    assert client.post("/admin/llm/quotas", data=form).status_code == 200
    saved = client.get("/api/v1/llm/usage", headers=headers).json()["quotas"]
    assert saved == {
        "user_monthly_tokens": 500,
        "user_monthly_usd": None,
        "team_monthly_tokens": None,
        "team_monthly_usd": 3.0,
    }
    bad = client.post("/admin/llm/quotas", data={**form, "team_monthly_usd": "lots"})
    assert bad.status_code == 422 and "A quota must be a number" in bad.text
    client.cookies.clear()
    r = client.post("/api/v1/auth/login", json={"email": "ann@q.example", "password": PASSWORD})
    client.cookies.clear()
    learner = {"Authorization": f"Bearer {r.json()['token']}"}
    assert client.put("/api/v1/llm/quotas", json={"user_monthly_usd": 1}, headers=learner).status_code == 403
