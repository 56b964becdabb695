"""A second reviewer when the organisation requires it: the writer of a draft's version cannot
publish it (403 with the reason, on the page and in the service), another instructor or admin of
the same organisation can; changes are saved for review and make the saver the writer; the rule
and the drafts of one organisation never reach another."""

from __future__ import annotations

import html
import re

import pytest
import yaml
from fastapi.testclient import TestClient

from learnloop.errors import Forbidden, InvalidInput, NotFound
from learnloop.server import create_app
from learnloop.services import auth, authoring, item_bank
from learnloop.services.auth import CurrentUser
from learnloop.services.context import AppContext
from learnloop.store.models import ItemDraft, Organisation, User

PASSWORD = "correct horse battery"

#: a complete draft for the mini pack (one language, nothing copied from the lesson)
DRAFT = {
    "id": "basics.tokens.draft-1",
    "skills": ["basics.tokens"],
    "kind": "choice",
    "difficulty": 0.0,
    "stem": "Which of these is closest to what a language model reads?",
    "options": {"a": "Pieces of words", "b": "Whole paragraphs", "c": "Single bits"},
    "key": "a",
    "explanation": "Text is split into sub-word units before the model sees it.",
    "hints": ["Smaller than a word, larger than a letter.", "Think of how rare words get split."],
}


def _org(ctx: AppContext, slug: str) -> str:
    with ctx.session() as session:
        session.add(Organisation(name=slug.title(), slug=slug, join_code=f"{slug}-join"))
    return f"{slug}-join"


#: each member's session token and CSRF token, from their sign-up (no second password hash)
SESSIONS: dict[str, tuple[str, str]] = {}


def _member(ctx: AppContext, email: str, join_code: str, role: str) -> CurrentUser:
    result = auth.signup(
        ctx, email=email, name=email.split("@")[0].title(), password=PASSWORD, join_code=join_code
    )
    SESSIONS[email] = (result.token, result.csrf_token)
    with ctx.session() as session:
        row = session.get(User, result.user.id)
        assert row is not None
        row.role = role
    return result.user.model_copy(update={"role": role})


def _draft(ctx: AppContext, author: CurrentUser, stem: str = DRAFT["stem"]) -> int:  # type: ignore[assignment]
    """A drafted item as the model would leave it, asked for by ``author``."""
    with ctx.session() as session:
        row = ItemDraft(
            org_id=author.org_id,
            skill_id="basics.tokens",
            lesson_id="lesson.tokens",
            item={**DRAFT, "stem": stem},
            provider="model:test",
            similarity=0.0,
            status="pending",
            created_by=author.id,
        )
        session.add(row)
        session.flush()
        return row.id


