"""Scoring of choice, numeric and text answers."""

from __future__ import annotations

import pytest

from learnloop.content.loader import load_pack
from learnloop.content.scoring import AnswerError, parse_number, score_answer
from tests.conftest import MINI_PACK

PACK = load_pack(MINI_PACK)


def test_choice() -> None:
    item = PACK.item("basics.tokens.count")
    assert score_answer(item, {"choice": "b"}).correct
    assert not score_answer(item, {"choice": "a"}).correct
    with pytest.raises(AnswerError):
        score_answer(item, {"choice": "z"})


@pytest.mark.parametrize(
    "raw, ok", [("1", True), ("1.0005", True), (" 1,000 ", False), ("100%", True), (1, True), ("1.01", False)]
)
def test_numeric(raw: object, ok: bool) -> None:
    assert score_answer(PACK.item("basics.tokens.cost"), {"value": raw}).correct is ok


@pytest.mark.parametrize("raw", ["abc", "nan", "inf", None, True, [1]])
def test_numeric_rejects_non_numbers(raw: object) -> None:
    with pytest.raises(AnswerError):
        score_answer(PACK.item("basics.tokens.cost"), {"value": raw})


def test_parse_number_forms() -> None:
    assert parse_number("\u22122.5") == -2.5
    assert parse_number("25%") == 0.25


def test_text_rubric() -> None:
    item = PACK.item("basics.tokens.window")
    full = score_answer(item, {"text": "Past the CONTEXT WINDOW the oldest messages get truncated."})
    assert full.correct and full.score == 1.0
    half = score_answer(item, {"text": "Because of the context length."})
    assert not half.correct and half.score == 0.5 and half.feedback
    with pytest.raises(AnswerError):
        score_answer(item, {"text": "   "})


@pytest.mark.parametrize(
    "text, met",
    [
        # a stem meets its inflections, at the start of a word only
        ("Past the context window, old turns get truncated.", {"window", "truncation"}),
        ("Past the context window, the untruncated log is kept in storage.", {"window"}),
        # a negated mention in the same clause does not state the criterion
        ("Past the context window, the oldest tokens are not truncated.", {"window"}),
        ("Past the context window nothing is ever dropped.", {"window"}),
        ("It isn't cut off: the context window grows.", {"window"}),
        # a negation in an earlier clause does not reach the keyword
        ("It is not magic: past the context window old turns are removed.", {"window", "truncation"}),
        # Chinese has no spaces: any occurrence counts, negation right before it does not
        ("超出 context window 后，最早的消息被 cut off。", {"window", "truncation"}),
        ("超出 context window 后，最早的消息不会 removed", {"window"}),
    ],
)
def test_text_rubric_reads_what_the_answer_states(text: str, met: set[str]) -> None:
    assert set(score_answer(PACK.item("basics.tokens.window"), {"text": text}).criteria_met) == met


def test_a_criterion_the_reference_states_negated_accepts_negation() -> None:
    item = PACK.item("basics.tokens.window").model_copy(
        update={"reference_answers": ["The model does not remember early turns beyond the context window."]}
    )
    rubric = [
        c.model_copy(update={"keywords": ["remember"]}) if c.id == "truncation" else c for c in item.rubric
    ]
    item = item.model_copy(update={"rubric": rubric})
    answer = {"text": "Past its context window the model doesn't remember them."}
    assert set(score_answer(item, answer).criteria_met) == {"window", "truncation"}


def test_chinese_compounds_with_a_negation_character_negate_nothing() -> None:
    from learnloop.content.scoring import _negated

    for text, keyword in [("别人反编译", "反编译"), ("非常快", "快"), ("特别慢", "慢"), ("不仅便宜", "便宜")]:
        assert not _negated(text, text.index(keyword)), text
    for text, keyword in [("不会反编译", "反编译"), ("没有缓存", "缓存"), ("别人不会反编译", "反编译")]:
        assert _negated(text, text.index(keyword)), text
