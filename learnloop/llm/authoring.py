"""Drafting practice items for a skill from its lessons.

With a model: a prompt with the lesson and the stems already in the bank, structured JSON
output, each draft validated against the pack schema (:class:`learnloop.content.models.Item`).
Offline: one "explain in your own words" text item per lesson section, its rubric keywords
taken from the section's bold terms. Either way drafts are de-duplicated against the bank by
embedding similarity and only ever become pack content after an instructor approves them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import ValidationError

from learnloop.content.models import Item, Lesson, Skill
from learnloop.llm.grading_text import lexical_units as content_words
from learnloop.llm.leaks import sentences
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


def offline_drafts(skill: Skill, lessons: Sequence[Lesson], count: int, id_prefix: str) -> list[Item]:
    """Explain-in-your-own-words items, one per lesson section with enough to say."""
    out: list[Item] = []
    for lesson in lessons:
        for passage in chunk_lesson(lesson):
            if len(out) >= count:
                return out
            said = [s.strip() for s in sentences(re.sub(r"\s+", " ", passage.text)) if len(s.split()) >= 5]
            heading = passage.heading or lesson.title
            if not said:
                continue
            terms = list(dict.fromkeys(t.strip() for t in _BOLD.findall(passage.text)))[:3]
            if not terms:
                words = [w for w in content_words(" ".join(said[:2])) if len(w) > 4]
                terms = list(dict.fromkeys(words))[:2]
            if not terms:
                continue
            reference = " ".join(said[:2]).replace("**", "")
            item = Item.model_validate(
                {
                    "id": f"{id_prefix}-{len(out) + 1}",
                    "skills": [skill.id],
                    "kind": "text",
                    "stem": f"In two or three sentences, explain *{heading}* as the lesson "
                    f"“{lesson.title}” does.",
                    "reference_answers": [reference],
                    "rubric": [
                        {
                            "id": f"c{i + 1}",
                            "description": f"Uses the idea of “{term}” correctly",
                            "keywords": [term.lower()],
                        }
                        for i, term in enumerate(terms)
                    ],
                    "pass_fraction": 0.5,
                    "explanation": " ".join(said[:3]).replace("**", ""),
                    "hints": [
                        f"Reread the section “{heading}” of “{lesson.title}”.",
                        f"Start from what “{terms[0]}” means.",
                    ],
                    "minutes": 3,
                }
            )
            out.append(item)
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
