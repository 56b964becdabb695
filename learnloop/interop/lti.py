"""LTI 1.3 (1EdTech Core, Deep Linking 2.0, Assignment and Grade Services 2.0), tool side.

Pure translation and checking: keys, the OIDC login redirect, the id_token's verification, the
deep-linking response and the AGS messages, on PyJWT and cryptography. No database, no HTTP:
``services/lti.py`` fetches the platform's keys and stores what a launch leaves behind.

Every failure to verify is an ``LtiError`` (the adapters answer 403): a forged or reused state,
a wrong nonce, audience, issuer or deployment, an expired or unsigned token, a key the platform
does not publish.

(pylti1p3, the usual library, needs jwcrypto, which is LGPL-3.0; the project keeps LGPL out of
its install, so this module implements the tool's side of the security framework directly.)
"""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

LTI_VERSION = "1.3.0"
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
DL_CLAIM = "https://purl.imsglobal.org/spec/lti-dl/claim/"
AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
AGS_SCORE_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
RESOURCE_LINK = "LtiResourceLinkRequest"
DEEP_LINKING = "LtiDeepLinkingRequest"
INSTRUCTOR_ROLES = (
    "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor",
    "http://purl.imsglobal.org/vocab/lis/v2/membership#ContentDeveloper",
    "http://purl.imsglobal.org/vocab/lis/v2/membership#Administrator",
    "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator",
)
#: clock skew tolerated on exp / iat (seconds)
LEEWAY_S = 60
#: a login's state and nonce are good for this long (seconds)
STATE_TTL_S = 600


class LtiError(Exception):
    """A launch or message that does not verify. The message says why, for the logs and the
    403 page; it never contains a token or a key."""


@dataclass(frozen=True)
class ToolKey:
    kid: str
    private_pem: str
    public_jwk: dict[str, Any]


@dataclass(frozen=True)
class Launch:
    """The verified claims of an id_token that Learnloop uses."""

    message_type: str
    sub: str
    name: str
    email: str
    roles: list[str]
    deployment_id: str
    resource_link_id: str
    custom: dict[str, str]
    #: AGS: the line item URL, when the platform offers score passback for this link
    lineitem: str | None
    #: deep linking: where the response goes, and the opaque data to echo
    deep_link_return_url: str | None
    deep_link_data: str | None
    raw: dict[str, Any]

    @property
    def instructor(self) -> bool:
        return any(r in INSTRUCTOR_ROLES for r in self.roles)


def new_tool_key() -> ToolKey:
    """A fresh RSA 2048 key with its public JWK (``kid``, ``alg`` RS256, ``use`` sig)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    kid = uuid.uuid4().hex
    public = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    public.update({"kid": kid, "alg": "RS256", "use": "sig"})
    return ToolKey(kid=kid, private_pem=pem, public_jwk=public)


def check_url(url: str, what: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LtiError(f"the {what} must be an absolute http(s) URL")
    return url


def new_state() -> str:
    return secrets.token_urlsafe(32)


def login_redirect(
    auth_login_url: str,
    *,
    client_id: str,
    redirect_uri: str,
    login_hint: str,
    lti_message_hint: str | None,
    state: str,
    nonce: str,
) -> str:
    """The platform's authorization URL for the OIDC third-party-initiated login."""
    params = {
        "scope": "openid",
        "response_type": "id_token",
        "response_mode": "form_post",
        "prompt": "none",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "login_hint": login_hint,
        "state": state,
        "nonce": nonce,
    }
    if lti_message_hint:
        params["lti_message_hint"] = lti_message_hint
    sep = "&" if urlsplit(auth_login_url).query else "?"
    return auth_login_url + sep + urlencode(params)


def unverified_kid(id_token: str) -> str | None:
    try:
        header = jwt.get_unverified_header(id_token)
    except jwt.PyJWTError:
        raise LtiError("the id_token is not a JWT") from None
    if header.get("alg") != "RS256":
        raise LtiError("the id_token must be signed with RS256")
    kid = header.get("kid")
    return str(kid) if kid is not None else None


def _key_for(jwks: dict[str, Any], kid: str | None) -> Any:
    try:
        keys = jwt.PyJWKSet.from_dict(jwks).keys
    except (jwt.PyJWTError, KeyError, TypeError, ValueError):
        raise LtiError("the platform's key set cannot be read") from None
    matching = [k for k in keys if kid is None or k.key_id == kid]
    if len(matching) != 1:
        raise LtiError("the id_token's key is not in the platform's key set")
    return matching[0].key


