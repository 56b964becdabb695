"""Translation overlays on disk: ``locales/<lang>/`` inside a pack folder.

Layout, mirroring the pack (every file optional except ``pack.yaml``)::

    locales/zh-CN/pack.yaml          {name, description, domains: {<domain>: {name, description}}}
    locales/zh-CN/skills.yaml        {<skill>: {name, description}}
    locales/zh-CN/roles.yaml         {<role>: {name, description}}
    locales/zh-CN/items/<file>.yaml  {<item>: {stem, explanation, hints, options, unit,
                                      reference_answers, rubric: {<criterion>: {description, keywords}}}}
                                     (same file name as the item's file in items/)
    locales/zh-CN/lessons/<file>.md  front matter with id and title, then the translated body
                                     (same file name as the lesson's file in lessons/)

Read by :func:`learnloop.content.loader.load_pack` (every problem with file and line) and
written back by :func:`learnloop.content.loader.write_pack`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from learnloop.content.models import (
    LANGUAGE_PATTERN,
    ItemText,
    LessonText,
    NameText,
    Pack,
    PackText,
    Translation,
)
from learnloop.content.translations import missing_texts, overlay_mismatches

if TYPE_CHECKING:
    from learnloop.content.loader import _Reader

LOCALES = "locales"
_LINE_KEY = "__line__"
_KNOWN = {"pack.yaml", "skills.yaml", "roles.yaml", "items", "lessons"}


@dataclass
class Sources:
    """Where each base entity is defined: (kind, id) -> (file, line); item and lesson file names."""

    where: dict[tuple[str, str], tuple[Path, int | None]] = field(default_factory=dict)
    file_of: dict[tuple[str, str], str] = field(default_factory=dict)


@dataclass
class _Located:
    """An overlay being read: entries with their file, line and raw mapping (for field lines)."""

    overlay: Translation = field(default_factory=Translation)
    where: dict[tuple[str, str], tuple[Path, int | None, Any]] = field(default_factory=dict)


def read_overlays(reader: _Reader, root: Path, pack: Pack | None, sources: Sources) -> dict[str, Translation]:
    """Read every ``locales/<lang>/`` folder of the pack at ``root``; problems go to ``reader``.

    With ``pack`` (the base pack, when it loaded without problems) each overlay is also checked
    against it, and the languages in ``pack.meta.languages`` must be complete.
    """
    out: dict[str, Translation] = {}
    base_language = pack.meta.language if pack else None
    folder = root / LOCALES
    if folder.is_dir():
        for lang_dir in sorted(folder.iterdir()):
            lang = lang_dir.name
            if not lang_dir.is_dir() or not re.match(LANGUAGE_PATTERN, lang):
                reader.add(lang_dir, None, "expected a folder named by a language tag, e.g. locales/zh-CN/")
                continue
            if lang == base_language:
                reader.add(
                    lang_dir, None, f"{lang} is the pack's own language; its texts live in the base files"
                )
                continue
            located = _read_language(reader, lang_dir, sources)
            if located is None:
                continue
            if pack is not None:
                _check_against(reader, pack, lang, located, sources)
            out[lang] = located.overlay
    elif folder.exists():
        reader.add(folder, None, "locales must be a folder of language folders")
    if pack is not None:
        for lang in pack.meta.languages:
            if lang != pack.meta.language:
                reader.problems.extend(missing_problems(reader, pack, lang, out.get(lang), sources))
    return out


def missing_problems(
    reader: _Reader, pack: Pack, lang: str, overlay: Translation | None, sources: Sources
) -> list[Any]:
    """One problem per base entity with untranslated texts, at the entity's file and line."""
    from learnloop.content.loader import Problem

    problems = []
    for miss in missing_texts(pack, overlay):
        path, line = sources.where.get((miss.kind, miss.id), (Path(reader.root / "pack.yaml"), 1))
        target = _overlay_file(lang, miss.kind, sources.file_of.get((miss.kind, miss.id), ""))
        problems.append(
            Problem(
                reader.rel(path),
                line,
                f"{miss.kind} {miss.id!r}: no {lang} translation of {', '.join(miss.fields)} (add it to {target})",
            )
        )
    return problems


