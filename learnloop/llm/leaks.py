"""Does a text give away an item's answer? Checks for the key, the number, the reference
answer, the solution and the explanation, and redaction sentence by sentence.

Used on every tutor reply (model or offline) about an item the learner has not finished, and
(stricter, :func:`passage_gives_away`) on the lesson passages the tutor would quote or give a
model while the item is open: a passage that states the answer is not shown beside the question.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from learnloop.content.models import Item
from learnloop.llm.grading_text import lexical_units as content_words
from learnloop.llm.grading_text import words as tokens

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_NUMBER = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?%?")
#: a number with its scale: "6.1 billion", "6.144 x 10^9", "4k", "3/8"
_SCALED = re.compile(
    r"(?<![\w.])(-?\d[\d,]*(?:\.\d+)?)\s*(?:(?:x|×|\*)\s*10\s*\^\s*(-?\d+)|e(-?\d+)\b|"
    r"(thousand|million|billion|trillion|k|bn)\b|/\s*(\d+(?:\.\d+)?)(?!\d|\.\d))",
    re.IGNORECASE,
)
_SCALE = {"thousand": 1e3, "k": 1e3, "million": 1e6, "billion": 1e9, "bn": 1e9, "trillion": 1e12}
#: "n-gram" length of a verbatim overlap with the explanation, reference or solution
OVERLAP_WORDS = 6
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


def _scaled_numbers(text: str) -> list[float]:
    out = []
    for raw, power, exp, word, denominator in _SCALED.findall(text):
        try:
            value = float(raw.replace(",", ""))
        except ValueError:
            continue
        if power or exp:
            value *= 10.0 ** int(power or exp)
        elif word:
            value *= _SCALE[word.lower()]
        elif denominator and float(denominator):
            value /= float(denominator)
        out.append(value)
    return out


def _rounded_matches(answer: float, text: str) -> bool:
    """A number written with two or more significant digits that is the answer rounded."""
    for match in _NUMBER.findall(_CITATION.sub(" ", text)):
        raw = match.rstrip("%").replace(",", "")
        digits = raw.lstrip("-").replace(".", "").lstrip("0")
        if len(digits) < 2:
            continue
        decimals = len(raw.split(".", 1)[1]) if "." in raw else 0
        try:
            value = float(raw) / (100 if match.endswith("%") else 1)
        except ValueError:
            continue
        half = 0.5 * 10.0**-decimals / (100 if match.endswith("%") else 1)
        if abs(value - answer) <= half + 1e-12:
            return True
    return False


def _numeric_leak(item: Item, sentence: str) -> bool:
    if item.answer is None:
        return False
    answer = item.answer
    tolerance = item.tolerance if item.tolerance is not None else 1e-6 * max(1.0, abs(answer))
    stated = [*_numbers(item.stem), *_scaled_numbers(item.stem)]
    if any(abs(v - answer) <= tolerance for v in stated):
        return False  # the number is in the question itself: saying it reveals nothing
    said = [*_numbers(sentence), *_scaled_numbers(sentence)]
    if any(abs(v - answer) <= tolerance + 1e-12 for v in said):
        return True
    if item.unit and item.unit.lower() in ("gb", "mb", "mib", "gib", "kb"):
        # the same amount of bytes in another unit (6,144 MB for 6.14 GB)
        factors = {"kb": 1e3, "mb": 1e6, "gb": 1e9, "mib": 2**20, "gib": 2**30}
        own = factors[item.unit.lower()]
        for raw, unit in re.findall(r"(\d[\d,]*(?:\.\d+)?)\s*(kb|mb|gb|mib|gib|bytes?)\b", sentence, re.I):
            value = float(raw.replace(",", "")) * factors.get(unit.lower(), 1.0) / own
            if abs(value - answer) <= tolerance + 1e-12:
                return True
    return _rounded_matches(answer, sentence) and not _rounded_matches(answer, item.stem)


def _roots(text: str) -> set[str]:
    """Content words cut to six letters, so "independence" meets "independent"."""
    return {w[:6] for w in content_words(text)}


def _key_cover_leak(item: Item, text: str) -> bool:
    """The key option's own words (those the question lacks), more of them than any other's."""
    options = item.options or {}
    if item.key not in options:
        return False
    stem = _roots(item.stem)
    terms = {k: _roots(v) - stem for k, v in options.items()}
    key_terms = terms[item.key]
    if not key_terms:
        return False
    said = _roots(text)
    cover = {k: len(t & said) / len(t) for k, t in terms.items() if t}
    best_other = max((c for k, c in cover.items() if k != item.key), default=0.0)
    hits = len(key_terms & said)
    if len(key_terms) == 1:
        return hits == 1 and best_other == 0.0
    return hits >= 2 and cover[item.key] >= 0.5 and cover[item.key] >= best_other + 0.2


def _overlap_leak(item: Item, text: str) -> bool:
    """A run of ``OVERLAP_WORDS`` words from the explanation, reference or solution that the
    question, options and starter do not contain."""
    n = OVERLAP_WORDS

    def grams(source: str) -> set[tuple[str, ...]]:
        words = tokens(source)
        return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}

    known = grams(item.stem) | grams(item.starter or "")
    for option in (item.options or {}).values():
        known |= grams(option)
    secret: set[tuple[str, ...]] = set()
    for source in [item.explanation, *(item.reference_answers or []), item.solution or ""]:
        secret |= grams(source)
    return bool((secret - known) & grams(text))


def _salient_leak(item: Item, text: str) -> bool:
    """Text items: two or more of the answer's salient words (in at least two of the reference
    answers and explanation, not in the question)."""
    stem = _roots(item.stem)
    counts: dict[str, int] = {}
    for source in [*(item.reference_answers or []), item.explanation]:
        for word in _roots(source) - stem:
            counts[word] = counts.get(word, 0) + 1
    salient = {w for w, c in counts.items() if c >= 2}
    return len(salient & _roots(text)) >= 2


def passage_gives_away(text: str, item: Item) -> bool:
    """Stricter than :func:`leaking_sentences`, for a lesson passage the tutor would quote (or
    hand to a model) while ``item`` is open: any sentence that leaks, the key option's words
    anywhere in it, a verbatim run of the explanation, reference or solution, a sentence of
    them mostly paraphrased, or (text items) the answer's salient words."""
    if leaking_sentences(text, item) or _overlap_leak(item, text):
        return True
    if item.kind == "choice" and _key_cover_leak(item, text):
        return True
    if item.kind == "numeric" and _numeric_leak(item, text):
        return True
    if item.kind == "text" and _salient_leak(item, text):
        return True
    stem = _roots(item.stem)
    said = _roots(text)
    for reference in [*(item.reference_answers or []), item.explanation]:
        for sentence in sentences(reference):
            own = _roots(sentence) - stem
            if len(own) >= 4 and len(own & said) >= 3 and len(own & said) >= 0.5 * len(own):
                return True
    return False


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
            leak = _choice_leak(item, part) or _key_cover_leak(item, part)
        elif item.kind == "numeric":
            leak = _numeric_leak(item, part)
        elif item.kind == "text":
            leak = _text_leak(item.reference_answers or [], part)
        if leak or _text_leak(explanation, part, threshold=0.8, min_words=6) or _overlap_leak(item, part):
            bad.append(i)
    return bad


