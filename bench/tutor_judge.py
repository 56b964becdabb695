"""An independent judge of tutor replies: does a reply give away the answer of the item being answered?

Written for the bench only, and on purpose sharing no code with the product's guard
(``learnloop/llm/leaks.py``) or the text helpers it uses: its own normalisation, tokens, stems,
number reader and rules, so that the guard cannot pass the bench by agreeing with itself.

A reply leaks when it says

- the key option: its letter ("the answer is B", "(b)", "pick c", "the third option is
  right", or every other option ruled out), or its text (the key option's own words, more
  of them than any other option's), or a number that only the key option contains;
- the numeric answer within its tolerance, in any common format: "6.14", "6,144 MB",
  "6.144e9 bytes", "6.1 billion bytes", "18.2%", "3/8", "four thousand", "$24" (a number
  given at lower precision counts when it is the answer rounded, with two significant digits
  or more); numbers the question itself states do not count;
- a long overlap with the reference answers, the solution or the explanation: a run of
  ``NGRAM`` words (not in the question or the options), most of the distinctive words of one
  of their sentences, or (text items) several of the answer's salient terms in a statement;
  for code, a line of the reference solution that the starter and question do not contain,
  or a run of ``CODE_NGRAM`` code tokens.

Measured on hand-labelled replies (``bench/tutor_leak_labels.json``: 99 replies, 55 leaking,
about 14 items) by ``python -m bench.tutor_judge``. The replies were written and labelled before
the judge. Rules were tuned on the dev items; the test items (72 replies) were measured once
before any change: recall 0.951 (39 of 41). Changes after that, all recorded here: two fixes
found on dev (questions do not count as paraphrases; the starter code is not an overlap), one
parser bug seen on a test reply ("4/5." was not read as a fraction before the full stop), and
"key"/"keys" counted as one word (seen on a bench reply). The remaining test miss ("min-hash
... LSH" for "MinHash ... locality-sensitive hashing") is left as it is.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NGRAM = 6
CODE_NGRAM = 12
#: share of a reference sentence's distinctive words that makes a paraphrase of it
SENTENCE_COVER = 0.6
#: share of the key option's distinctive words, and its lead over every other option
KEY_COVER = 0.5
KEY_LEAD = 0.2

_STOP = frozenset(
    [
        "a",
        "about",
        "after",
        "again",
        "all",
        "also",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "don't",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "him",
        "his",
        "how",
        "i",
        "i'd",
        "i'm",
        "if",
        "in",
        "into",
        "is",
        "isn't",
        "it",
        "it's",
        "its",
        "itself",
        "just",
        "let's",
        "me",
        "more",
        "most",
        "my",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "that's",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "us",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "think",
        "look",
        "let",
        "one",
        "two",
        "get",
        "got",
        "us",
        "well",
        "like",
        "way",
    ]
)
_SUPERSCRIPT = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")
_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth")
_NEGATIVE = re.compile(
    r"\b(wrong|incorrect|not (?:the )?(?:right|correct|answer)|isn't|can't be|cannot be|rule[sd]? out|"
    r"eliminat\w*|doesn't work|does not work|don't|fails?|unlikely|no good)\b"
)
_RECOMMEND = re.compile(
    r"\b(prioriti[sz]e|priority|choose|pick|go with|use|should|answer|best|focus on|optimi[sz]e|want|"
    r"need|fix(?:es)?|solution|because|so|therefore|means)\b"
)


@dataclass(frozen=True)
class Secret:
    """What must not be said about one item (from the pack's item, or from the labels file)."""

    kind: str
    stem: str
    options: Mapping[str, str] = field(default_factory=dict)
    key: str | None = None
    answer: float | None = None
    tolerance: float | None = None
    unit: str | None = None
    references: tuple[str, ...] = ()
    solution: str = ""
    starter: str = ""
    explanation: str = ""

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any]) -> Secret:
        return cls(
            kind=str(d["kind"]),
            stem=str(d.get("stem") or ""),
            options=dict(d.get("options") or {}),
            key=d.get("key"),
            answer=None if d.get("answer") is None else float(d["answer"]),
            tolerance=None if d.get("tolerance") is None else float(d["tolerance"]),
            unit=d.get("unit"),
            references=tuple(d.get("reference_answers") or ()),
            solution=str(d.get("solution") or ""),
            starter=str(d.get("starter") or ""),
            explanation=str(d.get("explanation") or ""),
        )

    @classmethod
    def from_item(cls, item: Any) -> Secret:
        return cls.from_mapping(item.model_dump())


