"""Reading and writing content packs on disk.

Layout of a pack folder::

    pack.yaml            meta: id, name, version, description, domains
    skills.yaml          list of skills
    roles.yaml           list of roles
    items/*.yaml         lists of items (any number of files)
    lessons/*.md         one lesson per file: YAML front matter between '---' lines, then Markdown
    locales/<lang>/      translation overlays mirroring the above (see ``overlays.py``)

``load_pack`` validates everything and raises one :class:`PackError` that lists every
problem with its file and line, so an author fixes a pack in one pass.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from learnloop.content.graph import find_cycle
from learnloop.content.models import Domain, Item, Lesson, Pack, PackMeta, Role, Skill
from learnloop.content.overlays import Sources, missing_problems, overlay_documents, read_overlays
from learnloop.content.quality import cross_skill_duplicates, lesson_copies

MAX_FILE_BYTES = 5_000_000
LINE_KEY = "__line__"
#: YAML a pack never needs, refused before it is built: more aliases (``*name``) than this in
#: one file, more nodes than this once aliases are expanded (an "alias bomb"), deeper nesting
MAX_ALIASES = 100
MAX_EXPANDED_NODES = 200_000
MAX_DEPTH = 50


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


class PackError(Exception):
    """A pack that cannot be loaded; ``problems`` lists every reason."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{len(problems)} problem(s) in pack:\n{lines}")


#: The event parser: libyaml's (C, several times faster) when PyYAML was built with it, else
#: PyYAML's own. Composing nodes stays in Python either way, so the bounds below apply to both.
_LIBYAML = bool(getattr(yaml, "__with_libyaml__", False))
_EVENT_PARSER: tuple[type, ...] = (
    (yaml._yaml.CParser,)  # type: ignore[attr-defined]
    if _LIBYAML
    else (yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser)
)


