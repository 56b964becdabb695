"""Drafting practice items for a skill from its lessons.

With a model: a prompt with the lesson and the stems already in the bank, structured JSON
output, each draft validated against the pack schema (:class:`learnloop.content.models.Item`).
Offline: template drafts an author completes (``offline_drafts``): the terms the lessons set in
bold, asked as "which term fits" choice items (the other terms as distractors) and "explain in
your own words" text items, every text only an author can write marked ‹like this›. Either way drafts are de-duplicated against the bank by
embedding similarity and only ever become pack content after an instructor approves them.
"""

from __future__ import annotations

import json
import random
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import ValidationError

from learnloop.content.models import Item, Lesson, Skill
from learnloop.llm.grading_text import lexical_units as content_words
from learnloop.llm.providers.offline import chunk_lesson

EmbedFn = Callable[[list[str]], np.ndarray]
DUPLICATE_SIMILARITY = 0.92
_BOLD = re.compile(r"\*\*([^*]{2,60})\*\*")

DRAFT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "kind": {"type": "string", "enum": ["choice", "text"]},
                    "stem": {"type": "string"},
                    "options": {"type": "object", "additionalProperties": {"type": "string"}},
                    "key": {"type": "string"},
                    "reference_answers": {"type": "array", "items": {"type": "string"}},
                    "rubric": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "id": {"type": "string"},
                                "description": {"type": "string"},
                                "keywords": {"type": "array", "items": {"type": "string"}},
                            },
                            "required": ["id", "description", "keywords"],
                        },
                    },
                    "explanation": {"type": "string"},
                    "hints": {"type": "array", "items": {"type": "string"}},
                    "difficulty": {"type": "number"},
                },
                "required": ["kind", "stem", "explanation", "hints"],
            },
        }
    },
    "required": ["items"],
}

SYSTEM_PROMPT = (
    "You write practice items for an adaptive learning product. Use only facts from the lesson. "
    "Each item is either a multiple-choice item (kind 'choice': options a-d, one key) or a short "
    "free-text item (kind 'text': reference_answers and a rubric whose criteria list keywords). "
    "Give an explanation and 2-3 hints that do not reveal the answer. Do not repeat existing items. "
    'Reply with JSON only: {"items": [...]}.'
)


@dataclass
class Draft:
    item: Item
    nearest_item_id: str | None = None
    similarity: float = 0.0


def author_messages(
    skill: Skill, lessons: Sequence[Lesson], existing_stems: Sequence[str], count: int
) -> list[dict[str, str]]:
    lesson_text = "\n\n".join(f"# {lesson.title}\n{lesson.body}" for lesson in lessons)[:12_000]
    existing = "\n".join(f"- {s.strip()[:200]}" for s in existing_stems[:40]) or "(none)"
    user = (
        f"Skill: {skill.name} ({skill.id})\n\nLesson:\n{lesson_text}\n\nExisting items:\n{existing}\n\n"
        f"Write {count} new items."
    )
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def parse_drafts(raw: str, skill_id: str, id_prefix: str) -> tuple[list[Item], list[str]]:
    """Valid items from the model's reply, and a problem line for every draft that was not."""
    try:
        document = json.loads(raw.strip().removeprefix("```json").removesuffix("```"))
        entries = document["items"] if isinstance(document, dict) else document
        if not isinstance(entries, list):
            raise TypeError
    except (json.JSONDecodeError, KeyError, TypeError):
        return [], ["the model's reply is not a JSON list of items"]
    items, problems = [], []
    for n, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            problems.append(f"draft {n}: not an object")
            continue
        fields = {k: v for k, v in entry.items() if k in Item.model_fields and k not in ("id", "skills")}
        try:
            items.append(Item.model_validate({**fields, "id": f"{id_prefix}-{n}", "skills": [skill_id]}))
        except ValidationError as exc:
            problems.append(f"draft {n}: " + "; ".join(e["msg"] for e in exc.errors()))
    return items, problems


#: marks what an author still has to write in a template draft; approval refuses a draft with one
PLACEHOLDER = re.compile(r"‹[^‹›]*›")
#: how each language asks for a translation in a draft's skeleton
_TRANSLATE = {"zh-CN": "译成中文", "en": "translate into English"}
#: a bold span of at most this many words, without sentence punctuation, is a term
_TERM_WORDS = 5


