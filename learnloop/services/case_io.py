"""The competency framework in CASE (1EdTech) and as Moodle's competency-framework CSV.

Export reads the active pack; import turns a CFPackage from another tool into a pack draft
(domains, skills, prerequisites, roles; no items or lessons yet), validated like any pack.
Translation is in ``interop/case.py``; nothing here is stored until an author imports the
draft folder as a pack (``learnloop import``).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from learnloop.content.loader import load_pack, write_pack
from learnloop.content.models import Pack
from learnloop.errors import InvalidInput, TooLarge
from learnloop.i18n import _
from learnloop.interop import case
from learnloop.services.auth import CurrentUser
from learnloop.services.context import AppContext
from learnloop.store.models import utcnow

MAX_PACKAGE_BYTES = 5_000_000


class CaseDraft(BaseModel):
    pack_id: str
    name: str
    domains: int
    skills: int
    roles: int
    prerequisites: int
    #: Learnloop id -> the CFItem identifier it came from
    identifiers: dict[str, str]
    #: the draft as pack data (pack.yaml, skills.yaml, roles.yaml contents)
    pack: dict[str, Any]


def export_case(
    ctx: AppContext, user: CurrentUser | None, base_uri: str, version: str = "1.1"
) -> dict[str, Any]:
    """The active pack's framework as a CFPackage of CASE ``version`` (1.1, or 1.0 for older
    consumers); ``user`` None: the command line."""
    if user is not None:
        user.require("instructor", "manager")
    if version not in case.VERSIONS:
        raise InvalidInput(
            _("CASE version %(v)s is not supported (1.1 and 1.0 are).") % {"v": str(version)[:20]}
        )
    with ctx.session() as session:
        pack = ctx.active_pack(session, user.org_id if user is not None else None).pack
    return case.export_package(pack, base_uri=base_uri, now=utcnow(), version=version)


def _draft_pack(raw: bytes | str) -> tuple[Pack, dict[str, str]]:
    if len(raw) > MAX_PACKAGE_BYTES:
        raise TooLarge(_("The CASE package is larger than %(n)s bytes.") % {"n": MAX_PACKAGE_BYTES})
    try:
        package = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        where = f"line {exc.lineno}, column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise InvalidInput(_("The CASE package is not valid JSON (%(where)s).") % {"where": where}) from None
    try:
        data = case.import_package(package)
    except case.CaseError as exc:
        raise InvalidInput(
            _("The CASE package cannot be imported: %(n)s problems.") % {"n": len(exc.problems)},
            details=exc.problems[:200],
        ) from None
    try:
        pack = Pack.model_validate(
            {
                "meta": data["meta"],
                "skills": data["skills"],
                "roles": data["roles"],
                "items": [],
                "lessons": [],
            }
        )
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise InvalidInput(
            _("The CASE package cannot be imported: %(n)s problems.") % {"n": len(problems)}, details=problems
        ) from None
    return pack, data["identifiers"]


def import_case(ctx: AppContext, user: CurrentUser, raw: bytes | str) -> CaseDraft:
    """Check a CFPackage and return the pack draft it makes (nothing is stored)."""
    user.require("instructor")
    pack, identifiers = _draft_pack(raw)
    return CaseDraft(
        pack_id=pack.meta.id,
        name=pack.meta.name,
        domains=len(pack.meta.domains),
        skills=len(pack.skills),
        roles=len(pack.roles),
        prerequisites=sum(len(s.prerequisites) for s in pack.skills),
        identifiers=identifiers,
        pack=pack.model_dump(mode="json", include={"meta", "skills", "roles"}),
    )


def import_case_folder(raw: bytes | str, directory: Path) -> Pack:
    """Write the draft pack folder a CFPackage makes and read it back as any pack is read
    (``PackError`` with file and line for what the folder lacks)."""
    pack, _identifiers = _draft_pack(raw)
    write_pack(pack, directory)
    return load_pack(directory)


#: Moodle's competency framework import (admin/tool/lpimportcsv), in its column order
MOODLE_COLUMNS = [
    "Parent ID number",
    "ID number",
    "Short name",
    "Description",
    "Description format",
    "Scale values",
    "Scale configuration",
    "Rule type (optional)",
    "Rule outcome (optional)",
    "Rule config (optional)",
    "Cross-referenced competency ID numbers",
    "Exported ID (optional)",
    "Is framework",
    "Taxonomy",
]
MOODLE_SCALE = "Not yet competent,Competent"
MOODLE_SCALE_CONFIG = (
    '[{"scaleid":"2"},{"id":1,"scaledefault":1,"proficient":0},{"id":2,"scaledefault":0,"proficient":1}]'
)


def moodle_csv(ctx: AppContext, user: CurrentUser | None) -> str:
    """The framework as Moodle's competency CSV: the framework row, then domains, then skills
    under their domain; prerequisites become cross-references (Moodle's "related"
    competencies, which are symmetric). Roles have no place in Moodle's framework."""
    if user is not None:
        user.require("instructor", "manager")
    with ctx.session() as session:
        pack = ctx.active_pack(session).pack
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(MOODLE_COLUMNS)
    empty = ["", "", "", ""]
    writer.writerow(
        ["", pack.meta.id, pack.meta.name, pack.meta.description, "1", MOODLE_SCALE, MOODLE_SCALE_CONFIG,
         *empty[:3], "", "", "1", "domain,competency"]
    )  # fmt: skip
    for domain in pack.meta.domains:
        writer.writerow(["", domain.id, domain.name, domain.description, "1", *[""] * 7, "0", ""])
    for skill in pack.skills:
        writer.writerow(
            [skill.domain, skill.id, skill.name, skill.description, "1", "", "", "", "", "",
             ",".join(skill.prerequisites), "", "0", ""]
        )  # fmt: skip
    return out.getvalue()
