"""The offline provider: needs no service. Retrieval over the pack's lessons, the authored hint
ladders, and local sentence embeddings (``embeddings.py``).

Lessons are cut into short passages (a few paragraphs, a whole list or a whole code block,
never half of one), so a reply can quote what answers the question and keep its markdown.
Retrieval ranks them for the learner's *question* first, with the item or lesson being
discussed as context (``QUESTION_WEIGHT``): different questions about one item find different
passages. Similarity is the cosine of MiniLM embeddings when the ``llm`` extra is installed,
and BM25 (Robertson and Zaragoza 2009, eq. 3.1 with k1=1.2, b=0.75) when it is not; passages
from lessons that teach the skills being discussed get a bonus.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from learnloop.content.models import Item, Lesson, Pack
from learnloop.llm.grading_text import lexical_units as content_words

log = logging.getLogger("learnloop.llm")
EmbedFn = Callable[[list[str]], np.ndarray]
SKILL_BONUS = 0.15
#: the question's share of a passage's score; the rest is the item or lesson being discussed
QUESTION_WEIGHT = 0.7
#: passages the index cuts lessons into (authoring drafts use longer ones)
INDEX_PASSAGE_WORDS = 80
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass(frozen=True)
class Passage:
    lesson_id: str
    lesson_title: str
    heading: str
    text: str
    skills: tuple[str, ...]

    @property
    def anchor(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.heading.lower()).strip("-")

    @property
    def title(self) -> str:
        return f"{self.lesson_title} — {self.heading}" if self.heading else self.lesson_title


def blocks(markdown: str) -> list[str]:
    """The markdown's blocks, split at blank lines except inside fenced code."""
    out: list[str] = []
    current: list[str] = []
    fenced = False
    for line in markdown.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        if not fenced and not line.strip():
            if current:
                out.append("\n".join(current).strip("\n"))
                current = []
            continue
        current.append(line)
    if current:
        out.append("\n".join(current).strip("\n"))
    return [b for b in out if b.strip()]


def chunk_lesson(lesson: Lesson, max_words: int = 120) -> list[Passage]:
    """Split a lesson into passages: one per section, long sections in paragraph groups."""
    passages: list[Passage] = []
    heading = ""
    paragraphs: list[str] = []

    def flush() -> None:
        group: list[str] = []
        words = 0
        for para in paragraphs:
            n = len(para.split())
            if group and words + n > max_words:
                passages.append(
                    Passage(lesson.id, lesson.title, heading, "\n\n".join(group), tuple(lesson.skills))
                )
                group, words = [], 0
            group.append(para)
            words += n
        if group:
            passages.append(
                Passage(lesson.id, lesson.title, heading, "\n\n".join(group), tuple(lesson.skills))
            )
        paragraphs.clear()

    for block in blocks(lesson.body):
        if not block:
            continue
        match = _HEADING.match(block.splitlines()[0])
        if match:
            flush()
            heading = match.group(2).strip()
            rest = "\n".join(block.splitlines()[1:]).strip()
            if rest:
                paragraphs.append(rest)
        else:
            paragraphs.append(block)
    flush()
    return passages


