"""Open Badges 3.0: a credential issued when the learner's role is ready, once, signed so that
the project's verifier (and anyone fetching /credentials/<id>) accepts it; changed ones fail,
revoked ones say so, and only an admin of the issuing organisation may revoke."""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

import pytest
from sqlalchemy import func, select

from learnloop.errors import Forbidden, NotFound
from learnloop.i18n import translations
from learnloop.interop import vc
from learnloop.services import auth, badges, practice
from learnloop.services.context import AppContext
from learnloop.store.models import PendingItem, User
from learnloop.store.models_interop import BadgeCredential, BadgeIssuerKey
from tests.conftest import answer_payload

PASSWORD = "tidal-ferry-quartz-81"
ITEMS = ("apps.rag.why", "basics.prompts.role")  # between them, both targets of "builder"


def _relaxed(ctx: AppContext) -> None:
    # a target is met after a few right answers, so the role becomes ready quickly
    ctx.settings = ctx.settings.model_copy(
        update={"target_min_items": 1, "target_needs_open_kind": False, "target_evidence_nats": 0.0}
    )


def _admin(ctx: AppContext, email: str, join_code: str = "") -> auth.LoginResult:
    got = auth.signup(ctx, email=email, name="Ada Admin", password=PASSWORD, join_code=join_code)
    with ctx.session() as session:
        row = session.get(User, got.user.id)
        assert row is not None
        row.role = "admin"
    return got.model_copy(update={"user": got.user.model_copy(update={"role": "admin"})})


def _learner(ctx: AppContext) -> auth.LoginResult:
    got = auth.signup(ctx, email="lee@example.org", name="Lee Learner", password=PASSWORD)
    practice.enrol(ctx, got.user, "builder")
    return got


def _answer_until_issued(ctx: AppContext, learner: auth.CurrentUser) -> str:
    for n in range(30):
        item_id = ITEMS[n % 2]
        with ctx.session() as session:
            item = ctx.active_pack(session).items[item_id]
            session.merge(
                PendingItem(
                    user_id=learner.id, item_id=item.id, reason="next_step:", presentation_id=f"p-{n}"
                )
            )
        practice.answer(ctx, learner, item.id, answer_payload(item, True), presentation_id=f"p-{n}")
        mine = badges.my_credentials(ctx, learner)
        if mine:
            return mine[0].id
    raise AssertionError("the role never became ready")


def _count(ctx: AppContext) -> int:
    with ctx.session() as session:
        return int(session.scalar(select(func.count()).select_from(BadgeCredential)) or 0)


