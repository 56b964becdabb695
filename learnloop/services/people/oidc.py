"""OpenID Connect login per organisation: authorization code flow with PKCE (Authlib).

An organisation's admin sets its issuer, client id and secret, and the e-mail domains allowed to
sign in; "SSO only" turns passwords off for its members (``auth.login`` refuses them).

A sign-in: :func:`start_login` reads the issuer's discovery document, keeps a fresh ``state``,
``nonce`` and PKCE verifier in ``oidc_logins`` and sends the browser to the provider;
:func:`finish_login` takes that row (once: a replayed or forged ``state`` finds nothing),
exchanges the code with the verifier, verifies the ID token (signature against the issuer's
keys, with the asymmetric algorithms only; ``iss``, ``aud``, ``exp`` and ``nonce``), checks the
e-mail domain, then finds or creates (just in time) the member and opens a login. Every
refusal is a 4xx with a message; the client secret never reaches a log or a page.
"""

from __future__ import annotations

import re
import secrets
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from authlib.integrations.httpx_client import OAuth2Client
from authlib.jose import JsonWebKey, JsonWebToken
from authlib.jose import errors as jose_errors
from authlib.oauth2 import OAuth2Error
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from learnloop.errors import Forbidden, InvalidInput, NotFound, Unauthorized, Unavailable
from learnloop.i18n import _
from learnloop.services import auth
from learnloop.services.auth import CurrentUser, LoginResult
from learnloop.services.context import AppContext
from learnloop.services.people.provisioning import create_member
from learnloop.store.models import OidcLogin, Organisation, OrgIdentity, User, as_utc, utcnow

#: a sign-in must come back from the provider within this time
LOGIN_TTL = timedelta(minutes=10)
#: clock skew allowed when checking the token's times
LEEWAY_S = 60
#: signature algorithms accepted in ID tokens: asymmetric only (no "none", no HMAC with a public key)
ID_TOKEN_ALGS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]
DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_DISCOVERY_TTL_S = 300.0
_discovery: dict[str, tuple[float, dict[str, Any]]] = {}


class IdentitySettings(BaseModel):
    """An organisation's sign-in settings as shown back: never the client secret itself."""

    oidc_issuer: str
    oidc_client_id: str
    has_client_secret: bool
    oidc_domains: list[str]
    sso_only: bool
    scim_enabled: bool
    org_slug: str


def _row(session: Session, org_id: int) -> OrgIdentity | None:
    return session.get(OrgIdentity, org_id)


def _shown(session: Session, org_id: int) -> IdentitySettings:
    row = _row(session, org_id)
    org = session.get(Organisation, org_id)
    assert org is not None
    if row is None:
        return IdentitySettings(
            oidc_issuer="",
            oidc_client_id="",
            has_client_secret=False,
            oidc_domains=[],
            sso_only=False,
            scim_enabled=False,
            org_slug=org.slug,
        )
    return IdentitySettings(
        oidc_issuer=row.oidc_issuer,
        oidc_client_id=row.oidc_client_id,
        has_client_secret=bool(row.oidc_client_secret),
        oidc_domains=list(row.oidc_domains or []),
        sso_only=row.sso_only,
        scim_enabled=row.scim_token_hash is not None,
        org_slug=org.slug,
    )


def get_settings(ctx: AppContext, admin: CurrentUser) -> IdentitySettings:
    admin.require("admin")
    with ctx.session() as session:
        return _shown(session, admin.org_id)


def _check_issuer(issuer: str) -> str:
    issuer = issuer.strip().rstrip("/")
    parts = urlsplit(issuer)
    local = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if not parts.hostname or parts.scheme not in ("https", "http") or (parts.scheme == "http" and not local):
        raise InvalidInput(_("The issuer must be an https:// address (http:// only for localhost)."))
    if parts.query or parts.fragment or len(issuer) > 500:
        raise InvalidInput(_("The issuer must be a plain https:// address of at most 500 characters."))
    return issuer


def parse_domains(text: str | list[str]) -> list[str]:
    items = text if isinstance(text, list) else re.split(r"[\s,;]+", text)
    domains = sorted({d.strip().lower().lstrip("@") for d in items if d.strip()})
    bad = [d for d in domains if not DOMAIN_RE.match(d)]
    if bad:
        raise InvalidInput(_("Not a domain name: %(domains)s") % {"domains": ", ".join(bad)})
    if len(domains) > 50:
        raise InvalidInput(_("At most 50 e-mail domains."))
    return domains