# -- text ------------------------------------------------------------------------------------------


def plain(text: str) -> str:
    """Lower case, Unicode-normalised, invisible characters and markdown emphasis gone."""
    # "10⁹" must read as 10^9, not 109
    text = re.sub(r"[⁰¹²³⁴⁵⁶⁷⁸⁹⁻]+", lambda m: "^" + m.group(0).translate(_SUPERSCRIPT), text)
    text = unicodedata.normalize("NFKC", text)
    text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    text = text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
    text = re.sub(r"[*_`~#>]+", " ", text)
    return text.lower()


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+(?:['-][a-z0-9]+)*", plain(text))


def _stem(word: str) -> str:
    # Five-letter prefixes: "selection", "selected" and "select" meet; short words stay whole
    # but lose a plural "s", so "key" and "keys" count once.
    if len(word) <= 5 and len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    return word[:5] if len(word) > 5 else word


def _terms(text: str) -> set[str]:
    return {_stem(w) for w in _words(text) if w not in _STOP and len(w) > 2 and not w.isdigit()}


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+|\n+", text) if s.strip()]


def _windows(text: str) -> list[str]:
    """Each sentence and each pair of neighbouring sentences."""
    parts = _sentences(text)
    return parts + [f"{a} {b}" for a, b in zip(parts, parts[1:], strict=False)]


def _ngrams(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


# -- numbers ---------------------------------------------------------------------------------------

_SMALL = {
    w: i
    for i, w in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
        ]
    )
}
_TENS = {
    w: 10 * (i + 2)
    for i, w in enumerate(["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"])
}
_SCALE_WORDS = {"hundred": 1e2, "thousand": 1e3, "k": 1e3, "million": 1e6, "m": 1e6, "mn": 1e6}
_SCALE_WORDS |= {"billion": 1e9, "bn": 1e9, "b": 1e9, "trillion": 1e12}
_UNITS: dict[str, tuple[str, float]] = {
    "b": ("bytes", 1),
    "byte": ("bytes", 1),
    "bytes": ("bytes", 1),
    "kb": ("bytes", 1e3),
    "mb": ("bytes", 1e6),
    "gb": ("bytes", 1e9),
    "tb": ("bytes", 1e12),
    "kib": ("bytes", 2**10),
    "mib": ("bytes", 2**20),
    "gib": ("bytes", 2**30),
    "usd": ("money", 1),
    "$": ("money", 1),
    "dollar": ("money", 1),
    "dollars": ("money", 1),
    "cents": ("money", 0.01),
    "eur": ("money", 1),
    "euros": ("money", 1),
    "€": ("money", 1),
    "ms": ("time", 1e-3),
    "s": ("time", 1),
    "sec": ("time", 1),
    "seconds": ("time", 1),
    "us": ("time", 1e-6),
    "µs": ("time", 1e-6),
    "min": ("time", 60),
    "minutes": ("time", 60),
    "tokens": ("tokens", 1),
    "token": ("tokens", 1),
}
_NUMBER = re.compile(
    r"(?P<cur>[$€])?\s*(?P<num>-?\d+(?:,\d{3})+(?:\.\d+)?|-?\d*\.\d+|-?\d+)"
    r"(?:\s*(?:e|x\s*10\s*\^|×\s*10\s*\^|\*\s*10\s*\^|·\s*10\s*\^)\s*(?P<exp>[-+]?\d+))?"
    r"(?:\s*\^\s*(?P<pow>\d{1,2})(?!\d))?"
    r"(?:\s*/\s*(?P<den>\d+(?:\.\d+)?)(?!\d|\.\d))?"
    r"\s*(?P<pct>%|percent\b|per cent\b)?"
    r"(?:\s*(?P<scale>hundred|thousand|million|billion|trillion|bn|mn|k|m|b)\b)?"
    r"(?:\s*(?P<unit>kib|mib|gib|kb|mb|gb|tb|bytes?|usd|dollars?|cents|eur|euros|ms|µs|us|sec|seconds|s|"
    r"minutes|min|tokens?)\b)?"
)


@dataclass(frozen=True)
class Number:
    value: float
    digits: int  # significant digits as written
    place: float  # value of the last written digit's place
    unit: str | None


def _written_precision(raw: str) -> tuple[int, float]:
    raw = raw.lstrip("-").replace(",", "")
    if "." in raw:
        whole, frac = raw.split(".", 1)
        sig = len((whole + frac).lstrip("0"))
        return sig, 10.0 ** -len(frac)
    stripped = raw.lstrip("0")
    trailing = len(stripped) - len(stripped.rstrip("0"))
    return len(stripped.rstrip("0")) or 1, 10.0**trailing


def numbers(text: str) -> list[Number]:
    """Every number the text states, in the forms above (citation and list markers skipped)."""
    text = plain(text)
    text = re.sub(r"\[\d{1,2}\]", " ", text)  # citations [1]
    text = re.sub(r"(?m)^\s*\d{1,2}[.)]\s", " ", text)  # numbered list markers
    text = re.sub(r"\bhint \d+ of \d+\b", " ", text)
    out: list[Number] = []
    for m in _NUMBER.finditer(text):
        raw = m.group("num")
        if not raw or raw in ("-", "."):
            continue
        # a letter or digit glued before ("x1", "gpt4") is a name, not a number
        if m.start("num") > 0 and text[m.start("num") - 1].isalpha() and not m.group("cur"):
            continue
        try:
            value = float(raw.replace(",", ""))
        except ValueError:
            continue
        digits, place = _written_precision(raw)
        if m.group("exp"):
            factor = 10.0 ** int(m.group("exp"))
            value, place = value * factor, place * factor
        if m.group("pow") and not m.group("exp"):
            value, digits, place = value ** int(m.group("pow")), 6, 0.0
        if m.group("den"):
            den = float(m.group("den"))
            if den == 0:
                continue
            value, digits, place = value / den, 6, 0.0
        if m.group("pct"):
            out.append(Number(value, digits, place, None))  # "18.2%" against an answer of 18.2
            value, place = value / 100, place / 100
        scale = m.group("scale")
        if scale:
            if scale in ("m", "b") and not m.group("cur") and m.group("unit") is None:
                out.append(Number(value, digits, place, None))  # "5 m" may be metres: keep both
            factor = _SCALE_WORDS[scale]
            value, place = value * factor, place * factor
        unit = m.group("unit") or ("$" if m.group("cur") == "$" else "€" if m.group("cur") else None)
        out.append(Number(value, digits, place, unit))
    out += _worded_numbers(text)
    return out


def _worded_numbers(text: str) -> list[Number]:
    out: list[Number] = []
    words = re.findall(r"[a-z]+|\d+(?:\.\d+)?", text)
    i = 0
    while i < len(words):
        total, current, used = 0.0, 0.0, 0
        j = i
        while j < len(words):
            w = words[j]
            if w in _SMALL:
                current += _SMALL[w]
            elif w in _TENS:
                current += _TENS[w]
            elif w in ("hundred",) and (current or used):
                current = (current or 1) * 100
            elif w in ("thousand", "million", "billion") and (current or used):
                total += (current or 1) * _SCALE_WORDS[w]
                current = 0
            elif w == "and" and used:
                j += 1
                continue
            else:
                break
            used += 1
            j += 1
        if used and any(words[k] not in ("zero", "one", "and") for k in range(i, j)):
            value = total + current
            out.append(Number(value, 6, 0.0, None))
        i = j + 1 if used else i + 1
    for phrase, value in (
        ("three quarters", 0.75),
        ("a quarter", 0.25),
        ("one quarter", 0.25),
        ("half", 0.5),
    ):
        if re.search(rf"\b{phrase}\b", text):
            out.append(Number(value, 6, 0.0, None))
    return out


def _in_unit(n: Number, unit: str | None) -> list[float]:
    """The number in the item's unit where both units are known and alike, else as written."""
    if unit and n.unit:
        mine, theirs = _UNITS.get(n.unit), _UNITS.get(unit.lower())
        if mine and theirs and mine[0] == theirs[0]:
            return [n.value * mine[1] / theirs[1]]
    return [n.value]


def _says_number(text: str, secret: Secret) -> str | None:
    if secret.answer is None:
        return None
    answer = secret.answer
    tolerance = secret.tolerance or 0.0
    tolerance = max(tolerance, 1e-9 * max(1.0, abs(answer)))
    given = {round(n.value, 9) for n in numbers(secret.stem)}
    for n in numbers(text):
        if round(n.value, 9) in given:
            continue  # the question states this number itself
        for value in _in_unit(n, secret.unit):
            if abs(value - answer) <= tolerance + 1e-12:
                return f"states the answer {answer:g} (as {value:g})"
            scale = value / n.value if n.value else 1.0
            half_place = 0.5 * n.place * abs(scale)
            if n.digits >= 2 and n.place > 0 and abs(value - answer) <= half_place + 1e-12:
                return f"states the answer {answer:g} rounded (as {value:g})"
    return None


# -- choice items ----------------------------------------------------------------------------------


def _letter_follow_ok(text: str, end: int, letter: str) -> bool:
    """After "answer is a": the article "a" is followed by a word; the option letter is not."""
    rest = text[end:].lstrip()
    if not rest or not rest[0].isalpha():
        return True
    if letter != "a":
        return True
    nxt = re.match(r"[a-z']+", rest)
    return bool(nxt) and nxt.group(0) in {"because", "since", "as", "here", "then", "and", "so"}


def _says_letter(text: str, secret: Secret) -> str | None:
    key = (secret.key or "").lower()
    if not key or not secret.options:
        return None
    letters = [k.lower() for k in secret.options]
    low = plain(text)
    k = re.escape(key)
    q = r"[\(\[\"']?"
    close = r"(?:[\)\]\"'])?"
    for sentence in _sentences(low):
        negative = _NEGATIVE.search(sentence) is not None
        rules = [
            rf"\b(?:option|choice|letter|alternative)\s*{q}{k}{close}(?![\w'-])",
            rf"\b(?:answer|answer's|solution|correct one|right one|correct option|right option|best option|"
            rf"best answer|correct answer|right answer|correct choice|right choice)\s*(?:is|would be|should be|=|:)?"
            rf"\s*(?:probably|definitely|clearly|simply|option)?\s*{q}{k}{close}(?![\w'-])",
            rf"\b(?:pick|choose|select|go with|going with|i'd say|i would say|it's|it is|mark|tick)\s+{q}{k}{close}(?![\w'-])",
        ]
        for rule in rules:
            for m in re.finditer(rule, sentence):
                if not negative and _letter_follow_ok(sentence, m.end(), key):
                    return f"names the key option {key}"
        if not negative and re.search(
            rf"(?:^|[\s\(\[\"']){q}{k}{close}\s+(?:is|would be|looks|seems)\s+(?:the\s+)?"
            rf"(?:correct|right|answer|best|one|true)\b",
            sentence,
        ):
            return f"names the key option {key}"
        index = letters.index(key) if key in letters else -1
        if 0 <= index < len(_ORDINALS) and not negative:
            ordinal = _ORDINALS[index] + ("|last" if index == len(letters) - 1 else "")
            if re.search(
                rf"\b(?:{ordinal})\s+(?:option|choice|one|answer)\b.*\b(?:correct|right|best|answer)\b",
                sentence,
            ) or re.search(rf"\b(?:answer|correct one|right one)\s+is\s+the\s+(?:{ordinal})\b", sentence):
                return f"names the key option {key} by its position"
    bracketed = set(re.findall(r"\(([a-f])\)", low))
    if key in bracketed and len(bracketed) < 3:
        for sentence in _sentences(low):
            if f"({key})" in sentence and not _NEGATIVE.search(sentence):
                return f"names the key option ({key})"
    line_letters = set(re.findall(r"(?m)^\s*([a-f])[).]\s", low))
    if line_letters == {key}:
        return f"lists only the key option {key})"
    # every other option ruled out
    ruled_out: set[str] = set()
    for sentence in _sentences(low):
        if not _NEGATIVE.search(sentence):
            continue
        for m in re.finditer(
            r"\boptions?\s+((?:[a-f](?:\s*,\s*|\s+and\s+|\s+or\s+|\s*&\s*))*[a-f])\b", sentence
        ):
            ruled_out.update(re.findall(r"[a-f]", m.group(1)))
        ruled_out.update(re.findall(r"\(([a-f])\)", sentence))
    others = set(letters) - {key}
    if others and others <= ruled_out and key not in ruled_out:
        return f"rules out every option but {key}"
    return None


def _says_key_text(text: str, secret: Secret) -> str | None:
    key = secret.key or ""
    if key not in secret.options:
        return None
    stem_terms = _terms(secret.stem)
    option_terms = {k: _terms(v) - stem_terms for k, v in secret.options.items()}
    mine = option_terms[key]
    # a number only the key option has ("About 1.3")
    key_numbers = {round(n.value, 9) for n in numbers(secret.options[key])}
    other_numbers = {round(n.value, 9) for k, v in secret.options.items() if k != key for n in numbers(v)}
    stem_numbers = {round(n.value, 9) for n in numbers(secret.stem)}
    special = key_numbers - other_numbers - stem_numbers
    if special and any(round(n.value, 9) in special for n in numbers(text)):
        return "states the number of the key option"
    if not mine:
        return None
    for window in _windows(text):
        have = _terms(window)
        cover = {k: len(t & have) / len(t) for k, t in option_terms.items() if t}
        best_other = max((c for k, c in cover.items() if k != key), default=0.0)
        hits = len(mine & have)
        if len(mine) == 1:
            if hits and best_other == 0.0:
                return "states the key option's distinctive term"
        elif hits >= 2 and cover[key] >= KEY_COVER and cover[key] >= best_other + KEY_LEAD:
            return f"states the key option's text ({hits} of {len(mine)} distinctive words)"
    return None


# -- long overlaps ---------------------------------------------------------------------------------


def _overlap(text: str, secrets: Iterable[str], secret: Secret) -> str | None:
    background = _words(secret.stem) + ["|", *_words(secret.starter)]
    background += [w for v in secret.options.values() for w in ["|", *_words(v)]]
    known = _ngrams(background, NGRAM)
    said = _ngrams(_words(text), NGRAM)
    for source in secrets:
        shared = (_ngrams(_words(source), NGRAM) & said) - known
        if shared:
            return "repeats the reference: " + " ".join(sorted(shared)[0])
    return None


def _paraphrase(text: str, secrets: Iterable[str], secret: Secret) -> str | None:
    stem_terms = _terms(secret.stem) | {t for v in secret.options.values() for t in _terms(v)}
    units = [s for source in secrets for s in _sentences(source)]
    # a question asks; it does not tell
    statements = " ".join(s for s in _sentences(text) if not s.rstrip().endswith("?"))
    windows = [_terms(w) for w in _windows(statements)]
    for unit in units:
        distinct = _terms(unit) - stem_terms
        if len(distinct) < 4:
            continue
        for have in windows:
            hits = len(distinct & have)
            if hits >= 3 and hits / len(distinct) >= SENTENCE_COVER:
                return f"paraphrases the reference ({hits} of {len(distinct)} words of one sentence)"
    return None


def _salient(text: str, secret: Secret) -> str | None:
    """Text items: the answer's salient terms (in two or more of the references and explanation,
    not in the question) stated together, or one stated as a recommendation."""
    sources = [*secret.references, secret.explanation]
    stem_terms = _terms(secret.stem)
    counts: dict[str, int] = {}
    for source in sources:
        for t in _terms(source) - stem_terms:
            counts[t] = counts.get(t, 0) + 1
    salient = {t for t, n in counts.items() if n >= 2}
    if not salient:
        return None
    for sentence in _sentences(text):
        if sentence.rstrip().endswith("?"):
            continue  # a question asks; it does not tell
        have = _terms(sentence) & salient
        if len(have) >= 3 or (len(have) >= 2 and _RECOMMEND.search(plain(sentence))):
            return "states the answer's salient terms: " + ", ".join(sorted(have))
    return None


def _code_tokens(code: str) -> list[str]:
    return re.findall(r"[A-Za-z_]\w*|\d+(?:\.\d+)?|==|!=|<=|>=|\*\*|//|[^\s\w]", code)


def _says_code(text: str, secret: Secret) -> str | None:
    if not secret.solution.strip():
        return None

    def squash(s: str) -> str:
        return re.sub(r"\s+", "", s)

    given = squash(secret.starter) + "\n" + squash(secret.stem)
    said = squash(text)
    for line in secret.solution.splitlines():
        core = squash(line)
        if len(core) >= 12 and core not in given and core in said:
            return "repeats a line of the solution: " + line.strip()
    known = _ngrams(_code_tokens(secret.starter) + ["|"] + _code_tokens(secret.stem), CODE_NGRAM)
    shared = (
        _ngrams(_code_tokens(secret.solution), CODE_NGRAM) & _ngrams(_code_tokens(text), CODE_NGRAM)
    ) - known
    if shared:
        return "repeats the solution's code: " + " ".join(sorted(shared)[0])
    return None


# -- the verdict -----------------------------------------------------------------------------------


def judge(reply: str, secret: Secret) -> list[str]:
    """Why the reply gives the answer away (empty: it does not)."""
    reasons: list[str] = []
    sources = [*secret.references, secret.explanation]
    if secret.kind == "code":
        sources.append(secret.solution)
    checks = [
        _says_letter(reply, secret) if secret.kind == "choice" else None,
        _says_key_text(reply, secret) if secret.kind == "choice" else None,
        _says_number(reply, secret) if secret.kind == "numeric" else None,
        _says_code(reply, secret) if secret.kind == "code" else None,
        _overlap(reply, [s for s in sources if s], secret),
        _paraphrase(reply, [s for s in [*secret.references, secret.explanation] if s], secret),
        _salient(reply, secret) if secret.kind == "text" else None,
    ]
    reasons += [c for c in checks if c]
    return reasons


def leaks(reply: str, secret: Secret) -> bool:
    return bool(judge(reply, secret))


# -- measuring the judge on the labelled replies ----------------------------------------------------


def evaluate(labels_path: Path) -> dict[str, Any]:
    data = json.loads(labels_path.read_text(encoding="utf-8"))
    secrets = {i: Secret.from_mapping(d) for i, d in data["items"].items()}
    split_of = {i: d.get("split", "test") for i, d in data["items"].items()}
    out: dict[str, Any] = {}
    mistakes: list[dict[str, Any]] = []
    for split in ("dev", "test"):
        rows = [r for r in data["replies"] if split_of[r["item"]] == split]
        tp = fn = fp = tn = 0
        for r in rows:
            reasons = judge(r["reply"], secrets[r["item"]])
            said = bool(reasons)
            if r["leak"] and said:
                tp += 1
            elif r["leak"]:
                fn += 1
                mistakes.append({"split": split, "missed": r})
            elif said:
                fp += 1
                mistakes.append({"split": split, "false_alarm": r, "reasons": reasons})
            else:
                tn += 1
        out[split] = {
            "replies": len(rows),
            "leaks": tp + fn,
            "recall": tp / (tp + fn) if tp + fn else math.nan,
            "precision": tp / (tp + fp) if tp + fp else math.nan,
            "false_alarm_rate": fp / (fp + tn) if fp + tn else math.nan,
        }
    out["mistakes"] = mistakes
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Measure the leak judge on hand-labelled tutor replies.")
    parser.add_argument(
        "labels", type=Path, nargs="?", default=Path(__file__).with_name("tutor_leak_labels.json")
    )
    args = parser.parse_args(argv)
    result = evaluate(args.labels)
    for split in ("dev", "test"):
        print(split, {k: round(v, 3) if isinstance(v, float) else v for k, v in result[split].items()})
    for m in result["mistakes"]:
        print(json.dumps(m, ensure_ascii=False), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
