"""Drafted items are validated, de-duplicated and reach learners only once an instructor approves."""

from __future__ import annotations

from pathlib import Path

import pytest

from learnloop.content.loader import load_pack
from learnloop.errors import Forbidden, InvalidInput
from learnloop.llm.authoring import deduplicate, parse_drafts
from learnloop.services import authoring
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


def test_offline_drafts_wait_for_review_then_publish_a_new_pack_version(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, DEFAULT_PACK, llm_embed="openai_compat")
    learner = make_user(ctx, enrol=None)
    teacher = make_user(ctx, email="t@example.org", role="instructor", enrol=None)
    with pytest.raises(Forbidden):
        authoring.generate_drafts(ctx, learner, "llm.tokens", 2)
    result = authoring.generate_drafts(ctx, teacher, "llm.tokens", 2)
    assert len(result.drafts) == 2 and all(d.status == "pending" for d in result.drafts)
    with ctx.session() as session:
        before = ctx.active_pack(session)
        assert not any(i.id.startswith("llm.tokens.authored") for i in before.pack.items)
        version = before.pack.meta.version
    with pytest.raises(InvalidInput):
        authoring.approve(ctx, teacher, result.drafts[0].id, "kind: choice\nstem: x\n")
    approved = authoring.approve(ctx, teacher, result.drafts[0].id)
    authoring.reject(ctx, teacher, result.drafts[1].id)
    with ctx.session() as session:
        after = ctx.active_pack(session)
        assert f"llm.tokens.authored-{approved.id}" in after.items
        assert after.pack.meta.version == f"{version}-a1"
        assert after.row_id > before.row_id
    assert authoring.drafts(ctx, teacher, "pending") == []
