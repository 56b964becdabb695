"""QTI 3.0: choice, numeric, text and code items out as a package valid against the 1EdTech QTI
3.0 ASI XSD and back with every exported field; unsupported interactions, DTDs/entities (XXE),
zip bombs and unsafe paths refused by file."""

from __future__ import annotations

import io
import subprocess
import zipfile
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from learnloop.content.loader import load_pack
from learnloop.content.models import Item
from learnloop.errors import InvalidInput
from learnloop.interop import qti
from learnloop.services import qti_io
from learnloop.services.auth import create_user
from learnloop.services.context import AppContext
from learnloop.store.models import Organisation
from tests.api.test_api_org_scoping import _login
from tests.conftest import MINI_PACK

PACK = load_pack(MINI_PACK)


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def _package() -> dict[str, bytes]:
    data, _skipped = qti.export_package([i.model_dump(mode="json", exclude_none=True) for i in PACK.items])
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def test_round_trip_keeps_every_exported_field(ctx: AppContext) -> None:
    data, skipped = qti_io.export_qti(ctx, None)
    assert skipped == []
    items = qti_io.import_qti(ctx, None, data)
    assert {i.kind for i in PACK.items} == {"choice", "numeric", "text", "code"}
    assert [i.model_dump() for i in items] == [i.model_dump() for i in PACK.items]
    members = _package()
    assert set(members) == {"imsmanifest.xml", *(f"items/{i.id}.xml" for i in PACK.items)}
    choice = members["items/apps.rag.why.xml"].decode()
    assert 'xmlns="http://www.imsglobal.org/xsd/imsqtiasi_v3p0"' in choice
    assert "<qti-choice-interaction" in choice and "<qti-modal-feedback" in choice
    assert "<qti-text-entry-interaction" in members["items/basics.tokens.cost.xml"].decode()
    assert "<qti-extended-text-interaction" in members["items/basics.tokens.window.xml"].decode()
    code = members["items/basics.prompts.code.xml"].decode()
    assert '<qti-extended-text-interaction response-identifier="RESPONSE" format="preformatted"' in code
    assert 'use="ext:learnloop-code"' in code and "<qti-default-value>" in code
    assert b"imsqti_item_xmlv3p0" in members["imsmanifest.xml"]


def test_texts_keep_their_exact_form_and_family_items_export_as_an_instance() -> None:
    text = next(i for i in PACK.items if i.kind == "text")
    assert text.rubric
    awkward = text.model_copy(
        update={
            "stem": "First line\nsecond line, a final newline\n",
            "explanation": "Ends with a newline\n",
            "rubric": [
                text.rubric[0].model_copy(update={"keywords": ["p(a | b)", " rag", "x|y"]}),
                *text.rubric[1:],
            ],
        }
    )
    code = next(i for i in PACK.items if i.kind == "code")
    ordered = code.model_copy(
        update={"cases": [c.model_copy(update={"expect": {"z": 1, "a": [1, 2]}}) for c in code.cases or []]}
    )
    items = qti_io.exportable([awkward, ordered])
    data, _skipped = qti.export_package(items)
    back = [Item.model_validate(i) for i in qti.read_package(data)]
    assert [repr(i.model_dump()) for i in back] == [repr(i.model_dump()) for i in (awkward, ordered)]
    family = Item.model_validate(
        {
            "id": "fam.numeric",
            "skills": ["basics.tokens"],
            "kind": "numeric",
            "stem": "What is {a} plus {b}?",
            "explanation": "{a} + {b} = {answer}.",
            "hints": ["Add them.", "Use a calculator."],
            "tolerance": 0.0,
            "family": {
                "params": {"a": {"int": [1, 9]}, "b": {"int": [1, 9]}},
                "answer": "a + b",
                "examples": [{"a": 2, "b": 3, "answer": 5}],
            },
        }
    )
    (shown,) = qti_io.exportable([family])
    assert "family" not in shown and "{a}" not in shown["stem"] and isinstance(shown["answer"], float)
    assert qti.export_package([family.model_dump(mode="json", exclude_none=True)])[1] == ["fam.numeric"]
    data, skipped = qti.export_package([shown])
    assert skipped == [] and qti.xsd_findings(data) == []
    (again,) = qti.read_package(data)
    assert again["answer"] == shown["answer"] and again["stem"] == shown["stem"]


def test_every_exported_item_is_valid_against_the_qti_3_xsd() -> None:
    members = _package()
    items = {n: d for n, d in members.items() if n.startswith("items/")}
    assert len(items) == len(PACK.items)
    for name, data in items.items():
        assert qti.validate_item(data, name) == [], name
    # the XSD really checks: what QTI 3.0 does not allow is reported with file and line
    choice = items["items/apps.rag.why.xml"]
    no_id = choice.replace(b' identifier="apps.rag.why"', b"", 1)
    assert any("identifier" in p and p.startswith("x.xml:") for p in qti.validate_item(no_id, "x.xml"))
    bare = choice.replace(b'use="ext:learnloop-hints"', b'use="learnloop-hints"')
    assert any("'use'" in p for p in qti.validate_item(bare, "x.xml"))
    loose = choice.replace(b"<qti-modal-feedback", b"<qti-modal-feedback data-x='1'")
    assert qti.validate_item(loose, "x.xml") != []
    assert qti.validate_item(b"<qti-assessment-item", "x.xml")[0].startswith("x.xml:1: not well-formed")