class _LineLoader(
    yaml.composer.Composer,
    *_EVENT_PARSER,  # type: ignore[misc]
    yaml.constructor.SafeConstructor,
    yaml.resolver.Resolver,
):
    """A safe YAML loader that records the line of every mapping under ``__line__``, and refuses
    documents beyond the alias, expansion and depth bounds while composing them (before any
    object is built, so a hostile file fails in milliseconds with its line)."""

    def __init__(self, stream: str):
        if _LIBYAML:
            yaml._yaml.CParser.__init__(self, stream)  # type: ignore[attr-defined]
        else:
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)
        self._aliases = 0
        self._depth = 0

    # the Python composer and constructor, over either event parser
    get_single_node = yaml.composer.Composer.get_single_node
    compose_document = yaml.composer.Composer.compose_document
    check_node = yaml.composer.Composer.check_node
    get_node = yaml.composer.Composer.get_node
    get_single_data = yaml.constructor.SafeConstructor.get_single_data

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"more than {MAX_ALIASES} aliases in one file",
                    event.start_mark,  # type: ignore[arg-type]
                )
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"nested deeper than {MAX_DEPTH} levels",
                    event.start_mark,  # type: ignore[arg-type]
                )
            return yaml.composer.Composer.compose_node(self, parent, index)
        finally:
            self._depth -= 1

    def construct_document(self, node: yaml.Node) -> Any:
        _check_expansion(node)
        return yaml.constructor.SafeConstructor.construct_document(self, node)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a document that its aliases expand beyond ``MAX_EXPANDED_NODES`` nodes or
    ``MAX_DEPTH`` levels: each shared node counted as often as it is used, computed once per
    node (without recursion, so no document can exhaust the stack here)."""
    sizes: dict[int, int] = {}
    depths: dict[int, int] = {}
    visiting: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if not finished:
            if key in sizes or key in visiting:
                continue
            visiting.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in _children(node))
            continue
        children = _children(node)
        # a node inside itself (a recursive alias) counts once
        sizes[key] = 1 + sum(sizes.get(id(child), 1) for child in children)
        depths[key] = 1 + max((depths.get(id(child), 1) for child in children), default=0)
        if sizes[key] > MAX_EXPANDED_NODES or depths[key] > MAX_DEPTH:
            what = f"{MAX_EXPANDED_NODES} nodes" if sizes[key] > MAX_EXPANDED_NODES else f"{MAX_DEPTH} levels"
            raise yaml.constructor.ConstructorError(
                None, None, f"aliases expand this document beyond {what}", node.start_mark
            )


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    mapping: dict[str, Any] = {str(k): v for k, v in loader.construct_mapping(node, deep=True).items()}
    mapping[LINE_KEY] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _strip_lines(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_lines(v) for k, v in value.items() if k != LINE_KEY}
    if isinstance(value, list):
        return [_strip_lines(v) for v in value]
    return value


class _Reader:
    def __init__(self, root: Path):
        self.root = root
        self.problems: list[Problem] = []

    def rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    def add(self, path: Path | str, line: int | None, message: str) -> None:
        name = self.rel(path) if isinstance(path, Path) else path
        self.problems.append(Problem(name, line, message))

    def inside(self, path: Path) -> bool:
        """Whether ``path`` (followed through symbolic links) stays in the pack folder; a path
        leaving it is a problem (a pack never reads ``/etc`` through a link)."""
        try:
            path.resolve().relative_to(self.root.resolve())
            return True
        except ValueError:
            self.add(path, None, "a symbolic link out of the pack folder; packs read only their own files")
            return False
        except OSError as exc:  # a link loop
            self.add(path, None, f"cannot resolve path: {exc.strerror or exc}")
            return False

    def read_text(self, path: Path) -> str | None:
        if not self.inside(path):
            return None
        try:
            data = path.read_bytes()
        except OSError as exc:
            self.add(path, None, f"cannot read file: {exc.strerror}")
            return None
        if len(data) > MAX_FILE_BYTES:
            self.add(path, None, f"file is larger than {MAX_FILE_BYTES} bytes")
            return None
        if b"\x00" in data:
            self.add(path, None, "binary file (contains NUL bytes); expected UTF-8 text")
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.add(path, None, f"not UTF-8 text (byte {exc.start})")
            return None

    def read_yaml(self, path: Path, text: str | None = None, line_offset: int = 0) -> Any:
        if text is None:
            text = self.read_text(path)
            if text is None:
                return None
        try:
            return yaml.load(text, Loader=_LineLoader)  # noqa: S506 - SafeLoader subclass
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 + line_offset if mark is not None else None
            problem = getattr(exc, "problem", None) or str(exc)
            self.add(path, line, f"invalid YAML: {problem}")
            return None

    def validate(self, model: type[BaseModel], raw: Any, path: Path, line: int | None) -> Any:
        if not isinstance(raw, dict):
            self.add(path, line, f"expected a mapping for {model.__name__}, got {type(raw).__name__}")
            return None
        try:
            return model.model_validate(_strip_lines(raw))
        except ValidationError as exc:
            ident = raw.get("id")
            label = f"{model.__name__.lower()} {ident!r}" if ident else model.__name__.lower()
            for err in exc.errors():
                loc = ".".join(str(x) for x in err["loc"])
                field_line = _field_line(raw, err["loc"]) or line
                msg = err["msg"].removeprefix("Value error, ")
                self.add(path, field_line, f"{label}: {loc + ': ' if loc else ''}{msg}")
            return None

    def list_file(self, path: Path, model: type[BaseModel]) -> list[tuple[Any, Path, int | None]]:
        raw = self.read_yaml(path)
        if raw is None:
            return []
        if not isinstance(raw, list):
            self.add(path, 1, "expected a YAML list at the top level")
            return []
        out = []
        for entry in raw:
            line = entry.get(LINE_KEY) if isinstance(entry, dict) else None
            obj = self.validate(model, entry, path, line)
            if obj is not None:
                out.append((obj, path, line))
        return out


def _field_line(raw: dict[str, Any], loc: tuple[Any, ...]) -> int | None:
    node: Any = raw
    line = raw.get(LINE_KEY)
    for part in loc:
        if (
            isinstance(node, dict)
            and part in node
            or isinstance(node, list)
            and isinstance(part, int)
            and part < len(node)
        ):
            node = node[part]
            if isinstance(node, dict) and LINE_KEY in node:
                line = node[LINE_KEY]
        else:
            break
    return line


def _split_front_matter(text: str) -> tuple[str, str] | None:
    if not text.startswith("---"):
        return None
    parts = text.split("\n---", 2)
    if len(parts) < 2:
        return None
    front = parts[0][3:].lstrip("\n")
    body = parts[1].split("\n", 1)[1] if "\n" in parts[1] else ""
    return front, body.strip("\n") + "\n"


def load_pack(path: str | Path) -> Pack:
    """Load and fully validate the pack in folder ``path``; raise :class:`PackError`.

    A folder loaded before with the same files (names and bytes) is not parsed again: the caller
    gets a deep copy of the pack validated then (see ``_cache_key``), so changing it changes no
    other caller's pack. A pack with problems is never remembered."""
    root = Path(path)
    key = _cache_key(root)
    if key is not None:
        with _cache_lock:
            hit = _cache.get(key)
            if hit is not None:
                _cache.move_to_end(key)
        if hit is not None:
            return hit.model_copy(deep=True)
    pack = _load(root)[0]
    if key is not None:
        with _cache_lock:
            _cache[key] = pack.model_copy(deep=True)
            while len(_cache) > _CACHE_PACKS:
                _cache.popitem(last=False)
    return pack


