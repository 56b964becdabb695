"""Reading a free-text answer before it is graded, in English and Chinese.

- :func:`clean_answer`: Unicode NFKC, invisible format characters (zero-width spaces and
  joiners, bidi controls) removed, whitespace collapsed, so hidden text cannot split a word
  that a pattern or a keyword match would otherwise see;
- :func:`answer_language`, :func:`sentences`, :func:`lexical_units`: language-aware splitting
  (Chinese has no spaces: its lexical units are Han character bigrams);
- :func:`direction_signature`: which way a sentence says things go ("increases", "降低",
  "before", "不"), for telling a paraphrase from an answer that uses the reference's words
  with the direction reversed;
- :func:`salad_score`, :func:`repetition_score`: answers that list words without saying
  anything about them, or say one thing over and over.

Pure Python; the same functions serve training (``bench/grading.py``) and the product.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z]+")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|(?<=[。！？；])|\n+")
_SEGMENT = re.compile(r"[,;/|\n、，；：:·•]+|\s+-\s+|\band\b|\bor\b|和|与|及|或")

_STOPWORD_TEXT = """
a an the and or but if then so of to in on at by for with from as into onto about over under
is are was were be been being am do does did have has had having it its this that these those
there here what which who whom whose when where why how i you he she we they me him her us them
my your his our their can could would should will shall may might must also just very more most
than too such some any each other both all because while up down out off again further once
not no nor only own same
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
#: Chinese function characters: a Chinese sentence that says something has some of them
_ZH_FUNCTION = frozenset("的了是在会把被让使因所以而如果就也都要能可不没很更这那它们和与对将从")
NEGATIONS = frozenset({"not", "no", "never", "none", "nothing", "neither", "nor", "cannot", "without"})
_ZH_NEGATIONS = ("不", "没", "无", "非", "未", "别", "勿")


