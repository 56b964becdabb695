"""Scoring answers to choice, numeric and text items (code items are judged in ``learnloop.sandbox``).

Pure functions: an item and the learner's answer in, a :class:`Score` out.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field

from learnloop.content.models import Item


class AnswerError(ValueError):
    """The answer payload does not fit the item (wrong type, unknown option...)."""


@dataclass
class Score:
    correct: bool
    score: float  # 0..1
    feedback: list[str] = field(default_factory=list)
    criteria_met: list[str] = field(default_factory=list)


def score_choice(item: Item, choice: object) -> Score:
    options = item.options or {}
    if not isinstance(choice, str) or choice not in options:
        raise AnswerError(f"choice must be one of {sorted(options)}")
    ok = choice == item.key
    return Score(correct=ok, score=1.0 if ok else 0.0)


def parse_number(value: object) -> float:
    if isinstance(value, bool):
        raise AnswerError("a number is required")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(",", "").replace("\u2212", "-")
        percent = text.endswith("%")
        text = text.rstrip("%").strip()
        try:
            number = float(text)
        except ValueError:
            raise AnswerError(f"{value!r} is not a number") from None
        if percent:
            number /= 100.0
    else:
        raise AnswerError("a number is required")
    if not math.isfinite(number):
        raise AnswerError("the number must be finite")
    return number


def score_numeric(item: Item, value: object) -> Score:
    assert item.answer is not None
    number = parse_number(value)
    tol = item.tolerance if item.tolerance is not None else 1e-6 * max(1.0, abs(item.answer))
    ok = abs(number - item.answer) <= tol + 1e-12
    return Score(correct=ok, score=1.0 if ok else 0.0)


_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    text = text.translate(_QUOTES)
    return re.sub(r"\s+", " ", text)


#: words that negate what follows them in the same clause ("does not truncate", "isn't cached")
_NEGATIONS = frozenset({"not", "no", "never", "without", "cannot", "neither", "nor", "none", "nothing"})
_CJK_NEGATIONS = ("不", "没", "沒", "无", "無", "非", "未", "别")
#: words that contain a negation character but negate nothing ("someone else", "very", "future")
_CJK_NOT_NEGATING = (
    "别人", "分别", "区别", "特别", "识别", "类别", "级别", "个别", "差别", "告别", "鉴别", "辨别",
    "无论", "非常", "未来", "不仅", "不但", "不断", "不少", "不久", "无数", "没错", "不错",
)  # fmt: skip
_CLAUSE_END = re.compile(r"[.;:!?,()\[\]\n。；：！？，、（）]")
_NEGATION_WINDOW = 3  # words before a keyword that can negate it


def _is_cjk(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"


def _mentions(text: str, phrase: str) -> list[int]:
    """Where ``phrase`` starts a word of ``text`` (both normalised). A keyword may be a stem
    ("truncat" meets "truncated") but not the inside of another word ("rag" is not in
    "storage"); Chinese has no spaces, so there any occurrence counts."""
    out = []
    start = text.find(phrase)
    while start != -1 and phrase:
        before = text[start - 1] if start else " "
        if not before.isalnum() or _is_cjk(before) or _is_cjk(phrase[0]):
            out.append(start)
        start = text.find(phrase, start + 1)
    return out


def _negated(text: str, start: int) -> bool:
    """A negation word among the few words before ``start``, in the same clause."""
    clause = _CLAUSE_END.split(text[:start])[-1]
    tail = clause[-5:]
    for compound in _CJK_NOT_NEGATING:
        tail = tail.replace(compound, " " * len(compound))
    if any(n in tail[-3:] for n in _CJK_NEGATIONS):
        return True
    words = re.findall(r"[\w']+", clause)[-_NEGATION_WINDOW:]
    return any(w in _NEGATIONS or w.endswith("n't") for w in words)


def _states(text: str, keywords: list[str], allow_negated: bool) -> bool:
    for keyword in keywords:
        for start in _mentions(text, _normalise(keyword)):
            if allow_negated or not _negated(text, start):
                return True
    return False


def score_text_keywords(item: Item, text: object) -> Score:
    """Offline rubric grading: a criterion is met when the answer states one of its keyword
    phrases: at the start of a word, and not negated ("the oldest tokens are not dropped"
    does not meet "dropped") unless the item's own reference answers negate it too.

    This is the embedded last resort; the graders of ``llm.grading`` (the trained offline
    classifier, a configured model) come first.
    """
    if not isinstance(text, str) or not text.strip():
        raise AnswerError("a non-empty text answer is required")
    normalised = _normalise(text)
    references = [_normalise(r) for r in item.reference_answers or []]
    total = sum(c.points for c in item.rubric or [])
    got = 0.0
    met: list[str] = []
    missing: list[str] = []
    for criterion in item.rubric or []:
        keywords = list(criterion.keywords)
        # a criterion the reference answers can only state negated ("does not remember")
        negative = bool(references) and not any(_states(r, keywords, False) for r in references)
        if _states(normalised, keywords, negative):
            got += criterion.points
            met.append(criterion.id)
        else:
            missing.append(criterion.description)
    fraction = got / total if total else 0.0
    return Score(
        correct=fraction >= item.pass_fraction,
        score=fraction,
        feedback=[f"Not yet covered: {m}" for m in missing],
        criteria_met=met,
    )


def score_answer(item: Item, answer: dict[str, object]) -> Score:
    """Score choice, numeric and text answers. ``answer`` is the payload the learner sent."""
    if item.kind == "choice":
        return score_choice(item, answer.get("choice"))
    if item.kind == "numeric":
        return score_numeric(item, answer.get("value"))
    if item.kind == "text":
        return score_text_keywords(item, answer.get("text"))
    raise AnswerError(f"{item.kind} items are not scored here")
