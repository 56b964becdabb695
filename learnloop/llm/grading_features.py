"""Features of a free-text answer against its reference answers, for the offline grader.

Pure numpy: the caller supplies the sentence embeddings (``embeddings.py``), so the same
function serves training (``bench/grading.py``) and grading in the product.

Rubric keyword coverage: a pack item's rubric lists keyword phrases per criterion; the
SemEval-2013 training data has no rubric, so there each content word of the reference that
the question does not already contain stands for one criterion. Both measure "how much of
the new content of the reference did the learner say".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

_STOPWORD_TEXT = """
a an the and or but if then so of to in on at by for with from as into onto about over under
is are was were be been being am do does did have has had having it its this that these those
there here what which who whom whose when where why how i you he she we they me him her us them
my your his our their can could would should will shall may might must also just very more most
than too such some any each other both all because while than up down out off again further once
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
NEGATIONS = frozenset({"not", "no", "never", "none", "nothing", "neither", "nor", "cannot", "without"})
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")

SCALAR_FEATURES = (
    "max_cos_ref",
    "mean_cos_ref",
    "cos_question",
    "ref_minus_question",
    "recall",
    "precision",
    "f1",
    "bigram_recall",
    "keyword_coverage",
    "log_length",
    "length_ratio",
    "negation_mismatch",
    "novel_answer_words",
)


def tokens(text: str) -> list[str]:
    words = _TOKEN.findall(text.lower().replace("n't", " not"))
    return [w.split("'")[0] for w in words]


def stem(word: str) -> str:
    # A crude suffix stripper is enough to match "evaporated" with "evaporates".
    for suffix in ("ing", "ed", "es", "s", "ly"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> list[str]:
    return [stem(w) for w in tokens(text) if w not in STOPWORDS]


def _bigrams(words: list[str]) -> set[tuple[str, str]]:
    return set(zip(words, words[1:], strict=False))


@dataclass
class GradingCase:
    """One answer to grade: the learner's text, the references and (optionally) a rubric."""

    answer: str
    references: list[str]
    question: str = ""
    #: one list of keyword phrases per rubric criterion; None derives them from the references
    rubric_keywords: list[list[str]] | None = None
    extra: dict[str, float] = field(default_factory=dict)


def keyword_coverage(case: GradingCase) -> float:
    if case.rubric_keywords:
        text = " ".join(tokens(case.answer))
        stems = set(content_words(case.answer))
        met = 0
        for phrases in case.rubric_keywords:
            for phrase in phrases:
                words = content_words(phrase)
                if (" ".join(tokens(phrase)) in text) or (words and all(w in stems for w in words)):
                    met += 1
                    break
        return met / len(case.rubric_keywords)
    question = set(content_words(case.question))
    best = 0.0
    answer = set(content_words(case.answer))
    for ref in case.references:
        novel = set(content_words(ref)) - question
        if novel:
            best = max(best, len(novel & answer) / len(novel))
    return best


def scalar_features(
    case: GradingCase, answer_vec: np.ndarray, ref_vecs: np.ndarray, question_vec: np.ndarray | None
) -> np.ndarray:
    """The hand-made features named in :data:`SCALAR_FEATURES`."""
    cos_refs = ref_vecs @ answer_vec if len(ref_vecs) else np.zeros(1)
    cos_q = float(question_vec @ answer_vec) if question_vec is not None else 0.0
    best = int(np.argmax(cos_refs)) if len(case.references) else 0
    answer_words = content_words(case.answer)
    answer_set = set(answer_words)
    question_set = set(content_words(case.question))
    recall = precision = f1 = bigram = 0.0
    for ref in case.references:
        ref_words = content_words(ref)
        ref_set = set(ref_words)
        if not ref_set or not answer_set:
            continue
        overlap = len(ref_set & answer_set)
        r, p = overlap / len(ref_set), overlap / len(answer_set)
        recall, precision = max(recall, r), max(precision, p)
        f1 = max(f1, 2 * r * p / (r + p) if r + p else 0.0)
        ref_bigrams = _bigrams(ref_words)
        if ref_bigrams:
            bigram = max(bigram, len(ref_bigrams & _bigrams(answer_words)) / len(ref_bigrams))
    ref_text = case.references[best] if case.references else ""
    ref_len = max(len(tokens(ref_text)), 1)
    answer_tokens = tokens(case.answer)
    neg_answer = bool(NEGATIONS & set(answer_tokens))
    neg_ref = bool(NEGATIONS & set(tokens(ref_text)))
    vocabulary = (
        question_set.union(*(set(content_words(r)) for r in case.references))
        if case.references
        else question_set
    )
    novel = len(answer_set - vocabulary) / len(answer_set) if answer_set else 0.0
    return np.array(
        [
            float(cos_refs.max()),
            float(cos_refs.mean()),
            cos_q,
            float(cos_refs.max()) - cos_q,
            recall,
            precision,
            f1,
            bigram,
            keyword_coverage(case),
            float(np.log1p(len(answer_tokens))),
            min(len(answer_tokens) / ref_len, 4.0),
            float(neg_answer != neg_ref),
            novel,
        ],
        dtype=np.float64,
    )


def interaction_features(answer_vec: np.ndarray, ref_vecs: np.ndarray) -> np.ndarray:
    """Element-wise product and absolute difference with the closest reference (Conneau et al. 2017)."""
    if not len(ref_vecs):
        return np.zeros(2 * answer_vec.shape[0])
    best = ref_vecs[int(np.argmax(ref_vecs @ answer_vec))]
    return np.concatenate([answer_vec * best, np.abs(answer_vec - best)]).astype(np.float64)


def case_features(
    case: GradingCase,
    answer_vec: np.ndarray,
    ref_vecs: np.ndarray,
    question_vec: np.ndarray | None,
    *,
    interactions: bool = True,
) -> np.ndarray:
    parts = [scalar_features(case, answer_vec, ref_vecs, question_vec)]
    if interactions:
        parts.append(interaction_features(answer_vec, ref_vecs))
    return np.concatenate(parts)


def texts_to_embed(cases: Sequence[GradingCase]) -> list[str]:
    """Every distinct text the features need, for one batched embedding call."""
    seen: dict[str, None] = {}
    for case in cases:
        seen.setdefault(case.answer, None)
        seen.setdefault(case.question, None)
        for ref in case.references:
            seen.setdefault(ref, None)
    return list(seen)