def _overlay_file(lang: str, kind: str, file_name: str) -> str:
    base = f"{LOCALES}/{lang}/"
    return (
        base
        + {
            "pack": "pack.yaml",
            "domain": "pack.yaml",
            "skill": "skills.yaml",
            "role": "roles.yaml",
            "item": f"items/{file_name}",
            "lesson": f"lessons/{file_name}",
        }[kind]
    )


def _mapping(reader: _Reader, path: Path) -> dict[str, Any] | None:
    raw = reader.read_yaml(path)
    if raw is None:
        return None
    if not isinstance(raw, dict):
        reader.add(path, 1, "expected a YAML mapping of id -> texts at the top level")
        return None
    return raw


def _entries(
    reader: _Reader, path: Path, model: type[Any], kind: str, located: _Located, target: dict[str, Any]
) -> None:
    raw = _mapping(reader, path)
    for eid, entry in (raw or {}).items():
        if eid == _LINE_KEY:
            continue
        line = entry.get(_LINE_KEY) if isinstance(entry, dict) else raw.get(_LINE_KEY) if raw else None
        if (kind, eid) in located.where:
            first, first_line, _ = located.where[(kind, eid)]
            reader.add(
                path,
                line,
                f"duplicate translation of {kind} {eid!r} (first at {reader.rel(first)}:{first_line})",
            )
            continue
        before = len(reader.problems)
        obj = reader.validate(model, entry, path, line)
        label = f"{model.__name__.lower()}: "
        for i in range(before, len(reader.problems)):  # name the entry, not the model
            problem = reader.problems[i]
            reader.problems[i] = replace(
                problem, message=problem.message.replace(label, f"{kind} {eid!r}: ", 1)
            )
        if obj is not None:
            target[eid] = obj
            located.where[(kind, eid)] = (path, line, entry)


