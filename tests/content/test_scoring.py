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
