"""Features of a free-text answer against its item's evidence, for the offline grader.

Evidence: the reference answers (sentence by sentence), the question, and the rubric's keyword
phrases per criterion. Pure numpy: the caller supplies the sentence vectors (``grading_encoder``)
for every text :func:`texts_to_embed` lists, so one function serves training
(``bench/grading.py``) and grading in the product.

Two feature sets:

- :data:`SCALAR_FEATURES` (with the answer-reference interaction vectors) when the answer is in
  the language of the references: embedding similarity, word overlap, rubric keyword coverage;
- :data:`CROSS_LINGUAL_FEATURES` when it is not (a Chinese answer to English references):
  only measures that compare similarities within the answer's own language pair, so the
  cross-lingual offset of the cosines cancels out (the answer's similarity to the references
  minus its similarity to the question or to generic non-answers), plus direction, negation,
  word-list and repetition checks that read both languages.

Rubric keyword coverage: a pack item's rubric lists keyword phrases per criterion; the
SemEval-2013 training data has no rubric, so there each content word of the reference that the
question does not already contain stands for one criterion.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from learnloop.llm import grading_text as gt

SCALAR_FEATURES = (
    "max_cos_ref",
    "mean_cos_ref",
    "max_sent_cos",
    "ref_sent_coverage",
    "answer_sent_support",
    "cos_question",
    "ref_minus_question",
    "ref_minus_background",
    "sent_minus_background",
    "direction_conflict",
    "negation_mismatch",
    "salad",
    "repetition",
    "log_length",
    "length_ratio",
    "recall",
    "precision",
    "f1",
    "bigram_recall",
    "keyword_coverage",
    "novel_answer_words",
)
CROSS_LINGUAL_FEATURES = (
    "ref_minus_question",
    "ref_minus_background",
    "sent_minus_background",
    "direction_conflict",
    "negation_mismatch",
    "salad",
    "repetition",
    "log_length",
    "length_ratio",
)

#: Answers that say nothing about any question; an answer is compared with these and with the
#: references, in whatever language it is written.
BACKGROUND = (
    "I don't know.",
    "I am not sure, it depends on the situation.",
    "It is important and useful because it helps a lot.",
    "Because that is how it works.",
    "It makes the system better and more efficient.",
    "The model does what it is told to do.",
    "You should test it and see what happens.",
    "It is a good practice that experts recommend.",
    "This is a very interesting question about technology.",
    "The answer is in the textbook.",
)


@dataclass
class GradingCase:
    """One answer to grade: the learner's text, the evidence, and whether they share a language."""

    answer: str
    references: list[str]
    question: str = ""
    #: one list of keyword phrases per rubric criterion; None derives them from the references
    rubric_keywords: list[list[str]] | None = None
    same_language: bool = True


def _sentences(text: str) -> list[str]:
    return gt.sentences(text) or [text]


def texts_to_embed(cases: Sequence[GradingCase]) -> list[str]:
    """Every distinct text the features need, for one batched encoder call."""
    seen: dict[str, None] = dict.fromkeys(BACKGROUND)
    for case in cases:
        for text in (case.answer, case.question, *_sentences(case.answer)):
            seen.setdefault(text, None)
        for ref in case.references:
            seen.setdefault(ref, None)
            for s in _sentences(ref):
                seen.setdefault(s, None)
    return list(seen)


def keyword_coverage(case: GradingCase) -> float:
    if case.rubric_keywords:
        text = " ".join(gt.words(case.answer))
        stems = set(gt.lexical_units(case.answer))
        met = 0
        for phrases in case.rubric_keywords:
            for phrase in phrases:
                units = gt.lexical_units(phrase)
                if (" ".join(gt.words(phrase)) and " ".join(gt.words(phrase)) in text) or (
                    units and all(u in stems for u in units)
                ):
                    met += 1
                    break
        return met / len(case.rubric_keywords)
    question = set(gt.lexical_units(case.question))
    answer = set(gt.lexical_units(case.answer))
    best = 0.0
    for ref in case.references:
        novel = set(gt.lexical_units(ref)) - question
        if novel:
            best = max(best, len(novel & answer) / len(novel))
    return best


def _bigrams(units: list[str]) -> set[tuple[str, str]]:
    return set(zip(units, units[1:], strict=False))


