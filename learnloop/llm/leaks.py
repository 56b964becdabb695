"""Does a text give away an item's answer? Checks for the key, the number, the reference
answer, the solution and the explanation, and redaction sentence by sentence.

Used on every tutor reply (model or offline) about an item the learner has not finished.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from learnloop.content.models import Item
from learnloop.llm.grading_features import content_words, tokens

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_NUMBER = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?%?")
_CITATION = re.compile(r"\[\d{1,2}\]")


def sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(text) if s.strip()]


def _normal(text: str) -> str:
    return " ".join(tokens(text))


def _recall(reference: str, sentence: str) -> tuple[float, int]:
    ref = set(content_words(reference))
    if not ref:
        return 0.0, 0
    return len(ref & set(content_words(sentence))) / len(ref), len(ref)


def _numbers(text: str) -> list[float]:
    out = []
    for match in _NUMBER.findall(_CITATION.sub(" ", text)):
        raw = match.replace(",", "")
        try:
            value = float(raw.rstrip("%"))
        except ValueError:
            continue
        out.append(value / 100 if raw.endswith("%") else value)
        if raw.endswith("%"):
            out.append(value)
    return out


def _choice_leak(item: Item, sentence: str) -> bool:
    key = (item.key or "").lower()
    option = (item.options or {}).get(item.key or "", "")
    low = sentence.lower()
    letter = re.escape(key)
    patterns = [
        rf"\b(answer|option|choice)\s*(is|was|would be|:|=)?\s*[\(\"'*]*{letter}\b(?!['\-])",
        rf"(^|\s)[\(\"'*]*{letter}[\"'*]*\)?\s+is\s+(the\s+)?(correct|right|answer|best)",
        rf"\(\s*{letter}\s*\)",
        rf"^\s*\**{letter}\)",
        rf"\b(pick|choose|select)\s+[\(\"'*]*{letter}\b(?!['\-])",
    ]
    if key and any(re.search(p, low) for p in patterns):
        return True
    normal_option = _normal(option)
    if len(normal_option.split()) >= 3 and normal_option in _normal(sentence):
        return True
    recall, size = _recall(option, sentence)
    return size >= 4 and recall >= 0.8


def _numeric_leak(item: Item, sentence: str) -> bool:
    if item.answer is None:
        return False
    answer = item.answer
    tolerance = item.tolerance if item.tolerance is not None else 1e-6 * max(1.0, abs(answer))
    given = {round(v, 9) for v in _numbers(item.stem)}
    if any(abs(v - answer) <= tolerance for v in given):
        return False  # the number is in the question itself: saying it reveals nothing
    return any(abs(v - answer) <= tolerance + 1e-12 for v in _numbers(sentence))


def _text_leak(references: Iterable[str], sentence: str, threshold: float = 0.7, min_words: int = 4) -> bool:
    for reference in references:
        recall, size = _recall(reference, sentence)
        if size >= min_words and recall >= threshold:
            return True
        normal = _normal(reference)
        if 0 < size < min_words and len(normal.split()) >= 3 and normal in _normal(sentence):
            return True
    return False


def _code_leak(item: Item, text: str) -> bool:
    starter = {_normal(line) for line in (item.starter or "").splitlines()}
    squashed = re.sub(r"\s+", "", text)
    for line in (item.solution or "").splitlines():
        core = line.strip()
        if len(core) >= 10 and _normal(core) not in starter and re.sub(r"\s+", "", core) in squashed:
            return True
    return False


def leaking_sentences(text: str, item: Item) -> list[int]:
    """Indexes (in :func:`sentences`) of the sentences that give the item's answer away."""
    parts = sentences(text)
    bad: list[int] = []
    if item.kind == "code" and _code_leak(item, text):
        # Code spans lines; withhold every sentence that carries a solution line.
        for i, part in enumerate(parts):
            if _code_leak(item, part) or "```" in part:
                bad.append(i)
        return bad or list(range(len(parts)))
    explanation = [s for s in sentences(item.explanation) if len(content_words(s)) >= 6]
    for i, part in enumerate(parts):
        leak = False
        if item.kind == "choice":
            leak = _choice_leak(item, part)
        elif item.kind == "numeric":
            leak = _numeric_leak(item, part)
        elif item.kind == "text":
            leak = _text_leak(item.reference_answers or [], part)
        if leak or _text_leak(explanation, part, threshold=0.8, min_words=6):
            bad.append(i)
    return bad


def leaks(text: str, items: Iterable[Item]) -> bool:
    return any(leaking_sentences(text, item) for item in items)


def redact(text: str, items: Iterable[Item], placeholder: str) -> tuple[str, int]:
    """The text with every leaking sentence replaced by ``placeholder``; and how many were."""
    parts = sentences(text)
    bad: set[int] = set()
    for item in items:
        bad.update(leaking_sentences(text, item))
    if not bad:
        return text, 0
    return "\n".join(placeholder if i in bad else part for i, part in enumerate(parts)), len(bad)
