"""Translation overlays: loaded with the pack, checked against it with file:line, served with
counted fallbacks, written back byte-identically."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from learnloop.content.loader import PackError, load_pack, translation_gaps, write_pack
from learnloop.content.models import Pack
from learnloop.content.scoring import score_answer
from learnloop.content.translations import (
    content_language,
    detect_language,
    fallback_stats,
    item_for_answer,
    reset_fallback_stats,
)
from tests.content.translation_fixtures import mini_with_overlay


def _problems(root: Path) -> str:
    with pytest.raises(PackError) as info:
        load_pack(root)
    return "\n".join(str(p) for p in info.value.problems)


def test_overlay_loads_and_localises(tmp_path: Path) -> None:
    pack = load_pack(mini_with_overlay(tmp_path))
    assert set(pack.translations) == {"zh-CN"}
    zh = pack.localized("zh_CN")  # a UI locale works as well as a content tag
    assert zh.language == "zh-CN" and pack.language == "en"
    assert zh.meta.name == "迷你测试包" and zh.meta.domains[0].name == "基础"
    assert zh.skill("basics.tokens").name == "词元" and zh.role("builder").name == "构建者"
    count = zh.item("basics.tokens.count")
    assert count.stem.startswith("平均来说") and count.options == {
        "a": "约 0.1 个",
        "b": "约 1.3 个",
        "c": "约 10 个",
    }
    assert count.key == "b" and count.hints[0] == "词元是单词的片段。"
    window = zh.item("basics.tokens.window")
    assert window.rubric is not None and window.rubric[0].keywords[0] == "上下文窗口"
    assert window.rubric[0].points == 1.0 and window.rubric[0].id == "window"  # structure is the base's
    assert zh.lesson("lesson.tokens").title == "词元" and zh.lesson("lesson.tokens").skills == [
        "basics.tokens"
    ]
    # Untranslated: the base text, and the base pack is untouched.
    assert zh.item("apps.rag.why").stem == pack.item("apps.rag.why").stem
    assert pack.item("basics.tokens.count").stem.startswith("Roughly")
    # Cached per language; the base language is the pack itself; a copy localises through its base.
    assert pack.localized("zh-CN") is zh and pack.localized("en") is pack and pack.localized(None) is pack
    assert zh.localized("en") is pack and zh.localized("zh-CN") is zh


def test_fallbacks_are_counted_and_logged_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    reset_fallback_stats()
    pack = load_pack(mini_with_overlay(tmp_path))
    with caplog.at_level(logging.WARNING, logger="learnloop.content.translations"):
        zh = pack.localized("zh-CN")
        pack.localized("zh-CN")
    warnings = [r for r in caplog.records if "no zh-CN translation" in r.getMessage()]
    assert len(warnings) == 1
    # apps.rag.why, basics.prompts.role and basics.prompts.code have no overlay: their stem,
    # explanation, hints (and options for the choice item) fall back.
    stats = {s.language: s for s in fallback_stats()}["zh-CN"]
    assert stats.missing_texts == 4 + 4 + 3 and stats.served_with_fallback == 0
    assert zh.fallback_fields("item", "apps.rag.why") == ("stem", "explanation", "hints", "options")
    assert zh.fallback_fields("item", "basics.tokens.count") == ()
    zh.item("apps.rag.why")
    zh.item("apps.rag.why")
    zh.item("basics.tokens.count")  # fully translated: not a fallback
    stats = {s.language: s for s in fallback_stats()}["zh-CN"]
    assert stats.served_with_fallback == 2
    assert any("apps.rag.why" in e for e in stats.examples)


def test_no_overlay_at_all_falls_back_everywhere(tmp_path: Path) -> None:
    reset_fallback_stats()
    pack = load_pack(mini_with_overlay(tmp_path, items=False, lesson=False))
    zh = pack.localized("zh-CN")
    assert zh.lesson("lesson.tokens").title == "Tokens"
    assert zh.fallback_fields("lesson", "lesson.tokens") == ("title", "body")
    assert zh.skill("basics.tokens").name == "词元"
    fr = pack.localized("fr")  # a language the pack has no overlay for: everything is English
    assert fr.skill("basics.tokens").name == "Tokens"


def test_write_then_load_round_trips_overlays(tmp_path: Path) -> None:
    pack = load_pack(mini_with_overlay(tmp_path))
    write_pack(pack, tmp_path / "out")
    assert (tmp_path / "out" / "locales" / "zh-CN" / "items" / "basics.yaml").exists()
    assert (tmp_path / "out" / "locales" / "zh-CN" / "lessons" / "lesson.tokens.md").exists()
    again = load_pack(tmp_path / "out")
    assert again == pack
    write_pack(again, tmp_path / "out2")
    files = sorted(p for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert len(files) > 8
    for first in files:
        assert first.read_bytes() == (tmp_path / "out2" / first.relative_to(tmp_path / "out")).read_bytes()


def test_every_malformed_overlay_is_reported_with_file_and_line(tmp_path: Path) -> None:
    root = mini_with_overlay(tmp_path)
    zh = root / "locales" / "zh-CN"
    (zh / "skills.yaml").write_text("basics.tokens:\n  name: 词元\nbasics.nowhere:\n  name: 不存在\n")
    (zh / "roles.yaml").write_text("builder:\n  name: 构建者\n  level: 3\n")
    (zh / "items" / "basics.yaml").write_text(
        """basics.tokens.count:
  stem: 一个英文单词大约相当于多少个词元？
  options: {a: "约 0.1 个", b: "约 1.3 个", d: "约 10 个"}
  hints: ["只有一条提示。"]
