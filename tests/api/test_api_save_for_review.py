"""Save for review over the JSON API (``POST /api/v1/authoring/drafts/{id}/save``): the same
service as the authoring page's "Save changes for review", declared in the OpenAPI document,
refused with the JSON error envelope, scoped to the caller's organisation, CSRF-checked for
cookie logins as every API write is, and idempotent when the same version is sent again."""

from __future__ import annotations

import yaml
from fastapi.testclient import TestClient

from learnloop.services import authoring
from learnloop.services.context import AppContext
from tests.web.test_second_review import DRAFT, SESSIONS, _draft, _member, _org

EDITED = {**DRAFT, "stem": "Which unit limits what a model can read at once?"}


def _bearer(email: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {SESSIONS[email][0]}"}


def _error(r, status: int, code: str) -> str:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["message"]
    return str(body["error"]["message"])


def test_save_for_review_over_the_api(client: TestClient, ctx: AppContext) -> None:
    code = _org(ctx, "alpha")
    ana = _member(ctx, "ana@alpha.example", code, "instructor")
    ben = _member(ctx, "ben@alpha.example", code, "instructor")
    _member(ctx, "lea@alpha.example", code, "learner")
    admin = _member(ctx, "ada@alpha.example", code, "admin")
    authoring.set_second_review(ctx, admin, True)
    draft = _draft(ctx, ana)
    url = f"/api/v1/authoring/drafts/{draft}/save"
    client.cookies.clear()

    r = client.post(url, json={"item_yaml": yaml.safe_dump(EDITED)}, headers=_bearer("ben@alpha.example"))
    assert r.status_code == 200, r.text
    saved = r.json()
    assert (
        saved["status"] == "pending"
        and saved["writer_id"] == ben.id
        and saved["item"]["stem"] == EDITED["stem"]
    )
    # the same version again (a retry): the draft as it is, nothing changed
    again = client.post(url, json={"item_yaml": yaml.safe_dump(EDITED)}, headers=_bearer("ben@alpha.example"))
    assert again.status_code == 200 and again.json() == saved
    # the listing shows the saved version and its writer
    listed = client.get("/api/v1/authoring/drafts", headers=_bearer("ana@alpha.example")).json()
    mine = next(d for d in listed if d["id"] == draft)
    assert mine["item"]["stem"] == EDITED["stem"] and mine["writer_id"] == ben.id
    # Ana saving Ben's version unchanged is no change of hers: refused, Ben stays the writer
    msg = _error(
        client.post(url, json={"item_yaml": yaml.safe_dump(EDITED)}, headers=_bearer("ana@alpha.example")),
        422,
        "invalid_input",
    )
    assert "Nothing was changed" in msg
    # bad input: clear messages in the envelope
    assert "YAML" in _error(
        client.post(url, json={"item_yaml": "stem: [unclosed"}, headers=_bearer("ben@alpha.example")),
        422,
        "invalid_input",
    )
    broken = yaml.safe_dump({**EDITED, "skills": ["no.such.skill"]})
    assert "unknown skills" in _error(
        client.post(url, json={"item_yaml": broken}, headers=_bearer("ben@alpha.example")),
        422,
        "invalid_input",
    )
    _error(client.post(url, json={}, headers=_bearer("ben@alpha.example")), 422, "invalid_input")
    _error(client.post(url, json={"item_yaml": yaml.safe_dump(EDITED)}), 401, "unauthorized")
    _error(
        client.post(url, json={"item_yaml": yaml.safe_dump(EDITED)}, headers=_bearer("lea@alpha.example")),
        403,
        "forbidden",
    )
    # a cookie login writes only with its CSRF token, as every API write
    token, csrf = SESSIONS["ana@alpha.example"]
    client.cookies.set("learnloop_session", token)
    ana_version = yaml.safe_dump({**EDITED, "stem": "Which unit counts against a model's context?"})
    _error(client.post(url, json={"item_yaml": ana_version}), 403, "forbidden")
    r = client.post(url, json={"item_yaml": ana_version}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json()["writer_id"] == ana.id
    client.cookies.clear()
    # Ben approves Ana's version; then the draft cannot be saved any more
    assert authoring.approve(ctx, ben, draft).status == "approved"
    _error(
        client.post(url, json={"item_yaml": yaml.safe_dump(EDITED)}, headers=_bearer("ben@alpha.example")),
        409,
        "conflict",
    )
    _error(
        client.post(
            "/api/v1/authoring/drafts/999999/save",
            json={"item_yaml": yaml.safe_dump(EDITED)},
            headers=_bearer("ben@alpha.example"),
        ),
        404,
        "not_found",
    )


def test_another_organisations_draft_is_not_found(client: TestClient, ctx: AppContext) -> None:
    ana = _member(ctx, "ana@alpha.example", _org(ctx, "alpha"), "instructor")
    _member(ctx, "bo@beta.example", _org(ctx, "beta"), "instructor")
    draft = _draft(ctx, ana)
    client.cookies.clear()
    r = client.post(
        f"/api/v1/authoring/drafts/{draft}/save",
        json={"item_yaml": yaml.safe_dump(EDITED)},
        headers=_bearer("bo@beta.example"),
    )
    _error(r, 404, "not_found")
    assert authoring.drafts(ctx, ana)[0].item["stem"] == DRAFT["stem"]  # untouched


def test_the_route_is_declared_with_its_answers(client: TestClient) -> None:
    spec = client.get("/api/v1/openapi.json").json()
    post = spec["paths"]["/api/v1/authoring/drafts/{draft_id}/save"]["post"]
    assert {"200", "401", "403", "404", "409", "422"} <= set(post["responses"])
    for status in ("401", "403", "404", "409", "422"):
        schema = post["responses"][status]["content"]["application/json"]["schema"]
        assert schema["$ref"].endswith("/ErrorEnvelope"), status
    assert post["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/DraftView")
    body = post["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert "item_yaml" in spec["components"]["schemas"][body]["required"]
