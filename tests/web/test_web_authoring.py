"""The drafts page: template drafts say what the author still has to write, a refused approval
keeps the instructor's edits, an approved item is in the instructor's item bank only."""

from __future__ import annotations

import html
import re
from pathlib import Path

import yaml
from fastapi.testclient import TestClient
from sqlalchemy import update

from learnloop.llm.authoring import PLACEHOLDER
from learnloop.server import create_app
from learnloop.store.models import User
from tests.conftest import DEFAULT_PACK
from tests.llm.conftest import make_ctx


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def test_drafts_page_from_template_to_published(tmp_path: Path) -> None:
    # no embedding model: drafts are de-duplicated by shared words (loading one takes a minute)
    ai_ctx = make_ctx(tmp_path, DEFAULT_PACK, llm_embed="openai_compat")
    with TestClient(create_app(ai_ctx)) as client:
        page = client.get("/signup")
        data = {"name": "Ana", "email": "ana@example.org", "password": "long-enough"}
        client.post("/signup", data={**data, "csrf_token": _csrf(page.text)})
        with ai_ctx.session() as session:
            session.execute(update(User).where(User.email == "ana@example.org").values(role="instructor"))
        token = _csrf(client.get("/authoring").text)
        r = client.post(
            "/authoring/generate", data={"skill_id": "llm.tokens", "count": "2", "csrf_token": token}
        )
        assert r.status_code == 200 and r.url.path == "/authoring"
        drafts = re.findall(r'data-draft-id="(\d+)"', r.text)
        assert len(drafts) == 2
        assert 'id="todo-' in r.text and "‹" in r.text
        draft_id = drafts[-1]
        form = r.text.split(f'data-draft-id="{draft_id}"', 1)[1]
        textarea = re.search(r"<textarea[^>]*>(.*?)</textarea>", form, re.S)
        assert textarea
        document = yaml.safe_load(html.unescape(textarea.group(1)))
        half = dict(document, explanation="The author's own explanation of the term.")
        edited = yaml.safe_dump(half, allow_unicode=True, sort_keys=False)
        refused = client.post(
            f"/authoring/drafts/{draft_id}",
            data={"action": "approve", "item_yaml": edited, "csrf_token": token},
        )
        assert refused.status_code == 422 and "translations.zh-CN.stem" in refused.text
        assert "The author&#39;s own explanation of the term." in refused.text  # the edit is kept
        done = PLACEHOLDER.sub("Written by the author", yaml.safe_dump(document, allow_unicode=True))
        r = client.post(
            f"/authoring/drafts/{draft_id}",
            data={"action": "approve", "item_yaml": done, "csrf_token": token},
            follow_redirects=False,
        )
        assert r.status_code == 303
        items = client.get("/items", params={"q": "authored"})
        assert f"llm.tokens.authored-{draft_id}" in items.text