def _terms(text: str) -> list[str]:
    """The bold terms of a lesson passage ("**context window**"), not bold sentences."""
    out = []
    for span in _BOLD.findall(text):
        term = span.strip()
        if (
            len(term.split()) <= _TERM_WORDS
            and not re.search(r"[.!?:;,]$", term)
            and not re.match(r"^[\d$€£¥]", term)
            and term.lower() not in ("and", "or", "not")
        ):
            out.append(term)
    return out


@dataclass(frozen=True)
class _Term:
    term: str
    heading: str
    lesson_title: str


def _lesson_terms(lessons: Sequence[Lesson]) -> list[_Term]:
    seen: set[str] = set()
    out = []
    for lesson in lessons:
        for passage in chunk_lesson(lesson):
            for term in _terms(passage.text):
                if term.lower() not in seen:
                    seen.add(term.lower())
                    out.append(_Term(term, passage.heading or lesson.title, lesson.title))
    return out


def offline_drafts(
    skill: Skill,
    lessons: Sequence[Lesson],
    count: int,
    id_prefix: str,
    related: Sequence[Lesson] = (),
) -> list[Item]:
    """Template drafts an author completes, built from the terms the lessons set in bold.

    Without a model nothing can write a good question, so these are skeletons with every
    structural part real (the term asked about, distractors that are the other terms of the
    skill's lessons or of ``related`` lessons of the same domain, the key, the hint pointing
    at the lesson section) and every text only an author can write marked ‹like this›.
    Approval refuses a draft while a marker is left (``placeholders``). Alternates
    "which term fits this description" choice items and "explain in your own words" text
    items with a rubric of phrases."""
    terms = _lesson_terms(lessons)
    pool = [t.term for t in terms]
    pool += [t.term for t in _lesson_terms(related) if t.term.lower() not in {p.lower() for p in pool}]
    out: list[Item] = []
    for n, t in enumerate(terms[:count]):
        others = [p for p in pool if p.lower() != t.term.lower()]
        item_id = f"{id_prefix}-{n + 1}"
        reread = f"Reread the section “{t.heading}” of “{t.lesson_title}”."
        if n % 2 == 0 and len(others) >= 2:
            rng = random.Random(zlib.crc32(t.term.encode()))
            options = [t.term, *rng.sample(others, min(3, len(others)))]
            rng.shuffle(options)
            letters = "abcd"[: len(options)]
            document: dict[str, Any] = {
                "kind": "choice",
                "stem": f"Which term from “{t.lesson_title}” fits this description?\n\n"
                f"‹Describe {t.term} in one sentence of your own, without naming it.›",
                "options": dict(zip(letters, options, strict=True)),
                "key": letters[options.index(t.term)],
                "explanation": f"‹Why “{t.term}” fits the description, and what each other option "
                "names instead.›",
                "hints": [reread, f"‹A second hint that narrows the choice without naming “{t.term}”.›"],
                "minutes": 1,
            }
        else:
            document = {
                "kind": "text",
                "stem": f"In two or three sentences of your own, explain what “{t.term}” is and why it "
                "matters.",
                "reference_answers": [f"‹A model answer about {t.term}, in your own words.›"],
                "rubric": [
                    {
                        "id": "c1",
                        "description": f"Says what {t.term} is",
                        "keywords": [t.term.lower(), f"‹another phrase that shows what {t.term} is›"],
                    },
                    {
                        "id": "c2",
                        "description": f"‹Why {t.term} matters: the second idea a good answer has›",
                        "keywords": ["‹a phrase of two to four words›", "‹another way to say it›"],
                    },
                ],
                "pass_fraction": 0.5,
                "explanation": f"‹What a complete answer says about {t.term}, in two or three sentences.›",
                "hints": [reread, f"‹A second hint: a question that leads to why {t.term} matters.›"],
                "minutes": 3,
            }
        out.append(Item.model_validate({"id": item_id, "skills": [skill.id], **document}))
    return out


