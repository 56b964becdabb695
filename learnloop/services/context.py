"""What every service needs: settings, the database, and the active content pack."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property

from sqlalchemy import Connection, bindparam, func, select
from sqlalchemy.orm import Session

from learnloop.config import Settings, get_settings
from learnloop.content.graph import prerequisite_closure
from learnloop.content.models import Item, ItemText, Lesson, Pack, Role
from learnloop.errors import LearnloopError, NotFound
from learnloop.i18n import _, get_locale
from learnloop.store.db import autocommit_scope, session_scope
from learnloop.store.models import ContentPack, ItemDraft

log = logging.getLogger(__name__)

_localized_lock = threading.Lock()


@dataclass
class ActivePack:
    """A loaded pack with the lookups the services use on every request."""

    row_id: int
    pack: Pack
    #: the pack in its base language, for a localised copy
    base: ActivePack | None = field(default=None, repr=False, compare=False)
    #: the organisation whose view this is (``AppContext.active_pack(session, org_id)``): the
    #: shared pack plus the items its instructors approved; None for the shared pack itself
    org_id: int | None = None
    #: ids of the items only this organisation has (its approved drafts)
    authored: frozenset[str] = frozenset()
    _localized: dict[str, ActivePack] = field(default_factory=dict, repr=False, compare=False)
    #: (shared pack only) organisation id -> (its approved drafts' count and newest id, its view)
    _orgs: dict[int, tuple[tuple[int, int], ActivePack]] = field(
        default_factory=dict, repr=False, compare=False
    )

    @cached_property
    def items(self) -> dict[str, Item]:
        return self.pack.item_index()

    @cached_property
    def skills(self) -> dict[str, object]:
        return dict(self.pack.skill_index())

    @cached_property
    def roles(self) -> dict[str, Role]:
        return self.pack.role_index()

    @cached_property
    def prerequisites(self) -> dict[str, list[str]]:
        return {s.id: list(s.prerequisites) for s in self.pack.skills}

    @cached_property
    def items_by_skill(self) -> dict[str, list[Item]]:
        out: dict[str, list[Item]] = {s.id: [] for s in self.pack.skills}
        for item in self.pack.items:
            for sid in item.skills:
                out.setdefault(sid, []).append(item)
        return out

    def item(self, item_id: str) -> Item:
        try:
            item = self.items[item_id]
        except KeyError:
            raise NotFound(_("No item with id %(id)s.") % {"id": item_id}) from None
        self.pack.note_served("item", item_id)
        return item

    def lesson(self, lesson_id: str) -> Lesson:
        try:
            return self.pack.lesson(lesson_id)
        except KeyError:
            raise NotFound(_("No such lesson.")) from None

    def role(self, role_id: str) -> Role:
        try:
            return self.roles[role_id]
        except KeyError:
            raise NotFound(_("No role with id %(id)s.") % {"id": role_id}) from None

    def role_skills(self, role: Role) -> set[str]:
        """The role's target skills and every prerequisite they need."""
        return prerequisite_closure(self.prerequisites, role.targets)

    def localized(self, language: str | None = None) -> ActivePack:
        """This pack with its texts in ``language`` (default: the UI language of the request),
        falling back to the pack's base language only where a translation is missing, and
        counting each fallback (``Pack.localized``). Use it wherever content text reaches a user;
        ids, keys and structure are the same as in the base pack. Built once per language."""
        root = self.base or self
        pack = root.pack.localized(language or get_locale())
        if pack is root.pack:
            return root
        with _localized_lock:
            found = root._localized.get(pack.language)
            if found is None:
                found = ActivePack(
                    row_id=root.row_id, pack=pack, base=root, org_id=root.org_id, authored=root.authored
                )
                root._localized[pack.language] = found
        return found

    @property
    def language(self) -> str:
        return self.pack.language


_ACTIVE_ID = (
    select(ContentPack.id)
    .where(ContentPack.is_active.is_(True))
    .order_by(ContentPack.id.desc())
    .limit(1)
    .scalar_subquery()
)
_APPROVED = (ItemDraft.org_id == bindparam("org_id"), ItemDraft.status == "approved")
#: built once: every request reads the active pack (and its organisation's approved items)
_ACTIVE = select(_ACTIVE_ID)
_ACTIVE_AND_DRAFTS = select(
    _ACTIVE_ID,
    select(func.count()).where(*_APPROVED).scalar_subquery(),
    select(func.max(ItemDraft.id)).where(*_APPROVED).scalar_subquery(),
)


