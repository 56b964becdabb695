"""A skill's page: mastery with its evidence, its lessons, and the learner's own answers on it."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from learnloop.content.loader import load_pack
from tests.conftest import MINI_PACK, answer_payload
from tests.web.test_web_home import _signup

PACK = load_pack(MINI_PACK)


def test_skill_page_shows_mastery_lessons_and_answers(client: TestClient) -> None:
    token = _signup(client)
    before = client.get("/skills/basics.tokens")
    assert before.status_code == 200 and "not part of your target role" in before.text
    client.post("/roles", data={"role_id": "builder", "csrf_token": token})
    page = client.get("/practice")
    item_id = re.search(r'data-item-id="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    item = PACK.item(item_id)
    presentation = re.search(r'name="presentation_id" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    answer = {k: str(v) for k, v in answer_payload(item, True).items()}
    r = client.post(
        "/practice/answer",
        data={"item_id": item_id, "presentation_id": presentation, "csrf_token": token, **answer},
    )
    assert r.status_code == 200
    skill = item.skills[0]
    own = client.get(f"/skills/{skill}")
    assert own.status_code == 200
    mastery = re.search(r'data-mastery="([0-9.]+)"', own.text)
    assert mastery and 0 < float(mastery.group(1)) < 1
    assert f'<li data-item="{item_id}">' in own.text and "right" in own.text
    assert "1 answer" in own.text
    for lesson in PACK.lessons_for_skill(skill):
        assert f'href="/lessons/{lesson.id}"' in own.text
    other = next(s.id for s in PACK.skills if s.id != skill)
    assert f'data-item="{item_id}"' not in client.get(f"/skills/{other}").text
    client.get("/lang/zh_CN")
    assert "你在这项技能上的最近作答" in client.get(f"/skills/{skill}").text