#: How many loaded packs ``load_pack`` remembers (the default pack loads in seconds; tests, the
#: CLI and the server load the same folder many times), and the most bytes a folder may have to
#: be remembered (a larger one is loaded afresh each time).
_CACHE_PACKS = 4
_CACHE_MAX_BYTES = 64_000_000
_cache: OrderedDict[tuple[object, ...], Pack] = OrderedDict()
_cache_lock = threading.Lock()


def _cache_key(root: Path) -> tuple[object, ...] | None:
    """The folder (resolved), the loader's bounds and a digest of every file under it (relative names and
    contents), so any change to any file gives a new key; None (load afresh, never remembered)
    when the folder is missing or unreadable, holds a symbolic link or is larger than
    ``_CACHE_MAX_BYTES``."""
    try:
        base = root.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not base.is_dir():
        return None
    digest = hashlib.sha256()
    total = 0
    failed: list[OSError] = []
    for folder, dirs, files in os.walk(base, onerror=failed.append):
        dirs.sort()
        here = Path(folder)
        for name in dirs:
            if (here / name).is_symlink():
                return None
        for name in sorted(files):
            file = here / name
            if file.is_symlink():
                return None
            try:
                data = file.read_bytes()
            except OSError:
                return None
            total += len(data)
            if total > _CACHE_MAX_BYTES:
                return None
            rel = file.relative_to(base).as_posix().encode()
            digest.update(b"%d:%s:%d:" % (len(rel), rel, len(data)))
            digest.update(data)
    if failed:
        return None
    bounds = (MAX_FILE_BYTES, MAX_ALIASES, MAX_EXPANDED_NODES, MAX_DEPTH)
    return (str(base), bounds, digest.hexdigest())


