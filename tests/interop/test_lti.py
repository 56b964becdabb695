"""LTI 1.3 against a fake platform on loopback that mints real RS256 id_tokens: OIDC login,
resource-link launch into a linked account, Deep Linking 2.0, AGS score passback, and every
forged or wrong launch a 403 (never a 500)."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from learnloop.jobs import queue as jobs_queue
from learnloop.services import practice
from learnloop.services.auth import CurrentUser, create_user
from learnloop.services.context import AppContext
from learnloop.store.models import Job, Organisation, PendingItem, User, utcnow
from learnloop.store.models_interop import LtiUserLink
from tests.api.test_api_org_scoping import _login
from tests.conftest import answer_payload
from tests.interop.fake_lti_platform import FakePlatform


@pytest.fixture
def platform() -> Iterator[FakePlatform]:
    fake = FakePlatform().start()
    yield fake
    fake.stop()


def _register(client: TestClient, ctx: AppContext, fake: FakePlatform) -> dict[str, str]:
    with ctx.session() as session:
        org = session.scalars(select(Organisation).order_by(Organisation.id)).first()
        if org is None:
            from learnloop.services.auth import default_organisation

            org = default_organisation(session)
        create_user(
            session,
            org_id=org.id,
            email="admin@school.example",
            name="Admin",
            password="password-123",
            role="admin",
        )
    admin = _login(client, "admin@school.example")
    body = {
        "name": "Fake Moodle",
        "issuer": fake.url,
        "client_id": fake.client_id,
        "deployment_ids": [fake.deployment_id],
        "auth_login_url": fake.url + "/auth",
        "auth_token_url": fake.url + "/token",
        "jwks_url": fake.url + "/jwks",
    }
    r = client.post("/api/v1/interop/lti/platforms", json=body, headers=admin)
    assert r.status_code == 201, r.text
    view = client.get("/api/v1/interop/lti", headers=admin).json()
    jwks_path = urlsplit(view["tool"]["jwks_url"]).path
    tool_jwks = client.get(jwks_path).json()
    assert all("d" not in k and "p" not in k for k in tool_jwks["keys"]), "never the private half"
    fake.tool_jwks = tool_jwks
    return admin


def _login_flow(client: TestClient, fake: FakePlatform) -> tuple[str, str]:
    """The platform starts the OIDC login; returns (state, nonce) from the tool's redirect."""
    r = client.post(
        "/lti/login",
        data={
            "iss": fake.url,
            "login_hint": "hint-1",
            "target_link_uri": "http://testserver/lti/launch",
            "client_id": fake.client_id,
            "lti_message_hint": "m-1",
        },
        follow_redirects=False,
    )
    assert r.status_code == 302, r.text
    location = urlsplit(r.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == fake.url + "/auth"
    q = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert q["redirect_uri"] == "http://testserver/lti/launch" and q["response_mode"] == "form_post"
    assert q["client_id"] == fake.client_id and q["lti_message_hint"] == "m-1"
    return q["state"], q["nonce"]


def _csrf(client: TestClient, path: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert found is not None
    return found.group(1)


def test_launch_links_the_account_and_sends_mastery_to_the_gradebook(
    client: TestClient, ctx: AppContext, platform: FakePlatform
) -> None:
    _register(client, ctx, platform)
    client.cookies.clear()
    state, nonce = _login_flow(client, platform)
    token = platform.mint(nonce, target="practice:apps.rag", lineitem=platform.url + "/lineitems/7")
    r = client.post("/lti/launch", data={"id_token": token, "state": state}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/practice", r.text
    with ctx.session() as session:
        link = session.scalars(select(LtiUserLink)).one()
        user = session.get(User, link.user_id)
        assert user is not None and user.role == "learner" and user.email.endswith("@lti.invalid")
        admin_org = session.scalar(select(User.org_id).where(User.email == "admin@school.example"))
        assert user.org_id == admin_org, "the account lives in the organisation that registered the platform"
        learner = CurrentUser(
            id=user.id, org_id=user.org_id, org_name="", team_id=None, email=user.email, name=user.name,
            role=user.role, locale="en",
        )  # fmt: skip
        session.add(
            PendingItem(user_id=user.id, item_id="apps.rag.why", reason="next_step:", presentation_id="p-l")
        )
    assert client.get("/practice").status_code == 200  # logged in by the launch
    item = practice_item(ctx, "apps.rag.why")
    fb = practice.answer(ctx, learner, item.id, answer_payload(item, True), presentation_id="p-l")
    mastery = fb.mastery[0].after

    # the answer queued a passback job for the end of its minute: run it now
    with ctx.session() as session:
        job = session.scalars(select(Job).where(Job.task == "lti.passback")).one()
        assert job.payload == {"user_id": learner.id}
        job.run_at = utcnow()
    jobs_queue.run_due(ctx)  # here, or by the app's own worker thread: wait for it either way
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with ctx.session() as session:
            if session.get(Job, job.id).state == "done":  # type: ignore[union-attr]
                break
        time.sleep(0.1)
    assert len(platform.scores) == 1 and platform.token_requests == 1
    # and the learner can send them again by hand
    r = client.post("/lti/scores", data={"csrf_token": _csrf(client, "/settings")})
    assert r.status_code == 200, r.text
    assert len(platform.scores) == 2 and platform.scores[0] == {
        **platform.scores[1],
        "timestamp": platform.scores[0]["timestamp"],
    }
    score = platform.scores[0]
    assert score["lineitem"] == 7 and score["userId"] == "platform-user-42"
    assert score["scoreGiven"] == pytest.approx(100 * mastery, abs=0.01) and score["scoreMaximum"] == 100

    # the same platform user launching again lands in the same account
    client.cookies.clear()
    state, nonce = _login_flow(client, platform)
    r = client.post(
        "/lti/launch", data={"id_token": platform.mint(nonce, target="lesson:lesson.tokens"), "state": state},
        follow_redirects=False,
    )  # fmt: skip
    assert r.status_code == 303 and r.headers["location"] == "/lessons/lesson.tokens"
    with ctx.session() as session:
        assert session.scalar(select(func.count()).select_from(LtiUserLink)) == 1


def practice_item(ctx: AppContext, item_id: str):  # type: ignore[no-untyped-def]
    with ctx.session() as session:
        return ctx.active_pack(session).items[item_id]


def test_forged_or_wrong_launches_are_403(
    client: TestClient, ctx: AppContext, platform: FakePlatform
) -> None:
    _register(client, ctx, platform)
    client.cookies.clear()
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cases = {
        "wrong nonce": lambda nonce: platform.mint("not-" + nonce),
        "wrong audience": lambda nonce: platform.mint(nonce, aud="someone-else"),
        "several audiences, no azp": lambda nonce: platform.mint(nonce, aud=[platform.client_id, "x"]),
        "expired": lambda nonce: platform.mint(nonce, exp_in=-3600),
        "wrong issuer": lambda nonce: platform.mint(nonce, iss="https://evil.example"),
        "signed by another key": lambda nonce: platform.mint(nonce, key=other_key),
        "unknown deployment": lambda nonce: platform.mint(nonce, deployment_id="other-deployment"),
        "not a JWT": lambda nonce: "not.a.jwt",
        "unsigned": lambda nonce: jwt.encode({"nonce": nonce}, None, algorithm="none"),
    }
    for why, make in cases.items():
        state, nonce = _login_flow(client, platform)
        r = client.post("/lti/launch", data={"id_token": make(nonce), "state": state}, follow_redirects=False)
        assert r.status_code == 403, (why, r.status_code, r.text[:300])
    # a forged state, a state used twice, a state of another browser, no state at all
    state, nonce = _login_flow(client, platform)
    good = platform.mint(nonce)
    forged = client.post("/lti/launch", data={"id_token": good, "state": secrets.token_urlsafe(32)})
    assert forged.status_code == 403
    stolen = TestClient(client.app)  # another browser: the state cookie is not there
    stolen.cookies.set("learnloop_lti_state", "someone-elses-state")
    assert stolen.post("/lti/launch", data={"id_token": good, "state": state}).status_code == 403
    assert client.post("/lti/launch", data={"state": "x"}).status_code == 403
    unknown = client.post("/lti/login", data={"iss": "https://unknown.example", "login_hint": "h"})
    assert unknown.status_code == 403
    with ctx.session() as session:
        assert session.scalar(select(func.count()).select_from(LtiUserLink)) == 0, "nothing stored"
    ok = client.post("/lti/launch", data={"id_token": good, "state": state}, follow_redirects=False)
    assert ok.status_code == 303
    client.cookies.set("learnloop_lti_state", state)
    replay = client.post("/lti/launch", data={"id_token": good, "state": state}, follow_redirects=False)
    assert replay.status_code == 403, "a state is used once"
    assert client.get("/login").status_code == 200  # still serving


def test_deep_linking_places_activities_for_instructors_only(
    client: TestClient, ctx: AppContext, platform: FakePlatform
) -> None:
    _register(client, ctx, platform)
    client.cookies.clear()
    state, nonce = _login_flow(client, platform)
    learner_dl = platform.mint(
        nonce, sub="learner-9", message_type="LtiDeepLinkingRequest", deep_link_return=platform.url + "/dl"
    )
    assert client.post("/lti/launch", data={"id_token": learner_dl, "state": state}).status_code == 403

    state, nonce = _login_flow(client, platform)
    token = platform.mint(
        nonce,
        sub="teacher-1",
        roles=["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"],
        message_type="LtiDeepLinkingRequest",
        deep_link_return=platform.url + "/dl",
    )
    r = client.post("/lti/launch", data={"id_token": token, "state": state}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/lti/deep-link/"), r.text
    page_path = r.headers["location"]
    page = client.get(page_path)
    assert page.status_code == 200 and "practice:apps.rag" in page.text and "check:builder" in page.text
    csrf = _csrf(client, page_path)
    bad = client.post(page_path, data={"target": "practice:no-such-skill", "csrf_token": csrf})
    assert bad.status_code == 422
    chosen = client.post(
        page_path, data={"target": ["practice:apps.rag", "lesson:lesson.tokens"], "csrf_token": csrf}
    )
    assert chosen.status_code == 200, chosen.text
    assert f"form-action 'self' {platform.url}" in chosen.headers["content-security-policy"]
    assert f'action="{platform.url}/dl"' in chosen.text
    found = re.search(r'name="JWT" value="([^"]+)"', chosen.text)
    assert found is not None
    kid = jwt.get_unverified_header(found.group(1))["kid"]
    key = next(k for k in jwt.PyJWKSet.from_dict(platform.tool_jwks).keys if k.key_id == kid)
    claims = jwt.decode(found.group(1), key.key, algorithms=["RS256"], audience=platform.url)
    dl = "https://purl.imsglobal.org/spec/lti-dl/claim/"
    assert claims["iss"] == platform.client_id
    assert claims["https://purl.imsglobal.org/spec/lti/claim/message_type"] == "LtiDeepLinkingResponse"
    assert claims[dl + "data"] == "opaque-platform-data"
    items = claims[dl + "content_items"]
    assert [i["custom"]["learnloop_target"] for i in items] == ["practice:apps.rag", "lesson:lesson.tokens"]
    assert items[0]["lineItem"]["scoreMaximum"] == 100 and "lineItem" not in items[1]
    assert items[0]["url"] == "http://testserver/lti/launch"
    # the choice is spent
    assert (
        client.post(page_path, data={"target": "lesson:lesson.tokens", "csrf_token": csrf}).status_code == 404
    )


def test_platform_registration_needs_an_admin_and_valid_input(
    client: TestClient, ctx: AppContext, platform: FakePlatform
) -> None:
    admin = _register(client, ctx, platform)
    body = {
        "name": "Other",
        "issuer": platform.url,
        "client_id": platform.client_id,
        "deployment_ids": ["d"],
        "auth_login_url": platform.url + "/auth",
        "auth_token_url": platform.url + "/token",
        "jwks_url": platform.url + "/jwks",
    }
    assert client.post("/api/v1/interop/lti/platforms", json=body, headers=admin).status_code == 409
    bad = client.post(
        "/api/v1/interop/lti/platforms",
        json={**body, "client_id": "c2", "jwks_url": "ftp://x"},
        headers=admin,
    )
    assert bad.status_code == 422 and "URL" in bad.json()["error"]["message"]
    none = client.post(
        "/api/v1/interop/lti/platforms", json={**body, "client_id": "c3", "deployment_ids": []}, headers=admin
    )
    assert none.status_code == 422
    with ctx.session() as session:
        org_id = session.scalar(select(User.org_id).where(User.email == "admin@school.example"))
        assert org_id is not None
        create_user(session, org_id=org_id, email="l@school.example", name="L", password="password-123")
    learner = _login(client, "l@school.example")
    assert (
        client.post(
            "/api/v1/interop/lti/platforms", json={**body, "client_id": "c4"}, headers=learner
        ).status_code
        == 403
    )
    assert client.get("/lti/jwks/no-such-org").status_code == 404