def _read_language(reader: _Reader, lang_dir: Path, sources: Sources) -> _Located | None:
    from learnloop.content.loader import _split_front_matter

    located = _Located()
    for child in sorted(lang_dir.iterdir()):
        if child.name not in _KNOWN:
            reader.add(child, None, f"unexpected file in an overlay (expected {', '.join(sorted(_KNOWN))})")
    meta_path = lang_dir / "pack.yaml"
    if not meta_path.exists():
        reader.add(meta_path, None, "missing pack.yaml (the translated pack name)")
    else:
        raw = _mapping(reader, meta_path)
        if raw is not None:
            text = reader.validate(PackText, raw, meta_path, 1)
            if text is not None:
                located.overlay.pack = text
                located.where[("pack", "")] = (meta_path, 1, raw)
                for did, entry in (raw.get("domains") or {}).items():
                    if did != _LINE_KEY:
                        line = entry.get(_LINE_KEY) if isinstance(entry, dict) else None
                        located.where[("domain", did)] = (meta_path, line, entry)
    for name, kind, target in (
        ("skills.yaml", "skill", located.overlay.skills),
        ("roles.yaml", "role", located.overlay.roles),
    ):
        if (lang_dir / name).exists():
            _entries(reader, lang_dir / name, NameText, kind, located, target)
    for item_file in sorted((lang_dir / "items").glob("*")):
        if item_file.suffix != ".yaml":
            reader.add(item_file, None, "expected .yaml item overlays")
            continue
        before = set(located.overlay.items)
        _entries(reader, item_file, ItemText, "item", located, located.overlay.items)
        for iid in sorted(set(located.overlay.items) - before):
            home = sources.file_of.get(("item", iid))
            if home is not None and home != item_file.name:
                _, line, _ = located.where[("item", iid)]
                reader.add(
                    item_file, line, f"item {iid!r} is defined in items/{home}; translate it in items/{home}"
                )
    for lesson_file in sorted((lang_dir / "lessons").glob("*")):
        if lesson_file.suffix != ".md":
            reader.add(lesson_file, None, "expected .md lesson overlays")
            continue
        text = reader.read_text(lesson_file)
        if text is None:
            continue
        split = _split_front_matter(text)
        if split is None:
            reader.add(lesson_file, 1, "lesson overlay needs front matter (id, title) between '---' lines")
            continue
        front, body = split
        raw = reader.read_yaml(lesson_file, front, line_offset=1)
        if not isinstance(raw, dict):
            if raw is not None:
                reader.add(lesson_file, 1, "front matter must be a mapping with id and title")
            continue
        extra = sorted(k for k in raw if k not in ("id", "title", _LINE_KEY))
        if extra:
            reader.add(
                lesson_file, 2, f"a lesson overlay has only id and title in its front matter, not {extra}"
            )
            continue
        lid = raw.get("id")
        if not isinstance(lid, str):
            reader.add(lesson_file, 2, "lesson overlay front matter needs the lesson's id")
            continue
        lesson = reader.validate(LessonText, {"title": raw.get("title"), "body": body}, lesson_file, 2)
        if lesson is None:
            continue
        if ("lesson", lid) in located.where:
            first = reader.rel(located.where[("lesson", lid)][0])
            reader.add(lesson_file, 2, f"duplicate translation of lesson {lid!r} (first in {first})")
            continue
        home = sources.file_of.get(("lesson", lid))
        if home is not None and home != lesson_file.name:
            reader.add(lesson_file, 2, f"lesson {lid!r} is lessons/{home}; name its translation {home}")
        located.overlay.lessons[lid] = lesson
        located.where[("lesson", lid)] = (lesson_file, 2, raw)
    return located


def _check_against(reader: _Reader, pack: Pack, lang: str, located: _Located, sources: Sources) -> None:
    from learnloop.content.loader import _field_line

    for m in overlay_mismatches(pack, located.overlay):
        path, line, raw = located.where.get((m.kind, m.id), (reader.root / LOCALES / lang, None, None))
        if isinstance(raw, dict) and m.path:
            line = _field_line(raw, m.path) or line
        reader.add(path, line, f"{m.kind} {m.id!r}: {m.message}")


# --- Writing -------------------------------------------------------------------------------


def overlay_documents(pack: Pack, item_file: dict[str, str]) -> dict[str, str | dict[str, Any]]:
    """The overlay files of ``pack`` as relative path -> YAML data, or Markdown text for lessons.

    ``item_file`` maps each item id to its file name under ``items/``.
    """
    from learnloop.content.loader import _dump

    files: dict[str, str | dict[str, Any]] = {}
    lesson_names = {x.id: f"{x.id}.md" for x in pack.lessons}
    for lang, overlay in pack.translations.items():
        base = f"{LOCALES}/{lang}/"
        files[base + "pack.yaml"] = overlay.pack.model_dump(mode="json", exclude_none=True)
        for name, entries in (("skills.yaml", overlay.skills), ("roles.yaml", overlay.roles)):
            if entries:
                files[base + name] = {
                    k: v.model_dump(mode="json", exclude_none=True) for k, v in entries.items()
                }
        for iid, text in overlay.items.items():
            doc = files.setdefault(base + "items/" + item_file.get(iid, "misc.yaml"), {})
            assert isinstance(doc, dict)
            doc[iid] = text.model_dump(mode="json", exclude_none=True)
        for lid, lesson in overlay.lessons.items():
            front = _dump({"id": lid, "title": lesson.title})
            files[base + "lessons/" + lesson_names.get(lid, f"{lid}.md")] = (
                "---\n" + front + "---\n\n" + lesson.body
            )
    return files