def configure(
    ctx: AppContext,
    admin: CurrentUser,
    *,
    issuer: str,
    client_id: str,
    client_secret: str | None,
    domains: str | list[str],
    sso_only: bool,
) -> IdentitySettings:
    """Set the organisation's OpenID Connect settings. An empty issuer turns SSO off;
    ``client_secret`` None (or empty) keeps the stored one. The issuer's discovery document is
    read before saving, so a wrong address is refused at once."""
    admin.require("admin")
    issuer = issuer.strip()
    client_id = client_id.strip()
    domain_list = parse_domains(domains)
    if issuer:
        issuer = _check_issuer(issuer)
        if not client_id or len(client_id) > 300:
            raise InvalidInput(_("A client id of 1-300 characters is required."))
        if not domain_list:
            raise InvalidInput(_("Name at least one e-mail domain allowed to sign in."))
        discover(issuer, refresh=True)
    elif sso_only:
        raise InvalidInput(_("Set up single sign-on before turning passwords off."))
    if client_secret is not None and len(client_secret) > 500:
        raise InvalidInput(_("The client secret has at most 500 characters."))
    with ctx.session() as session:
        row = _row(session, admin.org_id)
        if row is None:
            row = OrgIdentity(org_id=admin.org_id, oidc_domains=[])
            session.add(row)
        row.oidc_issuer = issuer
        row.oidc_client_id = client_id if issuer else ""
        if client_secret:
            row.oidc_client_secret = client_secret
        if not issuer:
            row.oidc_client_secret = ""
        row.oidc_domains = domain_list
        row.sso_only = bool(sso_only and issuer)
        row.updated_at = utcnow()
        session.flush()
        return _shown(session, admin.org_id)


def _get_json(url: str) -> dict[str, Any]:
    try:
        response = httpx.get(url, timeout=10.0, follow_redirects=False)
        response.raise_for_status()
        body = response.json()
    except (httpx.HTTPError, ValueError):
        raise Unavailable(_("The identity provider could not be reached or answered badly.")) from None
    if not isinstance(body, dict):
        raise Unavailable(_("The identity provider could not be reached or answered badly."))
    return body


def discover(issuer: str, *, refresh: bool = False) -> dict[str, Any]:
    """The issuer's discovery document (cached a few minutes), checked to name this issuer."""
    cached = _discovery.get(issuer)
    if cached and not refresh and time.monotonic() - cached[0] < _DISCOVERY_TTL_S:
        return cached[1]
    try:
        document = _get_json(issuer + "/.well-known/openid-configuration")
    except Unavailable:
        raise InvalidInput(
            _("No OpenID Connect discovery document at %(url)s.")
            % {"url": issuer + "/.well-known/openid-configuration"}
        ) from None
    if str(document.get("issuer", "")).rstrip("/") != issuer:
        raise InvalidInput(_("The discovery document names another issuer."))
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(document.get(key), str):
            raise InvalidInput(_("The discovery document lacks %(key)s.") % {"key": key})
    _discovery[issuer] = (time.monotonic(), document)
    return document


def org_for_email(ctx: AppContext, email: str) -> str:
    """The slug of the organisation whose single sign-on takes this e-mail's domain."""
    domain = email.strip().lower().rpartition("@")[2]
    with ctx.session() as session:
        for row in session.scalars(select(OrgIdentity).where(OrgIdentity.oidc_issuer != "")):
            if domain and domain in (row.oidc_domains or []):
                org = session.get(Organisation, row.org_id)
                assert org is not None
                return org.slug
    raise NotFound(_("No organisation signs in with single sign-on for this e-mail domain."))


def _configured(session: Session, org_id: int) -> OrgIdentity:
    row = _row(session, org_id)
    if row is None or not row.oidc_issuer:
        raise NotFound(_("This organisation has no single sign-on."))
    return row


def start_login(ctx: AppContext, *, org_slug: str, redirect_uri: str, next_path: str = "/") -> str:
    """The provider's authorization address to send the browser to."""
    with ctx.session() as session:
        org = session.scalars(select(Organisation).where(Organisation.slug == org_slug)).first()
        if org is None:
            raise NotFound(_("This organisation has no single sign-on."))
        row = _configured(session, org.id)
        issuer, client_id, org_id = row.oidc_issuer, row.oidc_client_id, org.id
    document = discover(issuer)
    state, nonce, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48)
    client = OAuth2Client(
        client_id=client_id,
        redirect_uri=redirect_uri,
        scope="openid email profile",
        code_challenge_method="S256",
    )
    url, _state = client.create_authorization_url(
        document["authorization_endpoint"], state=state, nonce=nonce, code_verifier=verifier
    )
    with ctx.session() as session:
        # sign-ins never finished are dropped as they expire
        session.query(OidcLogin).filter(OidcLogin.created_at < utcnow() - LOGIN_TTL).delete()
        session.add(
            OidcLogin(state=state, org_id=org_id, nonce=nonce, code_verifier=verifier, next_path=next_path)
        )
    return str(url)


class _Pending(BaseModel):
    org_id: int
    nonce: str
    code_verifier: str
    next_path: str


def _take_login(ctx: AppContext, state: str) -> _Pending:
    """The pending sign-in of this ``state``, removed so it can be used once only."""
    with ctx.session() as session:
        row = session.get(OidcLogin, state[:100]) if state else None
        if row is None:
            raise Unauthorized(_("This sign-in is unknown or was already used; start again."))
        pending = _Pending(
            org_id=row.org_id, nonce=row.nonce, code_verifier=row.code_verifier, next_path=row.next_path
        )
        expired = utcnow() - as_utc(row.created_at) > LOGIN_TTL
        session.delete(row)
    if expired:
        raise Unauthorized(_("The sign-in took too long; start again."))
    return pending