def test_round_trip_through_citolab_qti_convert(tmp_path: Path, peers: Path) -> None:
    """An independent implementation: Citolab's converter takes our QTI 3.0 package down to QTI
    2.1 and back up to 3.0; the result is valid against the XSD and imports as the same items."""
    data, _skipped = qti.export_package([i.model_dump(mode="json", exclude_none=True) for i in PACK.items])
    (tmp_path / "in.zip").write_bytes(data)
    done = subprocess.run(
        [str(peers), str(Path(__file__).with_name("qticonvert.py")), str(tmp_path / "in.zip"),
         str(tmp_path / "qti21.zip"), str(tmp_path / "qti3.zip")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    with zipfile.ZipFile(tmp_path / "qti21.zip") as zf:
        item21 = zf.read("items/apps.rag.why.xml").decode()
    assert 'xmlns="http://www.imsglobal.org/xsd/imsqti_v2p1"' in item21 and "<choiceInteraction" in item21
    back = (tmp_path / "qti3.zip").read_bytes()
    with zipfile.ZipFile(io.BytesIO(back)) as zf:
        for name in zf.namelist():
            if name.startswith("items/"):
                assert qti.validate_item(zf.read(name), name) == []
    items = [Item.model_validate(i) for i in qti.read_package(back)]
    assert [i.model_dump() for i in items] == [i.model_dump() for i in PACK.items]


def _refused(ctx: AppContext, members: dict[str, bytes] | bytes, *needles: str) -> list[str]:
    data = members if isinstance(members, bytes) else _zip(members)
    with pytest.raises(InvalidInput) as err:
        qti_io.import_qti(ctx, None, data)
    details = err.value.details
    for needle in needles:
        assert any(needle in d for d in details), (needle, details)
    return details


def test_bad_packages_are_refused_by_file(ctx: AppContext) -> None:
    members = _package()
    name = "items/apps.rag.why.xml"
    order = members[name].replace(b"qti-choice-interaction", b"qti-order-interaction")
    _refused(ctx, {**members, name: order}, f"{name}: qti-order-interaction is not supported")
    xxe = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b'<qti-assessment-item xmlns="http://www.imsglobal.org/xsd/imsqtiasi_v3p0">&e;</qti-assessment-item>'
    )
    _refused(ctx, {**members, name: xxe}, f"{name}: a DTD is not allowed")
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        b"<qti-assessment-item>&b;</qti-assessment-item>"
    )
    _refused(ctx, {**members, name: laughs}, name)
    _refused(
        ctx, {**members, name: b"\0" * 5_000_000}, f"{name}: larger than"
    )  # 5 MB of zeros: a few KB zipped
    _refused(ctx, {**members, "../evil.xml": b"x"}, "../evil.xml: a path outside the package")
    _refused(ctx, b"not a zip", "package: not a zip file")
    unknown = members[name].replace(b"<dd>apps.rag ", b"<dd>no.such.skill ")
    _refused(ctx, {**members, name: unknown}, f"{name}: unknown skills no.such.skill")
    no_manifest = {k: v for k, v in members.items() if k != "imsmanifest.xml"}
    _refused(ctx, no_manifest, "package: no imsmanifest.xml")


def test_qti_over_the_api(client: TestClient, ctx: AppContext) -> None:
    with ctx.session() as session:
        org = session.query(Organisation).first()
        if org is None:
            from learnloop.services.auth import default_organisation

            org = default_organisation(session)
        for role in ("instructor", "learner"):
            create_user(
                session,
                org_id=org.id,
                email=f"{role}@q.example",
                name=role,
                password="password-123",
                role=role,
            )
    teacher, learner = _login(client, "instructor@q.example"), _login(client, "learner@q.example")
    assert client.get("/api/v1/interop/qti", headers=learner).status_code == 403
    got = client.get("/api/v1/interop/qti", headers=teacher)
    assert got.status_code == 200 and got.headers["content-type"] == "application/zip"
    back = client.post("/api/v1/interop/qti/import", content=got.content, headers=teacher)
    assert back.status_code == 200 and len(back.json()["items"]) == len(PACK.items)
    members = _package()
    xxe = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'
    bad = client.post(
        "/api/v1/interop/qti/import",
        content=_zip({**members, "items/apps.rag.why.xml": xxe}),
        headers=teacher,
    )
    assert bad.status_code == 422 and "root:" not in bad.text
    assert client.get("/api/v1/health").status_code == 200


def test_cli_exports_and_imports_qti(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    package = tmp_path / "items.zip"
    done = cli(["export", "--format", "qti", str(package)])
    assert done.exit_code == 0, done.output
    out = tmp_path / "items.yaml"
    back = cli(["import", "--format", "qti", str(package), "--out", str(out)])
    assert back.exit_code == 0, back.output
    items = [Item.model_validate(i) for i in yaml.safe_load(out.read_text())]
    assert [i.id for i in items] == [i.id for i in PACK.items]
    bomb = tmp_path / "bomb.zip"
    bomb.write_bytes(_zip({"imsmanifest.xml": b"\0" * 3_000_000}))
    refused = cli(["import", "--format", "qti", str(bomb), "--out", str(tmp_path / "x.yaml")])
    assert refused.exit_code == 2 and "larger than" in refused.output
    assert not (tmp_path / "x.yaml").exists()