def _csrf(text: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', text)
    assert match, "no CSRF token on the page"
    return match.group(1)


def _as(client: TestClient, email: str) -> str:
    """Act as ``email`` from now on; their CSRF token."""
    token, csrf = SESSIONS[email]
    client.cookies.set("learnloop_session", token)
    return csrf


def test_the_writer_cannot_publish_alone_when_the_organisation_requires_a_second_reviewer(
    ctx: AppContext,
) -> None:
    code = _org(ctx, "alpha")
    ana = _member(ctx, "ana@alpha.example", code, "instructor")
    ben = _member(ctx, "ben@alpha.example", code, "instructor")
    admin = _member(ctx, "ada@alpha.example", code, "admin")
    first, second, third = _draft(ctx, ana), _draft(ctx, ana, "Which unit sets a model's context limit?"), 0
    # off (the default): the writer publishes alone, as before
    assert not authoring.second_review_required(ctx, ana)
    assert authoring.approve(ctx, ana, first).status == "approved"

    with pytest.raises(Forbidden):  # only admins set the rule
        authoring.set_second_review(ctx, ana, True)
    assert authoring.set_second_review(ctx, admin, True)
    with pytest.raises(Forbidden, match="another instructor or admin"):
        authoring.approve(ctx, ana, second)
    # the writer's own edits do not make a second person of them
    edited = yaml.safe_dump({**DRAFT, "stem": "Which unit limits what a model can read at once?"})
    with pytest.raises(Forbidden):
        authoring.approve(ctx, ana, second, edited)
    # a reviewer who changes the draft saves the change for review: then they are its writer
    with pytest.raises(Forbidden, match="save your changes for review"):
        authoring.approve(ctx, ben, second, edited)
    with pytest.raises(InvalidInput, match="Nothing was changed"):
        authoring.save_edits(ctx, ben, second, yaml.safe_dump(authoring.drafts(ctx, ben)[0].item))
    saved = authoring.save_edits(ctx, ben, second, edited)
    assert saved.status == "pending" and saved.writer_id == ben.id
    with pytest.raises(Forbidden):
        authoring.approve(ctx, ben, second)
    # Ana reviews Ben's version: two people have read what is published
    published = authoring.approve(ctx, ana, second)
    assert published.status == "approved" and published.reviewed_by == ana.id
    assert published.item["stem"] == "Which unit limits what a model can read at once?"
    # an admin of the organisation is a second reviewer too
    third = _draft(ctx, ana, "What does a tokenizer produce from text?")
    assert authoring.approve(ctx, admin, third).reviewed_by == admin.id
    bank = {r.id for r in item_bank.item_rows(ctx, ana)}
    assert {f"basics.tokens.authored-{n}" for n in (first, second, third)} <= bank


def test_the_rule_and_the_drafts_stay_in_their_organisation(ctx: AppContext) -> None:
    a, b = _org(ctx, "alpha"), _org(ctx, "beta")
    ana = _member(ctx, "ana@alpha.example", a, "instructor")
    admin_a = _member(ctx, "ada@alpha.example", a, "admin")
    bo = _member(ctx, "bo@beta.example", b, "instructor")
    admin_b = _member(ctx, "bea@beta.example", b, "admin")
    authoring.set_second_review(ctx, admin_a, True)
    assert authoring.second_review_required(ctx, ana) and not authoring.second_review_required(ctx, bo)
    in_a, in_b = _draft(ctx, ana), _draft(ctx, bo)
    # another organisation's admin is no second reviewer: the draft is not theirs to see
    for outsider in (admin_b, bo):
        with pytest.raises(NotFound):
            authoring.approve(ctx, outsider, in_a)
        with pytest.raises(NotFound):
            authoring.save_edits(ctx, outsider, in_a, yaml.safe_dump({**DRAFT, "stem": "Changed elsewhere?"}))
    # beta does not require a second reviewer: its writer publishes alone; alpha's rule is untouched
    assert authoring.approve(ctx, bo, in_b).status == "approved"
    authoring.set_second_review(ctx, admin_b, False)
    assert authoring.second_review_required(ctx, ana)
    with pytest.raises(Forbidden):
        authoring.approve(ctx, ana, in_a)


def _form(text: str, draft: int) -> str:
    return text.split(f'data-draft-id="{draft}"', 1)[1].split("</article>")[0]


def test_the_pages_show_the_rule_and_refuse_self_approval_with_403(ctx: AppContext) -> None:
    code = _org(ctx, "alpha")
    ana = _member(ctx, "ana@alpha.example", code, "instructor")
    _member(ctx, "ben@alpha.example", code, "instructor")
    _member(ctx, "ada@alpha.example", code, "admin")
    draft = _draft(ctx, ana)
    review = f"/authoring/drafts/{draft}"
    with TestClient(create_app(ctx)) as client:
        # the admin turns the rule on (a checkbox on the organisation page)
        token = _as(client, "ada@alpha.example")
        setting = client.get("/admin").text.split('id="publishing"')[1][:800]
        assert 'name="second_review"' in setting and "checked" not in setting
        bad = client.post("/admin/publishing", data={"second_review": "yes", "csrf_token": token})
        assert bad.status_code == 422
        r = client.post("/admin/publishing", data={"second_review": "on", "csrf_token": token})
        assert r.status_code == 200 and " checked>" in r.text.split('id="publishing"')[1][:800]

        # the writer sees why there is no approve button, and a hand-made approval is a 403
        token = _as(client, "ana@alpha.example")
        page = client.get("/authoring")
        assert 'id="second-review"' in page.text
        form = _form(page.text, draft)
        assert f'id="own-{draft}"' in form and 'value="approve"' not in form and 'value="save"' in form
        r = client.post(review, data={"action": "approve", "item_yaml": "", "csrf_token": token})
        assert r.status_code == 403
        assert "another instructor or admin of your organisation must approve it" in html.unescape(r.text)
        api = client.post(
            f"/api/v1/authoring/drafts/{draft}/approve", json={}, headers={"X-CSRF-Token": token}
        )
        assert api.status_code == 403 and "second reviewer" in api.json()["error"]["message"]

        # the reviewer's change is saved for review, not published by them
        token = _as(client, "ben@alpha.example")
        form = _form(client.get("/authoring").text, draft)
        assert 'value="approve"' in form and "version by Ana" in form
        textarea = re.search(r"<textarea[^>]*>(.*?)</textarea>", form, re.S)
        assert textarea
        document = yaml.safe_load(html.unescape(textarea.group(1)))
        changed = yaml.safe_dump({**document, "explanation": "Text becomes sub-word pieces first."})
        refused = client.post(review, data={"action": "approve", "item_yaml": changed, "csrf_token": token})
        assert refused.status_code == 403 and "Text becomes sub-word pieces first." in refused.text  # kept
        r = client.post(
            review, data={"action": "save", "item_yaml": changed, "csrf_token": token}, follow_redirects=False
        )
        assert r.status_code == 303 and r.headers["location"] == f"/authoring?saved={draft}"
        form = _form(client.get(r.headers["location"]).text, draft)
        assert "Saved for review." in form and 'value="approve"' not in form

        # the first writer approves the reviewer's version: published, in the item bank
        token = _as(client, "ana@alpha.example")
        r = client.post(
            review, data={"action": "approve", "item_yaml": "", "csrf_token": token}, follow_redirects=False
        )
        assert r.status_code == 303
        assert f"basics.tokens.authored-{draft}" in client.get("/items", params={"q": "authored"}).text
        client.get("/lang/zh_CN")
        assert "你的组织要求第二位审核人" in client.get("/authoring").text