def _load(root: Path) -> tuple[Pack, Sources]:
    reader = _Reader(root)
    if not root.is_dir():
        raise PackError([Problem(str(root), None, "pack folder does not exist")])

    meta: PackMeta | None = None
    meta_path = root / "pack.yaml"
    sources = Sources()
    if not meta_path.exists():
        reader.add(meta_path, None, "missing pack.yaml")
    else:
        raw = reader.read_yaml(meta_path)
        if raw is not None:
            meta = reader.validate(PackMeta, raw, meta_path, 1)
        if meta is not None:
            sources.where[("pack", meta.id)] = (meta_path, 1)
            for domain in raw.get("domains") or []:
                if isinstance(domain, dict) and isinstance(domain.get("id"), str):
                    sources.where[("domain", domain["id"])] = (meta_path, domain.get(LINE_KEY))

    skills = reader.list_file(root / "skills.yaml", Skill) if (root / "skills.yaml").exists() else []
    if not (root / "skills.yaml").exists():
        reader.add(root / "skills.yaml", None, "missing skills.yaml")
    roles = reader.list_file(root / "roles.yaml", Role) if (root / "roles.yaml").exists() else []
    if not (root / "roles.yaml").exists():
        reader.add(root / "roles.yaml", None, "missing roles.yaml")

    for folder in ("items", "lessons", "locales"):
        if (root / folder).exists() and not reader.inside(root / folder):
            raise PackError(reader.problems)
    items: list[tuple[Item, Path, int | None]] = []
    for item_file in sorted((root / "items").glob("*.yaml")):
        items.extend(reader.list_file(item_file, Item))

    lessons: list[tuple[Lesson, Path, int | None]] = []
    for lesson_file in sorted((root / "lessons").glob("*.md")):
        text = reader.read_text(lesson_file)
        if text is None:
            continue
        split = _split_front_matter(text)
        if split is None:
            reader.add(lesson_file, 1, "lesson needs YAML front matter between '---' lines")
            continue
        front, body = split
        raw = reader.read_yaml(lesson_file, front, line_offset=1)
        if raw is None:
            continue
        if isinstance(raw, dict):
            raw["body"] = body
        lesson = reader.validate(Lesson, raw, lesson_file, 1)
        if lesson is not None:
            lessons.append((lesson, lesson_file, 1))

    _check_references(reader, meta, skills, roles, items, lessons)
    _check_provenance(reader, meta, items, lessons)
    if meta is not None:  # on whatever validated, so one pass lists every problem
        _check_quality(reader, meta, items, lessons)
    for kind, entries in (("skill", skills), ("role", roles), ("item", items), ("lesson", lessons)):
        for obj, where, line in entries:
            sources.where.setdefault((kind, obj.id), (where, line))
            sources.file_of.setdefault((kind, obj.id), where.name)
    parts: dict[str, Any] = {
        "skills": [s for s, _, _ in skills],
        "roles": [r for r, _, _ in roles],
        "items": [i for i, _, _ in items],
        "lessons": [x for x, _, _ in lessons],
    }
    # Overlays are read even when the base has problems; checked against it only when it has none.
    had_problems = bool(reader.problems)
    base = Pack.model_construct(meta=meta, **parts) if meta is not None and not had_problems else None
    translations = read_overlays(reader, root, base, sources)
    if had_problems and meta is not None:
        # the texts of what did validate still need their promised translations
        partial = Pack.model_construct(meta=meta, **parts)
        for lang in meta.languages:
            if lang != meta.language:
                reader.problems.extend(
                    missing_problems(reader, partial, lang, translations.get(lang), sources)
                )
    if reader.problems:
        raise PackError(reader.problems)
    assert meta is not None
    return Pack(meta=meta, translations=translations, **parts), sources


def translation_gaps(path: str | Path, language: str) -> list[Problem]:
    """Every text of the pack at ``path`` with no ``language`` translation, at the file and line
    of its source text: the check ``load_pack`` makes for the languages a pack declares."""
    root = Path(path)
    pack, sources = _load(root)
    return missing_problems(_Reader(root), pack, language, pack.translations.get(language), sources)


