"""Importing and exporting content packs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, update

from learnloop.content.loader import load_pack, pack_fingerprint, write_pack
from learnloop.content.models import Pack
from learnloop.services.context import AppContext
from learnloop.store.models import ContentPack


@dataclass
class PackSummary:
    pack_id: str
    version: str
    fingerprint: str
    skills: int
    roles: int
    items: int
    lessons: int
    changed: bool


def _summary(pack: Pack, fingerprint: str, changed: bool) -> PackSummary:
    return PackSummary(
        pack.meta.id,
        pack.meta.version,
        fingerprint,
        len(pack.skills),
        len(pack.roles),
        len(pack.items),
        len(pack.lessons),
        changed,
    )


def import_pack(ctx: AppContext, path: str | Path) -> PackSummary:
    """Validate the pack folder fully, then make it the active pack in one transaction.

    Raises :class:`learnloop.content.loader.PackError` listing every problem; in that case
    nothing is written.
    """
    pack = load_pack(path)
    return activate_pack(ctx, pack)


def activate_pack(ctx: AppContext, pack: Pack) -> PackSummary:
    fingerprint = pack_fingerprint(pack)
    with ctx.session() as session:
        current = (
            session.execute(
                select(ContentPack).where(ContentPack.is_active.is_(True)).order_by(ContentPack.id.desc())
            )
            .scalars()
            .first()
        )
        if current is not None and current.fingerprint == fingerprint:
            return _summary(pack, fingerprint, changed=False)
        session.execute(update(ContentPack).values(is_active=False))
        session.add(
            ContentPack(
                pack_id=pack.meta.id,
                version=pack.meta.version,
                fingerprint=fingerprint,
                document=pack.model_dump(mode="json"),
                is_active=True,
            )
        )
    return _summary(pack, fingerprint, changed=True)


def export_pack(ctx: AppContext, directory: str | Path) -> PackSummary:
    with ctx.session() as session:
        pack = ctx.active_pack(session).pack
    write_pack(pack, directory)
    return _summary(pack, pack_fingerprint(pack), changed=False)


def active_pack_summary(ctx: AppContext) -> PackSummary:
    with ctx.session() as session:
        pack = ctx.active_pack(session).pack
    return _summary(pack, pack_fingerprint(pack), changed=False)
