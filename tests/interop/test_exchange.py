"""The exchange page (/admin/exchange): CASE 1.1/1.0, Moodle CSV and QTI downloads; an upload is
checked first (every problem listed with its JSON path, line or file), then imported: QTI items
become drafts of the caller's organisation only, a CASE framework a pack draft folder (zip)."""

from __future__ import annotations

import base64
import io
import json
import re
import zipfile
from typing import Any

from sqlalchemy import select

from learnloop.interop import case, qti
from learnloop.services import auth, authoring
from learnloop.services.context import AppContext
from learnloop.store.models import ItemDraft, Organisation
from tests.interop.test_badges import PASSWORD, _admin, _learner, _web_login


def _post(client: Any, token: str, **fields: str) -> Any:
    return client.post("/admin/exchange/upload", data={"csrf_token": token, **fields}, follow_redirects=False)


def _problems(html: str) -> list[str]:
    import html as h

    return [h.unescape(p) for p in re.findall(r"<li><code>(.*?)</code></li>", html, re.S)]


def _renamed(package: bytes, prefix: str) -> bytes:
    """The package with every item id prefixed (so that it does not clash with the pack's)."""
    src = zipfile.ZipFile(io.BytesIO(package))
    out = io.BytesIO()
    ids = [n.removeprefix("items/").removesuffix(".xml") for n in src.namelist() if n.startswith("items/")]
    with zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            for ident in ids:
                data = data.replace(f'"{ident}"'.encode(), f'"{prefix}{ident}"'.encode())
                data = data.replace(f"items/{ident}.xml".encode(), f"items/{prefix}{ident}.xml".encode())
            dst.writestr(name.replace("items/", f"items/{prefix}"), data)
    return out.getvalue()


def qti_ids(package: bytes) -> list[str]:
    names = zipfile.ZipFile(io.BytesIO(package)).namelist()
    return [n.removeprefix("items/").removesuffix(".xml") for n in names if n.startswith("items/")]


