"""Headless Chromium in zh-CN on the default pack: the practice page shows a Chinese stem and
Chinese options, and the feedback a Chinese explanation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select, update

from learnloop.content.loader import load_pack
from learnloop.services.context import AppContext
from learnloop.store.models import PendingItem, User
from tests.conftest import DEFAULT_PACK, _make_ctx

pytestmark = pytest.mark.browser
ROLE = "llm-app-engineer"
HAN = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
def ctx(tmp_path: Path) -> AppContext:
    """The default pack (overrides the mini-pack ``ctx`` that ``live_server`` serves)."""
    return _make_ctx(f"sqlite:///{tmp_path / 'zh.db'}", DEFAULT_PACK)


def _translated_choice_item(ctx: AppContext) -> str:
    """A choice item of the role whose stem, options and explanation have zh-CN text."""
    pack = load_pack(DEFAULT_PACK)
    overlay = pack.translations["zh-CN"].items
    with ctx.session() as session:
        active = ctx.active_pack(session)
        skills = active.role_skills(active.role(ROLE))
    for item in sorted(pack.items, key=lambda i: i.id):
        text = overlay.get(item.id)
        translated = text is not None and bool(text.stem and text.options and text.explanation)
        if item.kind == "choice" and item.skills[0] in skills and translated:
            return item.id
    raise AssertionError("no choice item of the role has a zh-CN translation yet")


def test_practice_page_in_chinese(live_server: str, page, ctx: AppContext) -> None:  # type: ignore[no-untyped-def]
    item_id = _translated_choice_item(ctx)
    pack = load_pack(DEFAULT_PACK)
    english, chinese = pack.item(item_id), pack.localized("zh-CN").item(item_id)

    page.goto(live_server + "/")
    page.click("text=简体中文")
    page.click("text=注册")
    page.fill("input[name=name]", "李雷")
    page.fill("input[name=email]", "lilei@example.org")
    page.fill("input[name=password]", "transformers-rule")
    page.click("form button[type=submit]")
    page.wait_for_url("**/roles")
    page.click(f"button[data-role={ROLE}]")
    page.wait_for_url("**/practice")
    # Put the chosen item in front of the learner (the policy picks by mastery, not by language).
    with ctx.session() as session:
        user_id = session.execute(select(User.id).where(User.email == "lilei@example.org")).scalar_one()
        session.execute(update(PendingItem).where(PendingItem.user_id == user_id).values(item_id=item_id))

    page.goto(live_server + "/practice")
    article = page.locator("article.item")
    assert article.get_attribute("data-item-id") == item_id
    stem = article.locator(".stem").inner_text()
    assert HAN.search(stem) and stem.strip() != english.stem.strip()
    options = article.locator("label.option").all_inner_texts()
    assert len(options) == len(english.options or {})
    assert any(HAN.search(text) for text in options)
    for key, text in (chinese.options or {}).items():
        if HAN.search(text):
            assert any(HAN.search(o) and o.startswith(key) for o in options), text

    page.check(f"input[name=choice][value='{english.key}']")
    page.click("#answer-form button[type=submit]")
    feedback = page.locator("article.feedback")
    assert feedback.get_attribute("data-correct") == "true"
    explanation = feedback.inner_text()
    assert HAN.search(explanation)
    first_words = re.sub(r"[`*]", "", (chinese.explanation or "").split("。")[0])[:12]
    assert first_words in re.sub(r"[`*]", "", explanation)
