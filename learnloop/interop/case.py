"""CASE (1EdTech Competencies and Academic Standards Exchange) CFPackages in and out.

Export: a pack's framework as a CASE 1.1 CFPackage (``CFDocument.caseVersion`` "1.1"; valid
against the shipped 1EdTech CASE 1.1 JSON schema binding,
``schemas/case-v1p1-cfpackage-schema.json``), or on request as CASE 1.0 (valid against
``schemas/case-v1p0-cfpackage-schema.json``):

- one ``CFDocument`` for the pack;
- ``CFItems`` of type ``Domain``, ``Skill`` and ``Role`` (``humanCodingScheme`` = Learnloop's id);
- ``CFAssociations``: ``isChildOf`` (skill to its domain, domain and role to the document),
  ``precedes`` (a prerequisite precedes the skill that needs it), ``isPartOf`` (a skill is part
  of a role, in the association grouping of its target level 1-3).

Identifiers are stable UUID 5s of the pack id and the Learnloop id, so exporting the same pack
twice gives the same identifiers, and an import keeps them in the pack as given.

Import: the reverse, for either version (a document with ``caseVersion`` "1.1" is checked
against the 1.1 schema, any other against 1.0), refusing with every problem listed by its JSON path (``$.CFItems[3].uri``):
anything the schema refuses, association types Learnloop cannot represent, associations to
unknown nodes, prerequisite cycles, duplicate ids.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

SCHEMA_DIR = Path(__file__).with_name("schemas")
#: CASE version -> the 1EdTech CFPackage JSON schema binding shipped for it
SCHEMA_FILES = {
    "1.0": SCHEMA_DIR / "case-v1p0-cfpackage-schema.json",
    "1.1": SCHEMA_DIR / "case-v1p1-cfpackage-schema.json",
}
SCHEMA_FILE = SCHEMA_FILES["1.0"]
VERSIONS = tuple(SCHEMA_FILES)
NAMESPACE = uuid.UUID("3f0b6c1e-9d43-5b7a-8c2e-4a1d7e6f9b20")
ITEM_TYPES = ("Domain", "Skill", "Role")
#: the association types an import understands; every other CASE type is refused
KNOWN_ASSOCIATIONS = ("isChildOf", "precedes", "isPartOf")
LEVEL_GROUPING = "Target level {level}"
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")


class CaseError(ValueError):
    """A CFPackage that cannot become a pack; ``problems`` lists each with its JSON path."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems[:20]))
        self.problems = problems


@lru_cache(maxsize=2)
def schema(version: str = "1.0") -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_FILES[version].read_text(encoding="utf-8"))
    return loaded


def package_version(package: Any) -> str:
    """The CASE version a CFPackage declares: "1.1" where ``CFDocument.caseVersion`` says so,
    else "1.0" (the field is new in 1.1)."""
    document = package.get("CFDocument") if isinstance(package, dict) else None
    if isinstance(document, dict) and document.get("caseVersion") == "1.1":
        return "1.1"
    return "1.0"


def schema_problems(package: Any, version: str | None = None) -> list[str]:
    """What the 1EdTech CFPackage schema of ``version`` (default: the version the package
    declares) says is wrong with ``package`` (JSON paths)."""
    from jsonschema import Draft7Validator, Draft202012Validator

    version = version or package_version(package)
    validator = Draft202012Validator(schema("1.1")) if version == "1.1" else Draft7Validator(schema("1.0"))
    out = []
    for error in sorted(validator.iter_errors(package), key=lambda e: list(e.absolute_path)):
        out.append(f"{error.json_path}: {error.message[:300]}")
    return out