def verify_id_token(
    id_token: str, *, issuer: str, client_id: str, nonce: str, jwks_uri: str
) -> dict[str, Any]:
    """The claims of a valid ID token for this issuer, client and nonce; else Unauthorized."""
    keys = JsonWebKey.import_key_set(_get_json(jwks_uri))
    options = {
        "iss": {"essential": True, "value": issuer},
        "aud": {"essential": True, "value": client_id},
        "exp": {"essential": True},
        "sub": {"essential": True},
        "nonce": {"essential": True, "value": nonce},
    }
    try:
        claims = JsonWebToken(ID_TOKEN_ALGS).decode(id_token, keys, claims_options=options)
        claims.validate(leeway=LEEWAY_S)
    except jose_errors.ExpiredTokenError:
        raise Unauthorized(_("The sign-in token has expired; start again.")) from None
    except jose_errors.InvalidClaimError as exc:
        messages = {
            "aud": _("The sign-in token was issued for another application (wrong audience)."),
            "nonce": _("The sign-in token does not belong to this sign-in (wrong nonce); start again."),
            "iss": _("The sign-in token comes from another issuer."),
        }
        raise Unauthorized(messages.get(exc.claim_name, _("The sign-in token is not valid."))) from None
    except jose_errors.MissingClaimError as exc:
        raise Unauthorized(
            _("The sign-in token lacks the %(claim)s claim.") % {"claim": exc.claim_name}
        ) from None
    except (jose_errors.JoseError, ValueError):
        raise Unauthorized(_("The sign-in token's signature or format is not valid.")) from None
    return dict(claims)


def finish_login(
    ctx: AppContext, *, state: str, code: str, error: str = "", redirect_uri: str
) -> tuple[LoginResult, str]:
    """Complete a sign-in coming back from the provider: the login and where to go next."""
    pending = _take_login(ctx, state)
    if error:
        raise Unauthorized(
            _("The identity provider refused the sign-in (%(error)s).") % {"error": error[:100]}
        )
    if not code:
        raise InvalidInput(_("The identity provider sent no sign-in code."))
    with ctx.session() as session:
        row = _configured(session, pending.org_id)
        issuer, client_id, secret = row.oidc_issuer, row.oidc_client_id, row.oidc_client_secret
    document = discover(issuer)
    client = OAuth2Client(
        client_id=client_id,
        client_secret=secret or None,
        redirect_uri=redirect_uri,
        token_endpoint_auth_method="client_secret_post" if secret else "none",
        code_challenge_method="S256",
        timeout=10.0,
    )
    try:
        token = client.fetch_token(
            document["token_endpoint"], code=code[:2000], code_verifier=pending.code_verifier
        )
    except OAuth2Error:
        raise Unauthorized(_("The identity provider did not accept the sign-in code.")) from None
    except httpx.HTTPError:
        raise Unavailable(_("The identity provider could not be reached or answered badly.")) from None
    finally:
        client.close()
    id_token = token.get("id_token")
    if not isinstance(id_token, str):
        raise Unauthorized(_("The identity provider sent no ID token."))
    claims = verify_id_token(
        id_token, issuer=issuer, client_id=client_id, nonce=pending.nonce, jwks_uri=document["jwks_uri"]
    )
    return _account(ctx, pending.org_id, claims), pending.next_path


def _account(ctx: AppContext, org_id: int, claims: dict[str, Any]) -> LoginResult:
    """The member these verified claims name (created just in time), logged in."""
    email = str(claims.get("email") or "").strip().lower()
    if not email or not auth.EMAIL_RE.match(email):
        raise Forbidden(_("The identity provider sent no e-mail address."))
    if claims.get("email_verified") is False:
        raise Forbidden(_("The identity provider has not verified this e-mail address."))
    subject = str(claims["sub"])[:255]
    with ctx.session() as session:
        row = _configured(session, org_id)
        domain = email.rpartition("@")[2]
        if domain not in (row.oidc_domains or []):
            raise Forbidden(
                _("Accounts of %(domain)s may not sign in to this organisation.") % {"domain": domain}
            )
        user = session.scalars(select(User).where(User.org_id == org_id, User.sso_subject == subject)).first()
        if user is None:
            user = session.scalars(select(User).where(func.lower(User.email) == email)).first()
            if user is not None and (user.org_id != org_id or user.sso_subject not in (None, subject)):
                raise Forbidden(_("This e-mail address belongs to another account; ask your admin."))
        if user is None:
            name = str(claims.get("name") or email.partition("@")[0])[:200].strip() or email
            user = create_member(session, org_id, email=email, name=name, ctx=ctx)
        if user.deleted_at is not None or user.deactivated_at is not None:
            raise Unauthorized(_("This account is deactivated. Ask your organisation's admin."))
        user.sso_subject = subject
        return auth.login_as(ctx, session, user)
