"""What every service needs: settings, the database, and the active content pack."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property

from sqlalchemy import select
from sqlalchemy.orm import Session

from learnloop.config import Settings, get_settings
from learnloop.content.graph import prerequisite_closure
from learnloop.content.models import Item, Lesson, Pack, Role
from learnloop.errors import LearnloopError, NotFound
from learnloop.i18n import _, get_locale
from learnloop.store.db import session_scope
from learnloop.store.models import ContentPack

_localized_lock = threading.Lock()


@dataclass
class ActivePack:
    """A loaded pack with the lookups the services use on every request."""

    row_id: int
    pack: Pack
    #: the pack in its base language, for a localised copy
    base: ActivePack | None = field(default=None, repr=False, compare=False)
    _localized: dict[str, ActivePack] = field(default_factory=dict, repr=False, compare=False)

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
                found = ActivePack(row_id=root.row_id, pack=pack, base=root)
                root._localized[pack.language] = found
        return found

    @property
    def language(self) -> str:
        return self.pack.language


@dataclass
class AppContext:
    settings: Settings = field(default_factory=get_settings)
    _packs: dict[int, ActivePack] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with session_scope(self.settings.database_url) as session:
            yield session

    def active_pack(self, session: Session) -> ActivePack:
        row = session.execute(
            select(ContentPack.id).where(ContentPack.is_active.is_(True)).order_by(ContentPack.id.desc())
        ).first()
        if row is None:
            raise LearnloopError(
                _("No content pack is loaded: run `learnloop init` or `learnloop import PACK`.")
            )
        row_id = row[0]
        with self._lock:
            cached = self._packs.get(row_id)
        if cached is None:
            document = session.get(ContentPack, row_id)
            assert document is not None
            cached = ActivePack(row_id=row_id, pack=Pack.model_validate(document.document))
            with self._lock:
                self._packs = {row_id: cached}
        return cached
