"""Bounded API fuzzing: schemathesis against the app's own OpenAPI document, with a real login.

Every operation of ``/api/v1/openapi.json`` (but logout, which would end the login) is called with
generated inputs as an enrolled learner who has answered an item and holds the next (bearer
token), so the practice routes are live, valid and invalid inputs, and with valid inputs as an
admin of the same organisation, so the admin routes get past their role check. A response passes when it
is not a server error (>= 500), its status code is one the document declares, its body matches the
declared schema, and every 4xx carries the JSON error envelope of ``learnloop/api/envelope.py``.

The run is bounded and reproducible (derandomised, no example database, no shrinking):
``LEARNLOOP_FUZZ_EXAMPLES`` raises the number of examples per operation for a longer local hunt, and
``LEARNLOOP_FUZZ_BACKEND=postgres`` runs it on PostgreSQL.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import CheckContext, not_a_server_error
from schemathesis.core.failures import Failure
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from learnloop.config import Settings
from learnloop.services.context import AppContext
from learnloop.services.packs import import_pack
from learnloop.store.db import migrate
from learnloop.store.models import as_utc
from tests.conftest import MINI_PACK, POSTGRES_URL, _postgres_database, need, need_module

EXAMPLES = int(os.environ.get("LEARNLOOP_FUZZ_EXAMPLES", "12"))
#: sqlite (CI) or postgres (LEARNLOOP_TEST_POSTGRES_URL's server), for a hunt on the other backend
BACKEND = os.environ.get("LEARNLOOP_FUZZ_BACKEND", "sqlite")
#: operations left out: logging out would end the login every other operation runs under
EXCLUDED = {("POST", "/api/v1/auth/logout")}
PASSWORD = "correct horse battery"


class NotAnErrorEnvelope(Failure):
    """A 4xx answer without ``{"error": {"code", "message", "details"}}``."""


def error_envelope(ctx: CheckContext, response: Any, case: Any) -> bool | None:
    """Every 4xx of the API is a JSON error envelope (learnloop/api/envelope.py)."""
    if not 400 <= response.status_code < 500:
        return None
    try:
        body = response.json()
    except Exception:  # noqa: BLE001 - any undecodable body is the failure reported
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    ok = (
        isinstance(error, dict)
        and isinstance(error.get("code"), str)
        and isinstance(error.get("message"), str)
        and error["message"] != ""
        and isinstance(error.get("details"), list)
        and all(isinstance(d, str) for d in error["details"])
    )
    if not ok:
        raise NotAnErrorEnvelope(
            operation=case.operation.label,
            title="4xx without the JSON error envelope",
            message=f"{response.status_code}: {response.text[:300]!r}",
        )
    return True


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    error_envelope,
]


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, dict[str, dict[str, str]]]]:
    """The app on a fresh SQLite database, and the bearer headers of an enrolled learner (who has
    answered an item and holds a new one) and of an admin of the same organisation."""
    from fastapi.testclient import TestClient

    from learnloop.server import create_app
    from learnloop.services.auth import create_user, default_organisation
    from tests.conftest import answer_payload

    if BACKEND == "postgres":
        if not POSTGRES_URL:
            need("no PostgreSQL server (set LEARNLOOP_TEST_POSTGRES_URL)")
        databases = _postgres_database()
        url = next(databases)
    else:
        databases = iter(())
        url = f"sqlite:///{Path(tmp_path_factory.mktemp('fuzz')) / 'fuzz.db'}"
    migrate(url)
    ctx = AppContext(
        settings=Settings(
            database_url=url, default_pack=MINI_PACK, code_attempts=1, code_timeout_s=3.0, llm_warm_up=False
        )
    )
    import_pack(ctx, MINI_PACK)
    with ctx.session() as session:
        org = default_organisation(session)
        create_user(
            session, org_id=org.id, email="admin@example.org", name="Admin", password=PASSWORD, role="admin"
        )
    app = create_app(ctx)
    identities = {}
    with TestClient(app) as client:
        r = client.post(
            "/api/v1/auth/signup", json={"email": "fuzz@example.org", "name": "Fuzz", "password": PASSWORD}
        )
        assert r.status_code == 201, r.text
        learner = {"Authorization": f"Bearer {r.json()['token']}"}
        client.cookies.clear()
        assert (
            client.post("/api/v1/enrolment", json={"role_id": "builder"}, headers=learner).status_code == 200
        )
        shown = client.get("/api/v1/practice/next", headers=learner).json()
        with ctx.session() as session:
            item = ctx.active_pack(session).items[shown["item"]["id"]]
        answer = answer_payload(item, right=True)
        body = {"item_id": shown["item"]["id"], "answer": answer, "presentation_id": shown["presentation_id"]}
        assert client.post("/api/v1/practice/answer", json=body, headers=learner).status_code == 200
        assert client.get("/api/v1/practice/next", headers=learner).status_code == 200
        # the tutor's first answer loads its models: once here, not inside a timed fuzz call
        assert (
            client.post(
                "/api/v1/tutor/ask", json={"question": "What is a token?"}, headers=learner
            ).status_code
            == 200
        )
        r = client.post("/api/v1/auth/login", json={"email": "admin@example.org", "password": PASSWORD})
        assert r.status_code == 200, r.text
        client.cookies.clear()
        identities = {"learner": learner, "admin": {"Authorization": f"Bearer {r.json()['token']}"}}
    yield app, identities
    for _ in databases:  # drops the PostgreSQL database
        pass


@pytest.fixture(scope="module")
def api_schema(fuzz_app: tuple[Any, dict[str, dict[str, str]]]) -> Any:
    app, _identities = fuzz_app
    return schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)


def _negatable(spec: dict[str, Any]) -> bool:
    """Whether an operation takes input that can be invalid (a body, or a parameter that is not
    an unconstrained string)."""
    if spec.get("requestBody"):
        return True
    for parameter in spec.get("parameters", []):
        schema = parameter.get("schema", {})
        if schema.get("type") != "string" or set(schema) - {"type", "title", "description"}:
            return True
    return False


def _runs() -> list[tuple[str, str, GenerationMode]]:
    """Every operation of the document (read from a throwaway app; no database is touched): as the
    learner with valid inputs and, where it takes any, invalid ones; as the admin with valid ones."""
    from learnloop.server import create_app

    document = create_app(AppContext(settings=Settings(database_url="sqlite://"))).openapi()
    runs = []
    for path, methods in document["paths"].items():
        for method, spec in methods.items():
            if (method.upper(), path) in EXCLUDED:
                continue
            label = f"{method.upper()} {path}"
            runs.append((label, "learner", GenerationMode.POSITIVE))
            if _negatable(spec):
                runs.append((label, "learner", GenerationMode.NEGATIVE))
            runs.append((label, "admin", GenerationMode.POSITIVE))
    assert len(runs) > 80, runs
    return runs


@pytest.mark.parametrize(("label", "identity", "mode"), _runs(), ids=str)
def test_api_fuzz(label: str, identity: str, mode: GenerationMode, api_schema: Any, fuzz_app: Any) -> None:
    """Generated calls of one operation by one identity: every check of ``CHECKS`` holds."""
    _app, identities = fuzz_app
    operation = api_schema.find_operation_by_label(label)
    assert operation is not None, label

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        case.call_and_validate(headers=dict(identities[identity]), checks=CHECKS)

    run()


def test_the_envelope_check_catches_a_bare_error() -> None:
    """The custom check fails a 4xx without the envelope (FastAPI's default ``{"detail": ...}``)."""
    import httpx

    class Case:
        class operation:  # noqa: N801 - the attribute schemathesis reads
            label = "GET /api/v1/x"

    bare = httpx.Response(404, json={"detail": "Not Found"})
    with pytest.raises(NotAnErrorEnvelope):
        error_envelope(None, bare, Case())  # type: ignore[arg-type]
    wrapped = httpx.Response(
        404, json={"error": {"code": "not_found", "message": "not found", "details": []}}
    )
    assert error_envelope(None, wrapped, Case()) is True  # type: ignore[arg-type]
    assert error_envelope(None, httpx.Response(200, json={}), Case()) is None  # type: ignore[arg-type]


# -- regressions the fuzzer found, pinned -------------------------------------------------------


def test_served_date_times_carry_their_offset(client: Any) -> None:
    """SQLite hands back naive date-times: the API serves them in UTC with the offset the OpenAPI
    ``date-time`` format requires (found on the tutor's conversations)."""
    r = client.post("/api/v1/auth/signup", json={"email": "t@example.org", "name": "T", "password": PASSWORD})
    client.cookies.clear()
    h = {"Authorization": f"Bearer {r.json()['token']}"}
    assert (
        client.post("/api/v1/tutor/ask", json={"question": "What is a token?"}, headers=h).status_code == 200
    )
    summary = client.get("/api/v1/tutor/conversations", headers=h).json()[0]
    conversation = client.get(f"/api/v1/tutor/conversations/{summary['id']}", headers=h).json()
    moments = [summary["updated_at"], conversation["created_at"], conversation["updated_at"]]
    moments += [m["created_at"] for m in conversation["messages"]]
    for moment in moments:
        parsed = datetime.fromisoformat(moment)
        assert parsed.utcoffset() == timedelta(0), moment


def test_as_utc_hands_on_utc() -> None:
    """PostgreSQL hands back date-times in the session's zone; py-fsrs accepts only UTC."""
    zoned = datetime(2026, 3, 1, 10, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    assert as_utc(zoned).tzinfo is UTC and as_utc(zoned) == zoned
    assert as_utc(datetime(2026, 3, 1, 9, 0)) == zoned


def test_memory_fit_on_both_backends(any_ctx: AppContext) -> None:
    """POST /org/memory-parameters gave HTTP 500 on PostgreSQL (a non-UTC zone reached py-fsrs)."""
    need_module("fsrs.optimizer")
    from fastapi.testclient import TestClient

    from learnloop.server import create_app
    from learnloop.services.auth import create_user, default_organisation
    from tests.conftest import answer_payload

    with any_ctx.session() as session:
        org = default_organisation(session)
        create_user(
            session, org_id=org.id, email="admin@example.org", name="Admin", password=PASSWORD, role="admin"
        )
    with TestClient(create_app(any_ctx)) as client:
        r = client.post(
            "/api/v1/auth/signup", json={"email": "l@example.org", "name": "L", "password": PASSWORD}
        )
        client.cookies.clear()
        learner = {"Authorization": f"Bearer {r.json()['token']}"}
        client.post("/api/v1/enrolment", json={"role_id": "builder"}, headers=learner)
        for _ in range(3):
            shown = client.get("/api/v1/practice/next", headers=learner).json()
            with any_ctx.session() as session:
                item = any_ctx.active_pack(session).items[shown["item"]["id"]]
            body = {
                "item_id": item.id,
                "answer": answer_payload(item, True),
                "presentation_id": shown["presentation_id"],
            }
            assert client.post("/api/v1/practice/answer", json=body, headers=learner).status_code == 200
        r = client.post("/api/v1/auth/login", json={"email": "admin@example.org", "password": PASSWORD})
        client.cookies.clear()
        admin = {"Authorization": f"Bearer {r.json()['token']}"}
        fit = client.post("/api/v1/org/memory-parameters", headers=admin)
        assert fit.status_code == 200, fit.text
        assert fit.json()["reviews"] == 3


def test_the_issues_bad_inputs_get_a_4xx_on_both_backends(any_ctx: AppContext) -> None:
    """The server errors of issue 18's fuzzing, each now a 4xx with the envelope and nothing stored:
    ids of 2^31 and more (PostgreSQL's integer is 32-bit), NUL characters in text (the
    unauthenticated login included), a lone surrogate in a text answer, a numeric answer of 10^400."""
    from fastapi.testclient import TestClient
    from sqlalchemy import func, select

    from learnloop.server import create_app
    from learnloop.services.auth import create_user, default_organisation
    from learnloop.store.models import Response

    with any_ctx.session() as session:
        org = default_organisation(session)
        create_user(
            session, org_id=org.id, email="admin@example.org", name="Admin", password=PASSWORD, role="admin"
        )
    with TestClient(create_app(any_ctx), raise_server_exceptions=False) as client:

        def login(email: str) -> dict[str, str]:
            r = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
            client.cookies.clear()
            return {"Authorization": f"Bearer {r.json()['token']}"}

        r = client.post(
            "/api/v1/auth/signup", json={"email": "l@example.org", "name": "L", "password": PASSWORD}
        )
        assert r.status_code == 201
        learner, admin = login("l@example.org"), login("admin@example.org")
        client.post("/api/v1/enrolment", json={"role_id": "builder"}, headers=learner)
        shown = client.get("/api/v1/practice/next", headers=learner).json()
        item, presentation = shown["item"]["id"], shown["presentation_id"]

        def raw(method: str, path: str, body: str | None, headers: dict[str, str]) -> Any:
            extra = {"content-type": "application/json"} if body is not None else {}
            return client.request(
                method, path, content=body.encode() if body else None, headers={**headers, **extra}
            )

        def answer(value: str) -> str:  # raw JSON: 1e400 and 10^400 are not Python floats
            return f'{{"item_id": {json.dumps(item)}, "presentation_id": {json.dumps(presentation)}, "answer": {value}}}'

        calls: list[tuple[str, str, str | None, dict[str, str]]] = []
        for big in (2**31, 2**63, 10**30):
            calls += [
                ("GET", f"/api/v1/reports/learners/{big}", None, admin),
                ("GET", f"/api/v1/checks/{big}", None, learner),
                ("GET", f"/api/v1/tutor/conversations/{big}", None, learner),
                ("DELETE", f"/api/v1/tutor/conversations/{big}", None, learner),
                ("PATCH", f"/api/v1/org/members/{big}", '{"role": "learner"}', admin),
                ("POST", f"/api/v1/grading/reviews/{big}/decision", '{"correct": true}', admin),
            ]
        calls += [
            (
                "POST",
                "/api/v1/auth/login",
                json.dumps({"email": "l\x00@example.org", "password": "x\x00"}),
                {},
            ),
            (
                "POST",
                "/api/v1/auth/signup",
                json.dumps({"email": "n@example.org", "name": "N\x00", "password": PASSWORD}),
                {},
            ),
            ("POST", "/api/v1/practice/answer", answer(json.dumps({"text": "a\x00b"})), learner),
            ("POST", "/api/v1/practice/answer", answer(json.dumps({"text": "lone \ud800"})), learner),
            ("POST", "/api/v1/practice/answer", answer('{"value": 1e400}'), learner),
            ("POST", "/api/v1/practice/answer", answer('{"value": 1' + "0" * 400 + "}"), learner),
            ("POST", "/api/v1/tutor/ask", json.dumps({"question": "why\x00"}), learner),
        ]
        for method, path, body, headers in calls:
            r = raw(method, path, body, headers)
            assert 400 <= r.status_code < 500, (method, path, body, r.status_code, r.text)
            assert set(r.json()["error"]) == {"code", "message", "details"}, r.text
    with any_ctx.session() as session:
        assert session.execute(select(func.count()).select_from(Response)).scalar_one() == 0


def test_model_routes_declare_their_503(tmp_path: Path) -> None:
    """With no offline fallback and the model server down, the tutor (plain and streamed) and item
    drafting answer 503 with the envelope, and the document declares it (it did not)."""
    import socket

    from fastapi.testclient import TestClient

    from learnloop.server import create_app
    from learnloop.services.auth import create_user, default_organisation

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"sqlite:///{tmp_path / 'm.db'}"
    migrate(url)
    ctx = AppContext(
        settings=Settings(
            database_url=url,
            default_pack=MINI_PACK,
            llm_warm_up=False,
            llm_tutor="openai_compat",
            llm_author="openai_compat",
            llm_base_url=f"http://127.0.0.1:{port}/v1",
            llm_model="any",
            llm_retries=0,
            llm_timeout_s=5,
        )
    )
    import_pack(ctx, MINI_PACK)
    with ctx.session() as session:
        org = default_organisation(session)
        create_user(
            session, org_id=org.id, email="admin@example.org", name="Admin", password=PASSWORD, role="admin"
        )
    app = create_app(ctx)
    document = app.openapi()
    with TestClient(app) as client:
        r = client.post("/api/v1/auth/login", json={"email": "admin@example.org", "password": PASSWORD})
        client.cookies.clear()
        h = {"Authorization": f"Bearer {r.json()['token']}"}
        with ctx.session() as session:
            skill = next(iter(ctx.active_pack(session).skills))
        calls = [
            ("/api/v1/tutor/ask", {"question": "What is a token?"}),
            # was a 200 whose event stream broke off (a server error after the headers)
            ("/api/v1/tutor/ask/stream", {"question": "What is a token?"}),
            ("/api/v1/authoring/drafts", {"skill_id": skill, "count": 1}),
        ]
        for path, body in calls:
            r = client.post(path, json=body, headers=h)
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "model_unavailable"
            assert "503" in document["paths"][path]["post"]["responses"]
