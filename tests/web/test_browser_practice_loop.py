"""End to end in headless Chromium: sign up, pick a role, answer three items, see mastery move."""

from __future__ import annotations

from pathlib import Path

import pytest

from learnloop.content.loader import load_pack
from tests.conftest import MINI_PACK

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def _mastery(page, skill_id: str) -> float:  # type: ignore[no-untyped-def]
    return float(page.locator(f"tr[data-skill='{skill_id}']").get_attribute("data-mastery"))


def test_signup_practise_and_see_mastery_change(live_server: str, page) -> None:  # type: ignore[no-untyped-def]
    pack = load_pack(MINI_PACK)
    page.goto(live_server + "/")
    page.click("text=Sign up")
    page.fill("input[name=name]", "Grace Hopper")
    page.fill("input[name=email]", "grace@example.org")
    page.fill("input[name=password]", "compilers-rule")
    page.click("form button[type=submit]")
    page.wait_for_url("**/roles")
    page.click("button[data-role=builder]")
    page.wait_for_url("**/practice")

    page.goto(live_server + "/skills")
    start = _mastery(page, "basics.tokens")

    for _ in range(3):
        page.goto(live_server + "/practice")
        article = page.locator("article.item")
        item = pack.item(article.get_attribute("data-item-id"))
        if item.kind == "choice":
            page.check(f"input[name=choice][value='{item.key}']")
        elif item.kind == "numeric":
            page.fill("input[name=value]", str(item.answer))
        elif item.kind == "text":
            page.fill("textarea[name=text]", item.reference_answers[0])
        else:
            page.fill("textarea[name=code]", item.solution)
        page.click("#answer-form button[type=submit]")
        verdict = page.locator("article.feedback")
        assert verdict.get_attribute("data-correct") == "true"
        assert page.locator(".changes li").count() >= 1

    page.goto(live_server + "/skills")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "skill_map.png"), full_page=True)
    assert _mastery(page, "basics.tokens") > start
    assert page.locator("tr[data-skill='basics.tokens'] td").nth(4).inner_text().strip() != "0"  # answers
    # the map shows how far one more answer could move the estimate
    cell = page.locator("tr[data-skill='basics.tokens'] td.uncertainty")
    low, high = float(cell.get_attribute("data-low")), float(cell.get_attribute("data-high"))
    assert low <= _mastery(page, "basics.tokens") <= high


def test_a_fresh_learner_meets_a_text_and_a_code_item_early(live_server: str, page) -> None:  # type: ignore[no-untyped-def]
    """Practice through the browser: within the first 30 items of a skill the learner sees a
    text item and a code item (the mini pack has text on basics.tokens, code on basics.prompts)."""
    pack = load_pack(MINI_PACK)
    page.goto(live_server + "/")
    page.click("text=Sign up")
    page.fill("input[name=name]", "Ada Lovelace")
    page.fill("input[name=email]", "ada@example.org")
    page.fill("input[name=password]", "engines-rule-1843")
    page.click("form button[type=submit]")
    page.wait_for_url("**/roles")
    page.click("button[data-role=builder]")
    page.wait_for_url("**/practice")
    per_skill: dict[str, int] = {}
    first_seen: dict[str, int] = {}
    for _ in range(40):
        page.goto(live_server + "/practice")
        article = page.locator("article.item")
        item = pack.item(article.get_attribute("data-item-id"))
        skill = item.skills[0]
        per_skill[skill] = per_skill.get(skill, 0) + 1
        first_seen.setdefault(item.kind, per_skill[skill])
        if {"text", "code"} <= set(first_seen):
            break
        if item.kind == "choice":
            page.check(f"input[name=choice][value='{item.key}']")
        elif item.kind == "numeric":
            page.fill("input[name=value]", str(item.answer))
        elif item.kind == "text":
            page.fill("textarea[name=text]", item.reference_answers[0])
        else:
            page.fill("textarea[name=code]", item.solution)
        page.click("#answer-form button[type=submit]")
        page.wait_for_selector("article.feedback, .error, .messages")
    assert "text" in first_seen and first_seen["text"] <= 30
    assert "code" in first_seen and first_seen["code"] <= 30


def test_language_switch_to_chinese(live_server: str, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(live_server + "/")
    page.click("text=简体中文")
    assert "注册" in page.content()
