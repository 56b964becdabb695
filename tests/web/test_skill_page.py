"""A skill's page: mastery with its evidence, its lessons, and the learner's own answers on it."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from learnloop.content.loader import load_pack
from learnloop.services.context import AppContext
from learnloop.store.models import PendingItem, Response
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
    client.post("/roles", data={"role_id": "builder", "csrf_token": token}, follow_redirects=False)
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
    # not following the redirect to /practice: no item is on screen yet
    client.post("/roles", data={"role_id": "builder", "csrf_token": token}, follow_redirects=False)
    shown = client.get("/api/v1/practice/next", params={"skill": "apps.rag"})
    assert shown.status_code == 200
    body = shown.json()
    assert body["item"]["id"] == "apps.rag.why" and body["reason"].startswith("chosen")
    assert client.get("/api/v1/practice/next", params={"skill": "x" * 121}).status_code == 422


def test_switching_skills_does_not_skip_the_item_on_screen(client: TestClient, ctx: AppContext) -> None:
    """ "Practise this skill" while an untried item of another skill is on screen keeps that item
    (same presentation, nothing recorded): switching back and forth cannot fish for easy items."""
    token = _signup(client)
    client.post("/roles", data={"role_id": "builder", "csrf_token": token})
    page = client.get("/practice")
    item_id = re.search(r'data-item-id="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    presentation = re.search(r'name="presentation_id" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    other = next(s for s in ("apps.rag", "basics.tokens") if s not in PACK.item(item_id).skills)
    switched = client.get(f"/practice?skill={other}")
    assert switched.status_code == 200
    assert f'data-item-id="{item_id}"' in switched.text and f'value="{presentation}"' in switched.text
    assert f'id="focus-waiting" data-focus="{other}"' in switched.text
    assert f'name="focus" value="{other}"' in switched.text  # the answer carries the choice on
    api = client.get("/api/v1/practice/next", params={"skill": other}).json()
    assert (api["item"]["id"], api["presentation_id"], api["focus_waiting"]) == (item_id, presentation, other)
    back = client.get("/practice")
    assert f'value="{presentation}"' in back.text and 'id="focus-waiting"' not in back.text
    with ctx.session() as session:
        assert session.scalar(select(func.count()).select_from(Response)) == 0
        assert session.scalars(select(PendingItem.presentation_id)).all() == [presentation]
    # once it is answered, the chosen skill's item comes
    item = PACK.item(item_id)
    wrong = {k: str(v) for k, v in answer_payload(item, False).items()}
    data = {"item_id": item_id, "presentation_id": presentation, "focus": other, "csrf_token": token}
    feedback = client.post("/practice/answer", data={**data, **wrong})
    assert feedback.status_code == 200 and f'href="/practice?skill={other}" id="next"' in feedback.text
    chosen = client.get(f"/practice?skill={other}")
    new_id = re.search(r'data-item-id="([^"]+)"', chosen.text).group(1)  # type: ignore[union-attr]
    assert other in PACK.item(new_id).skills and 'id="focus-waiting"' not in chosen.text
