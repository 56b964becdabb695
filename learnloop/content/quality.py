"""Quality rules a pack's content must keep, beyond the schema.

- **No item answerable by copying its lesson**: a numeric item whose answer and numbers are one of
  its lesson's worked examples, or a code item that asks for a function its lesson's code already
  defines, measures recall of the page rather than the skill (``lesson_copies``).
- **No duplicate items across skills**: the same calculation asked under two skills counts one
  piece of evidence twice (``cross_skill_duplicates``).
- **No test-wiseness**: a content-free strategy (drop options with absolute words, then pick the
  longest) must not beat chance on the choice items (``content_free_score``).

The first two run when a pack is loaded (``loader.py`` reports them with file and line); the
third is a statistic over many items, checked by the default pack's tests.
"""

from __future__ import annotations

import ast
import itertools
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from learnloop.content.models import Item, Lesson, Pack

# A number as authors write it: 1,000,000 / 6.144 / -0.05 / 41% / 6.144 x 10^9; and powers 2^20.
_NUMBER = re.compile(
    r"(?<![\w.^])([-−]?)(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)"
    r"(?:\s*(?:x|×|\*|·)\s*10\^(-?\d+))?(\s*%)?(?![\w^])"
)
_POWER = re.compile(r"(?<![\w.])(\d+)\s*\^\s*(-?\d+)\b")
_CODE_BLOCK = re.compile(r"^```(?:python|py)\s*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def numbers_in(text: str) -> list[float]:
    """Every number written in ``text`` (a percentage also as its fraction, ``10^9`` as 1e9)."""
    out: list[float] = []
    for m in _POWER.finditer(text):
        base, exp = int(m.group(1)), int(m.group(2))
        if abs(exp) <= 30:
            out.append(float(base) ** exp)
    for m in _NUMBER.finditer(text):
        value = float(m.group(2).replace(",", ""))
        if m.group(1):
            value = -value
        if m.group(3):
            value *= 10.0 ** int(m.group(3))
        out.append(value)
        if m.group(4):
            out.append(value / 100)
    return out


def _close(a: float, b: float, tol: float) -> bool:
    return abs(a - b) <= max(tol, 1e-9 * max(1.0, abs(a)))


def code_blocks(markdown: str) -> list[str]:
    """The Python code blocks of a lesson (fenced with ```python)."""
    return [m.group(1) for m in _CODE_BLOCK.finditer(markdown)]


def _defined_names(code: str) -> set[str]:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)}


def _called_names(item: Item) -> set[str]:
    """The top-level names the item's cases call (the functions or classes under test)."""
    names: set[str] = set()
    for case in item.cases or []:
        for source in (case.call, case.setup or ""):
            try:
                tree = ast.parse(source)
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                    names.add(node.func.id)
    return names


@dataclass(frozen=True)
class Finding:
    """One broken rule: the item it concerns (and the other item or lesson) and why."""

    item_id: str
    message: str


def lessons_for(pack: Pack, item: Item) -> list[Lesson]:
    return [lesson for lesson in pack.lessons if set(lesson.skills) & set(item.skills)]


def numeric_copy(item: Item, lessons: Sequence[Lesson]) -> str | None:
    """Why this numeric item is its lesson's worked example (None when it is not): its answer
    appears in the lesson together with half or more of the stem's numbers, or every one of three
    or more distinctive numbers of the stem does (whole numbers 0-10 are everywhere)."""
    if item.kind != "numeric" or item.answer is None:
        return None
    for lesson in lessons:
        in_lesson = numbers_in(lesson.body)
        if not in_lesson:
            continue
        tol = item.tolerance if item.tolerance is not None else 1e-6 * max(1.0, abs(item.answer))
        answer_there = any(_close(item.answer, x, tol) for x in in_lesson)
        stem = sorted(set(numbers_in(item.stem)))
        shared = [x for x in stem if any(_close(x, y, 0.0) for y in in_lesson)]
        share = len(shared) / len(stem) if stem else 1.0
        if answer_there and share >= 0.5:
            return (
                f"numeric answer {item.answer:g} and {len(shared)} of the stem's {len(stem)} numbers "
                f"are in {lesson.id}: use other numbers than the lesson's worked example"
            )
        distinctive = [x for x in stem if not (float(x).is_integer() and 0 <= x <= 10)]
        if len(distinctive) >= 3 and all(x in shared for x in distinctive):
            return (
                f"every number of the stem ({', '.join(f'{x:g}' for x in distinctive)}) is in {lesson.id}: "
                "use other numbers than the lesson's worked example"
            )
    return None


def code_copy(item: Item, lessons: Sequence[Lesson]) -> str | None:
    """Why this code item can be answered with its lesson's code (None when it cannot): a code
    block of the lesson already defines the function or class the item's cases call."""
    if item.kind != "code":
        return None
    wanted = _called_names(item) & _defined_names(item.solution or "")
    if not wanted:
        return None
    for lesson in lessons:
        for block in code_blocks(lesson.body):
            defined = _defined_names(block)
            if wanted <= defined:
                names = ", ".join(sorted(wanted))
                return f"{lesson.id} already has code defining {names}: ask for other code than the lesson's"
    return None


