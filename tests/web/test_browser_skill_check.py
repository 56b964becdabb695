"""End to end in headless Chromium: a skill check never shows correctness and ends in a score."""

from __future__ import annotations

import pytest

from learnloop.content.loader import load_pack
from tests.conftest import MINI_PACK

pytestmark = pytest.mark.browser


def test_skill_check_to_result(live_server: str, page) -> None:  # type: ignore[no-untyped-def]
    pack = load_pack(MINI_PACK)
    page.goto(live_server + "/signup")
    page.fill("input[name=name]", "Alan")
    page.fill("input[name=email]", "alan@example.org")
    page.fill("input[name=password]", "enigma-1234")
    page.click("form button[type=submit]")
    page.goto(live_server + "/check")
    page.click("#start-check")
    for _ in range(25):
        if page.locator("article.result").count():
            break
        item = pack.item(page.locator("article.item").get_attribute("data-item-id"))
        if item.kind == "choice":
            page.check(f"input[name=choice][value='{item.key}']")
        else:
            page.fill("input[name=value]", str(item.answer))
        page.click("#check-form button[type=submit]")
        assert "Correct" not in page.content() and "Not quite" not in page.content()
    score = float(page.locator("article.result").get_attribute("data-score"))
    assert 150 < score <= 300  # every answer right: above the centre of the scale
    assert page.locator("tr[data-domain]").count() >= 1
