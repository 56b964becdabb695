"""The default pack is product: its size, coverage and every key are checked here."""

from __future__ import annotations

from collections import Counter

import pytest

from learnloop.content.loader import load_pack
from learnloop.content.scoring import score_answer
from learnloop.sandbox.judge import Limits, Sandbox
from tests.conftest import DEFAULT_PACK

PACK = load_pack(DEFAULT_PACK)
CODE_ITEMS = [i for i in PACK.items if i.kind == "code"]


def test_framework_size_and_coverage() -> None:
    domains = {s.domain for s in PACK.skills}
    assert len(PACK.skills) >= 24 and len(domains) >= 6
    assert len(PACK.roles) >= 5
    assert len(PACK.items) >= 240
    per_skill = Counter(s for i in PACK.items for s in i.skills[:1])
    thin = {s.id: per_skill[s.id] for s in PACK.skills if per_skill[s.id] < 8}
    assert not thin, f"skills with fewer than 8 items: {thin}"
    assert {i.kind for i in PACK.items} == {"choice", "numeric", "text", "code"}
    assert len(CODE_ITEMS) >= 10
    lessons = {s for lesson in PACK.lessons for s in lesson.skills}
    assert not {s.id for s in PACK.skills} - lessons, "every skill needs a lesson"


def test_every_item_has_explanation_and_hint_ladder() -> None:
    for item in PACK.items:
        assert item.explanation.strip(), item.id
        assert 2 <= len(item.hints) <= 3, item.id
        assert len(set(item.hints)) == len(item.hints), f"{item.id}: repeated hint"


def test_hints_never_give_away_the_key() -> None:
    for item in PACK.items:
        if item.kind == "choice" and item.options and item.key:
            key_text = item.options[item.key].strip().lower()
            if len(key_text) > 12:
                for hint in item.hints:
                    assert key_text not in hint.lower(), f"{item.id}: a hint contains the keyed option"


def test_reference_answers_pass_their_own_rubric() -> None:
    for item in PACK.items:
        if item.kind == "text":
            for ref in item.reference_answers or []:
                assert score_answer(item, {"text": ref}).correct, f"{item.id}: reference answer fails rubric"


def test_choice_options_are_distinct() -> None:
    for item in PACK.items:
        if item.kind == "choice":
            texts = [t.strip().lower() for t in (item.options or {}).values()]
            assert len(set(texts)) == len(texts), item.id
            assert 3 <= len(texts) <= 5, item.id


def test_role_targets_reachable() -> None:
    items_for = Counter(s for i in PACK.items for s in i.skills)
    for role in PACK.roles:
        for skill in role.targets:
            assert items_for[skill] >= 8, f"{role.id}: target {skill} has too few items"


@pytest.mark.parametrize("item", CODE_ITEMS, ids=[i.id for i in CODE_ITEMS])
def test_code_item_reference_solution_passes_and_starter_fails(item, sandbox: Sandbox) -> None:  # type: ignore[no-untyped-def]
    limits = Limits(timeout_s=10)
    solved = sandbox.run(item.solution, item.cases, limits)
    assert solved.correct, f"{item.id}: {solved.messages()}"
    starter = sandbox.run(item.starter or "", item.cases, limits)
    assert not starter.correct, f"{item.id}: the starter code already passes the cases"
    hidden = [c for c in item.cases if not c.public]
    assert hidden, f"{item.id}: every case is public, so a learner can hard-code them"
