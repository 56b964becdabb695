"""CASE: the framework out as a CFPackage valid against the 1EdTech schema, back in as a pack
draft with the same skills, prerequisites and role targets; bad packages refused with paths."""

from __future__ import annotations

import copy
import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from learnloop.content.loader import load_pack
from learnloop.errors import Forbidden, InvalidInput
from learnloop.interop import case
from learnloop.services import case_io
from learnloop.services.auth import CurrentUser, create_user
from learnloop.services.context import AppContext
from learnloop.store.models import Organisation
from tests.api.test_api_org_scoping import _login
from tests.conftest import MINI_PACK

PACK = load_pack(MINI_PACK)
NOW = datetime(2026, 12, 6, tzinfo=UTC)


def _export() -> dict:
    return case.export_package(PACK, base_uri="https://learn.example.org/case", now=NOW)


def _instructor() -> CurrentUser:
    return CurrentUser(
        id=1, org_id=1, org_name="", team_id=None, email="i@x.org", name="I", role="instructor", locale="en"
    )


def test_export_is_a_valid_cfpackage_with_stable_ids() -> None:
    package = _export()
    assert case.schema_problems(package) == []
    assert _export() == package, "the same pack gives the same identifiers"
    items = {i["humanCodingScheme"]: i for i in package["CFItems"]}
    assert {i["CFItemType"] for i in items.values()} == {"Domain", "Skill", "Role"}
    precedes = {
        (a["originNodeURI"]["identifier"], a["destinationNodeURI"]["identifier"])
        for a in package["CFAssociations"]
        if a["associationType"] == "precedes"
    }
    expected = {
        (items[p]["identifier"], items[s.id]["identifier"]) for s in PACK.skills for p in s.prerequisites
    }
    assert precedes == expected and expected
    part_of = [a for a in package["CFAssociations"] if a["associationType"] == "isPartOf"]
    assert len(part_of) == sum(len(r.targets) for r in PACK.roles)
    # the schema really checks: a broken copy is refused
    broken = copy.deepcopy(package)
    del broken["CFDocument"]["title"]
    broken["CFItems"][0]["identifier"] = "not-a-uuid"
    problems = case.schema_problems(broken)
    assert any(p.startswith("$.CFDocument") for p in problems)
    assert any(p.startswith("$.CFItems[0].identifier") for p in problems)


def test_case_1_1_by_default_and_1_0_on_request(tmp_path: Path) -> None:
    v11 = _export()
    assert v11["CFDocument"]["caseVersion"] == "1.1" and case.package_version(v11) == "1.1"
    assert case.schema_problems(v11, "1.1") == []
    assert "CFDocumentURI" not in v11["CFItems"][0]  # not a CFPckgItem field in 1.1
    v10 = case.export_package(PACK, base_uri="https://learn.example.org/case", now=NOW, version="1.0")
    assert "caseVersion" not in v10["CFDocument"] and case.package_version(v10) == "1.0"
    assert case.schema_problems(v10) == [] and case.schema_problems(v10, "1.0") == []
    # a 1.1-only association type is refused by the 1.0 schema, read by the 1.1 one
    translated = copy.deepcopy(v11)
    translated["CFAssociations"][0]["associationType"] = "isTranslationOf"
    assert case.schema_problems(translated) == []
    assert any("isTranslationOf" in p for p in case.schema_problems(translated, "1.0"))
    with pytest.raises(case.CaseError, match="isTranslationOf"):
        case.import_package(translated)  # valid 1.1, but nothing Learnloop can represent
    one = case_io.import_case_folder(json.dumps(v11), tmp_path / "v11")
    zero = case_io.import_case_folder(json.dumps(v10), tmp_path / "v10")
    assert one.model_dump() == zero.model_dump()
    with pytest.raises(ValueError):
        case.export_package(PACK, base_uri="https://x.example/case", now=NOW, version="2.0")


def test_round_trip_keeps_the_framework(tmp_path: Path) -> None:
    draft = case_io.import_case_folder(json.dumps(_export()), tmp_path / "draft")
    assert draft.meta.id == PACK.meta.id and draft.meta.name == PACK.meta.name
    assert [(d.id, d.name) for d in draft.meta.domains] == [(d.id, d.name) for d in PACK.meta.domains]
    assert [(s.id, s.name, s.domain, s.prerequisites) for s in draft.skills] == [
        (s.id, s.name, s.domain, s.prerequisites) for s in PACK.skills
    ]
    assert [(r.id, r.name, r.targets) for r in draft.roles] == [(r.id, r.name, r.targets) for r in PACK.roles]
    assert load_pack(tmp_path / "draft").skills == draft.skills


def _with_association(package: dict, kind: str, origin: str, dest: str) -> dict:
    out = copy.deepcopy(package)
    items = {i["humanCodingScheme"]: i for i in out["CFItems"]}
    template = next(a for a in out["CFAssociations"] if a["associationType"] == "precedes")
    extra = copy.deepcopy(template)
    extra["identifier"] = "0f0e0d0c-0b0a-4909-8807-060504030201"
    extra["associationType"] = kind
    extra["originNodeURI"] = {k: items[origin][k] for k in ("identifier", "uri")} | {"title": origin}
    extra["destinationNodeURI"] = {k: items[dest][k] for k in ("identifier", "uri")} | {"title": dest}
    out["CFAssociations"].append(extra)
    return out


