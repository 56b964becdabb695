"""The skill-check page: a progress bar, an "I don't know" button counted as a wrong answer."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from learnloop.services.context import AppContext
from learnloop.store.models import Response
from tests.web.test_web_forms import _csrf, _signup


def test_i_dont_know_button_and_progress_bar(client: TestClient, ctx: AppContext) -> None:
    token = _signup(client)
    r = client.post("/check", data={"role_id": "builder", "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    page = client.get(r.headers["location"])
    assert "<progress" in page.text and 'name="dont_know"' in page.text
    item_id = re.search(r'data-item-id="([^"]+)"', page.text)
    assert item_id
    r = client.post(
        r.headers["location"] + "/answer",
        data={"item_id": item_id.group(1), "dont_know": "1", "csrf_token": _csrf(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303
    with ctx.session() as session:
        row = session.execute(select(Response)).scalar_one()
        assert row.item_id == item_id.group(1) and row.correct is False and row.answer == {"dont_know": True}