def _lexical(case: GradingCase) -> list[float]:
    answer_units = gt.lexical_units(case.answer)
    answer_set = set(answer_units)
    recall = precision = f1 = bigram = 0.0
    for ref in case.references:
        ref_units = gt.lexical_units(ref)
        ref_set = set(ref_units)
        if not ref_set or not answer_set:
            continue
        overlap = len(ref_set & answer_set)
        r, p = overlap / len(ref_set), overlap / len(answer_set)
        recall, precision = max(recall, r), max(precision, p)
        f1 = max(f1, 2 * r * p / (r + p) if r + p else 0.0)
        ref_bigrams = _bigrams(ref_units)
        if ref_bigrams:
            bigram = max(bigram, len(ref_bigrams & _bigrams(answer_units)) / len(ref_bigrams))
    vocabulary = set(gt.lexical_units(case.question)).union(
        *(set(gt.lexical_units(r)) for r in case.references)
    )
    novel = len(answer_set - vocabulary) / len(answer_set) if answer_set else 0.0
    return [recall, precision, f1, bigram, keyword_coverage(case), novel]


def scalar_features(case: GradingCase, vectors: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Every named feature of one case (both sets are subsets of these)."""
    answer = vectors[case.answer]
    refs = (
        np.array([vectors[r] for r in case.references]) if case.references else np.zeros((1, answer.shape[0]))
    )
    background = np.array([vectors[b] for b in BACKGROUND])
    cos_refs = refs @ answer
    cos_q = float(vectors[case.question] @ answer) if case.question else 0.0
    answer_sents = _sentences(case.answer)
    ref_sents = [s for r in case.references for s in _sentences(r)] or [""]
    a_mat = np.array([vectors[s] for s in answer_sents])
    r_mat = np.array([vectors[s] for s in ref_sents]) if case.references else np.zeros((1, answer.shape[0]))
    sims = a_mat @ r_mat.T  # answer sentences x reference sentences
    best_ref_for_sent = sims.argmax(axis=1)
    conflict = negation = 0.0
    for i, j in enumerate(best_ref_for_sent):
        weight = float(sims[i, j])
        if gt.direction_conflict(answer_sents[i], ref_sents[j]):
            conflict = max(conflict, weight)
        if gt.has_negation(answer_sents[i]) != gt.has_negation(ref_sents[j]):
            negation = max(negation, weight)
    best = int(np.argmax(cos_refs))
    ref_len = max(gt.length_units(case.references[best]) if case.references else 1, 1)
    answer_len = gt.length_units(case.answer)
    bg = float((background @ answer).max())
    bg_sent = float((a_mat @ background.T).max(axis=1).mean())
    values = {
        "max_cos_ref": float(cos_refs.max()),
        "mean_cos_ref": float(cos_refs.mean()),
        "max_sent_cos": float(sims.max()),
        "ref_sent_coverage": float(sims.max(axis=0).mean()),
        "answer_sent_support": float(sims.max(axis=1).mean()),
        "cos_question": cos_q,
        "ref_minus_question": float(cos_refs.max()) - cos_q,
        "ref_minus_background": float(cos_refs.max()) - bg,
        "sent_minus_background": float(sims.max(axis=1).mean()) - bg_sent,
        "direction_conflict": conflict,
        "negation_mismatch": negation,
        "salad": gt.salad_score(case.answer),
        "repetition": gt.repetition_score(case.answer),
        "log_length": float(np.log1p(answer_len)),
        "length_ratio": min(answer_len / ref_len, 4.0),
    }
    lexical = _lexical(case) if case.same_language else [0.0] * 6
    values.update(zip(SCALAR_FEATURES[-6:], lexical, strict=True))
    return values


def interaction_features(case: GradingCase, vectors: Mapping[str, np.ndarray]) -> np.ndarray:
    """Element-wise product and absolute difference with the closest reference (Conneau et al. 2017)."""
    answer = vectors[case.answer]
    if not case.references:
        return np.zeros(2 * answer.shape[0])
    refs = np.array([vectors[r] for r in case.references])
    best = refs[int(np.argmax(refs @ answer))]
    return np.concatenate([answer * best, np.abs(answer - best)]).astype(np.float64)


def case_features(
    case: GradingCase, vectors: Mapping[str, np.ndarray], *, cross_lingual: bool = False
) -> np.ndarray:
    """The feature row of one case: :data:`SCALAR_FEATURES` and the interactions, or
    :data:`CROSS_LINGUAL_FEATURES` alone."""
    values = scalar_features(case, vectors)
    if cross_lingual:
        return np.array([values[n] for n in CROSS_LINGUAL_FEATURES], dtype=np.float64)
    return np.concatenate(
        [
            np.array([values[n] for n in SCALAR_FEATURES], dtype=np.float64),
            interaction_features(case, vectors),
        ]
    )
