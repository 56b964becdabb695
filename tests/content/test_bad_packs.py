"""A pack with a missing translation, an answer copied from its lesson, a bad family or a
duplicate item across skills is refused with every problem listed by file and line, and
`learnloop import` imports nothing."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from learnloop.content.loader import PackError, load_pack
from tests.conftest import MINI_PACK
from tests.test_cli import run

LESSON = """---
id: lesson.tokens-cost
title: Paying for tokens
skills: [basics.tokens]
---

Worked example: 3,000 input tokens at $2.50 per million cost 3,000 x 2.5 / 1,000,000 = $0.0075.
"""

ITEMS = """# four broken items
- id: basics.tokens.copied
  skills: [basics.tokens]
  kind: numeric
  stem: What do 3,000 input tokens cost at $2.50 per million tokens?
  answer: 0.0075
  tolerance: 0.00001
  unit: USD
  explanation: 3,000 x 2.5 / 1,000,000.
  hints: ["Prices are per million.", "Multiply, then divide."]
- id: basics.tokens.family
  skills: [basics.tokens]
  kind: numeric
  stem: "{n} tokens at ${p} per million: how many dollars?"
  tolerance: 0.0001
  explanation: "{n} x {p} / 1,000,000 = {answer}."
  hints: ["Prices are per million.", "Multiply, then divide."]
  family:
    params: {n: {int: [1000, 5000]}, p: {choice: [1, 2, 3]}}
    answer: "n * p / 1000000 + 1"
    examples: [{n: 2000, p: 2, answer: 0.004}]
- id: basics.prompts.budget
  skills: [basics.prompts]
  kind: numeric
  stem: A prompt of 1,200 tokens costs how many dollars at $5 per million?
  answer: 0.006
  tolerance: 0.00001
  unit: USD
  explanation: 1,200 x 5 / 1,000,000.
  hints: ["Prices are per million.", "Multiply, then divide."]
- id: apps.rag.budget
  skills: [apps.rag]
  kind: numeric
  stem: A retrieved context of 2,000 tokens costs how many dollars at $3 per million?
  answer: 0.006
  tolerance: 0.00001
  unit: USD
  explanation: 2,000 x 3 / 1,000,000.
  hints: ["Prices are per million.", "Multiply, then divide."]
"""


def _broken(tmp_path: Path) -> Path:
    root = tmp_path / "broken"
    shutil.copytree(MINI_PACK, root)
    (root / "lessons" / "cost.md").write_text(LESSON)
    (root / "items" / "broken.yaml").write_text(ITEMS)
    meta = root / "pack.yaml"
    meta.write_text(meta.read_text().replace("version: 0.1.0\n", "version: 0.1.0\nlanguages: [zh-CN]\n"))
    return root


EXPECTED = [
    # an answer copied from its lesson
    r"items/broken.yaml:2: item 'basics.tokens.copied': numeric answer 0.0075 .* lesson.tokens-cost",
    # a family whose generator disagrees with its worked example
    r"items/broken.yaml:\d+: item 'basics.tokens.family': family: example 1: the generator's key 1.004 is out of "
    r"tolerance",
    # a duplicate item across skills
    r"items/broken.yaml:31: item 'apps.rag.budget': duplicates item 'basics.prompts.budget' of another skill",
    # a missing translation of a language the pack promises
    r"items/basics.yaml:1: item 'basics.tokens.count': no zh-CN translation of stem",
]


def test_every_problem_is_listed_with_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(PackError) as info:
        load_pack(_broken(tmp_path))
    text = "\n".join(str(p) for p in info.value.problems)
    for pattern in EXPECTED:
        assert re.search(pattern, text), f"{pattern}\n---\n{text}"


def test_missing_translations_are_listed_once_the_items_are_sound(tmp_path: Path) -> None:
    root = _broken(tmp_path)
    (root / "items" / "broken.yaml").unlink()
    (root / "lessons" / "cost.md").unlink()
    with pytest.raises(PackError) as info:
        load_pack(root)
    text = "\n".join(str(p) for p in info.value.problems)
    assert re.search(EXPECTED[3], text), text
    assert "lessons/tokens.md:1: lesson 'lesson.tokens': no zh-CN translation" in text


def test_import_refuses_and_imports_nothing(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    assert run(["init"], db).returncode == 0
    done = run(["import", str(_broken(tmp_path))], db)
    assert done.returncode == 2
    for pattern in EXPECTED:
        assert re.search(pattern, done.stderr), f"{pattern}\n---\n{done.stderr}"
    summary = run(["export", str(tmp_path / "after")], db)
    assert summary.returncode == 0 and "6 items" in summary.stdout  # still the mini pack
