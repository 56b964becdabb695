"""Content in several languages: checking overlays against their pack, and serving a pack in
the learner's language.

A pack's base files are the source of truth (``PackMeta.language``, English for the default
pack). Each other language is an overlay (:class:`~learnloop.content.models.Translation`,
``locales/<lang>/`` on disk) keyed by the base ids. This module holds the one definition of

- what an overlay may contain for its pack (:func:`overlay_mismatches`),
- which texts an overlay leaves untranslated (:func:`missing_texts`),
- how a pack is served in a language (:func:`localize`, used through ``Pack.localized``),
  falling back to the base text only where a translation is missing, and counting each
  fallback (:func:`fallback_stats`).
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from learnloop.content.models import TEXT_FIELDS, NameText, Translation

if TYPE_CHECKING:
    from learnloop.content.models import Item, Lesson, Pack

log = logging.getLogger(__name__)

#: Content languages the product serves (UI locales map onto them: ``zh_CN`` -> ``zh-CN``).
CONTENT_LANGUAGES = ("en", "zh-CN")


def content_language(locale: str | None, default: str = "en") -> str:
    """The content language tag for a UI locale or language tag (``zh_CN``, ``zh-cn`` -> ``zh-CN``)."""
    if not locale:
        return default
    parts = locale.replace("_", "-").split("-")
    return "-".join([parts[0].lower()] + [p.upper() if len(p) == 2 else p for p in parts[1:]])


_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z]+")


def detect_language(text: str) -> str:
    """``zh-CN`` when a text is mostly Chinese (at least as many Han characters as Latin words,
    so "用 LoRA 微调" counts as Chinese), else ``en``. Used to grade an answer against the
    reference answers and rubric keywords of the language it is written in."""
    han = len(_CJK.findall(text))
    return "zh-CN" if han and han >= len(_LATIN_WORD.findall(text)) else "en"


# --- Overlay against pack ------------------------------------------------------------------


@dataclass(frozen=True)
class Mismatch:
    """One thing an overlay says that its pack does not have.

    ``kind`` and ``id`` name the overlay entry (kind: pack, domain, skill, role, item, lesson);
    ``path`` the field inside it, so a loader can point at its line.
    """

    kind: str
    id: str
    path: tuple[str, ...]
    message: str


def _unsuffixed(names: set[str]) -> set[str]:
    """Placeholder names without a language suffix: a template may use ``verdict_zh`` where the
    English one uses ``verdict_en`` (a let that holds text in each language)."""
    return {re.sub(r"_(en|zh)$", "", name) for name in names}


def _template_mismatches(item: Item, text: dict[str, Any]) -> list[Mismatch]:
    """A family item's translated templates use exactly the placeholders of its English ones."""
    from learnloop.content.families import placeholders

    out: list[Mismatch] = []
    base = item.templates()
    for name in ("stem", "explanation", "hints", "unit"):
        if name not in text or name not in base:
            continue
        theirs = text[name] if isinstance(text[name], list) else [text[name]]
        ours = base[name] if isinstance(base[name], list) else [base[name]]
        for n, (t, o) in enumerate(zip(theirs, ours, strict=False)):
            if _unsuffixed(placeholders(t)) != _unsuffixed(placeholders(o)):
                where = (name, str(n)) if isinstance(text[name], list) else (name,)
                out.append(
                    Mismatch(
                        "item",
                        item.id,
                        where,
                        f"placeholders {sorted(placeholders(t))} differ from the English {sorted(placeholders(o))}",
                    )
                )
    return out


def overlay_mismatches(pack: Pack, overlay: Translation) -> list[Mismatch]:
    """Every entry of ``overlay`` that does not fit ``pack``: unknown ids, fields an item's kind
    does not have, option keys or hint counts that differ, unknown rubric criteria."""
    out: list[Mismatch] = []
    domains = {d.id for d in pack.meta.domains}
    for did in overlay.pack.domains:
        if did not in domains:
            out.append(Mismatch("domain", did, (), f"unknown domain {did!r}"))
    for kind, known, entries in (
        ("skill", {s.id for s in pack.skills}, overlay.skills),
        ("role", {r.id for r in pack.roles}, overlay.roles),
        ("lesson", {x.id for x in pack.lessons}, overlay.lessons),
    ):
        for eid in entries:
            if eid not in known:
                out.append(Mismatch(kind, eid, (), f"unknown {kind} {eid!r}"))
    items = pack.item_index()
    for iid, text in overlay.items.items():
        item = items.get(iid)
        if item is None:
            out.append(Mismatch("item", iid, (), f"unknown item {iid!r}"))
            continue
        out.extend(_item_mismatches(item, text.model_dump(exclude_none=True)))
    return out


