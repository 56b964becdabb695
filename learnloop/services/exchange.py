"""The admin page for exchanging the framework (CASE) and items (QTI 3.0) with other tools.

A dry run checks an uploaded file and lists every problem with where it is: a JSON path
(``$.CFAssociations[3].associationType``) or line and column for CASE, the file inside the
package (and, from the QTI 3.0 XSD, its line) for QTI. Nothing is stored by a dry run.

Importing then does what the organisation can keep: a QTI package's items become item drafts
of the organisation, waiting in the review queue like generated drafts (nothing reaches a
learner before an instructor approves it); a CASE framework becomes a pack draft folder,
downloaded as a zip for ``learnloop import`` (frameworks are packs, shared by the site).
Everything is scoped to the caller's organisation.
"""

from __future__ import annotations

import io
import zipfile

from pydantic import BaseModel
from sqlalchemy import select

from learnloop.content.loader import write_pack
from learnloop.errors import InvalidInput, TooLarge
from learnloop.i18n import _
from learnloop.interop import qti
from learnloop.services import case_io, qti_io
from learnloop.services.auth import CurrentUser
from learnloop.services.context import AppContext
from learnloop.store.models import ItemDraft

FORMATS = ("case", "qti")
IMPORT_PROVIDER = "qti-import"


class ExchangeReport(BaseModel):
    format: str
    filename: str
    #: nothing blocks an import
    ok: bool
    #: what blocks it, each with its place
    problems: list[str]
    #: what the QTI 3.0 XSD says (file:line), shown but not blocking: other tools' packages may
    #: use what Learnloop's checks allow
    schema_findings: list[str] = []
    #: what an import would make (counts and ids)
    summary: str = ""
    #: after an import: what was stored
    imported: int = 0


def _problems(exc: InvalidInput | TooLarge) -> list[str]:
    details = list(getattr(exc, "details", None) or [])
    return details or [exc.message]


def check(ctx: AppContext, user: CurrentUser, fmt: str, filename: str, data: bytes) -> ExchangeReport:
    """Dry run: every problem of an uploaded CASE package or QTI package (nothing stored)."""
    user.require("instructor")
    if fmt not in FORMATS:
        raise InvalidInput(_("Choose CASE or QTI."))
    if fmt == "case":
        try:
            draft = case_io.import_case(ctx, user, data)
        except (InvalidInput, TooLarge) as exc:
            return ExchangeReport(format=fmt, filename=filename, ok=False, problems=_problems(exc))
        summary = _(
            "Pack draft %(id)s: %(domains)s domains, %(skills)s skills, %(roles)s roles, "
            "%(pre)s prerequisites."
        ) % {
            "id": draft.pack_id,
            "domains": draft.domains,
            "skills": draft.skills,
            "roles": draft.roles,
            "pre": draft.prerequisites,
        }
        return ExchangeReport(format=fmt, filename=filename, ok=True, problems=[], summary=summary)
    try:
        items = qti_io.import_qti(ctx, user, data)
    except (InvalidInput, TooLarge) as exc:
        return ExchangeReport(
            format=fmt,
            filename=filename,
            ok=False,
            problems=_problems(exc),
            schema_findings=qti.xsd_findings(data),
        )
    problems = _clashes(ctx, user, [i.id for i in items])
    summary = _("%(n)s items: %(ids)s.") % {"n": len(items), "ids": ", ".join(i.id for i in items[:50])}
    return ExchangeReport(
        format=fmt,
        filename=filename,
        ok=not problems,
        problems=problems,
        schema_findings=qti.xsd_findings(data),
        summary=summary,
    )


def _clashes(ctx: AppContext, user: CurrentUser, ids: list[str]) -> list[str]:
    """Item ids the organisation already has (in its pack view or among its drafts)."""
    with ctx.session() as session:
        active = ctx.active_pack(session, user.org_id)
        drafted = {
            str(row.item.get("id"))
            for row in session.scalars(
                select(ItemDraft).where(ItemDraft.org_id == user.org_id, ItemDraft.status != "rejected")
            )
        }
    return [
        _("items/%(id)s.xml: the item id %(id)s is already in use in your organisation") % {"id": i}
        for i in ids
        if i in active.items or i in drafted
    ]


def import_qti_drafts(ctx: AppContext, user: CurrentUser, filename: str, data: bytes) -> ExchangeReport:
    """Import: the package's items as item drafts of the caller's organisation, pending review.
    Refused as a whole (nothing stored) when the dry run finds a problem."""
    report = check(ctx, user, "qti", filename, data)
    if not report.ok:
        return report
    items = qti_io.import_qti(ctx, user, data)
    with ctx.session() as session:
        for item in items:
            session.add(
                ItemDraft(
                    org_id=user.org_id,
                    skill_id=item.skills[0],
                    lesson_id=None,
                    item=item.model_dump(mode="json", exclude_none=True),
                    provider=IMPORT_PROVIDER,
                    status="pending",
                    created_by=user.id,
                )
            )
    return report.model_copy(update={"imported": len(items)})


def case_draft_zip(ctx: AppContext, user: CurrentUser, data: bytes) -> tuple[str, bytes]:
    """Import: the pack draft a CASE package makes, as a zip of its folder (pack.yaml,
    skills.yaml, roles.yaml) for ``learnloop import``; ``InvalidInput`` with every problem."""
    user.require("instructor")
    import tempfile
    from pathlib import Path

    from learnloop.content.models import Pack

    draft = case_io.import_case(ctx, user, data)
    pack = Pack.model_validate({**draft.pack, "items": [], "lessons": []})
    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / draft.pack_id
        write_pack(pack, folder)
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    zf.write(path, f"{draft.pack_id}/{path.relative_to(folder).as_posix()}")
    return draft.pack_id, buffer.getvalue()
