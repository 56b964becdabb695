"""Drafted items are validated, de-duplicated and reach learners only once an instructor approves,
and then only the learners of that instructor's organisation."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from learnloop.content.loader import load_pack
from learnloop.errors import Forbidden, InvalidInput, LearnloopError, NotFound
from learnloop.llm.authoring import PLACEHOLDER, copied_from, deduplicate, parse_drafts, placeholders
from learnloop.services import auth, authoring, item_bank, practice
from learnloop.services.auth import CurrentUser
from learnloop.services.context import AppContext
from learnloop.store.models import Organisation, PendingItem, User, utcnow
from tests.conftest import DEFAULT_PACK, MINI_PACK
from tests.llm.conftest import make_ctx, make_user


def test_model_drafts_are_validated_against_the_pack_schema() -> None:
    raw = (
        '{"items": [{"kind": "choice", "stem": "Which is a token?", "options": {"a": "A word piece", "b": "A GPU"},'
        ' "key": "a", "explanation": "Tokens are pieces.", "hints": ["Think small.", "Pieces."]},'
        ' {"kind": "choice", "stem": "Broken", "options": {"a": "x"}, "key": "z", "explanation": "-",'
        ' "hints": ["h"]}]}'
    )
    items, problems = parse_drafts(raw, "basics.tokens", "basics.tokens.draft")
    assert [i.stem for i in items] == ["Which is a token?"] and items[0].skills == ["basics.tokens"]
    assert len(problems) == 1 and problems[0].startswith("draft 2")
    assert parse_drafts("not json", "basics.tokens", "p") == (
        [],
        ["the model's reply is not a JSON list of items"],
    )


def test_near_duplicates_of_the_bank_are_dropped() -> None:
    bank = load_pack(MINI_PACK).items
    copy = bank[0].model_copy(update={"id": "copy.of.first"})
    kept, dropped = deduplicate([copy], bank, embed=None)
    assert dropped == [copy] and kept == []


def test_copies_of_the_lesson_are_found_in_either_language() -> None:
    lesson = (
        "LLMs do not read characters or words. They read **tokens**: pieces of text from a fixed vocabulary."
    )
    doc = {
        "stem": "Why?",
        "reference_answers": ["They read tokens: pieces of text from a fixed vocabulary, we said."],
    }
    assert [path for path, _ in copied_from(doc, [lesson])] == ["reference_answers[0]"]
    assert copied_from({"stem": "Models see pieces of text, not letters."}, [lesson]) == []
    zh = "大语言模型读的不是字符，而是词元：来自固定词表的文本片段。"
    assert [p for p, _ in copied_from({"x": {"y": "它们读的是词元：来自固定词表的文本片段"}}, [zh])] == [
        "x.y"
    ]


def _org(ctx: AppContext, slug: str) -> str:
    with ctx.session() as session:
        session.add(Organisation(name=slug.title(), slug=slug, join_code=f"{slug}-join"))
    return f"{slug}-join"


def _member(ctx: AppContext, email: str, join_code: str, role: str = "learner") -> CurrentUser:
    user = auth.signup(ctx, email=email, name="Member", password="correct horse", join_code=join_code).user
    if role != "learner":
        with ctx.session() as session:
            row = session.get(User, user.id)
            assert row is not None
            row.role = role
        user = user.model_copy(update={"role": role})
    return user


def _complete(value: Any, path: str = "") -> Any:
    """What an author writes in place of each ‹marker› (a distinct sentence per field)."""
    if isinstance(value, str):
        return PLACEHOLDER.sub(f"Written by the author for {path}", value)
    if isinstance(value, dict):
        return {k: _complete(v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_complete(v, f"{path}[{n}]") for n, v in enumerate(value)]
    return value


def _completed_yaml(draft: authoring.DraftView) -> str:
    return yaml.safe_dump(_complete(draft.item), allow_unicode=True, sort_keys=False)


def test_offline_drafts_are_templates_from_the_lesson_terms(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, DEFAULT_PACK, llm_embed="openai_compat")
    learner = make_user(ctx, enrol=None)
    teacher = make_user(ctx, email="t@example.org", role="instructor", enrol=None)
    with pytest.raises(Forbidden):
        authoring.generate_drafts(ctx, learner, "llm.tokens", 2)
    result = authoring.generate_drafts(ctx, teacher, "llm.tokens", 4)
    assert any("‹…›" in n for n in result.notices)
    drafts = result.drafts
    # one draft per term the lesson sets in bold (three), not bold sentences or amounts
    assert [d.item["kind"] for d in drafts] == ["choice", "text", "choice"]
    lesson = (DEFAULT_PACK / "lessons" / "lesson.llm.tokens.md").read_text()
    bold = {t.lower() for t in re.findall(r"\*\*([^*]+)\*\*", lesson)}
    for d in drafts:
        assert d.status == "pending" and d.provider == "offline-template" and d.to_complete
        if d.item["kind"] == "choice":
            options = d.item["options"]
            # the key is the term asked about; the distractors are other terms, none a sentence
            assert d.item["key"] in options and len(options) == 4 and len(set(options.values())) == 4
            assert options[d.item["key"]].lower() in bold
            assert all(len(o.split()) <= 5 and not o.endswith(".") for o in options.values())
        else:
            keywords = [k for c in d.item["rubric"] for k in c["keywords"]]
            assert keywords[0] in bold and not any(k in ("small", "large") for k in keywords)
            assert all(PLACEHOLDER.search(a) for a in d.item["reference_answers"])
        # a skeleton for the pack's other language, to be written by the author too
        assert placeholders(d.item["translations"]["zh-CN"])
    with pytest.raises(InvalidInput) as refused:
        authoring.approve(ctx, teacher, drafts[0].id)
    assert "stem" in refused.value.details and "translations.zh-CN.stem" in refused.value.details
    # an item without its Chinese texts is refused: the pack promises both languages
    en_only = _complete({k: v for k, v in drafts[0].item.items() if k != "translations"})
    with pytest.raises(InvalidInput) as untranslated:
        authoring.approve(ctx, teacher, drafts[0].id, yaml.safe_dump(en_only, allow_unicode=True))
    assert "translations.zh-CN.stem: missing" in untranslated.value.details
    # a reference answer copied from the lesson is refused
    copied = _complete(drafts[1].item)
    copied["reference_answers"] = [
        "Vocabularies learned from English-heavy data split other scripts into more, shorter pieces."
    ]
    with pytest.raises(InvalidInput) as copying:
        authoring.approve(ctx, teacher, drafts[1].id, yaml.safe_dump(copied, allow_unicode=True))
    assert copying.value.details[0].startswith("reference_answers[0]: ")
    with pytest.raises(InvalidInput, match="line 2"):
        authoring.approve(ctx, teacher, drafts[1].id, "kind: text\n  stem: [unclosed\n")
    approved = authoring.approve(ctx, teacher, drafts[1].id, _completed_yaml(drafts[1]))
    assert approved.status == "approved" and approved.item["id"] == f"llm.tokens.authored-{drafts[1].id}"
    authoring.reject(ctx, teacher, drafts[0].id)
    assert [d.id for d in authoring.drafts(ctx, teacher, "pending")] == [drafts[2].id]


def test_an_approved_item_is_served_only_in_its_organisation(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, DEFAULT_PACK, llm_embed="openai_compat")
    a_code, b_code = _org(ctx, "alpha"), _org(ctx, "beta")
    teacher_a = _member(ctx, "ta@example.org", a_code, "instructor")
    teacher_b = _member(ctx, "tb@example.org", b_code, "instructor")
    learner_a = _member(ctx, "la@example.org", a_code)
    learner_b = _member(ctx, "lb@example.org", b_code)
    with ctx.session() as session:
        version = ctx.active_pack(session).pack.meta.version
    first = authoring.generate_drafts(ctx, teacher_a, "llm.tokens", 2)
    # de-duplicated within the organisation only: beta drafts the same templates, alpha's are dropped
    assert len(authoring.generate_drafts(ctx, teacher_b, "llm.tokens", 2).drafts) == 2
    again = authoring.generate_drafts(ctx, teacher_a, "llm.tokens", 2)
    assert again.drafts == [] and again.duplicates_dropped == 2
    assert all(d.id not in {x.id for x in first.drafts} for d in authoring.drafts(ctx, teacher_b))
    with pytest.raises(NotFound):  # another organisation's draft
        authoring.approve(ctx, teacher_b, first.drafts[0].id, _completed_yaml(first.drafts[0]))
    approved = authoring.approve(ctx, teacher_a, first.drafts[0].id, _completed_yaml(first.drafts[0]))
    item_id = approved.item["id"]

    with ctx.session() as session:
        shared = ctx.active_pack(session)
        view_a, view_b = (
            ctx.active_pack(session, teacher_a.org_id),
            ctx.active_pack(session, teacher_b.org_id),
        )
        # the shared pack is unchanged (no new version for every organisation)
        assert shared.pack.meta.version == version and item_id not in shared.items
        assert view_b is shared and item_id not in view_b.items
        assert item_id in view_a.items and view_a.authored == {item_id}
        assert item_id in {i.id for i in view_a.items_by_skill["llm.tokens"]}
        # the Chinese view serves the author's Chinese texts
        zh = view_a.localized("zh-CN").items[item_id]
        assert zh.stem == approved.item["translations"]["zh-CN"]["stem"]
    # the item bank and the item page: alpha's instructors only
    assert item_id in {r.id for r in item_bank.item_rows(ctx, teacher_a)}
    assert item_id not in {r.id for r in item_bank.item_rows(ctx, teacher_b)}
    assert item_bank.item_detail(ctx, teacher_a, item_id)["id"] == item_id
    with pytest.raises(NotFound):
        item_bank.item_detail(ctx, teacher_b, item_id)
    # practice: alpha's learner can be given it and answer it; beta's cannot
    for learner in (learner_a, learner_b):
        practice.enrol(ctx, learner, "llm-app-engineer")
        with ctx.session() as session:
            session.add(
                PendingItem(
                    user_id=learner.id,
                    item_id=item_id,
                    reason="practice",
                    presented_at=utcnow(),
                    hints_shown=0,
                    presentation_id=f"p{learner.id}",
                )
            )
    shown = practice.next_item(ctx, learner_a)
    assert shown.item["id"] == item_id
    key = approved.item["key"]
    assert practice.answer(ctx, learner_a, item_id, {"choice": key}).correct
    assert practice.next_item(ctx, learner_b).item["id"] != item_id  # not in beta's pack: replaced
    with pytest.raises(LearnloopError):
        practice.answer(ctx, learner_b, item_id, {"choice": key})
