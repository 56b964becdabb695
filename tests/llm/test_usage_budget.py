"""Budgets refuse politely; keys never appear in logs or pages; the usage page is for admins."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from learnloop.llm.gateway import BudgetSpent, OfflineRoute, UsageEvent
from learnloop.llm.providers.base import ChatRequest
from learnloop.services import llm_usage
from learnloop.services.llm_usage import DbLedger, gateway_for
from tests.llm.conftest import down_url, make_ctx, make_user

SECRET = "sk-test-THIS-MUST-NOT-LEAK-42"
REQUEST = ChatRequest(messages=[{"role": "user", "content": "hi"}], max_tokens=4)


def test_spent_budget_falls_back_or_refuses(tmp_path: Path) -> None:
    ctx = make_ctx(
        tmp_path,
        llm_tutor="openai_compat,offline",
        llm_grade="openai_compat",
        llm_base_url=down_url(),
        llm_model="m",
        llm_timeout_s=1,
    )
    admin = make_user(ctx, role="admin", enrol=None)
    llm_usage.set_budget(ctx, admin, 0.5)
    DbLedger(ctx).record(
        UsageEvent(
            task="tutor",
            provider="openai_compat",
            model="m",
            org_id=admin.org_id,
            user_id=admin.id,
            cost_usd=0.75,
        )
    )
    result = gateway_for(ctx).complete("tutor", REQUEST, org_id=admin.org_id, user_id=admin.id)
    assert isinstance(result, OfflineRoute) and "budget" in result.notices[0]
    with pytest.raises(BudgetSpent) as refused:
        gateway_for(ctx).complete("grade", REQUEST, org_id=admin.org_id, user_id=admin.id)
    assert refused.value.status == 429 and "administrator" in refused.value.message
    report = llm_usage.usage_report(ctx, admin)
    assert report.budget_usd == 0.5 and report.spent_usd == 0.75
    assert any(line.failed for line in report.lines)


def test_keys_never_reach_logs_or_pages(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from fastapi.testclient import TestClient

    from learnloop.server import create_app

    ctx = make_ctx(
        tmp_path,
        llm_tutor="openai_compat,offline",
        llm_base_url=down_url(),
        llm_model="m",
        llm_api_key=SECRET,
        llm_tutor_api_key=SECRET,
        llm_timeout_s=1,
    )
    admin = make_user(ctx, email="root@example.org", role="admin", enrol=None)
    caplog.set_level(logging.DEBUG)
    gateway_for(ctx).complete("tutor", REQUEST, org_id=admin.org_id, user_id=admin.id)
    assert SECRET not in repr(ctx.settings) and SECRET not in str(gateway_for(ctx).endpoint("tutor"))
    with TestClient(create_app(ctx)) as client:
        login = client.post(
            "/api/v1/auth/login", json={"email": "root@example.org", "password": "correct horse"}
        )
        assert login.status_code == 200, login.text
        token = login.json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        page = client.get("/admin/llm", headers=headers)
        api = client.get("/api/v1/llm/usage", headers=headers)
        assert page.status_code == 200 and api.status_code == 200
        assert "openai_compat" in page.text
    assert SECRET not in page.text and SECRET not in api.text
    assert SECRET not in caplog.text


def test_usage_page_and_budget_are_for_admins(client) -> None:  # type: ignore[no-untyped-def]
    token = client.post(
        "/api/v1/auth/signup",
        json={"email": "l@example.org", "name": "L", "password": "tidal-ferry-quartz-81"},
    ).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/llm/usage", headers=headers).status_code == 403
    assert client.put("/api/v1/llm/budget", json={"monthly_usd": 5}, headers=headers).status_code == 403
    assert client.put("/api/v1/llm/budget", json={"monthly_usd": -1}, headers=headers).status_code == 422
