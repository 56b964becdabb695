"""The default pack in Simplified Chinese: nothing missing, and each lesson translation keeps the
English lesson's code and numbers and uses the established mainland terms."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from learnloop.content.loader import load_pack, translation_gaps
from tests.conftest import DEFAULT_PACK

ZH_LESSONS = DEFAULT_PACK / "locales" / "zh-CN" / "lessons"
FENCE = re.compile(r"```.*?```", re.S)
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
#: numbers written the Chinese way in a translation (English figure -> Chinese wording used)
CHINESE_NUMERALS = {"lesson.data.collection.md": {"50": "5,000 万"}}
#: established terms each translated lesson must use
TERMS = {
    "lesson.llm.tokens.md": ["词元", "上下文窗口"],
    "lesson.llm.embeddings.md": ["嵌入", "向量"],
    "lesson.llm.transformers.md": ["键值缓存", "自注意力"],
    "lesson.llm.capabilities.md": ["幻觉", "检索增强生成"],
    "lesson.prompt.few-shot.md": ["思维链", "少样本"],
    "lesson.rag.pipeline.md": ["检索增强生成"],
    "lesson.tuning.fine-tuning.md": ["微调"],
    "lesson.tuning.peft.md": ["低秩适配"],
    "lesson.tuning.alignment.md": ["对齐", "奖励模型"],
    "lesson.eval.prompt-injection.md": ["提示注入", "最小权限"],
    "lesson.ops.serving.md": ["键值缓存", "量化"],
}


def _body(path: Path) -> str:
    return path.read_text(encoding="utf-8").split("\n---", 1)[1]


def test_default_pack_names_and_lessons_translated() -> None:
    gaps = [str(p) for p in translation_gaps(DEFAULT_PACK, "zh-CN") if not p.message.startswith("item ")]
    assert not gaps, "\n".join(gaps)


def test_default_pack_items_translated() -> None:
    gaps = [str(p) for p in translation_gaps(DEFAULT_PACK, "zh-CN")]
    assert not gaps, f"{len(gaps)} untranslated:\n" + "\n".join(gaps[:50])


@pytest.mark.parametrize("lesson", sorted((DEFAULT_PACK / "lessons").glob("*.md")), ids=lambda p: p.stem)
def test_lesson_translation_keeps_code_and_numbers(lesson: Path) -> None:
    english, chinese = _body(lesson), _body(ZH_LESSONS / lesson.name)
    assert FENCE.findall(chinese) == FENCE.findall(english), "code blocks must be identical"
    headings = [line for line in english.splitlines() if line.startswith("#")]
    assert len([line for line in chinese.splitlines() if line.startswith("#")]) == len(headings)
    allowed = CHINESE_NUMERALS.get(lesson.name, {})
    prose = FENCE.sub("", chinese)
    for number in set(NUMBER.findall(FENCE.sub("", english))) - set(NUMBER.findall(prose)):
        assert number in allowed and allowed[number] in prose, f"{number} is missing from the translation"
    han = len(re.findall(r"[\u4e00-\u9fff]", prose))
    assert han > 0.25 * len(FENCE.sub("", english).split()), "the prose is not in Chinese"


@pytest.mark.parametrize("name", sorted(TERMS))
def test_lessons_use_established_terms(name: str) -> None:
    text = _body(ZH_LESSONS / name)
    for term in TERMS[name]:
        assert term in text, f"{name} should say {term}"


def test_localised_default_pack_serves_chinese_names_and_lessons() -> None:
    zh = load_pack(DEFAULT_PACK).localized("zh-CN")
    assert zh.skill("llm.tokens").name == "词元与分词"
    assert zh.role("llm-app-engineer").name == "大模型应用工程师"
    assert {d.id: d.name for d in zh.meta.domains}["rag"] == "检索增强生成"
    assert zh.lesson("lesson.tuning.peft").title.startswith("参数高效微调")
    for lesson in zh.lessons:
        assert not zh.fallback_fields("lesson", lesson.id), lesson.id