def _item_mismatches(item: Item, text: dict[str, Any]) -> list[Mismatch]:
    out: list[Mismatch] = []
    allowed = TEXT_FIELDS[item.kind]

    def add(path: tuple[str, ...], message: str) -> None:
        out.append(Mismatch("item", item.id, path, message))

    for name in text:
        if name not in allowed:
            add((name,), f"a {item.kind} item has no {name} (translatable: {', '.join(allowed)})")
    if "hints" in text and len(text["hints"]) != len(item.hints):
        add(("hints",), f"{len(text['hints'])} hints; the item has {len(item.hints)}")
    if "options" in text and item.kind == "choice":
        keys, base = sorted(text["options"]), sorted(item.options or {})
        if keys != base:
            add(("options",), f"option keys {keys} differ from the item's {base}")
    if "unit" in text and item.kind == "numeric" and not item.unit:
        add(("unit",), "the item has no unit to translate")
    if item.family is not None:
        out.extend(_template_mismatches(item, text))
    if "rubric" in text and item.kind == "text":
        criteria = {c.id for c in item.rubric or []}
        for cid in text["rubric"]:
            if cid not in criteria:
                add(("rubric", cid), f"unknown rubric criterion {cid!r} (the item has {sorted(criteria)})")
    return out


# --- Completeness --------------------------------------------------------------------------


@dataclass(frozen=True)
class Missing:
    """Texts of one base entity that an overlay does not translate."""

    kind: str
    id: str
    fields: tuple[str, ...]


def _name_missing(kind: str, eid: str, base: Any, text: NameText | None) -> list[Missing]:
    wanted = [f for f in ("name", "description") if getattr(base, f)]
    fields = tuple(f for f in wanted if text is None or getattr(text, f) is None)
    return [Missing(kind, eid, fields)] if fields else []


def _item_missing(item: Item, text: dict[str, Any] | None) -> tuple[str, ...]:
    text = text or {}
    fields: list[str] = []
    for name in TEXT_FIELDS[item.kind]:
        if name == "unit" and not item.unit:
            continue
        if name == "rubric":
            criteria = text.get("rubric") or {}
            for c in item.rubric or []:
                got = criteria.get(c.id) or {}
                fields += [f"rubric.{c.id}.{f}" for f in ("description", "keywords") if got.get(f) is None]
        elif text.get(name) is None:
            fields.append(name)
    return tuple(fields)


def missing_texts(pack: Pack, overlay: Translation | None) -> list[Missing]:
    """Every base text that ``overlay`` leaves untranslated, entity by entity, in pack order."""
    overlay = overlay or Translation()
    out = _name_missing("pack", pack.meta.id, pack.meta, overlay.pack)
    for d in pack.meta.domains:
        out += _name_missing("domain", d.id, d, overlay.pack.domains.get(d.id))
    for s in pack.skills:
        out += _name_missing("skill", s.id, s, overlay.skills.get(s.id))
    for r in pack.roles:
        out += _name_missing("role", r.id, r, overlay.roles.get(r.id))
    for item in pack.items:
        text = overlay.items.get(item.id)
        fields = _item_missing(item, text.model_dump(exclude_none=True) if text else None)
        if fields:
            out.append(Missing("item", item.id, fields))
    for lesson in pack.lessons:
        if lesson.id not in overlay.lessons:
            out.append(Missing("lesson", lesson.id, ("title", "body")))
    return out


# --- Serving in a language -----------------------------------------------------------------


@dataclass
class FallbackStats:
    """Fallbacks to the base language for one (pack, version, language) in this process."""

    pack_id: str
    version: str
    language: str
    #: texts with no translation (each counted once, when the localised pack is built)
    missing_texts: int = 0
    #: items and lessons served to a learner with at least one text in the base language
    served_with_fallback: int = 0
    examples: list[str] = field(default_factory=list)


_stats: dict[tuple[str, str, str], FallbackStats] = {}
_lock = threading.Lock()


def fallback_stats() -> list[FallbackStats]:
    """A snapshot of the fallback counters, for admins and operators."""
    with _lock:
        return [FallbackStats(**vars(s) | {"examples": list(s.examples)}) for s in _stats.values()]


def reset_fallback_stats() -> None:
    with _lock:
        _stats.clear()