def lesson_copies(pack: Pack) -> list[Finding]:
    """Every item answerable by copying its lesson."""
    found = []
    for item in pack.items:
        lessons = lessons_for(pack, item)
        why = numeric_copy(item, lessons) or code_copy(item, lessons)
        if why:
            found.append(Finding(item.id, why))
    return found


_WORD = re.compile(r"[a-z0-9]+|[\u4e00-\u9fff]")


def _tokens(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def cross_skill_duplicates(items: Iterable[Item]) -> list[Finding]:
    """Pairs of items under different skills that ask the same thing: numeric items with the
    same answer in the same unit, numeric items built from the same numbers (three or more above 10,
    at least 60% of the smaller set), or any two items with nearly the same stem."""
    found = []
    pool = [i for i in items if not i.retired]
    # each item's words and distinctive numbers once (numbers above 10: 1-10 appear everywhere)
    words = [_tokens(i.stem) for i in pool]
    numbers = [{x for x in numbers_in(i.stem) if abs(x) > 10} if i.kind == "numeric" else set() for i in pool]
    skills = [set(i.skills) for i in pool]
    for ia, ib in _candidate_pairs(pool, words):
        a, b = pool[ia], pool[ib]
        if skills[ia] & skills[ib]:
            continue
        why = None
        if a.kind == b.kind == "numeric" and a.answer is not None and b.answer is not None:
            tol = max(a.tolerance or 0.0, b.tolerance or 0.0)
            if a.unit and a.unit == b.unit and _close(a.answer, b.answer, tol):
                why = f"same answer ({b.answer:g} {b.unit})"
            na, nb = numbers[ia], numbers[ib]
            shared = na & nb
            if why is None and len(shared) >= 3 and len(shared) >= math.ceil(0.6 * min(len(na), len(nb))):
                why = f"built from the same numbers ({', '.join(f'{x:g}' for x in sorted(shared))})"
        if why is None:
            ta, tb = words[ia], words[ib]
            # Jaccard >= 0.85 needs sets of similar size: skip the intersection otherwise
            if (
                ta
                and tb
                and min(len(ta), len(tb)) >= 0.85 * max(len(ta), len(tb))
                and len(ta & tb) / len(ta | tb) >= 0.85
            ):
                why = "nearly the same stem"
        if why:
            found.append(Finding(b.id, f"duplicates item {a.id!r} of another skill: {why}"))
    return found


def _candidate_pairs(pool: list[Item], words: list[set[str]]) -> list[tuple[int, int]]:
    """The pairs (a, b), a before b, that ``cross_skill_duplicates`` must look at, in the order
    of ``itertools.combinations``: every pair of numeric items, and the pairs whose stems could
    reach a Jaccard similarity of 0.85. Those share a word among the first
    ``n - ceil(0.85 n) + 1`` of each stem's ``n`` words ordered rarest first (prefix filtering:
    were the first shared word later, one stem would have too many words the other lacks), so
    a 10,000-item bank compares thousands of pairs, not fifty million."""
    numeric = [k for k, item in enumerate(pool) if item.kind == "numeric"]
    pairs = set(itertools.combinations(numeric, 2))
    frequency = Counter(w for stem in words for w in stem)
    seen: dict[str, list[int]] = {}
    for k, stem in enumerate(words):
        ordered = sorted(stem, key=lambda w: (frequency[w], w))
        # floor rather than ceil: a prefix one word longer where 0.85 n is a float's hair off
        for w in ordered[: len(ordered) - int(0.85 * len(ordered)) + 1]:
            others = seen.setdefault(w, [])
            pairs.update((j, k) for j in others)
            others.append(k)
    return sorted(pairs)


#: Words that mark an option as absolute (a content-free test-taker drops such options).
ABSOLUTES_EN = re.compile(r"\b(always|never|only)\b", re.IGNORECASE)
ABSOLUTES_ZH = re.compile(r"所有|总是|从不|仅")


def content_free_pick(options: dict[str, str]) -> list[str]:
    """The options a content-free test-taker would choose between (one is picked at random):
    options with an absolute word are dropped (unless every option has one), then the longest."""
    keep = {k: v for k, v in options.items() if not (ABSOLUTES_EN.search(v) or ABSOLUTES_ZH.search(v))}
    if not keep:
        keep = dict(options)
    longest = max(len(v.strip()) for v in keep.values())
    return sorted(k for k, v in keep.items() if len(v.strip()) == longest)


def content_free_score(items: Iterable[Item]) -> tuple[float, float, int]:
    """(expected score of the content-free strategy, expected score of guessing, number of choice
    items) over the choice items."""
    strategy = chance = 0.0
    n = 0
    for item in items:
        if item.kind != "choice" or not item.options or item.key is None or item.retired:
            continue
        picks = content_free_pick(item.options)
        strategy += (1.0 / len(picks)) if item.key in picks else 0.0
        chance += 1.0 / len(item.options)
        n += 1
    return (strategy / n if n else 0.0, chance / n if n else 0.0, n)