basics.tokens.cost:
  stem: 500,000 个输入词元要花多少美元？
  options: {a: "1 美元"}
  unit: 美元
basics.tokens.window:
  rubric:
    window:
      keywords: ["上下文窗口"]
    coverage:
      description: 不存在的评分项
      keywords: ["覆盖"]
basics.prompts.code:
  stem: 写一个 fill 函数。
  solution: "def fill(t, v): return t"
basics.unknown.item:
  stem: 未知题目
"""
    )
    (zh / "items" / "apps.yaml").write_text(
        "basics.prompts.role:\n  stem: 整段对话都适用的指令应该放在哪里？\n"
    )
    (zh / "lessons" / "tokens.md").write_text(
        "---\nid: lesson.tokens\ntitle: 词元\nminutes: 3\n---\n\n正文。\n"
    )
    (zh / "lessons" / "ghost.md").write_text("---\nid: lesson.ghost\ntitle: 幽灵\n---\n\n正文。\n")
    (zh / "skill.yaml").write_text("{}\n")
    text = _problems(root)
    assert "locales/zh-CN/skills.yaml:4: skill 'basics.nowhere': unknown skill 'basics.nowhere'" in text
    assert "locales/zh-CN/roles.yaml:2: role 'builder': level: Extra inputs are not permitted" in text
    assert (
        "locales/zh-CN/items/basics.yaml:3: item 'basics.tokens.count': option keys ['a', 'b', 'd']" in text
    )
    assert "locales/zh-CN/items/basics.yaml:2: item 'basics.tokens.count': 1 hints; the item has 2" in text
    assert (
        "locales/zh-CN/items/basics.yaml:7: item 'basics.tokens.cost': a numeric item has no options" in text
    )
    assert "items/basics.yaml:6: item 'basics.tokens.cost': the item has no unit to translate" in text
    assert (
        "locales/zh-CN/items/basics.yaml:14: item 'basics.tokens.window': unknown rubric criterion 'coverage'"
        in text
    )
    assert "locales/zh-CN/items/basics.yaml:17: item 'basics.prompts.code': solution: Extra inputs" in text
    assert "locales/zh-CN/items/basics.yaml:20: item 'basics.unknown.item': unknown item" in text
    assert (
        "locales/zh-CN/items/apps.yaml:2: item 'basics.prompts.role' is defined in items/basics.yaml" in text
    )
    assert "locales/zh-CN/lessons/tokens.md:2: a lesson overlay has only id and title" in text
    assert "locales/zh-CN/lessons/ghost.md:2: lesson 'lesson.ghost': unknown lesson 'lesson.ghost'" in text
    assert "locales/zh-CN/skill.yaml: unexpected file in an overlay" in text


def test_overlay_syntax_errors_and_bad_folders(tmp_path: Path) -> None:
    root = mini_with_overlay(tmp_path)
    zh = root / "locales" / "zh-CN"
    (zh / "items" / "basics.yaml").write_text("basics.tokens.count:\n  stem: [unclosed\n")
    (zh / "roles.yaml").write_text("- builder\n")
    (zh / "pack.yaml").unlink()
    (root / "locales" / "Chinese").mkdir()
    (root / "locales" / "en").mkdir()
    text = _problems(root)
    assert "locales/zh-CN/items/basics.yaml:" in text and "invalid YAML" in text
    assert "locales/zh-CN/roles.yaml:1: expected a YAML mapping of id -> texts" in text
    assert "locales/zh-CN/pack.yaml: missing pack.yaml" in text
    assert "locales/Chinese: expected a folder named by a language tag" in text
    assert "locales/en: en is the pack's own language" in text


def test_declared_language_requires_every_translation(tmp_path: Path) -> None:
    root = mini_with_overlay(tmp_path, lesson=False)
    meta = root / "pack.yaml"
    meta.write_text(meta.read_text() + "languages: [zh-CN]\n")
    text = _problems(root)
    # Each missing translation at the file and line of its English source.
    assert (
        "items/apps.yaml:1: item 'apps.rag.why': no zh-CN translation of stem, explanation, hints, options"
        in text
    )
    assert "items/basics.yaml:33: item 'basics.prompts.role': no zh-CN translation" in text
    assert "(add it to locales/zh-CN/items/basics.yaml)" in text
    assert "lessons/tokens.md:1: lesson 'lesson.tokens': no zh-CN translation of title, body" in text
    assert "pack.yaml:1: pack 'mini'" not in text  # the overlay names the pack
    # The same list is available for any pack without declaring the language.
    undeclared = mini_with_overlay(tmp_path / "second", lesson=False)
    gaps = [str(p) for p in translation_gaps(undeclared, "zh-CN")]
    assert len(gaps) == 4 and all("no zh-CN translation" in g for g in gaps)


def test_a_stored_document_with_a_bad_overlay_is_refused(tmp_path: Path) -> None:
    document = load_pack(mini_with_overlay(tmp_path)).model_dump(mode="json")
    document["translations"]["zh-CN"]["items"]["basics.tokens.count"]["options"] = {"z": "错"}
    with pytest.raises(ValueError, match="option keys"):
        Pack.model_validate(document)


def test_answers_are_graded_in_their_own_language(tmp_path: Path) -> None:
    assert detect_language("对话超出上下文窗口后，最早的词元会被截断。") == "zh-CN"
    assert detect_language("用 LoRA 微调") == "zh-CN"
    assert detect_language("The earliest tokens are truncated beyond the context window.") == "en"
    assert content_language("zh_CN") == "zh-CN" and content_language("zh-cn") == "zh-CN"
    pack = load_pack(mini_with_overlay(tmp_path))
    chinese = "聊得太久，对话超出了上下文窗口，最早的消息就被截断了。"
    item = item_for_answer(pack, "basics.tokens.window", chinese)
    assert score_answer(item, {"text": chinese}).correct
    assert not score_answer(pack.item("basics.tokens.window"), {"text": chinese}).correct
    english = "Beyond the context window the earliest turns are truncated."
    assert score_answer(item_for_answer(pack, "basics.tokens.window", english), {"text": english}).correct