def verify_launch(
    id_token: str,
    jwks: dict[str, Any],
    *,
    issuer: str,
    client_id: str,
    nonce: str,
    deployment_ids: list[str],
    now: float | None = None,
) -> Launch:
    """Verify a launch's id_token (signature, iss, aud/azp, exp, iat, nonce, version, message
    type, deployment) and return its claims."""
    key = _key_for(jwks, unverified_kid(id_token))
    try:
        claims = jwt.decode(
            id_token,
            key,
            algorithms=["RS256"],
            audience=client_id,
            issuer=issuer,
            leeway=LEEWAY_S,
            options={"require": ["exp", "iat", "iss", "aud", "sub", "nonce"], "verify_iat": False},
        )
    except jwt.ExpiredSignatureError:
        raise LtiError("the id_token has expired") from None
    except jwt.InvalidAudienceError:
        raise LtiError("the id_token is not for this tool (audience)") from None
    except jwt.InvalidIssuerError:
        raise LtiError("the id_token is not from the registered platform (issuer)") from None
    except jwt.PyJWTError as exc:
        raise LtiError(f"the id_token does not verify ({type(exc).__name__})") from None
    moment = time.time() if now is None else now
    if float(claims["iat"]) > moment + LEEWAY_S:
        raise LtiError("the id_token was issued in the future")
    aud = claims["aud"]
    if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != client_id:
        raise LtiError("the id_token is not for this tool (authorised party)")
    if not secrets.compare_digest(str(claims["nonce"]), nonce):
        raise LtiError("the id_token's nonce does not match the login")
    if claims.get(CLAIM + "version") != LTI_VERSION:
        raise LtiError("only LTI 1.3.0 launches are accepted")
    message_type = claims.get(CLAIM + "message_type")
    if message_type not in (RESOURCE_LINK, DEEP_LINKING):
        raise LtiError("unsupported LTI message type")
    deployment = str(claims.get(CLAIM + "deployment_id", ""))
    if deployment not in deployment_ids:
        raise LtiError("the deployment is not registered for this platform")
    link = claims.get(CLAIM + "resource_link") or {}
    ags = claims.get(AGS_CLAIM) or {}
    settings = claims.get(DL_CLAIM + "deep_linking_settings") or {}
    custom = claims.get(CLAIM + "custom") or {}
    if message_type == RESOURCE_LINK and not link.get("id"):
        raise LtiError("a resource-link launch needs its resource link id")
    if message_type == DEEP_LINKING and not settings.get("deep_link_return_url"):
        raise LtiError("a deep-linking request needs its return URL")
    roles = claims.get(CLAIM + "roles") or []
    return Launch(
        message_type=str(message_type),
        sub=str(claims["sub"])[:255],
        name=str(claims.get("name") or claims.get("given_name") or "")[:200],
        email=str(claims.get("email") or "")[:254],
        roles=[str(r) for r in roles] if isinstance(roles, list) else [],
        deployment_id=deployment,
        resource_link_id=str(link.get("id", ""))[:255],
        custom={str(k): str(v) for k, v in custom.items()} if isinstance(custom, dict) else {},
        lineitem=str(ags["lineitem"])
        if isinstance(ags, dict) and ags.get("lineitem") and AGS_SCORE_SCOPE in (ags.get("scope") or [])
        else None,
        deep_link_return_url=str(settings["deep_link_return_url"]) if settings else None,
        deep_link_data=str(settings["data"]) if settings and settings.get("data") is not None else None,
        raw=claims,
    )


def deep_link_response(
    key: ToolKey,
    *,
    client_id: str,
    issuer: str,
    deployment_id: str,
    data: str | None,
    items: list[dict[str, Any]],
    now: float | None = None,
) -> str:
    """The signed LtiDeepLinkingResponse JWT carrying ``items`` back to the platform."""
    moment = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "iss": client_id,
        "aud": issuer,
        "iat": moment,
        "exp": moment + 600,
        "nonce": secrets.token_urlsafe(16),
        CLAIM + "message_type": "LtiDeepLinkingResponse",
        CLAIM + "version": LTI_VERSION,
        CLAIM + "deployment_id": deployment_id,
        DL_CLAIM + "content_items": items,
    }
    if data is not None:
        claims[DL_CLAIM + "data"] = data
    return jwt.encode(claims, key.private_pem, algorithm="RS256", headers={"kid": key.kid})


def resource_link_item(url: str, title: str, target: str, *, graded: bool) -> dict[str, Any]:
    """A deep-linking content item placing ``target`` (practice:<skill>, lesson:<id>,
    check:<role>); graded items ask the platform for a line item (score out of 100)."""
    item: dict[str, Any] = {
        "type": "ltiResourceLink",
        "title": title,
        "url": url,
        "custom": {"learnloop_target": target},
    }
    if graded:
        item["lineItem"] = {"scoreMaximum": 100, "label": title, "resourceId": target}
    return item


def client_assertion(key: ToolKey, *, client_id: str, token_url: str, now: float | None = None) -> str:
    """The JWT with which the tool asks the platform for an access token (client credentials)."""
    moment = int(time.time() if now is None else now)
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": token_url,
        "iat": moment,
        "exp": moment + 300,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, key.private_pem, algorithm="RS256", headers={"kid": key.kid})


def token_request(key: ToolKey, *, client_id: str, token_url: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": client_assertion(key, client_id=client_id, token_url=token_url),
        "scope": AGS_SCORE_SCOPE,
    }


def score(sub: str, given: float, maximum: float, timestamp: str, *, completed: bool) -> dict[str, Any]:
    """An AGS score message for a learner."""
    return {
        "userId": sub,
        "scoreGiven": round(max(0.0, min(given, maximum)), 2),
        "scoreMaximum": maximum,
        "timestamp": timestamp,
        "activityProgress": "Completed" if completed else "InProgress",
        "gradingProgress": "FullyGraded",
    }


def scores_url(lineitem: str) -> str:
    """``<lineitem>/scores``, keeping the line item's query string."""
    parts = urlsplit(lineitem)
    path = parts.path.rstrip("/") + "/scores"
    return parts._replace(path=path).geturl()