def _check_references(
    reader: _Reader,
    meta: PackMeta | None,
    skills: list[tuple[Skill, Path, int | None]],
    roles: list[tuple[Role, Path, int | None]],
    items: list[tuple[Item, Path, int | None]],
    lessons: list[tuple[Lesson, Path, int | None]],
) -> None:
    for kind, entries in (("skill", skills), ("role", roles), ("item", items), ("lesson", lessons)):
        seen: dict[str, tuple[Path, int | None]] = {}
        for obj, path, line in entries:
            if obj.id in seen:
                first_path, first_line = seen[obj.id]
                reader.add(
                    path,
                    line,
                    f"duplicate {kind} id {obj.id!r} (first at {reader.rel(first_path)}:{first_line})",
                )
            else:
                seen[obj.id] = (path, line)

    skill_ids = {s.id for s, _, _ in skills}
    domain_ids = {d.id for d in meta.domains} if meta else None
    for skill, path, line in skills:
        if domain_ids is not None and skill.domain not in domain_ids:
            reader.add(path, line, f"skill {skill.id!r}: unknown domain {skill.domain!r}")
        for pre in skill.prerequisites:
            if pre not in skill_ids:
                reader.add(path, line, f"skill {skill.id!r}: unknown prerequisite {pre!r}")
            elif pre == skill.id:
                reader.add(path, line, f"skill {skill.id!r} lists itself as a prerequisite")
        for rec in skill.recommended:
            if rec not in skill_ids or rec == skill.id:
                reader.add(path, line, f"skill {skill.id!r}: recommended skill {rec!r} is unknown or itself")
            elif rec in skill.prerequisites:
                reader.add(path, line, f"skill {skill.id!r}: {rec!r} is both a prerequisite and recommended")
    graph = {s.id: [p for p in s.prerequisites if p in skill_ids and p != s.id] for s, _, _ in skills}
    cycle = find_cycle(graph)
    if cycle:
        where = {s.id: (p, ln) for s, p, ln in skills}
        path, line = where[cycle[0]]
        reader.add(path, line, "prerequisite cycle: " + " -> ".join(cycle + [cycle[0]]))
    for role, path, line in roles:
        for sid in role.targets:
            if sid not in skill_ids:
                reader.add(path, line, f"role {role.id!r}: unknown skill {sid!r} in targets")
    for item, path, line in items:
        for sid in item.skills:
            if sid not in skill_ids:
                reader.add(path, line, f"item {item.id!r}: unknown skill {sid!r}")
    for lesson, path, line in lessons:
        for sid in lesson.skills:
            if sid not in skill_ids:
                reader.add(path, line, f"lesson {lesson.id!r}: unknown skill {sid!r}")


def _check_provenance(
    reader: _Reader,
    meta: PackMeta | None,
    items: list[tuple[Item, Path, int | None]],
    lessons: list[tuple[Lesson, Path, int | None]],
) -> None:
    """Provenance on every item and lesson (in a pack that requires it) and lesson sources that
    name lessons of this pack."""
    required = meta is not None and meta.require_provenance
    lesson_ids = {lesson.id for lesson, _, _ in lessons}
    entries: list[tuple[str, Item | Lesson, Path, int | None]] = [("item", i, p, ln) for i, p, ln in items]
    entries += [("lesson", x, p, ln) for x, p, ln in lessons]
    for kind, obj, path, line in entries:
        prov = obj.provenance
        if prov is None:
            if required:
                reader.add(
                    path,
                    line,
                    f"{kind} {obj.id!r}: no provenance (author, reviewers, reviewed, sources, status)",
                )
            continue
        refs = prov.lesson_refs() + [
            s for s in getattr(obj, "further_reading", []) if s.startswith("lesson.")
        ]
        for ref in refs:
            if ref not in lesson_ids:
                reader.add(path, line, f"{kind} {obj.id!r}: source {ref!r} is not a lesson of this pack")
    if required:
        for lesson, path, line in lessons:
            if not lesson.further_reading:
                reader.add(path, line, f"lesson {lesson.id!r}: no further_reading")


