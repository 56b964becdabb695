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


def test_practise_this_skill_keeps_to_the_skill_until_back_on_the_path(client: TestClient) -> None:
    token = _signup(client)
    client.post("/roles", data={"role_id": "builder", "csrf_token": token})
    skill = "basics.tokens"
    page = client.get(f"/skills/{skill}")
    assert f'href="/practice?skill={skill}"' in page.text
    focused = client.get(f"/practice?skill={skill}")
    assert focused.status_code == 200
    assert 'name="focus" value="basics.tokens"' in focused.text and 'href="/practice">' in focused.text
    for _round in range(3):
        item_id = re.search(r'data-item-id="([^"]+)"', focused.text).group(1)  # type: ignore[union-attr]
        item = PACK.item(item_id)
        assert skill in item.skills, item_id
        presentation = re.search(r'name="presentation_id" value="([^"]+)"', focused.text).group(1)  # type: ignore[union-attr]
        answer = {k: str(v) for k, v in answer_payload(item, True).items()}
        feedback = client.post(
            "/practice/answer",
            data={
                "item_id": item_id,
                "presentation_id": presentation,
                "focus": skill,
                "csrf_token": token,
                **answer,
            },
        )
        assert feedback.status_code == 200
        assert f'href="/practice?skill={skill}" id="next"' in feedback.text
        focused = client.get(f"/practice?skill={skill}")
    unknown = client.get("/practice?skill=no.such.skill")
    assert unknown.status_code == 422 and "no.such.skill" in unknown.text


def test_api_next_item_for_a_chosen_skill(client: TestClient) -> None:
    token = _signup(client)
    client.post("/roles", data={"role_id": "builder", "csrf_token": token})
    shown = client.get("/api/v1/practice/next", params={"skill": "apps.rag"})
    assert shown.status_code == 200
    body = shown.json()
    assert body["item"]["id"] == "apps.rag.why" and body["reason"].startswith("chosen")
    assert client.get("/api/v1/practice/next", params={"skill": "x" * 121}).status_code == 422
