"""A complete zh-CN overlay for the mini pack, written into a copy of it."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import MINI_PACK

PACK_YAML = """name: 迷你测试包
domains:
  basics:
    name: 基础
  apps:
    name: 应用
"""

SKILLS_YAML = """basics.tokens:
  name: 词元
  description: 模型读取的是词元。
basics.prompts:
  name: 提示词
  description: 系统消息与用户消息。
apps.rag:
  name: 检索增强生成
  description: 先检索，再生成。
"""

ROLES_YAML = """builder:
  name: 构建者
  description: 动手搭建应用。
"""

BASICS_YAML = """basics.tokens.count:
  stem: 平均来说，一个英文单词大约相当于多少个词元？
  options: {a: "约 0.1 个", b: "约 1.3 个", c: "约 10 个"}
  explanation: 英文平均每个词元约 0.75 个单词，也就是每个单词约 1.3 个词元。
  hints: ["词元是单词的片段。", "大多数短单词只占一个词元。"]
basics.tokens.cost:
  stem: 输入词元每百万个 2 美元，500,000 个输入词元要花多少美元？
  explanation: 0.5 百万个词元乘以每百万 2 美元，等于 1 美元。
  hints: ["先换算成百万个词元。", "再乘以每百万词元的价格。"]
basics.tokens.window:
  stem: 为什么很长的对话会让模型“忘记”开头的指令？
  explanation: 模型只能看到上下文窗口内的词元；客户端会丢弃或截断最早的几轮对话。
  hints: ["模型一次最多能读多少内容？", "超出这个上限的文本会怎样？"]
  reference_answers: ["对话一旦超出上下文窗口，最早的词元就会被截断。"]
  rubric:
    window:
      description: 提到上下文窗口的限制
      keywords: ["上下文窗口", "上下文长度", "窗口上限"]
    truncation:
      description: 说明最早的消息被丢弃或截断
      keywords: ["截断", "丢弃", "删掉", "移除"]
"""

LESSON_MD = """---
id: lesson.tokens
title: 词元
---

模型读取的是**词元**，也就是单词的片段。
"""


def mini_with_overlay(tmp_path: Path, *, items: bool = True, lesson: bool = True) -> Path:
    """A copy of the mini pack with a zh-CN overlay (names, three items, its lesson)."""
    root = tmp_path / "pack"
    shutil.copytree(MINI_PACK, root)
    zh = root / "locales" / "zh-CN"
    (zh / "items").mkdir(parents=True)
    (zh / "lessons").mkdir()
    (zh / "pack.yaml").write_text(PACK_YAML, encoding="utf-8")
    (zh / "skills.yaml").write_text(SKILLS_YAML, encoding="utf-8")
    (zh / "roles.yaml").write_text(ROLES_YAML, encoding="utf-8")
    if items:
        (zh / "items" / "basics.yaml").write_text(BASICS_YAML, encoding="utf-8")
    if lesson:
        (zh / "lessons" / "tokens.md").write_text(LESSON_MD, encoding="utf-8")
    return root
