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


#: words the synthetic stems are made of
WORDS = [f"w{k}{chr(97 + k % 26)}" for k in range(100)]


def _bank_of(tmp_path: Path, items: int) -> AppContext:
    """A database whose active pack is the mini pack with ``items`` more choice items, spread
    over its skills (made active as the pack loader leaves a pack: a validated ``Pack``)."""
    from learnloop.content.loader import load_pack
    from learnloop.content.models import Item
    from learnloop.services.packs import activate_pack
    from tests.conftest import MINI_PACK

    ctx = make_ctx(tmp_path)
    pack = load_pack(MINI_PACK)
    skills = [s.id for s in pack.skills]
    bulk = [
        Item.model_validate(
            {
                "id": f"{skills[n % len(skills)]}.bulk-{n:05d}",
                "skills": [skills[n % len(skills)]],
                "kind": "choice",
                "stem": f"Bulk question {n}: which {WORDS[n % 97]} {WORDS[(n * 7) % 89]} suits {WORDS[(n * 13) % 83]}?",
                "options": {"a": f"Option one of {n}", "b": f"Option two of {n}"},
                "key": "a",
                "explanation": f"Explanation {n}.",
                "hints": [f"Hint {n}.", f"Second hint {n}."],
            }
        )
        for n in range(items)
    ]
    activate_pack(ctx, pack.model_copy(update={"items": [*pack.items, *bulk]}))
    return ctx


def test_a_10000_item_bank_stays_one_page_long(tmp_path: Path) -> None:
    """Bad input of issue 17: a 10,000-row item bank. The page lists PER_PAGE rows with a pager,
    its size does not grow with the bank, the last page and a search reach any item, and a
    page past the end is the last one rather than an error."""
    big = _bank_of(tmp_path, 10_000)
    with TestClient(create_app(big)) as client:
        _instructor(client, big)
        first = client.get("/items")
        assert first.status_code == 200 and len(_rows(first.text)) == PER_PAGE
        pages = -(-(10_000 + 6) // PER_PAGE)
        assert f"Page 1 of {pages}" in first.text and 'rel="next"' in first.text
        assert len(first.text) < 120_000  # one page of rows, not the bank
        last = client.get("/items", params={"page": str(pages)})
        assert 'rel="next"' not in last.text and "bulk-09999" in "".join(_rows(last.text))
        beyond = client.get("/items", params={"page": "99999"})
        assert beyond.status_code == 200 and _rows(beyond.text) == _rows(last.text)
        found = client.get("/items", params={"q": "question 4321:"})
        assert [r.split(".bulk-")[1] for r in _rows(found.text)] == ["04321"]
        narrowed = client.get("/items", params={"skill": "basics.tokens", "kind": "choice", "page": "3"})
        rows = _rows(narrowed.text)
        assert len(rows) == PER_PAGE and all(r.startswith("basics.tokens.") for r in rows)
        assert "Page 3 of" in narrowed.text and 'rel="prev"' in narrowed.text
        one = client.get(f"/items/{rows[0]}")
        assert one.status_code == 200


def test_the_duplicate_check_compares_every_pair_that_could_match() -> None:
    """The pack loader's cross-skill duplicate check looks only at candidate pairs (prefix
    filtering) so that a 10,000-item bank loads; every pair of stems with Jaccard >= 0.85,
    found by comparing all pairs of 600 default-pack items and near-copies of them, is one."""
    import itertools
    import random

    from learnloop.content.loader import load_pack
    from learnloop.content.quality import _candidate_pairs, _tokens, cross_skill_duplicates

    items = [i for i in load_pack(DEFAULT_PACK).items if not i.retired][:300]
    rng = random.Random(7)
    copies = []
    for k, item in enumerate(rng.sample(items, 300)):
        stem = item.stem.split()
        if k % 3 and len(stem) > 8:  # change one word in two thirds of them
            stem[rng.randrange(len(stem))] = rng.choice(["new", "other", "这个", "value"])
        copies.append(
            item.model_copy(update={"id": f"copy.{k}", "skills": [f"copy.s{k}"], "stem": " ".join(stem)})
        )
    pool = items + copies
    words = [_tokens(i.stem) for i in pool]
    close = {
        (a, b)
        for a, b in itertools.combinations(range(len(pool)), 2)
        if words[a] and words[b] and len(words[a] & words[b]) / len(words[a] | words[b]) >= 0.85
    }
    assert len(close) >= 250
    candidates = _candidate_pairs(pool, words)
    assert close <= set(candidates) and candidates == sorted(candidates)
    assert len(candidates) < len(pool) * (len(pool) - 1) // 2 // 20  # a few, not all pairs
    flagged = {f.item_id for f in cross_skill_duplicates(pool)}
    assert {f"copy.{k}" for k in range(0, 300, 3)} <= flagged  # the unchanged copies, at least