def leaks(text: str, items: Iterable[Item]) -> bool:
    return any(leaking_sentences(text, item) for item in items)


_FENCED = re.compile(r"^(```|~~~)[^\n]*\n.*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)


def redact(text: str, items: Iterable[Item], placeholder: str) -> tuple[str, int]:
    """The text with every leaking sentence replaced by ``placeholder`` where it stands (the
    markdown around it is kept; a code block that leaks goes whole); and how many were."""
    items = list(items)

    def leaky(part: str) -> bool:
        return any(leaking_sentences(part, item) for item in items)

    out: list[str] = []
    count = 0
    last = 0
    for fence in _FENCED.finditer(text):
        prose, count_prose = _redact_prose(text[last : fence.start()], leaky, placeholder)
        out.append(prose)
        count += count_prose
        if leaky(fence.group(0)):
            out.append(placeholder)
            count += 1
        else:
            out.append(fence.group(0))
        last = fence.end()
    prose, count_prose = _redact_prose(text[last:], leaky, placeholder)
    out.append(prose)
    count += count_prose
    return ("".join(out), count) if count else (text, 0)


def _redact_prose(text: str, leaky: Callable[[str], bool], placeholder: str) -> tuple[str, int]:
    out: list[str] = []
    count = 0
    last = 0
    for end in [*(m.start() for m in _SENTENCE_END.finditer(text)), len(text)]:
        part = text[last:end]
        if part.strip() and leaky(part):
            lead = part[: len(part) - len(part.lstrip())]
            marker = re.match(r"\s*([-*+]|\d+[.)]|>)\s+", part)
            out.append(lead + (marker.group(0).lstrip() if marker else "") + placeholder)
            count += 1
        else:
            out.append(part)
        last = end
    return "".join(out), count
