"""OpenID Connect login against a real provider (oidc-provider-mock) on loopback: discovery,
login with just-in-time accounts, and every refusal a clear 4xx, never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from learnloop.errors import InvalidInput, Unauthorized
from learnloop.services import auth
from learnloop.services.auth import create_organisation, create_user
from learnloop.services.context import AppContext
from learnloop.services.people import oidc
from tests.conftest import need_module

PASSWORD = "violet-harbour-57-lantern"
SECRET = "s3cret-client-value-never-shown"


def _provider(**options: object) -> Iterator[str]:
    need_module("oidc_provider_mock")
    import oidc_provider_mock

    with oidc_provider_mock.run_server_in_thread(**options) as server:  # type: ignore[arg-type]
        yield f"http://localhost:{server.server_port}"


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    yield from _provider()


@pytest.fixture(scope="module")
def stale_provider() -> Iterator[str]:
    """A provider whose ID tokens expired ten minutes before they were issued."""
    yield from _provider(access_token_max_age=timedelta(seconds=-600))


@pytest.fixture(scope="module")
def password_hash() -> str:
    return auth.hash_password(PASSWORD)


def _setup(ctx: AppContext, issuer: str, password_hash: str) -> auth.CurrentUser:
    with ctx.session() as session:
        org = create_organisation(session, "Acme", slug="acme")
        create_user(
            session,
            org_id=org.id,
            email="admin@acme.example",
            name="Admin",
            password=PASSWORD,
            role="admin",
            password_hash=password_hash,
        )
        create_user(
            session,
            org_id=org.id,
            email="old@acme.example",
            name="Old Hand",
            password=PASSWORD,
            password_hash=password_hash,
        )
        other = create_organisation(session, "Other", slug="other")
        create_user(
            session,
            org_id=other.id,
            email="taken@acme.example",
            name="Elsewhere",
            password=PASSWORD,
            password_hash=password_hash,
        )
    admin = auth.login(ctx, email="admin@acme.example", password=PASSWORD).user
    oidc.configure(
        ctx,
        admin,
        issuer=issuer,
        client_id="learnloop",
        client_secret=SECRET,
        domains="acme.example",
        sso_only=False,
    )
    return admin


def _sign_in(client: TestClient, issuer: str, email: str, name: str | None = None) -> httpx.Response:
    """Start at /sso/acme/login, let the provider sign ``email`` in, come back to the callback."""
    if name:
        httpx.put(
            f"{issuer}/users/{email}", json={"email": email, "name": name}, timeout=10
        ).raise_for_status()
    start = client.get("/sso/acme/login?next=/settings", follow_redirects=False)
    assert start.status_code == 303, start.text
    authorize = start.headers["location"]
    assert authorize.startswith(issuer) and "code_challenge=" in authorize and "nonce=" in authorize
    decision = httpx.post(authorize, data={"sub": email}, follow_redirects=False, timeout=10)
    assert decision.status_code in (302, 303), decision.text
    back = urlsplit(decision.headers["location"])
    return client.get(f"{back.path}?{back.query}", follow_redirects=False)


def test_discovery_is_checked_when_configuring(ctx: AppContext, provider: str, password_hash: str) -> None:
    admin = _setup(ctx, provider, password_hash)
    shown = oidc.get_settings(ctx, admin)
    assert shown.oidc_issuer == provider and shown.has_client_secret and SECRET not in shown.model_dump_json()
    for issuer in ("http://127.0.0.1:9", "http://login.example.com", f"{provider}/nowhere"):
        with pytest.raises(InvalidInput):
            oidc.configure(
                ctx,
                admin,
                issuer=issuer,
                client_id="x",
                client_secret=None,
                domains="a.example",
                sso_only=False,
            )
    with pytest.raises(InvalidInput):
        oidc.configure(
            ctx,
            admin,
            issuer=provider,
            client_id="x",
            client_secret=None,
            domains="not a domain",
            sso_only=False,
        )
    assert oidc.get_settings(ctx, admin).oidc_client_id == "learnloop"  # refused changes left nothing behind


def test_login_creates_the_account_just_in_time(
    client: TestClient, ctx: AppContext, provider: str, password_hash: str
) -> None:
    _setup(ctx, provider, password_hash)
    done = _sign_in(client, provider, "new.person@acme.example", name="New Person")
    assert done.status_code == 303 and done.headers["location"] == "/settings", done.text
    page = client.get("/settings")
    assert page.status_code == 200 and "New Person" in page.text
    # the same person again: the same account, linked by subject
    client.cookies.clear()
    assert _sign_in(client, provider, "new.person@acme.example").status_code == 303
    # an existing member of the organisation is linked by e-mail address
    client.cookies.clear()
    assert _sign_in(client, provider, "old@acme.example").status_code == 303
    assert "Old Hand" in client.get("/settings").text


def test_refusals_are_clear_4xx(
    client: TestClient, ctx: AppContext, provider: str, password_hash: str
) -> None:
    _setup(ctx, provider, password_hash)
    outsider = _sign_in(client, provider, "eve@evil.example")
    assert outsider.status_code == 403 and "evil.example" in outsider.text
    client.cookies.clear()
    elsewhere = _sign_in(client, provider, "taken@acme.example")  # an account of another organisation
    assert elsewhere.status_code == 403
    # a replayed callback finds nothing; a forged state without the browser's cookie neither
    client.cookies.clear()
    start = client.get("/sso/acme/login", follow_redirects=False)
    decision = httpx.post(start.headers["location"], data={"sub": "ann@acme.example"}, follow_redirects=False)
    back = urlsplit(decision.headers["location"])
    assert client.get(f"{back.path}?{back.query}", follow_redirects=False).status_code == 303
    client.cookies.set(
        "learnloop_sso_state", parse_qs(back.query)["state"][0], domain="testserver.local", path="/"
    )
    replay = client.get(f"{back.path}?{back.query}", follow_redirects=False)
    assert replay.status_code == 401
    client.cookies.clear()
    forged = client.get("/sso/callback?state=made-up&code=x", follow_redirects=False)
    assert forged.status_code == 401 and "did not start in this browser" in forged.text
    denied_start = client.get("/sso/acme/login", follow_redirects=False)
    denied = httpx.post(denied_start.headers["location"], data={"action": "deny"}, follow_redirects=False)
    back = urlsplit(denied.headers["location"])
    assert client.get(f"{back.path}?{back.query}", follow_redirects=False).status_code == 401
    assert client.get("/sso/nobody/login", follow_redirects=False).status_code == 404


def _token_for(issuer: str, client_id: str, nonce: str) -> str:
    """A real ID token from the provider, issued to ``client_id`` for ``nonce``."""
    params = {
        "client_id": client_id,
        "redirect_uri": "http://elsewhere.example/cb",
        "response_type": "code",
        "scope": "openid email",
        "nonce": nonce,
        "state": "s",
    }
    decision = httpx.post(f"{issuer}/oauth2/authorize", params=params, data={"sub": "ann@acme.example"})
    code = parse_qs(urlsplit(decision.headers["location"]).query)["code"][0]
    token = httpx.post(
        f"{issuer}/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "http://elsewhere.example/cb",
            "client_id": client_id,
            "client_secret": "x",
        },
    )
    token.raise_for_status()
    return str(token.json()["id_token"])


def test_wrong_audience_nonce_and_forged_signature(provider: str) -> None:
    jwks = oidc.discover(provider)["jwks_uri"]
    token = _token_for(provider, "learnloop", "n-1")
    claims = oidc.verify_id_token(token, issuer=provider, client_id="learnloop", nonce="n-1", jwks_uri=jwks)
    assert claims["sub"] == "ann@acme.example"
    other = _token_for(provider, "someone-else", "n-1")
    with pytest.raises(Unauthorized, match="audience"):
        oidc.verify_id_token(other, issuer=provider, client_id="learnloop", nonce="n-1", jwks_uri=jwks)
    with pytest.raises(Unauthorized, match="nonce"):
        oidc.verify_id_token(token, issuer=provider, client_id="learnloop", nonce="n-2", jwks_uri=jwks)
    head, body, signature = token.split(".")
    forged = ".".join([head, body, signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")])
    with pytest.raises(Unauthorized, match="signature"):
        oidc.verify_id_token(forged, issuer=provider, client_id="learnloop", nonce="n-1", jwks_uri=jwks)


def test_expired_token_is_refused(
    client: TestClient, ctx: AppContext, stale_provider: str, password_hash: str
) -> None:
    _setup(ctx, stale_provider, password_hash)
    expired = _sign_in(client, stale_provider, "ann@acme.example")
    assert expired.status_code == 401 and "expired" in expired.text


def test_sso_only_turns_passwords_off(
    client: TestClient, ctx: AppContext, provider: str, password_hash: str
) -> None:
    admin = _setup(ctx, provider, password_hash)
    oidc.configure(
        ctx,
        admin,
        issuer=provider,
        client_id="learnloop",
        client_secret=None,
        domains=["acme.example"],
        sso_only=True,
    )
    refused = client.post("/api/v1/auth/login", json={"email": "old@acme.example", "password": PASSWORD})
    assert refused.status_code == 401 and "single sign-on" in refused.json()["error"]["message"]
    assert _sign_in(client, provider, "old@acme.example").status_code == 303
    # the admin page and the API never show the secret back (the admin signs in by SSO too now)
    client.cookies.clear()
    assert _sign_in(client, provider, "admin@acme.example").status_code == 303
    page = client.get("/admin/identity")
    assert page.status_code == 200 and SECRET not in page.text and provider in page.text
    api = client.get("/api/v1/org/identity")
    assert api.status_code == 200 and SECRET not in api.text and api.json()["sso_only"] is True
