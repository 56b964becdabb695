"""A decimal comma in a numeric answer: read as a decimal where that is the only reading, refused
with a message that says what to write where it is not, and never read as another number."""

from __future__ import annotations

import pytest

from learnloop import i18n
from learnloop.content.loader import load_pack
from learnloop.content.scoring import score_numeric
from learnloop.errors import InvalidInput
from learnloop.services import answers
from tests.conftest import MINI_PACK

PACK = load_pack(MINI_PACK)
NUMERIC = PACK.item("basics.tokens.cost")  # answer 1.0, tolerance 0.001


@pytest.mark.parametrize(
    ("typed", "read"),
    [
        ("1,5", "1.5"),
        ("-1,5", "-1.5"),
        ("\u22121,5", "\u22121.5"),
        (",5", ".5"),
        ("0,500", "0.500"),  # a thousands group never starts with 0
        ("12,3456", "12.3456"),
        ("12,5 %", "12.5%"),
        ("1,234,567", "1234567"),
        ("1,234.5", "1234.5"),
        ("1.234,5", "1234.5"),
        (" 2.75 ", "2.75"),
    ],
)
def test_commas_read_the_one_way_they_can_be(typed: str, read: str) -> None:
    assert answers.numeric_text(typed) == read


@pytest.mark.parametrize("typed", ["1,500", "12,345", "-1,500"])
def test_a_comma_that_could_be_either_is_refused_with_both_readings(typed: str) -> None:
    i18n.set_locale("en")
    with pytest.raises(InvalidInput) as caught:
        answers.numeric_text(typed)
    body = typed.lstrip("-")
    assert body.replace(",", ".") in caught.value.message and body.replace(",", "") in caught.value.message


@pytest.mark.parametrize("typed", ["abc", "1,2,3", "1,,5", "1,5e3", "1e400", "", "   "])
def test_what_is_not_a_number_is_refused(typed: str) -> None:
    with pytest.raises(InvalidInput):
        answers.numeric_text(typed)


def test_the_refusal_speaks_chinese() -> None:
    i18n.set_locale("zh_CN")
    try:
        with pytest.raises(InvalidInput) as caught:
            answers.numeric_text("abc")
        assert "不是数字" in caught.value.message
        with pytest.raises(InvalidInput) as caught:
            answers.numeric_text("1,500")
        assert (
            "1.500" in caught.value.message
            and "1500" in caught.value.message
            and "小数" in caught.value.message
        )
    finally:
        i18n.set_locale("en")


def test_clean_answer_scores_a_decimal_comma_as_the_decimal() -> None:
    right = answers.clean_answer(NUMERIC, {"value": "1,0"}, 10_000)
    assert right == {"value": "1.0"} and score_numeric(NUMERIC, right["value"]).correct
    wrong = answers.clean_answer(NUMERIC, {"value": "1,5"}, 10_000)
    assert not score_numeric(NUMERIC, wrong["value"]).correct  # 1.5, not 15, and not 1
    assert answers.clean_answer(NUMERIC, {"value": 1.0}, 10_000) == {"value": 1.0}  # numbers untouched