def test_issued_once_when_the_role_is_ready_and_it_verifies(
    ctx: AppContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _relaxed(ctx)
    learner = _learner(ctx).user
    assert badges.check_now(ctx, learner) is None and _count(ctx) == 0  # not ready: nothing issued
    credential_id = _answer_until_issued(ctx, learner)
    with ctx.session() as session:
        active = ctx.active_pack(session)
        assert badges.role_ready(session, ctx, active, learner.id, active.roles["builder"])
        # idempotent: asking again (and answering again) gives the same credential
        assert badges.issue_if_ready(session, ctx, active, learner.org_id, learner.id) == credential_id
    assert badges.check_now(ctx, learner) == credential_id
    with ctx.session() as session:
        item = ctx.active_pack(session).items[ITEMS[0]]
        session.merge(
            PendingItem(user_id=learner.id, item_id=item.id, reason="next_step:", presentation_id="again")
        )
    practice.answer(ctx, learner, item.id, answer_payload(item, True), presentation_id="again")
    assert _count(ctx) == 1

    document = badges.download(ctx, learner, credential_id)
    vc.verify(document)  # the project's verifier, offline, with the pinned contexts
    assert document["type"] == ["VerifiableCredential", "OpenBadgeCredential"]
    assert document["@context"][1] == "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
    assert document["id"].endswith(f"/credentials/{credential_id}")
    with ctx.session() as session:
        key_row = session.get(BadgeIssuerKey, learner.org_id)
        assert key_row is not None
        secret = key_row.private_multibase
    assert document["issuer"]["id"] == key_row.did and key_row.did.startswith("did:key:z6Mk")
    assert document["proof"]["verificationMethod"].startswith(key_row.did + "#")
    subject = document["credentialSubject"]
    assert subject["id"].startswith("urn:uuid:") and subject["type"] == ["AchievementSubject"]
    achievement = subject["achievement"]
    assert achievement["type"] == ["Achievement"] and achievement["name"] == "Builder"
    narrative = achievement["criteria"]["narrative"]
    zh = translations("zh_CN").gettext("proficient")
    assert zh != "proficient" and zh in narrative and "proficient" in narrative  # en and zh-CN
    text = str(document) + caplog.text
    assert "lee@example.org" not in text and "Lee Learner" not in text
    assert secret not in text and secret not in str(badges.my_credentials(ctx, learner))


def test_public_verification_tamper_and_revocation(ctx: AppContext, client: Any) -> None:
    _relaxed(ctx)
    admin = _admin(ctx, "admin@example.org")
    login = _learner(ctx)
    credential_id = _answer_until_issued(ctx, login.user)

    got = client.get(f"/credentials/{credential_id}")  # no login: public
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["verified"] is True and body["status"] == "active" and body["problem"] is None
    vc.verify(body["credential"])
    assert client.get("/credentials/00000000-0000-0000-0000-000000000000").status_code == 404
    assert client.get("/credentials/not-an-id").status_code == 404

    # the download the learner gets is the verified document
    h = {"Authorization": f"Bearer {login.token}"}
    down = client.get(f"/api/v1/badges/{credential_id}/credential.json", headers=h)
    assert down.status_code == 200 and down.json() == body["credential"]

    # a changed claim, or a changed proof, does not verify
    changed = copy.deepcopy(body["credential"])
    changed["credentialSubject"]["achievement"]["name"] = "Expert of everything"
    assert badges.check(credential_id, changed).verified is False
    other_proof = copy.deepcopy(body["credential"])
    other_proof["proof"]["proofValue"] = "z" + "1" * 86
    assert badges.check(credential_id, other_proof).verified is False
    with ctx.session() as session:  # tampered in storage: the public answer says so
        row = session.get(BadgeCredential, credential_id)
        assert row is not None
        row.document = changed
    assert client.get(f"/credentials/{credential_id}").json()["verified"] is False
    with ctx.session() as session:
        row = session.get(BadgeCredential, credential_id)
        assert row is not None
        row.document = body["credential"]

    # a learner may not revoke; the admin may, and verification then shows it revoked
    assert client.post(f"/api/v1/badges/{credential_id}/revoke", json={}, headers=h).status_code == 403
    ha = {"Authorization": f"Bearer {admin.token}"}
    r = client.post(f"/api/v1/badges/{credential_id}/revoke", json={"reason": "issued in error"}, headers=ha)
    assert r.status_code == 200, r.text
    assert r.json()["revoked"] is True
    after = client.get(f"/credentials/{credential_id}").json()
    assert after["status"] == "revoked" and after["revocation_reason"] == "issued in error"
    assert after["verified"] is True  # the signature still holds; the status says it no longer counts


def test_only_an_admin_of_the_issuing_organisation_revokes(ctx: AppContext) -> None:
    _relaxed(ctx)
    learner = _learner(ctx).user
    credential_id = _answer_until_issued(ctx, learner)
    with ctx.session() as session:
        other_org = auth.create_organisation(session, "Other Org")
        code = other_org.join_code
    stranger = _admin(ctx, "boss@other.example.org", join_code=code).user
    assert stranger.org_id != learner.org_id
    with pytest.raises(NotFound):
        badges.revoke(ctx, stranger, credential_id, "not mine")
    with pytest.raises(NotFound):
        badges.download(ctx, stranger, credential_id)
    assert badges.org_credentials(ctx, stranger) == []
    with pytest.raises(Forbidden):
        badges.revoke(ctx, learner, credential_id)
    assert badges.verification(ctx, credential_id).status == "active"
    own = _admin(ctx, "admin@example.org").user
    assert badges.revoke(ctx, own, credential_id, "").revoked
    assert badges.verification(ctx, credential_id).status == "revoked"


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def _web_login(client: Any, email: str) -> str:
    client.cookies.clear()
    page = client.get("/login")
    r = client.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": _csrf(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return _csrf(client.get("/credentials").text)


def test_pages_list_download_and_revoke(ctx: AppContext, client: Any) -> None:
    _relaxed(ctx)
    _admin(ctx, "admin@example.org")
    learner = _learner(ctx).user
    _web_login(client, "lee@example.org")
    assert "/download" not in client.get("/credentials").text  # nothing issued yet
    credential_id = _answer_until_issued(ctx, learner)
    page = client.get("/credentials")
    assert f"/credentials/{credential_id}/download" in page.text and "/revoke" not in page.text
    down = client.get(f"/credentials/{credential_id}/download")
    assert down.status_code == 200 and "attachment" in down.headers["content-disposition"]
    vc.verify(down.json())
    assert 'href="/credentials"' in client.get("/reports/me").text  # the learner's progress links here

    token = _web_login(client, "admin@example.org")
    assert f"/credentials/{credential_id}/revoke" in client.get("/credentials").text
    r = client.post(
        f"/credentials/{credential_id}/revoke",
        data={"reason": "left the team", "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    assert client.get(f"/credentials/{credential_id}").json()["status"] == "revoked"
