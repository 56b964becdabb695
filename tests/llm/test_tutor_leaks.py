"""The tutor never gives away the answer of an unfinished item: the leak checks and redaction."""

from __future__ import annotations

from learnloop.content.loader import load_pack
from learnloop.content.models import Item
from learnloop.llm.leaks import leaks, redact
from tests.conftest import MINI_PACK

PACK = load_pack(MINI_PACK)
ITEMS = PACK.item_index()


def test_choice_key_and_option_text_are_leaks() -> None:
    item = ITEMS["basics.tokens.count"]  # key b: "About 1.3"
    assert leaks("The answer is b.", [item])
    assert leaks("I would pick (b) here.", [item])
    assert leaks("B is the correct one.", [item])
    assert leaks("It is about 1.3 tokens per word.", [item])
    assert not leaks("Think about how tokenizers split rare words into pieces. What do you expect?", [item])


def test_numeric_answer_is_a_leak_unless_it_is_in_the_question() -> None:
    item = ITEMS["basics.tokens.cost"]  # answer 1.0, stem mentions 2 and 500,000
    assert leaks("So the total is $1.", [item])
    assert leaks("That comes to 1.00 dollars.", [item])
    assert not leaks("Start from 500,000 tokens and the price of $2 per million [1].", [item])
    assert not leaks("See passage [1] for the price rule.", [item])


def test_reference_answer_paraphrase_is_a_leak() -> None:
    item = ITEMS["basics.tokens.window"]
    assert leaks(
        "Once the conversation exceeds the context window, the earliest tokens are truncated.", [item]
    )
    assert not leaks("What is the most text a model can read in one request?", [item])


def test_code_solution_is_a_leak() -> None:
    item = ITEMS["basics.prompts.code"]
    assert leaks(
        "Try this:\n```python\ndef fill(template, values):\n    return template.format(**values)\n```", [item]
    )
    assert not leaks("Python strings have a method that substitutes named placeholders. Which one?", [item])


def test_redaction_keeps_the_rest() -> None:
    item: Item = ITEMS["basics.tokens.count"]
    text, count = redact("Tokens are word pieces. The answer is b. What do you think?", [item], "[withheld]")
    assert count == 1
    assert "answer is b" not in text and "[withheld]" in text and "Tokens are word pieces." in text
