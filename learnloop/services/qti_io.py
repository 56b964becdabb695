"""Items as QTI 3.0 packages: export of the active pack's items (all four kinds), and
import of a package as checked items (nothing stored: authors add them to a pack).
Translation and the defensive reading are in ``interop/qti.py``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from learnloop.content.models import Item
from learnloop.errors import InvalidInput
from learnloop.i18n import _
from learnloop.interop import qti
from learnloop.services.auth import CurrentUser
from learnloop.services.context import AppContext


class QtiImport(BaseModel):
    items: list[dict[str, Any]]


def export_qti(ctx: AppContext, user: CurrentUser | None) -> tuple[bytes, list[str]]:
    """The zip (every item kind, code included), and the ids of any items it left out."""
    if user is not None:
        user.require("instructor")
    with ctx.session() as session:
        pack = ctx.active_pack(session).pack
    return qti.export_package(exportable(pack.items), pack.meta.language)


def exportable(items: list[Item]) -> list[dict[str, Any]]:
    """The items as QTI export takes them: retired ones left out, a family item as one fixed
    instance of it (seed 0) without its templates (QTI's template processing is not mapped)."""
    out = []
    for item in items:
        if item.retired:
            continue
        if item.family is not None:
            shown = item.instance(0).model_copy(update={"family": None})  # a plain item now
            out.append(shown.model_dump(mode="json", exclude_none=True))
        else:
            out.append(item.model_dump(mode="json", exclude_none=True))
    return out


def import_qti(ctx: AppContext, user: CurrentUser | None, data: bytes) -> list[Item]:
    """The items of a package, each checked as a pack item against the active pack's skills;
    every problem listed by file (422 / exit 2)."""
    if user is not None:
        user.require("instructor")
    try:
        raw = qti.read_package(data)
    except qti.QtiError as exc:
        raise InvalidInput(
            _("The QTI package cannot be imported: %(n)s problems.") % {"n": len(exc.problems)},
            details=exc.problems[:200],
        ) from None
    with ctx.session() as session:
        skills = set(ctx.active_pack(session).skills)
    problems: list[str] = []
    items: list[Item] = []
    seen: set[str] = set()
    for entry in raw:
        where = f"items/{entry.get('id', '?')}.xml"
        try:
            item = Item.model_validate(entry)
        except ValidationError as exc:
            problems += [f"{where}: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
            continue
        unknown = [s for s in item.skills if s not in skills]
        if unknown:
            problems.append(f"{where}: unknown skills {', '.join(unknown)}")
        if item.id in seen:
            problems.append(f"{where}: duplicate item id {item.id}")
        seen.add(item.id)
        items.append(item)
    if problems:
        raise InvalidInput(
            _("The QTI package cannot be imported: %(n)s problems.") % {"n": len(problems)}, details=problems
        )
    return items