def clean_answer(text: str) -> str:
    """NFKC, no invisible format characters (category Cf: zero-width, bidi), single spaces."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    return re.sub(r"[ \t\r\f\v]+", " ", text).strip()


def answer_language(text: str) -> str:
    """``zh-CN`` when a text is mostly Chinese (at least as many Han characters as Latin
    words, so "用 LoRA 微调" counts as Chinese), else ``en``."""
    han = len(_HAN.findall(text))
    return "zh-CN" if han and han >= len(_LATIN_WORD.findall(text)) else "en"


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s and len(s.strip()) > 1]


def words(text: str) -> list[str]:
    lowered = text.lower().replace("n't", " not").replace("’", "'")
    return [w.split("'")[0] for w in _WORD.findall(lowered)]


def stem(word: str) -> str:
    # A crude suffix stripper is enough to match "evaporated" with "evaporates".
    for suffix in ("ing", "ed", "es", "s", "ly"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def lexical_units(text: str) -> list[str]:
    """Content-word stems for Latin text, Han character bigrams for Chinese (both kept for mixed text)."""
    units = [stem(w) for w in words(text) if w not in STOPWORDS]
    for run in re.findall(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+", text):
        run = "".join(ch for ch in run if ch not in _ZH_FUNCTION) or run
        units += [run[i : i + 2] for i in range(max(len(run) - 1, 1))]
    return units


def length_units(text: str) -> int:
    """Words, counting about 1.5 Han characters as one word."""
    return len(words(text)) + round(len(_HAN.findall(text)) / 1.5)


# -- direction --------------------------------------------------------------------------------

#: axis -> (words that go one way, words that go the other way); stems or Chinese strings
_AXES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "amount": (
        (
            "increas",
            "rais",
            "rise",
            "rises",
            "grow",
            "more",
            "higher",
            "larger",
            "bigger",
            "greater",
            "boost",
            "expand",
            "gain",
            "maximi",
            "longer",
            "wider",
            "heavier",
            "extra",
            "增加",
            "提高",
            "增大",
            "提升",
            "升高",
            "上升",
            "更多",
            "更大",
            "更高",
            "扩大",
            "变大",
            "变多",
            "变长",
            "更长",
        ),
        (
            "decreas",
            "reduc",
            "lower",
            "less",
            "fewer",
            "smaller",
            "shrink",
            "declin",
            "minimi",
            "shorter",
            "narrow",
            "lighter",
            "cut down",
            "cuts down",
            "减少",
            "降低",
            "减小",
            "下降",
            "更少",
            "更小",
            "更低",
            "缩小",
            "变小",
            "变少",
            "变短",
            "更短",
        ),
    ),
    "speed": (
        ("faster", "quicker", "speed up", "speeds up", "accelerat", "更快", "加快", "加速", "变快"),
        ("slower", "slow down", "slows down", "delay", "更慢", "减慢", "变慢", "拖慢"),
    ),
    "quality": (
        ("better", "improv", "more accurate", "stronger", "更好", "改善", "更准", "更强"),
        ("worse", "degrad", "hurt", "less accurate", "weaker", "更差", "变差", "更弱", "损害"),
    ),
    "order": (
        ("before", "prior to", "之前", "以前"),
        ("after", "afterwards", "later", "之后", "以后", "后再"),
    ),
    "cost": (
        ("cheap", "inexpensive", "low cost", "便宜", "成本低", "廉价"),
        ("expensive", "costly", "high cost", "昂贵", "成本高", "更贵"),
    ),
    "variability": (
        ("fixed", "constant", "always the same", "固定", "不变", "恒定"),
        ("vary", "varies", "variable", "dynamic", "adapt", "可变", "变化", "动态", "自适应"),
    ),
    "possibility": (
        ("can be", "possible", "able to", "可以", "能够", "可能"),
        ("cannot be", "impossible", "unable to", "无法", "不能", "不可能"),
    ),
    "scope": (
        ("still personal", "still applies", "still covered", "in scope", "仍然适用", "仍属于", "仍是个人"),
        ("out of scope", "outside", "no longer", "not personal", "不适用", "不属于", "不再"),
    ),
}


def _negated_before(text: str, start: int) -> bool:
    clause = re.split(r"[.;:!?,()\n。；：！？，、]", text[:start])[-1]
    if any(n in clause[-2:] for n in _ZH_NEGATIONS):
        return True
    return any(w in NEGATIONS for w in words(clause)[-3:])


def _mentions(text: str, term: str) -> list[int]:
    out, start = [], text.find(term)
    while start != -1:
        before = text[start - 1] if start else " "
        if _HAN.match(term[0]) or not before.isalnum():
            out.append(start)
        start = text.find(term, start + 1)
    return out


def direction_signature(text: str) -> dict[str, int]:
    """Per axis: +1 when the sentence goes the first way, -1 the other, 0 when it says neither
    or both. A negation just before a direction word flips it ("does not increase")."""
    lowered = " " + text.lower().replace("n't", " not") + " "
    out: dict[str, int] = {}
    for axis, (up, down) in _AXES.items():
        total = 0
        for sign, terms in ((1, up), (-1, down)):
            taken: set[int] = set()
            for term in sorted(terms, key=len, reverse=True):
                for start in _mentions(lowered, term):
                    if any(abs(start - t) < len(term) for t in taken):
                        continue
                    taken.add(start)
                    total += -sign if _negated_before(lowered, start) else sign
        if total:
            out[axis] = 1 if total > 0 else -1
    return out


def direction_conflict(answer: str, reference: str) -> int:
    """Axes on which the answer and the reference sentence go opposite ways."""
    a, r = direction_signature(answer), direction_signature(reference)
    return sum(1 for axis, sign in a.items() if r.get(axis) == -sign)


def has_negation(text: str) -> bool:
    lowered = text.lower().replace("n't", " not")
    return bool(NEGATIONS & set(words(lowered))) or any(n in text for n in _ZH_NEGATIONS)


# -- answers that say nothing -------------------------------------------------------------------


def salad_score(text: str) -> float:
    """0 for prose, towards 1 for a list of words: the share of the answer in short segments
    (three words or fewer, six Han characters or fewer) between list separators, and few
    function words."""
    segments = [s.strip() for s in _SEGMENT.split(text) if s and s.strip()]
    if len(segments) < 3:
        return 0.0
    short = [s for s in segments if length_units(s) <= 3 and len(_HAN.findall(s)) <= 6]
    share = sum(length_units(s) for s in short) / max(sum(length_units(s) for s in segments), 1)
    tokens = words(text)
    han = _HAN.findall(text)
    function = sum(w in STOPWORDS for w in tokens) + sum(ch in _ZH_FUNCTION for ch in han)
    function_share = function / max(len(tokens) + len(han), 1)
    return float(share * max(0.0, 1.0 - 3.0 * function_share) if len(short) >= 3 else 0.0)


def repetition_score(text: str) -> float:
    """The share of the answer's word (or Han character) trigrams that repeat an earlier one."""
    units = words(text) + _HAN.findall(text)
    grams = [tuple(units[i : i + 3]) for i in range(len(units) - 2)]
    if len(grams) < 4:
        return 0.0
    counts = Counter(grams)
    return float(sum(c - 1 for c in counts.values()) / len(grams))
