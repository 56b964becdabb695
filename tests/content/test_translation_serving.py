"""Content reaches learners in their UI language through one path (ActivePack.localized):
practice items, hints, feedback, the skill map, roles and lessons, on the API and the pages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from learnloop.content.translations import reset_fallback_stats
from learnloop.server import create_app
from learnloop.services.auth import create_organisation, create_user
from learnloop.services.context import AppContext
from tests.conftest import _make_ctx
from tests.content.translation_fixtures import mini_with_overlay
from tests.test_cli import run

ZH = {"Accept-Language": "zh-CN,zh;q=0.9"}


@pytest.fixture
def zh_ctx(tmp_path: Path) -> AppContext:
    reset_fallback_stats()
    return _make_ctx(f"sqlite:///{tmp_path / 'zh.db'}", mini_with_overlay(tmp_path))


@pytest.fixture
def zh_client(zh_ctx: AppContext):  # type: ignore[no-untyped-def]
    with TestClient(create_app(zh_ctx)) as client:
        yield client


def _signup(client: TestClient, email: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/signup", json={"email": email, "name": "Lin", "password": "correct horse"})
    assert r.status_code == 201, r.text
    client.cookies.clear()
    return {"Authorization": f"Bearer {r.json()['token']}"}


def test_practice_over_the_api_in_chinese(zh_client: TestClient) -> None:
    h = _signup(zh_client, "lin@example.org") | ZH
    roles = zh_client.get("/api/v1/roles", headers=h).json()
    assert [r["name"] for r in roles] == ["构建者"]
    assert zh_client.post("/api/v1/enrolment", json={"role_id": "builder"}, headers=h).status_code == 200
    nxt = zh_client.get("/api/v1/practice/next", headers=h).json()
    assert nxt["skill_id"] == "basics.tokens" and nxt["skill_name"] == "词元"
    item = nxt["item"]
    assert item["id"].startswith("basics.tokens.")
    assert any("\u4e00" <= ch <= "\u9fff" for ch in item["stem"]), item["stem"]
    hint = zh_client.post("/api/v1/practice/hint", json={"item_id": item["id"]}, headers=h).json()
    assert any("\u4e00" <= ch <= "\u9fff" for ch in hint["hint"])
    answers = {
        "basics.tokens.count": {"choice": "b"},
        "basics.tokens.cost": {"value": 1.0},
        "basics.tokens.window": {"text": "对话超出上下文窗口之后，最早的消息会被截断。"},
    }
    fb = zh_client.post(
        "/api/v1/practice/answer", headers=h, json={"item_id": item["id"], "answer": answers[item["id"]]}
    ).json()
    assert fb["correct"] is True, fb
    assert any("\u4e00" <= ch <= "\u9fff" for ch in fb["explanation"])
    assert fb["mastery"][0]["skill_name"] == "词元"
    skill_map = zh_client.get("/api/v1/mastery", headers=h).json()
    assert skill_map["role_name"] == "构建者" and skill_map["domains"][0]["name"] == "基础"
    # The same learner in English sees the English texts.
    en = zh_client.get("/api/v1/mastery", headers={"Authorization": h["Authorization"]}).json()
    assert en["role_name"] == "Builder"


def test_lessons_in_chinese_with_the_language_served(zh_client: TestClient) -> None:
    h = _signup(zh_client, "wang@example.org")
    zh = zh_client.get("/api/v1/lessons/lesson.tokens", headers=h | ZH).json()
    assert zh["title"] == "词元" and "单词的片段" in zh["body_markdown"] and zh["language"] == "zh-CN"
    en = zh_client.get("/api/v1/lessons/lesson.tokens", headers=h).json()
    assert en["title"] == "Tokens" and en["language"] == "en"
    missing = zh_client.get("/api/v1/lessons/lesson.nowhere", headers=h)
    assert missing.status_code == 404 and missing.json()["error"]


def test_lesson_page_in_chinese(zh_client: TestClient) -> None:
    form = zh_client.get("/signup").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert csrf is not None
    zh_client.post(
        "/signup",
        data={
            "email": "zhao@example.org",
            "name": "Zhao",
            "password": "correct horse",
            "csrf_token": csrf[1],
        },
        follow_redirects=True,
    )
    zh_client.get("/lang/zh_CN")  # what the language switch does
    page = zh_client.get("/lessons/lesson.tokens")
    assert page.status_code == 200
    assert "<h1>词元</h1>" in page.text and 'lang="zh-CN"' in page.text and "单词的片段" in page.text


def _login(client: TestClient, email: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/login", json={"email": email, "password": "password-123"})
    assert r.status_code == 200, r.text
    client.cookies.clear()
    return {"Authorization": f"Bearer {r.json()['token']}"}


def test_admins_see_translation_status_and_fallbacks(zh_client: TestClient, zh_ctx: AppContext) -> None:
    with zh_ctx.session() as session:
        org = create_organisation(session, "Org Z")
        for role in ("admin", "learner"):
            create_user(
                session,
                org_id=org.id,
                email=f"{role}@z.example",
                name=role,
                password="password-123",
                role=role,
            )
    admin, learner = _login(zh_client, "admin@z.example"), _login(zh_client, "learner@z.example")
    status = zh_client.get("/api/v1/packs/active/translations", headers=admin)
    assert status.status_code == 200, status.text
    body = status.json()
    # apps.rag.why: stem, explanation, hints, options; basics.prompts.role: the same four;
    # basics.prompts.code: stem, explanation, hints.
    assert body["base_language"] == "en" and body["untranslated"] == {"zh-CN": 11}
    assert zh_client.get("/api/v1/packs/active/translations", headers=learner).status_code == 403
    zh_client.post("/api/v1/enrolment", json={"role_id": "builder"}, headers=learner | ZH)
    counts = zh_client.get("/api/v1/packs/active/translations", headers=admin).json()["fallbacks"]
    assert [(f["language"], f["missing_texts"]) for f in counts] == [("zh-CN", 11)]


def test_cli_refuses_an_invalid_overlay_and_imports_nothing(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    assert run(["init"], db).returncode == 0
    root = mini_with_overlay(tmp_path)
    (root / "locales" / "zh-CN" / "items" / "basics.yaml").write_text(
        "basics.tokens.count:\n  stem: 几个？\n  options: {a: 甲, z: 乙}\n", encoding="utf-8"
    )
    done = run(["import", str(root)], db)
    assert done.returncode == 2
    assert (
        "locales/zh-CN/items/basics.yaml:3: item 'basics.tokens.count': option keys ['a', 'z']" in done.stderr
    )
    out = run(["export", str(tmp_path / "after")], db)
    assert out.returncode == 0 and not (tmp_path / "after" / "locales").exists()