class LessonIndex:
    """Passages of every lesson of a pack, searchable by meaning (or by words without the extra)."""

    def __init__(self, pack: Pack, embed: EmbedFn | None = None):
        self.passages = [p for lesson in pack.lessons for p in chunk_lesson(lesson, INDEX_PASSAGE_WORDS)]
        self._embed = embed
        self._vectors: np.ndarray | None = None
        self._lock = threading.Lock()
        docs = [content_words(f"{p.title} {p.text}") for p in self.passages]
        self._tf = [Counter(d) for d in docs]
        self._lengths = np.array([len(d) for d in docs], dtype=np.float64)
        df: Counter[str] = Counter()
        for d in docs:
            df.update(set(d))
        n = max(len(docs), 1)
        self._idf = {w: math.log(1 + (n - f + 0.5) / (f + 0.5)) for w, f in df.items()}

    def _vectors_now(self) -> np.ndarray | None:
        if self._embed is None or not self.passages:
            return None
        with self._lock:
            if self._vectors is None:
                try:
                    self._vectors = self._embed([f"{p.title}\n{p.text}" for p in self.passages])
                except Exception:
                    # An embedding service that is down must not block the tutor: words only.
                    log.warning("embedding lesson passages failed; retrieval falls back to BM25")
                    self._embed = None
        return self._vectors

    def _bm25(self, query: str) -> np.ndarray:
        words = content_words(query)
        avg = float(self._lengths.mean()) if len(self._lengths) else 1.0
        scores = np.zeros(len(self.passages))
        for i, tf in enumerate(self._tf):
            norm = 1.2 * (0.25 + 0.75 * self._lengths[i] / max(avg, 1.0))
            scores[i] = sum(self._idf.get(w, 0.0) * tf[w] * 2.2 / (tf[w] + norm) for w in words if w in tf)
        top = scores.max() if len(scores) else 0.0
        return scores / top if top > 0 else scores

    def warm(self) -> bool:
        """Embed every passage now (at start, not on the first question); True with embeddings."""
        return self._vectors_now() is not None

    def _similarity(self, texts: list[str]) -> list[np.ndarray]:
        """One score per passage for each text: cosines, or BM25 scaled to [0, 1]."""
        vectors = self._vectors_now()
        if vectors is not None and self._embed is not None:
            try:
                queries = self._embed(texts)
                return [vectors @ q for q in queries]
            except Exception:
                log.warning("embedding a query failed; retrieval falls back to BM25")
        return [self._bm25(t) for t in texts]

    def search(
        self,
        question: str,
        context: str = "",
        skills: Sequence[str] = (),
        k: int = 3,
        lesson_id: str | None = None,
    ) -> list[Passage]:
        """The ``k`` passages that best answer ``question`` about ``context`` (an item's
        question or a lesson's title), preferring lessons on ``skills`` and ``lesson_id``."""
        if not self.passages:
            return []
        texts = [question] + ([context] if context.strip() else [])
        sims = self._similarity(texts)
        scores = sims[0] if len(sims) == 1 else QUESTION_WEIGHT * sims[0] + (1 - QUESTION_WEIGHT) * sims[1]
        bonus = np.array(
            [
                SKILL_BONUS if (set(p.skills) & set(skills)) or p.lesson_id == lesson_id else 0.0
                for p in self.passages
            ]
        )
        order = np.argsort(-(scores + bonus), kind="stable")
        return [self.passages[i] for i in order[:k]]


def next_hint(item: Item, hints_shown: int) -> tuple[int, str] | None:
    """The next rung of the item's authored hint ladder (1-based level), or None at the top."""
    if hints_shown >= len(item.hints):
        return None
    return hints_shown + 1, item.hints[hints_shown]


_indexes: dict[tuple[int, str, int], LessonIndex] = {}
_indexes_lock = threading.Lock()


def lesson_index(pack_key: int, pack: Pack, embed: EmbedFn | None, model_name: str) -> LessonIndex:
    """One index per (active pack row, embedding model) per process (``warm`` it at start).
    The key also holds the lessons' fingerprint: a row id names a pack only within one
    database, and a process that serves another database (the tests do) must not answer from
    the lessons of the first (Python caches each string's hash, so this costs microseconds)."""
    key = (
        pack_key,
        model_name,
        hash(tuple((lesson.id, lesson.title, lesson.body) for lesson in pack.lessons)),
    )
    with _indexes_lock:
        index = _indexes.get(key)
        if index is None:
            index = LessonIndex(pack, embed)
            for old in [k for k in _indexes if k[1] == model_name]:
                del _indexes[old]
            _indexes[key] = index
        return index