def translation_skeleton(item: Item, language: str) -> dict[str, Any]:
    """The texts of ``item`` for ``language``, each a marker asking the author to translate it
    (the overlay fields of its kind, ``content.models.TEXT_FIELDS``)."""
    ask = _TRANSLATE.get(language, f"translate into {language}")

    def mark(text: str) -> str:
        return f"‹{ask}: {PLACEHOLDER.sub(lambda m: m.group(0)[1:-1], text).strip()}›"

    out: dict[str, Any] = {"stem": mark(item.stem), "explanation": mark(item.explanation)}
    out["hints"] = [mark(h) for h in item.hints]
    if item.kind == "choice":
        out["options"] = {k: mark(v) for k, v in (item.options or {}).items()}
    if item.kind == "numeric" and item.unit:
        out["unit"] = mark(item.unit)
    if item.kind == "text":
        out["reference_answers"] = [mark(a) for a in item.reference_answers or []]
        out["rubric"] = {
            c.id: {"description": mark(c.description), "keywords": [mark(", ".join(c.keywords))]}
            for c in item.rubric or []
        }
    return out


def placeholders(document: Any, path: str = "") -> list[str]:
    """Where ``document`` (an item, with its translations) still has a ‹marker›: field paths."""
    if isinstance(document, str):
        return [path] if PLACEHOLDER.search(document) else []
    if isinstance(document, dict):
        return [p for k, v in document.items() for p in placeholders(v, f"{path}.{k}" if path else str(k))]
    if isinstance(document, list):
        return [p for n, v in enumerate(document) for p in placeholders(v, f"{path}[{n}]")]
    return []


#: a run of this many words (or CJK characters) shared with the lesson counts as copied
COPIED_RUN = 10
_UNITS = re.compile(r"[\u3400-\u9fff]|[^\W_\u3400-\u9fff]+")


def _runs(text: str, n: int) -> set[tuple[str, ...]]:
    units = _UNITS.findall(text.lower())
    return {tuple(units[i : i + n]) for i in range(len(units) - n + 1)}


def copied_from(document: Any, sources: Sequence[str], n: int = COPIED_RUN) -> list[tuple[str, str]]:
    """(field path, the copied words) for each text of ``document`` that repeats a run of ``n``
    words of ``sources`` (the lessons) word for word."""
    source_runs: set[tuple[str, ...]] = set()
    for text in sources:
        source_runs |= _runs(re.sub(r"[*_`#>|]", " ", text), n)
    out = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, str):
            shared = _runs(value, n) & source_runs
            if shared:
                out.append((path, " ".join(min(shared))))
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{path}.{k}" if path else str(k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{path}[{i}]")

    walk(document, "")
    return out


def _item_text(item: Item) -> str:
    return (
        item.stem
        + " "
        + " ".join((item.options or {}).values())
        + " "
        + " ".join(item.reference_answers or [])
    )


def deduplicate(
    drafts: Sequence[Item],
    bank: Sequence[Item],
    embed: EmbedFn | None,
    threshold: float = DUPLICATE_SIMILARITY,
) -> tuple[list[Draft], list[Item]]:
    """Drafts kept (with their nearest bank item) and drafts dropped as near-duplicates.

    Similarity is the cosine of sentence embeddings of stem, options and answers; without
    embeddings, the Jaccard index of content words stands in.
    """
    kept: list[Draft] = []
    dropped: list[Item] = []
    if not drafts:
        return kept, dropped
    texts = [_item_text(i) for i in [*bank, *drafts]]
    if embed is not None:
        vectors = embed(texts)
        sims = vectors[len(bank) :] @ vectors.T
    else:
        words = [set(content_words(t)) for t in texts]
        sims = np.array(
            [
                [len(words[d] & w) / max(len(words[d] | w), 1) for w in words]
                for d in range(len(bank), len(texts))
            ]
        )
    for n, item in enumerate(drafts):
        row = sims[n]
        # Compare with the bank and with the drafts kept so far (never with itself).
        candidates = list(range(len(bank))) + [
            len(bank) + i for i in range(n) if any(k.item is drafts[i] for k in kept)
        ]
        if not candidates:
            kept.append(Draft(item))
            continue
        best = max(candidates, key=lambda j: row[j])
        similarity = float(row[best])
        nearest = bank[best].id if best < len(bank) else drafts[best - len(bank)].id
        if similarity >= threshold:
            dropped.append(item)
        else:
            kept.append(Draft(item, nearest_item_id=nearest, similarity=round(similarity, 4)))
    return kept, dropped