def _uuid(pack_id: str, kind: str, ident: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{pack_id}:{kind}:{ident}"))


def _stamp(at: datetime) -> str:
    at = at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def export_package(pack: Any, *, base_uri: str, now: datetime, version: str = "1.1") -> dict[str, Any]:
    """The pack's framework (domains, skills, roles, prerequisites, role targets) as a
    CFPackage of CASE ``version`` ("1.1" or "1.0"). ``base_uri`` is where the identifiers
    resolve (the site's /case/ base)."""
    if version not in VERSIONS:
        raise ValueError(f"CASE version {version!r} is not one of {', '.join(VERSIONS)}")
    meta = pack.meta
    stamp = _stamp(now)
    base = base_uri.rstrip("/")
    doc_id = _uuid(meta.id, "document", meta.id)

    def uri(kind: str, ident: str) -> str:
        return f"{base}/{kind}/{ident}"

    doc_link = {"title": meta.name, "identifier": doc_id, "uri": uri("CFDocuments", doc_id)}
    # CASE 1.0 links each item and association to its document; 1.1 packages leave that out
    in_document: dict[str, Any] = {"CFDocumentURI": doc_link} if version == "1.0" else {}
    items: list[dict[str, Any]] = []
    links: dict[tuple[str, str], dict[str, str]] = {}

    def add_item(kind: str, ident: str, statement: str, notes: str = "") -> None:
        iid = _uuid(meta.id, kind.lower(), ident)
        item: dict[str, Any] = {
            "identifier": iid,
            "fullStatement": statement,
            "abbreviatedStatement": statement[:60],
            "humanCodingScheme": ident,
            "CFItemType": kind,
            "uri": uri("CFItems", iid),
            "language": meta.language,
            "lastChangeDateTime": stamp,
            **in_document,
        }
        if notes:
            item["notes"] = notes
        items.append(item)
        links[(kind, ident)] = {"title": statement[:200], "identifier": iid, "uri": item["uri"]}

    for domain in meta.domains:
        add_item("Domain", domain.id, domain.name, domain.description)
    for skill in pack.skills:
        add_item("Skill", skill.id, skill.name, skill.description)
    for role in pack.roles:
        add_item("Role", role.id, role.name, role.description)

    groupings = [
        {
            "identifier": _uuid(meta.id, "grouping", str(level)),
            "uri": uri("CFAssociationGroupings", _uuid(meta.id, "grouping", str(level))),
            "title": LEVEL_GROUPING.format(level=level),
            "description": f"Role targets at level {level} of 3",
            "lastChangeDateTime": stamp,
        }
        for level in (1, 2, 3)
    ]
    associations: list[dict[str, Any]] = []

    def associate(kind: str, origin: dict[str, str], dest: dict[str, str], key: str, **extra: Any) -> None:
        aid = _uuid(meta.id, "association", key)
        associations.append(
            {
                "identifier": aid,
                "associationType": kind,
                "uri": uri("CFAssociations", aid),
                "originNodeURI": origin,
                "destinationNodeURI": dest,
                "lastChangeDateTime": stamp,
                **in_document,
                **extra,
            }
        )

    for domain in meta.domains:
        associate("isChildOf", links[("Domain", domain.id)], doc_link, f"child:{domain.id}")
    for skill in pack.skills:
        associate(
            "isChildOf", links[("Skill", skill.id)], links[("Domain", skill.domain)], f"child:{skill.id}"
        )
        for pre in skill.prerequisites:
            associate("precedes", links[("Skill", pre)], links[("Skill", skill.id)], f"pre:{pre}>{skill.id}")
    for role in pack.roles:
        associate("isChildOf", links[("Role", role.id)], doc_link, f"child-role:{role.id}")
        for n, (skill_id, level) in enumerate(role.targets.items(), start=1):
            grouping = groupings[level - 1]
            associate(
                "isPartOf",
                links[("Skill", skill_id)],
                links[("Role", role.id)],
                f"target:{role.id}:{skill_id}",
                sequenceNumber=n,
                CFAssociationGroupingURI={
                    "title": grouping["title"],
                    "identifier": grouping["identifier"],
                    "uri": grouping["uri"],
                },
            )
    document = {
        "identifier": doc_id,
        "uri": doc_link["uri"],
        **({"caseVersion": "1.1", "frameworkType": "Competency framework"} if version == "1.1" else {}),
        "creator": "Learnloop",
        "title": meta.name,
        "lastChangeDateTime": stamp,
        **({"description": meta.description} if meta.description else {}),
        "language": meta.language,
        "version": meta.version,
        "adoptionStatus": "Draft",
        "notes": f"Learnloop pack {meta.id}; licence {meta.license}",
    }
    return {
        "CFDocument": document,
        "CFItems": items,
        "CFAssociations": associations,
        "CFDefinitions": {
            "CFItemTypes": [
                {
                    "identifier": _uuid(meta.id, "itemtype", kind),
                    "uri": uri("CFItemTypes", _uuid(meta.id, "itemtype", kind)),
                    "title": kind,
                    "description": f"A Learnloop {kind.lower()}",
                    "hierarchyCode": kind,
                    "lastChangeDateTime": stamp,
                }
                for kind in ITEM_TYPES
            ],
            "CFAssociationGroupings": groupings,
        },
    }


def _local_id(item: dict[str, Any], used: set[str]) -> str:
    """A Learnloop id for a CFItem: its humanCodingScheme when that is a valid id, else a slug."""
    code = str(item.get("humanCodingScheme") or "").strip().lower()
    if not _ID_RE.match(code) or len(code) < 2:
        words = re.sub(r"[^a-z0-9]+", "-", str(item.get("fullStatement", "")).lower()).strip("-")[:60]
        code = (words or "item") + "-" + str(item["identifier"])[:8].lower()
    base, n = code[:80], 2
    while code in used:
        code = f"{base[:76]}-{n}"
        n += 1
    used.add(code)
    return code


def import_package(package: Any) -> dict[str, Any]:
    """A pack draft (``{"meta", "skills", "roles"}``, plain data for ``content.models``) from a
    CFPackage; ``CaseError`` lists every problem with its JSON path. Items without a
    ``CFItemType`` of Domain or Role are skills; a skill's domain is the Domain it is a child of
    (else one "imported" domain)."""
    problems = schema_problems(package)
    if problems:
        raise CaseError(problems)
    document = package["CFDocument"]
    items = package.get("CFItems") or []
    associations = package.get("CFAssociations") or []
    by_id: dict[str, tuple[int, dict[str, Any]]] = {}
    for n, item in enumerate(items):
        ident = str(item["identifier"]).lower()
        if ident in by_id:
            problems.append(f"$.CFItems[{n}].identifier: duplicate identifier {ident}")
        by_id[ident] = (n, item)
    groupings = {
        str(g["identifier"]).lower(): str(g.get("title", ""))
        for g in (package.get("CFDefinitions") or {}).get("CFAssociationGroupings") or []
    }
    kinds = {i: str(it.get("CFItemType") or "Skill") for i, (_n, it) in by_id.items()}
    used: set[str] = set()
    local = {i: _local_id(it, used) for i, (_n, it) in by_id.items()}
    doc_id = str(document["identifier"]).lower()
    parent_domain: dict[str, str] = {}
    prerequisites: dict[str, list[str]] = {i: [] for i in by_id}
    targets: dict[str, dict[str, int]] = {i: {} for i, k in kinds.items() if k == "Role"}
    for n, assoc in enumerate(associations):
        where = f"$.CFAssociations[{n}]"
        kind = assoc["associationType"]
        origin = str(assoc["originNodeURI"]["identifier"]).lower()
        dest = str(assoc["destinationNodeURI"]["identifier"]).lower()
        if kind not in KNOWN_ASSOCIATIONS:
            problems.append(
                f"{where}.associationType: {kind!r} cannot be imported (Learnloop reads "
                + ", ".join(KNOWN_ASSOCIATIONS)
                + ")"
            )
            continue
        for side, node in (("originNodeURI", origin), ("destinationNodeURI", dest)):
            if node not in by_id and node != doc_id:
                problems.append(f"{where}.{side}.identifier: no CFItem {node} in this package")
        if origin not in by_id or (dest not in by_id and dest != doc_id):
            continue
        if kind == "isChildOf" and dest in by_id and kinds[dest] == "Domain" and kinds[origin] != "Domain":
            parent_domain[origin] = dest
        elif kind == "precedes":
            if kinds[origin] in ("Domain", "Role") or dest not in by_id or kinds[dest] in ("Domain", "Role"):
                problems.append(f"{where}: precedes links two skills")
            else:
                prerequisites[dest].append(origin)
        elif kind == "isPartOf" and dest in targets:
            grouping = str((assoc.get("CFAssociationGroupingURI") or {}).get("identifier", "")).lower()
            match = re.search(r"([123])\s*$", groupings.get(grouping, ""))
            targets[dest][origin] = int(match.group(1)) if match else 2
    skills = [i for i, k in kinds.items() if k not in ("Domain", "Role")]
    # cycles among prerequisites
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for pre in prerequisites.get(node, []):
            if state.get(pre) == 1:
                cycle = [*path[path.index(pre) :], pre] if pre in path else [node, pre]
                problems.append(
                    "$.CFAssociations: prerequisite cycle " + " -> ".join(local[c] for c in cycle)
                )
            elif state.get(pre) is None:
                visit(pre, [*path, pre])
        state[node] = 2

    for skill in skills:
        if state.get(skill) is None:
            visit(skill, [skill])
    if problems:
        raise CaseError(problems)
    domains = [
        {"id": local[i], "name": str(it["fullStatement"])[:200], "description": str(it.get("notes", ""))}
        for i, (_n, it) in by_id.items()
        if kinds[i] == "Domain"
    ]
    if any(s not in parent_domain for s in skills) or not domains:
        domains.append({"id": "imported", "name": "Imported", "description": ""})
    from_notes = re.match(r"^Learnloop pack ([a-z0-9][a-z0-9_.\-]*);", str(document.get("notes", "")))
    pack_id = (
        from_notes.group(1)
        if from_notes
        else _local_id(
            {"humanCodingScheme": "", "fullStatement": document["title"], "identifier": doc_id}, set()
        )
    )
    meta = {
        "id": pack_id,
        "name": str(document["title"])[:200],
        "version": str(document.get("version") or "1.0.0")[:40],
        "description": str(document.get("description") or ""),
        "language": str(document.get("language") or "en")[:20],
        "domains": domains,
    }
    return {
        "meta": meta,
        "skills": [
            {
                "id": local[s],
                "name": str(by_id[s][1]["fullStatement"])[:200],
                "domain": local[parent_domain[s]] if s in parent_domain else "imported",
                "description": str(by_id[s][1].get("notes", "")),
                "prerequisites": [local[p] for p in prerequisites[s]],
            }
            for s in skills
        ],
        "roles": [
            {
                "id": local[r],
                "name": str(by_id[r][1]["fullStatement"])[:200],
                "description": str(by_id[r][1].get("notes", "")),
                "targets": {local[s]: level for s, level in t.items()},
            }
            for r, t in targets.items()
            if t
        ],
        "identifiers": {local[i]: i for i in by_id},
    }