def count_served(pack: Pack, kind: str, entity_id: str) -> None:
    """Count one item or lesson of a localised ``pack`` served with a fallback text."""
    with _lock:
        stats = _stats.get((pack.meta.id, pack.meta.version, pack.language))
        if stats is not None:
            stats.served_with_fallback += 1


def _register(pack: Pack, language: str, fallbacks: dict[tuple[str, str], tuple[str, ...]]) -> None:
    key = (pack.meta.id, pack.meta.version, language)
    total = sum(len(f) for f in fallbacks.values())
    examples = [f"{k} {i!r}: {', '.join(f)}" for (k, i), f in list(fallbacks.items())[:5]]
    with _lock:
        first = key not in _stats
        stats = _stats.setdefault(key, FallbackStats(*key))
        stats.missing_texts, stats.examples = total, examples
    if first and total:
        log.warning(
            "pack %s %s: %d text(s) have no %s translation and are served in %s (%s)",
            pack.meta.id,
            pack.meta.version,
            total,
            language,
            pack.meta.language,
            "; ".join(examples),
        )


def _named(base: Any, text: NameText | None, kind: str, fb: dict[tuple[str, str], tuple[str, ...]]) -> Any:
    update = {}
    missing = []
    for name in ("name", "description"):
        value = getattr(text, name) if text is not None else None
        if value is not None:
            update[name] = value
        elif getattr(base, name):
            missing.append(name)
    if missing:
        fb[(kind, base.id)] = tuple(missing)
    return base.model_copy(update=update) if update else base


def _localize_item(item: Item, text: dict[str, Any] | None) -> Item:
    if not text:
        return item
    update: dict[str, Any] = {
        k: text[k] for k in ("stem", "explanation", "hints", "reference_answers", "unit") if k in text
    }
    if "options" in text:
        update["options"] = {k: text["options"].get(k, v) for k, v in (item.options or {}).items()}
    if "rubric" in text:
        crit = text["rubric"]
        update["rubric"] = [c.model_copy(update=crit.get(c.id, {})) for c in item.rubric or []]
    return item.with_texts(update)


def _localize_lesson(lesson: Lesson, text: Any) -> Lesson:
    return lesson.model_copy(update={"title": text.title, "body": text.body}) if text else lesson


def localize(pack: Pack, language: str | None) -> Pack:
    """See ``Pack.localized``."""
    lang = content_language(language, pack.meta.language)
    if lang == pack.language:
        return pack
    if pack._base is not None:
        return localize(pack._base, lang)
    with _lock:
        cached = pack._localized.get(lang)
    if cached is not None:
        return cached
    overlay = pack.translations.get(lang) or Translation()
    fb: dict[tuple[str, str], tuple[str, ...]] = {}
    meta = _named(pack.meta, overlay.pack, "pack", fb)
    meta = meta.model_copy(
        update={"domains": [_named(d, overlay.pack.domains.get(d.id), "domain", fb) for d in meta.domains]}
    )
    items = []
    for item in pack.items:
        text = overlay.items.get(item.id)
        data = text.model_dump(exclude_none=True) if text else None
        missing = _item_missing(item, data)
        if missing:
            fb[("item", item.id)] = missing
        items.append(_localize_item(item, data))
    lessons = []
    for lesson in pack.lessons:
        if lesson.id not in overlay.lessons:
            fb[("lesson", lesson.id)] = ("title", "body")
        lessons.append(_localize_lesson(lesson, overlay.lessons.get(lesson.id)))
    out = pack.model_construct(
        meta=meta,
        skills=[_named(s, overlay.skills.get(s.id), "skill", fb) for s in pack.skills],
        roles=[_named(r, overlay.roles.get(r.id), "role", fb) for r in pack.roles],
        items=items,
        lessons=lessons,
        translations={},
    )
    out._language = lang
    out._base = pack
    out._fallbacks = fb
    _register(pack, lang, fb)
    with _lock:
        return pack._localized.setdefault(lang, out)


def item_for_answer(pack: Pack, item_id: str, answer_text: str) -> Item:
    """The item with its reference answers and rubric keywords in the language the answer is
    written in (falling back to the base language for what is not translated)."""
    return localize(pack, detect_language(answer_text)).item(item_id)


__all__ = [
    "CONTENT_LANGUAGES",
    "FallbackStats",
    "Mismatch",
    "Missing",
    "content_language",
    "detect_language",
    "fallback_stats",
    "item_for_answer",
    "localize",
    "missing_texts",
    "overlay_mismatches",
]
