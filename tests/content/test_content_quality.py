"""The default pack's content rules: no item answerable by copying its lesson, no duplicate items
across skills, no test-wiseness; and the checks themselves catch what they claim to."""

from __future__ import annotations

import ast

import pytest

from learnloop.content.loader import load_pack
from learnloop.content.models import Item, Lesson
from learnloop.content.quality import (
    code_blocks,
    code_copy,
    content_free_pick,
    content_free_score,
    cross_skill_duplicates,
    lesson_copies,
    lessons_for,
    numbers_in,
    numeric_copy,
)
from learnloop.sandbox.judge import Limits, Sandbox
from tests.conftest import DEFAULT_PACK

PACK = load_pack(DEFAULT_PACK)
CODE_ITEMS = [i for i in PACK.items if i.kind == "code"]


def test_numbers_as_authors_write_them() -> None:
    found = numbers_in("1,000,000 x 1,536 x 4 = 6.144 x 10^9 bytes; kappa = -0.05; 41% of 2^20")
    for value in (1_000_000, 1536, 4, 6.144e9, -0.05, 41, 0.41, 2**20):
        assert any(abs(v - value) <= 1e-9 * max(1, abs(value)) for v in found), value


def _lesson(body: str) -> Lesson:
    return Lesson(id="lesson.x", title="X", skills=["x.y"], body=body)


def _numeric(stem: str, answer: float, tol: float = 0.005) -> Item:
    return Item(
        id="x.y.n",
        skills=["x.y"],
        kind="numeric",
        stem=stem,
        answer=answer,
        tolerance=tol,
        explanation="e",
        hints=["a", "b"],
    )


def test_numeric_copy_rule() -> None:
    lesson = _lesson("With TP = 40, FP = 10 and FN = 10, F1 = 80 / 100 = 0.8.")
    assert numeric_copy(_numeric("TP 40, FP 10, FN 10: what is F1?", 0.8), [lesson])
    # other numbers, other answer: not a copy
    assert numeric_copy(_numeric("TP 45, FP 5, FN 15: what is F1?", 0.818), [lesson]) is None
    # the same inputs without the answer written out are still the worked example
    assert numeric_copy(
        _numeric("TP 40, FP 12, FN 18: what is recall?", 0.69), [_lesson("TP = 40, FP = 12, FN = 18")]
    )


def test_code_copy_rule() -> None:
    lesson = _lesson("Example:\n\n```python\ndef mean(xs):\n    return sum(xs) / len(xs)\n```\n")
    assert code_blocks(lesson.body) == ["def mean(xs):\n    return sum(xs) / len(xs)\n"]
    item = Item(
        id="x.y.c",
        skills=["x.y"],
        kind="code",
        language="python",
        stem="Write mean(xs).",
        solution="def mean(xs):\n    return sum(xs) / len(xs)\n",
        cases=[{"name": "a", "call": "mean([1, 3])", "expect": 2.0, "public": True}],
        explanation="e",
        hints=["a", "b"],
    )
    assert code_copy(item, [lesson])
    renamed = item.model_copy(
        update={
            "solution": "def trimmed_mean(xs):\n    return 0\n",
            "cases": [item.cases[0].model_copy(update={"call": "trimmed_mean([1, 3])"})],  # type: ignore[index]
        }
    )
    assert code_copy(renamed, [lesson]) is None


def test_no_item_is_its_lessons_worked_example() -> None:
    found = lesson_copies(PACK)
    assert not found, "\n".join(f"{f.item_id}: {f.message}" for f in found)


def _renamed_blocks(item: Item, lessons: list[Lesson]) -> list[str]:
    """Each lesson code block, and the block with its one function bound to the name the item's
    cases call (pasting the lesson's code and renaming it is still copying)."""
    called = {
        n.func.id
        for case in item.cases or []
        for n in ast.walk(ast.parse(case.call))
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    }
    out = []
    for lesson in lessons:
        for block in code_blocks(lesson.body):
            out.append(block)
            try:
                defs = [n.name for n in ast.parse(block).body if isinstance(n, ast.FunctionDef)]
            except SyntaxError:
                continue
            for name in called:
                if len(defs) == 1 and defs[0] != name:
                    out.append(f"{block}\n{name} = {defs[0]}\n")
    return out


@pytest.mark.parametrize("item", CODE_ITEMS, ids=[i.id for i in CODE_ITEMS])
def test_lesson_code_does_not_solve_a_code_item(item: Item, sandbox: Sandbox) -> None:
    for source in _renamed_blocks(item, lessons_for(PACK, item)):
        verdict = sandbox.run(source, item.cases or [], Limits(timeout_s=10))
        assert not verdict.correct, f"{item.id}: the lesson's code passes every case:\n{source}"


def test_no_duplicate_items_across_skills() -> None:
    found = cross_skill_duplicates(PACK.items)
    assert not found, "\n".join(f"{f.item_id}: {f.message}" for f in found)


def test_duplicate_rule_catches_the_audit_pair() -> None:
    kv_a = _numeric("32 layers, 8 KV heads of dimension 128, 16-bit, 4,096 tokens: MiB?", 512)
    kv_b = _numeric("32 layers, 8 KV heads of dimension 128, 16-bit, 16 x 8,192 tokens: GiB?", 16)
    kv_b = kv_b.model_copy(update={"id": "c.d.kv", "skills": ["c.d"]})
    assert cross_skill_duplicates([kv_a, kv_b])
    a = _numeric("1,000,000 embeddings of 1,536 float32 dimensions: GB?", 6.144).model_copy(
        update={"id": "a.b.x", "skills": ["a.b"], "unit": "GB"}
    )
    b = _numeric("2,000,000 vectors of 768 float32 dimensions: GB?", 6.144).model_copy(
        update={"id": "c.d.y", "skills": ["c.d"], "unit": "GB"}
    )
    assert cross_skill_duplicates([a, b])
    assert not cross_skill_duplicates([a, b.model_copy(update={"skills": ["a.b"]})])  # same skill: a variant


def test_testwise_strategy() -> None:
    assert content_free_pick({"a": "It is always right", "b": "Short", "c": "A longer option"}) == ["c"]
    assert content_free_pick({"a": "仅此一项的很长很长的选项", "b": "较短", "c": "中等长度"}) == ["c"]
    assert content_free_pick({"a": "same", "b": "also"}) == ["a", "b"]


@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_choice_items_are_not_test_wise(language: str) -> None:
    items = PACK.localized(language).items
    strategy, chance, n = content_free_score(items)
    assert n >= 100
    by_domain: dict[str, list[Item]] = {}
    for item in items:
        by_domain.setdefault(item.id.split(".")[0], []).append(item)
    breakdown = ", ".join(
        f"{domain} {content_free_score(group)[0]:.2f}" for domain, group in sorted(by_domain.items())
    )
    assert strategy <= chance + 0.05, (
        f"{language}: dropping absolutes and picking the longest option scores {strategy:.3f} "
        f"against {chance:.3f} by chance over {n} choice items (by domain: {breakdown})"
    )