@dataclass
class AppContext:
    settings: Settings = field(default_factory=get_settings)
    _packs: dict[int, ActivePack] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with session_scope(self.settings.database_url) as session:
            yield session

    @contextmanager
    def autocommit(self) -> Iterator[Connection]:
        """A connection whose statements each commit as they run (``store.db.autocommit_scope``):
        for work of single statements, each complete on its own."""
        with autocommit_scope(self.settings.database_url) as conn:
            yield conn

    def active_pack(self, session: Session, org_id: int | None = None) -> ActivePack:
        """The active pack; with ``org_id``, that organisation's view of it: the shared pack plus
        the items its instructors approved (``services/authoring.py``), which no other
        organisation sees. Pass the caller's organisation wherever items reach a learner or an
        instructor (practice, grading, the item bank, reports)."""
        if org_id is None:
            return self._shared_pack(session, session.execute(_ACTIVE).scalar())
        # the pack and the organisation's approved items in one statement (every request reads both)
        row_id, count, newest = session.execute(_ACTIVE_AND_DRAFTS, {"org_id": org_id}).one()
        return _org_view(session, self._shared_pack(session, row_id), org_id, (count, newest))

    def _shared_pack(self, session: Session, row_id: int | None) -> ActivePack:
        if row_id is None:
            raise LearnloopError(
                _("No content pack is loaded: run `learnloop init` or `learnloop import PACK`.")
            )
        with self._lock:
            cached = self._packs.get(row_id)
        if cached is None:
            document = session.get(ContentPack, row_id)
            assert document is not None
            cached = ActivePack(row_id=row_id, pack=Pack.model_validate(document.document))
            with self._lock:
                self._packs = {row_id: cached}
        return cached


def _org_view(
    session: Session, shared: ActivePack, org_id: int, drafts: tuple[int | None, int | None]
) -> ActivePack:
    """``shared`` with the organisation's approved items added (built once per change: approved
    drafts never leave that state, so their count and newest id, ``drafts``, say when to
    rebuild)."""
    approved = (ItemDraft.org_id == org_id, ItemDraft.status == "approved")
    count, newest = drafts
    if not count or newest is None:
        return shared
    key = (int(count), int(newest))
    with _localized_lock:
        hit = shared._orgs.get(org_id)
    if hit is not None and hit[0] == key:
        return hit[1]
    documents = session.execute(select(ItemDraft.item).where(*approved).order_by(ItemDraft.id)).scalars()
    pack, authored = authored_overlay(shared.pack, documents, f"org{org_id}")
    view = ActivePack(row_id=shared.row_id, pack=pack, org_id=org_id, authored=frozenset(authored))
    with _localized_lock:
        shared._orgs[org_id] = (key, view)
    return view


def authored_overlay(pack: Pack, documents: Iterable[dict[str, object]], tag: str) -> tuple[Pack, list[str]]:
    """``pack`` with the authored items of ``documents`` added (each an item, with its texts in
    other languages under ``translations``), and the ids added. An item that no longer fits the
    pack (a skill it names left, or its id is taken) is left out and logged."""
    skills = pack.skill_index()
    taken = set(pack.item_index())
    items: list[Item] = []
    texts: dict[str, dict[str, ItemText]] = {}
    for raw in documents:
        document = dict(raw)
        translations = document.pop("translations", None) or {}
        try:
            item = Item.model_validate(document)
            localized = {str(lang): ItemText.model_validate(t) for lang, t in dict(translations).items()}  # type: ignore[call-overload]
        except ValueError as exc:
            log.warning("authored item %s left out: %s", document.get("id"), exc)
            continue
        if item.id in taken or any(s not in skills for s in item.skills):
            log.warning("authored item %s left out: its id is taken or it names an unknown skill", item.id)
            continue
        taken.add(item.id)
        items.append(item)
        for lang, text in localized.items():
            texts.setdefault(lang, {})[item.id] = text
    if not items:
        return pack, []
    out = Pack.model_construct(
        meta=pack.meta.model_copy(update={"version": f"{pack.meta.version}+{tag}"}),
        skills=pack.skills,
        roles=pack.roles,
        items=[*pack.items, *items],
        lessons=pack.lessons,
        translations={
            lang: overlay.model_copy(update={"items": {**overlay.items, **texts.get(lang, {})}})
            for lang, overlay in pack.translations.items()
        },
    )
    return out, [i.id for i in items]