def test_bad_packages_are_refused_with_paths() -> None:
    user = _instructor()
    ctx = None  # import_case stores nothing and reads no database
    cyclic = _with_association(_export(), "precedes", "apps.rag", "basics.tokens")
    with pytest.raises(InvalidInput) as err:
        case_io.import_case(ctx, user, json.dumps(cyclic))  # type: ignore[arg-type]
    assert any("cycle" in d and "apps.rag" in d for d in err.value.details)
    exemplar = _with_association(_export(), "exemplar", "apps.rag", "basics.tokens")
    with pytest.raises(InvalidInput) as err:
        case_io.import_case(ctx, user, json.dumps(exemplar))  # type: ignore[arg-type]
    assert any(d.startswith("$.CFAssociations[") and "exemplar" in d for d in err.value.details)
    dangling = copy.deepcopy(_export())
    dangling["CFAssociations"][0]["originNodeURI"]["identifier"] = "11111111-2222-4333-8444-555555555555"
    with pytest.raises(InvalidInput) as err:
        case_io.import_case(ctx, user, json.dumps(dangling))  # type: ignore[arg-type]
    assert any("$.CFAssociations[0].originNodeURI" in d for d in err.value.details)
    with pytest.raises(InvalidInput) as err:
        case_io.import_case(ctx, user, '{"CFDocument": ')  # type: ignore[arg-type]
    assert "line 1" in err.value.message
    with pytest.raises(InvalidInput):
        case_io.import_case(ctx, user, "[]")  # type: ignore[arg-type]
    with pytest.raises(Forbidden):
        case_io.import_case(ctx, user.model_copy(update={"role": "learner"}), json.dumps(_export()))  # type: ignore[arg-type]


def test_case_and_moodle_over_the_api(client: TestClient, ctx: AppContext) -> None:
    with ctx.session() as session:
        org = session.query(Organisation).first()
        if org is None:
            from learnloop.services.auth import default_organisation

            org = default_organisation(session)
        for role in ("instructor", "learner"):
            create_user(
                session,
                org_id=org.id,
                email=f"{role}@x.example",
                name=role,
                password="password-123",
                role=role,
            )
    teacher, learner = _login(client, "instructor@x.example"), _login(client, "learner@x.example")
    assert client.get("/api/v1/interop/case", headers=learner).status_code == 403
    got = client.get("/api/v1/interop/case", headers=teacher)
    assert got.status_code == 200 and case.schema_problems(got.json(), "1.1") == []
    old = client.get("/api/v1/interop/case?version=1.0", headers=teacher)
    assert old.status_code == 200 and case.package_version(old.json()) == "1.0"
    assert case.schema_problems(old.json(), "1.0") == []
    unknown = client.get("/api/v1/interop/case?version=9", headers=teacher)
    assert unknown.status_code == 422 and "1.1" in unknown.text
    draft = client.post("/api/v1/interop/case/import", content=got.content, headers=teacher)
    assert draft.status_code == 200 and draft.json()["skills"] == len(PACK.skills)
    cyclic = _with_association(got.json(), "precedes", "apps.rag", "basics.tokens")
    bad = client.post("/api/v1/interop/case/import", content=json.dumps(cyclic), headers=teacher)
    assert bad.status_code == 422 and any("cycle" in d for d in bad.json()["error"]["details"])
    moodle = client.get("/api/v1/interop/moodle.csv", headers=teacher)
    assert moodle.status_code == 200 and moodle.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(moodle.text)))
    assert rows[0]["Is framework"] == "1" and rows[0]["ID number"] == PACK.meta.id
    by_id = {r["ID number"]: r for r in rows}
    for skill in PACK.skills:
        assert by_id[skill.id]["Parent ID number"] == skill.domain
        assert by_id[skill.id]["Cross-referenced competency ID numbers"] == ",".join(skill.prerequisites)


def test_cli_exports_and_imports_case(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "framework.json"
    done = cli(["export", "--format", "case", str(out)])
    assert done.exit_code == 0, done.output
    assert case.schema_problems(json.loads(out.read_text()), "1.1") == []
    old = tmp_path / "framework-1.0.json"
    assert cli(["export", "--format", "case", "--case-version", "1.0", str(old)]).exit_code == 0
    assert case.package_version(json.loads(old.read_text())) == "1.0"
    assert cli(["export", "--format", "case", "--case-version", "3", str(old)]).exit_code == 2
    drafted = cli(["import", "--format", "case", str(out), "--out", str(tmp_path / "draft")])
    assert drafted.exit_code == 0, drafted.output
    assert load_pack(tmp_path / "draft").meta.id == PACK.meta.id
    cyclic = tmp_path / "cyclic.json"
    cyclic.write_text(
        json.dumps(_with_association(json.loads(out.read_text()), "precedes", "apps.rag", "basics.tokens"))
    )
    refused = cli(["import", "--format", "case", str(cyclic), "--out", str(tmp_path / "d2")])
    assert refused.exit_code == 2 and "cycle" in refused.output
    assert not (tmp_path / "d2").exists()
    moodle = tmp_path / "framework.csv"
    assert cli(["export", "--format", "moodle-csv", str(moodle)]).exit_code == 0
    assert moodle.read_text().splitlines()[0].startswith("Parent ID number,ID number")