def test_exchange_page_exports_checks_and_imports(ctx: AppContext, client: Any) -> None:
    admin = _admin(ctx, "admin@example.org")
    _learner(ctx)
    token = _web_login(client, "lee@example.org")
    assert client.get("/admin/exchange").status_code == 403  # learners: no
    token = _web_login(client, "admin@example.org")
    page = client.get("/admin/exchange")
    assert page.status_code == 200 and "/admin/exchange/download/qti.zip" in page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]

    # downloads: CASE 1.1 and 1.0 valid against their schemas, Moodle CSV, QTI zip valid per XSD
    v11 = client.get("/admin/exchange/download/case-1.1.json")
    assert v11.status_code == 200 and "attachment" in v11.headers["content-disposition"]
    assert case.package_version(v11.json()) == "1.1" and case.schema_problems(v11.json()) == []
    v10 = client.get("/admin/exchange/download/case-1.0.json").json()
    assert case.package_version(v10) == "1.0" and case.schema_problems(v10) == []
    assert client.get("/admin/exchange/download/moodle.csv").text.startswith("Parent ID number")
    zipped = client.get("/admin/exchange/download/qti.zip")
    assert zipped.headers["content-type"] == "application/zip"
    assert qti.xsd_findings(zipped.content) == []
    assert client.get("/admin/exchange/download/nothing").status_code == 404

    # CASE: a good framework checks clean; a cyclic one lists each problem with its JSON path
    checked = _post(client, token, format="case", action="check", content=v11.text)
    assert checked.status_code == 200 and "No problems found" in checked.text, checked.text
    broken = json.loads(v11.text)
    broken["CFAssociations"][0]["associationType"] = "exemplar"
    broken["CFItems"][1]["identifier"] = "not-a-uuid"
    refused = _post(client, token, format="case", action="check", content=json.dumps(broken))
    assert refused.status_code == 422
    problems = _problems(refused.text)
    assert any(p.startswith("$.CFItems[1].identifier") for p in problems), problems
    bad_json = _post(client, token, format="case", action="check", content='{"CFDocument": {\n  "x": }')
    assert bad_json.status_code == 422 and "line 2" in bad_json.text
    draft = _post(client, token, format="case", action="import", content=v11.text)
    assert draft.status_code == 200 and draft.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(draft.content)).namelist()
    assert any(n.endswith("/pack.yaml") for n in names) and any(n.endswith("/skills.yaml") for n in names)

    # QTI: the pack's own items clash with the pack; renamed, they check clean and import as drafts
    b64 = base64.b64encode(zipped.content).decode()
    clash = _post(client, token, format="qti", action="import", data_b64=b64, filename="items.zip")
    assert clash.status_code == 422 and "already in use" in clash.text
    with ctx.session() as session:
        assert session.scalars(select(ItemDraft)).first() is None  # nothing stored
    renamed = base64.b64encode(_renamed(zipped.content, "x")).decode()
    ok = _post(client, token, format="qti", action="check", data_b64=renamed, filename="items.zip")
    assert ok.status_code == 200 and "No problems found" in ok.text, _problems(ok.text)
    done = _post(client, token, format="qti", action="import", data_b64=renamed, filename="items.zip")
    assert done.status_code == 200 and "drafts waiting for review" in done.text
    with ctx.session() as session:
        admin_org = session.scalar(select(Organisation.id).order_by(Organisation.id))
        drafts = list(session.scalars(select(ItemDraft)))
    assert drafts and {d.org_id for d in drafts} == {admin_org} and {d.status for d in drafts} == {"pending"}
    assert {d.provider for d in drafts} == {"qti-import"}
    queued = {d.item["id"]: d for d in authoring.drafts(ctx, admin.user)}  # the review queue
    assert set(queued) == {f"x{i}" for i in qti_ids(zipped.content)}
    approved = authoring.approve(ctx, admin.user, queued["xapps.rag.why"].id)
    assert approved.status == "approved"

    # a package with an unsupported interaction and an XXE: each problem named by file
    members = {
        n: zipfile.ZipFile(io.BytesIO(zipped.content)).read(n)
        for n in zipfile.ZipFile(io.BytesIO(zipped.content)).namelist()
    }
    members["items/apps.rag.why.xml"] = members["items/apps.rag.why.xml"].replace(
        b"qti-choice-interaction", b"qti-order-interaction"
    )
    members["items/basics.tokens.cost.xml"] = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'
    )
    count = members["items/basics.tokens.count.xml"]
    members["items/basics.tokens.count.xml"] = count.replace(b' identifier="basics.tokens.count"', b"", 1)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    bad = _post(
        client,
        token,
        format="qti",
        action="check",
        data_b64=base64.b64encode(buffer.getvalue()).decode(),
        filename="bad.zip",
    )
    problems = _problems(bad.text)
    assert bad.status_code == 422
    assert any(
        p.startswith("items/apps.rag.why.xml: qti-order-interaction is not supported") for p in problems
    )
    assert any(p.startswith("items/basics.tokens.cost.xml: a DTD is not allowed") for p in problems)
    assert any(re.match(r"items/basics\.tokens\.count\.xml:\d+: .*identifier", p) for p in problems), (
        problems
    )  # XSD, with a line
    assert _post(client, token, format="qti", action="check", data_b64="***", filename="x").status_code == 422
    assert client.get("/api/v1/health").status_code == 200


def test_exchange_is_scoped_to_the_organisation(ctx: AppContext, client: Any) -> None:
    """Another organisation's admin imports into their own organisation, never into ours."""
    _admin(ctx, "admin@example.org")
    with ctx.session() as session:
        other = auth.create_organisation(session, "Other Org")
        code, other_id = other.join_code, other.id
    _admin(ctx, "boss@other.example.org", join_code=code)
    token = _web_login(client, "boss@other.example.org")
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/admin/exchange").text).group(1)  # type: ignore[union-attr]
    package = client.get("/admin/exchange/download/qti.zip").content
    b64 = base64.b64encode(_renamed(package, "y")).decode()
    assert (
        _post(client, token, format="qti", action="import", data_b64=b64, filename="p.zip").status_code == 200
    )
    with ctx.session() as session:
        assert {d.org_id for d in session.scalars(select(ItemDraft))} == {other_id}
    assert PASSWORD
