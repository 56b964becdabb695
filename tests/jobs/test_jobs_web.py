"""/admin/jobs (admins of the organisation only, retry behind the CSRF check), the learner's
"being graded" page, and the queue depth in /metrics."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from learnloop import jobs
from learnloop.config import Settings
from learnloop.jobs.registry import JobRun
from learnloop.services import auth
from learnloop.services.context import AppContext
from learnloop.services.packs import import_pack
from learnloop.store.db import migrate
from learnloop.store.models import Job, PendingItem, User
from tests.conftest import MINI_PACK
from tests.llm.conftest import down_url

SHOULD_FAIL = {"on": True}


@jobs.task("test.web", max_attempts=1)
def web_task(ctx: AppContext, payload: dict[str, Any], run: JobRun) -> None:
    if SHOULD_FAIL["on"]:
        raise RuntimeError("the mail server said no")


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


@pytest.fixture
def web_ctx(tmp_path: Path) -> AppContext:
    url = f"sqlite:///{tmp_path / 'web.db'}"
    settings = Settings(
        database_url=url,
        default_pack=MINI_PACK,
        jobs_worker="off",  # the test runs the jobs itself
        llm_grade="openai_compat,offline",
        llm_grade_base_url=down_url(),
        llm_grade_model="m",
        llm_grade_timeout_s=1,
        llm_retries=0,
        jobs_max_attempts=1,
        llm_warm_up=False,
    )
    migrate(url)
    ctx = AppContext(settings=settings)
    import_pack(ctx, MINI_PACK)
    return ctx


@pytest.fixture
def web(web_ctx: AppContext) -> Iterator[TestClient]:
    from learnloop.server import create_app

    with TestClient(create_app(web_ctx)) as client:
        yield client


def _signup(client: TestClient, email: str) -> str:
    page = client.get("/signup")
    r = client.post(
        "/signup",
        data={"name": "Lin", "email": email, "password": "violet-harbour-57", "csrf_token": _csrf(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return _csrf(client.get("/roles").text)


def _set_role(ctx: AppContext, email: str, role: str) -> int:
    with ctx.session() as session:
        user = session.query(User).filter(User.email == email).one()
        user.role = role
        return int(user.org_id)


def test_admin_lists_and_retries_failed_jobs(web: TestClient, web_ctx: AppContext) -> None:
    token = _signup(web, "boss@example.org")
    org_id = _set_role(web_ctx, "boss@example.org", "admin")
    SHOULD_FAIL["on"] = True
    job_id = jobs.enqueue(web_ctx, "test.web", {"to": "x"}, org_id=org_id)
    jobs.run_due(web_ctx)
    page = web.get("/admin/jobs")
    assert page.status_code == 200
    row = re.search(rf'<tr data-job="{job_id}" data-state="dead">(.*?)</tr>', page.text, re.S)
    assert row, page.text
    assert (
        "test.web" in row.group(1) and "the mail server said no" in row.group(1) and "1 / 1" in row.group(1)
    )
    assert "Try again" in row.group(1)
    assert "learnloop_queue_depth" in web.get("/metrics").text
    # the retry is a state change: refused without the login's CSRF token
    assert web.post(f"/admin/jobs/{job_id}/retry").status_code == 403
    r = web.post(f"/admin/jobs/{job_id}/retry", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/admin/jobs"
    with web_ctx.session() as session:
        row_state = session.get(Job, job_id)
        assert row_state is not None and row_state.state == "queued" and row_state.attempts == 0
    metrics = web.get("/metrics").text
    assert 'learnloop_queue_depth{queue="test.web"} 1.0' in metrics
    SHOULD_FAIL["on"] = False
    jobs.run_due(web_ctx)
    assert 'data-state="done"' in web.get("/admin/jobs?state=done").text
    assert 'learnloop_queue_depth{queue="test.web"} 0.0' in web.get("/metrics").text
    assert web.get("/admin/jobs?state=nonsense").status_code == 422
    # the same list and retry in the API, for the admin's bearer token
    token_login = auth.login(web_ctx, email="boss@example.org", password="violet-harbour-57")
    bearer = {"Authorization": f"Bearer {token_login.token}"}
    listed = web.get("/api/v1/admin/jobs", headers=bearer).json()
    assert [(j["id"], j["state"]) for j in listed if j["task"] == "test.web"] == [(job_id, "done")]
    refused = web.post(f"/api/v1/admin/jobs/{job_id}/retry", headers=bearer)
    assert refused.status_code == 409 and refused.json()["error"]["code"]


def test_learners_do_not_see_jobs(web: TestClient, web_ctx: AppContext) -> None:
    _signup(web, "lea@example.org")
    _set_role(web_ctx, "lea@example.org", "learner")
    assert web.get("/admin/jobs").status_code == 403


def test_the_learner_sees_being_graded_then_the_grade(web: TestClient, web_ctx: AppContext) -> None:
    token = _signup(web, "ada@example.org")
    assert (
        web.post(
            "/roles", data={"role_id": "builder", "csrf_token": token}, follow_redirects=False
        ).status_code
        == 303
    )
    with web_ctx.session() as session:
        user = session.query(User).filter(User.email == "ada@example.org").one()
        session.merge(PendingItem(user_id=user.id, item_id="basics.tokens.window", reason="t", hints_shown=0))
    page = web.get("/practice")
    presentation = re.search(r'name="presentation_id" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    answer = {
        "item_id": "basics.tokens.window",
        "text": "The context window is full, so the earliest tokens are truncated.",
        "presentation_id": presentation,
        "csrf_token": token,
    }
    r = web.post("/practice/answer", data=answer)
    assert r.status_code == 200 and 'data-grading="queued"' in r.text and "Being graded" in r.text
    assert f'href="/practice/graded/{presentation}"' in r.text
    assert "Being graded" in web.get(f"/practice/graded/{presentation}").text
    jobs.run_due(web_ctx)  # the model is down: the one try falls back to the offline grader
    landed = web.get(f"/practice/graded/{presentation}")
    assert landed.status_code == 200 and "Being graded" not in landed.text
    assert "Mastery" in landed.text and "instructor" in landed.text
    assert web.get("/practice/graded/not-a-presentation").status_code == 404