def _check_quality(
    reader: _Reader,
    meta: PackMeta,
    items: list[tuple[Item, Path, int | None]],
    lessons: list[tuple[Lesson, Path, int | None]],
) -> None:
    """No item answerable by copying its lesson; no item duplicating one of another skill
    (``quality.py``)."""
    where = {item.id: (path, line) for item, path, line in items}
    draft = Pack.model_construct(
        meta=meta, skills=[], roles=[], items=[i for i, _, _ in items], lessons=[x for x, _, _ in lessons]
    )
    for finding in [*lesson_copies(draft), *cross_skill_duplicates(draft.items)]:
        path, line = where[finding.item_id]
        reader.add(path, line, f"item {finding.item_id!r}: {finding.message}")


def pack_from_json(document: dict[str, Any]) -> Pack:
    return Pack.model_validate(document)


def pack_fingerprint(pack: Pack) -> str:
    """A hash of the pack's meaning (independent of file layout and key order)."""
    canonical = json.dumps(pack.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class _BlockDumper(yaml.SafeDumper):
    pass


def _str_presenter(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str_presenter)


def _dump(value: Any) -> str:
    return yaml.dump(value, Dumper=_BlockDumper, sort_keys=False, allow_unicode=True, width=100)


def _item_files(pack: Pack) -> dict[str, str]:
    """The file each item is written to: ``<domain>.yaml`` by the domain of its first skill, unless
    that would change the order in which the items are read back (files are read in name order);
    then consecutive runs of one domain go to numbered files (``01-llm.yaml``, ``02-ml.yaml``...)."""
    domain_of = {s.id: s.domain for s in pack.skills}
    domains = [domain_of.get(item.skills[0], "misc") for item in pack.items]
    by_domain = {item.id: f"{d}.yaml" for item, d in zip(pack.items, domains, strict=True)}
    order = sorted(range(len(pack.items)), key=lambda i: (by_domain[pack.items[i].id], i))
    if order == list(range(len(pack.items))):
        return by_domain
    files: dict[str, str] = {}
    run, previous = 0, None
    for item, domain in zip(pack.items, domains, strict=True):
        if domain != previous:
            run, previous = run + 1, domain
        files[item.id] = f"{run:02d}-{domain}.yaml"
    return files


def write_pack(pack: Pack, path: str | Path) -> Path:
    """Write ``pack`` as a pack folder that :func:`load_pack` reads back to an equal pack."""
    root = Path(path)
    (root / "items").mkdir(parents=True, exist_ok=True)
    (root / "lessons").mkdir(parents=True, exist_ok=True)
    (root / "pack.yaml").write_text(_dump(pack.meta.model_dump(mode="json")), encoding="utf-8")
    (root / "skills.yaml").write_text(
        _dump([s.model_dump(mode="json") for s in pack.skills]), encoding="utf-8"
    )
    (root / "roles.yaml").write_text(_dump([r.model_dump(mode="json") for r in pack.roles]), encoding="utf-8")
    item_file = _item_files(pack)
    by_file: dict[str, list[dict[str, Any]]] = {}
    for item in pack.items:
        by_file.setdefault(item_file[item.id], []).append(item.model_dump(mode="json", exclude_none=True))
    for name, entries in by_file.items():
        (root / "items" / name).write_text(_dump(entries), encoding="utf-8")
    for lesson in pack.lessons:
        front = lesson.model_dump(mode="json", exclude={"body"})
        text = "---\n" + _dump(front) + "---\n\n" + lesson.body
        (root / "lessons" / f"{lesson.id}.md").write_text(text, encoding="utf-8")
    for rel, document in overlay_documents(pack, item_file).items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(document if isinstance(document, str) else _dump(document), encoding="utf-8")
    return root


__all__ = [
    "Domain",
    "PackError",
    "Problem",
    "load_pack",
    "pack_fingerprint",
    "pack_from_json",
    "translation_gaps",
    "write_pack",
]
