"""A fake LTI 1.3 platform on loopback for the tool's tests: it mints real RS256 id_tokens with
its own fresh key and serves ``/jwks``, ``/token`` (client-credentials grant with a JWT
assertion, verified against the tool's published key set) and ``/lineitems/{n}/scores``."""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from typing import Any

import jwt
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Form, Header, HTTPException, Request

from tests.interop.conftest import free_port

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"


class FakePlatform:
    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = uuid.uuid4().hex
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.client_id = "learnloop-client-1"
        self.deployment_id = "deployment-1"
        #: the tool's public key set (the test copies it from the tool's /lti/jwks/<org>)
        self.tool_jwks: dict[str, Any] = {}
        self.tokens: set[str] = set()
        self.scores: list[dict[str, Any]] = []
        self.token_requests = 0
        self.app = self._app()
        self.server = uvicorn.Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> FakePlatform:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the fake platform did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def public_jwk(self, key: rsa.RSAPrivateKey | None = None, kid: str | None = None) -> dict[str, Any]:
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk((key or self.key).public_key(), as_dict=True)
        jwk.update({"kid": kid or self.kid, "alg": "RS256", "use": "sig"})
        return jwk

    def mint(
        self,
        nonce: str,
        *,
        sub: str = "platform-user-42",
        roles: list[str] | None = None,
        message_type: str = "LtiResourceLinkRequest",
        target: str | None = None,
        lineitem: str | None = None,
        deep_link_return: str | None = None,
        aud: str | list[str] | None = None,
        iss: str | None = None,
        exp_in: int = 300,
        deployment_id: str | None = None,
        key: rsa.RSAPrivateKey | None = None,
        **extra: Any,
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": iss or self.url,
            "aud": aud if aud is not None else self.client_id,
            "sub": sub,
            "iat": now,
            "exp": now + exp_in,
            "nonce": nonce,
            "name": "Pat Platform",
            "email": "pat@school.example",
            CLAIM + "version": "1.3.0",
            CLAIM + "message_type": message_type,
            CLAIM + "deployment_id": deployment_id or self.deployment_id,
            CLAIM + "roles": roles or ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
            CLAIM + "target_link_uri": "http://testserver/lti/launch",
            CLAIM + "resource_link": {"id": "link-" + (target or "none")},
        }
        if target:
            claims[CLAIM + "custom"] = {"learnloop_target": target}
        if lineitem:
            claims["https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"] = {
                "scope": ["https://purl.imsglobal.org/spec/lti-ags/scope/score"],
                "lineitem": lineitem,
            }
        if deep_link_return:
            claims["https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"] = {
                "deep_link_return_url": deep_link_return,
                "accept_types": ["ltiResourceLink"],
                "data": "opaque-platform-data",
            }
        claims.update(extra)
        pem = (key or self.key).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return jwt.encode(claims, pem, algorithm="RS256", headers={"kid": self.kid})

    def _app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/jwks")
        def jwks() -> dict[str, Any]:
            return {"keys": [self.public_jwk()]}

        @app.post("/token")
        def token(
            grant_type: str = Form(...),
            client_assertion_type: str = Form(...),
            client_assertion: str = Form(...),
            scope: str = Form(""),
        ) -> dict[str, Any]:
            self.token_requests += 1
            if grant_type != "client_credentials" or not client_assertion_type.endswith("jwt-bearer"):
                raise HTTPException(400, "unsupported grant")
            kid = jwt.get_unverified_header(client_assertion).get("kid")
            keys = [k for k in jwt.PyJWKSet.from_dict(self.tool_jwks).keys if k.key_id == kid]
            if not keys:
                raise HTTPException(401, "unknown tool key")
            try:
                claims = jwt.decode(
                    client_assertion, keys[0].key, algorithms=["RS256"], audience=self.url + "/token"
                )
            except jwt.PyJWTError as exc:
                raise HTTPException(401, f"bad assertion: {exc}") from None
            if claims.get("iss") != self.client_id or claims.get("sub") != self.client_id:
                raise HTTPException(401, "wrong client")
            access = secrets.token_urlsafe(16)
            self.tokens.add(access)
            return {"access_token": access, "token_type": "Bearer", "expires_in": 3600, "scope": scope}

        @app.post("/lineitems/{n}/scores")
        async def scores(n: int, request: Request, authorization: str = Header("")) -> dict[str, Any]:
            if authorization.removeprefix("Bearer ") not in self.tokens:
                raise HTTPException(401, "no access token")
            if request.headers.get("content-type") != "application/vnd.ims.lis.v1.score+json":
                raise HTTPException(415, "score media type expected")
            self.scores.append({"lineitem": n, **(await request.json())})
            return {}

        return app
