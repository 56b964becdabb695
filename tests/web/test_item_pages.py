"""The item bank and the item analysis narrowed by search, skill and kind, a page at a time; an
item's page renders it as a learner sees it, with its key, in the UI language."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from learnloop.server import create_app
from learnloop.services.context import AppContext
from learnloop.services.item_bank import PER_PAGE, page_of
from learnloop.store.models import User
from tests.conftest import DEFAULT_PACK
from tests.llm.conftest import make_ctx


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def _instructor(client: TestClient, ctx: AppContext) -> None:
    page = client.get("/signup")
    data = {
        "name": "Ana",
        "email": "ana@example.org",
        "password": "long-enough",
        "csrf_token": _csrf(page.text),
    }
    client.post("/signup", data=data)
    with ctx.session() as session:
        session.execute(update(User).where(User.email == "ana@example.org").values(role="instructor"))


def _rows(html: str) -> list[str]:
    return re.findall(r'<tr data-item="([^"]+)"', html)


def test_pages_of_rows() -> None:
    rows = list(range(2 * PER_PAGE + 1))
    assert page_of(rows, 1) == (rows[:PER_PAGE], 1, 3)
    assert page_of(rows, 3) == ([rows[-1]], 3, 3)
    assert page_of(rows, 99)[1:] == (3, 3)  # past the end: the last page
    assert page_of([], 1) == ([], 1, 1)


def test_item_bank_search_filters_and_pages(client: TestClient, ctx: AppContext) -> None:
    _instructor(client, ctx)
    everything = _rows(client.get("/items").text)
    assert len(everything) >= 6
    numeric = client.get("/items", params={"kind": "numeric"})
    assert numeric.status_code == 200 and _rows(numeric.text) == ["basics.tokens.cost"]
    assert "1 of" in numeric.text
    # every word must occur, in the id, the question or the options, whatever the case
    found = _rows(client.get("/items", params={"q": "SYSTEM message"}).text)
    assert found == ["basics.prompts.role"]
    skill = _rows(client.get("/items", params={"skill": "basics.tokens"}).text)
    assert skill and all(i.startswith("basics.tokens") for i in skill) and len(skill) < len(everything)
    none = client.get("/items", params={"q": "zebra crossing"})
    assert _rows(none.text) == [] and "No item matches." in none.text
    assert client.get("/items", params={"skill": "no.such.skill"}).status_code == 422
    assert client.get("/items", params={"kind": "essay"}).status_code == 422
    assert client.get("/items", params={"page": "0"}).status_code == 422


def test_item_page_is_rendered_with_its_key(client: TestClient, ctx: AppContext) -> None:
    _instructor(client, ctx)
    page = client.get("/items/basics.tokens.count")
    assert page.status_code == 200
    assert "Roughly how many tokens is one English word on average?" in page.text
    key = re.search(r'<li class="option is-key"><span class="key">(\w)</span>', page.text)
    assert key and key.group(1) == "b"
    assert "Tokens are word pieces." in page.text  # the hints
    text_item = client.get("/items/basics.tokens.window").text
    assert "context window" in text_item and "Mentions the context window limit" in text_item
    assert client.get("/items/no.such.item").status_code == 404


@pytest.fixture
def ai_pages(tmp_path: Path) -> AppContext:
    return make_ctx(tmp_path, DEFAULT_PACK, llm_embed="openai_compat")


def test_a_large_bank_is_paged_and_shown_in_chinese(ai_pages: AppContext) -> None:
    with TestClient(create_app(ai_pages)) as client:
        _instructor(client, ai_pages)
        first = client.get("/items")
        assert len(_rows(first.text)) == PER_PAGE and 'rel="next"' in first.text
        second = client.get("/items", params={"page": "2"})
        assert set(_rows(second.text)).isdisjoint(_rows(first.text)) and 'rel="prev"' in second.text
        analysis = client.get("/reports/items", params={"skill": "llm.tokens"})
        rows = _rows(analysis.text)
        assert analysis.status_code == 200 and rows and all(r.startswith("llm.tokens.") for r in rows)
        client.get("/lang/zh_CN")
        zh = client.get("/items/llm.tokens.what-is-a-token")
        assert zh.status_code == 200 and "作为学员看到的样子" in zh.text
        # searching finds an item by its Chinese question too
        stem = re.search(r'<div class="stem"><p>([^<]{4,12})', zh.text)
        assert stem
        assert "llm.tokens.what-is-a-token" in _rows(client.get("/items", params={"q": stem.group(1)}).text)
