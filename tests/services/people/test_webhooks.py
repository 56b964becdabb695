"""Webhooks: signed deliveries to a real HTTP receiver on loopback, retries, scoping, bad URLs."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select, update

from learnloop.errors import InvalidInput
from learnloop.jobs import run_due
from learnloop.services import auth, practice
from learnloop.services.auth import CurrentUser, create_organisation, create_user
from learnloop.services.context import AppContext
from learnloop.services.people import provisioning, webhooks
from learnloop.store.models import Job, User, utcnow
from learnloop.store.models_webhooks import WebhookDelivery, WebhookEndpoint
from tests.conftest import answer_payload

PASSWORD = "violet-harbour-57-lantern"


class Receiver:
    """A loopback HTTP server that records each POST and answers the next queued status."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.codes: list[int] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                code = outer.codes.pop(0) if outer.codes else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def verified(self, secret: str) -> list[dict[str, Any]]:
        """The bodies whose signature is right (and the assertion that every one is)."""
        out = []
        for headers, body in self.requests:
            expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            assert hmac.compare_digest(headers["x-learnloop-signature"], expected)
            doc = json.loads(body)
            assert headers["x-learnloop-event"] == doc["event"]
            assert headers["x-learnloop-delivery"] == doc["id"]
            assert headers["x-learnloop-timestamp"] == str(doc["timestamp"])
            out.append(doc)
        return out


@pytest.fixture
def receivers(ctx: AppContext) -> Iterator[tuple[Receiver, Receiver]]:
    # receivers on loopback: allowed by the operator's setting (off, they are refused: below)
    ctx.settings.webhooks_allow_private = True
    a, b = Receiver(), Receiver()
    yield a, b
    a.server.shutdown()
    b.server.shutdown()


def _admins(ctx: AppContext) -> dict[str, CurrentUser]:
    out = {}
    with ctx.session() as session:
        for tag in ("a", "b"):
            org = create_organisation(session, f"Org {tag.upper()}")
            row = create_user(
                session,
                org_id=org.id,
                email=f"admin@{tag}.example",
                name=f"admin {tag}",
                password=PASSWORD,
                role="admin",
            )
            out[tag] = auth._current(session, row)
    return out


def test_signed_delivery_retry_and_scoping(ctx: AppContext, receivers: tuple[Receiver, Receiver]) -> None:
    ctx.settings.jobs_backoff_s = 0.0
    rx_a, rx_b = receivers
    admins = _admins(ctx)
    hook_a = webhooks.create_endpoint(ctx, admins["a"], rx_a.url, list(webhooks.EVENTS))
    hook_b = webhooks.create_endpoint(ctx, admins["b"], rx_b.url, ["member.provisioned"])
    assert hook_a.secret.startswith("whsec_") and hook_a.secret != hook_b.secret
    assert all(not hasattr(e, "secret") for e in webhooks.list_endpoints(ctx, admins["a"]))

    rx_a.codes = [500]  # the first try fails, the retry succeeds
    with ctx.session() as session:
        member = provisioning.create_member(
            session, admins["a"].org_id, email="new@a.example", name="New A", ctx=ctx
        )
        member_id = member.id
    run_due(ctx)  # try 1: 500, retried after the (zero) back-off
    run_due(ctx)  # try 2: 200
    docs = rx_a.verified(hook_a.secret)
    assert [d["event"] for d in docs] == ["member.provisioned", "member.provisioned"]
    assert docs[0]["id"] == docs[1]["id"] and docs[0]["data"]["member_id"] == member_id
    assert rx_b.requests == []  # org B's endpoint hears nothing of org A
    log = webhooks.deliveries(ctx, admins["a"])
    assert [(d.status, d.attempts, d.status_code) for d in log] == [("sent", 2, 200)]
    assert webhooks.deliveries(ctx, admins["b"]) == []
    with ctx.session() as session:  # without a context: the sweep enqueues it
        provisioning.create_member(session, admins["b"].org_id, email="new@b.example", name="New B")
    run_due(ctx)
    assert rx_b.requests == []
    webhooks.sweep(ctx)
    run_due(ctx)
    assert [d["data"]["email"] for d in rx_b.verified(hook_b.secret)] == ["new@b.example"]

    # an answer by a learner of org A: answer.recorded, signed with A's secret
    with ctx.session() as session:
        row = create_user(
            session, org_id=admins["a"].org_id, email="ann@a.example", name="Ann", password=PASSWORD
        )
        learner = auth._current(session, row)
    practice.enrol(ctx, learner, "builder")
    shown = practice.next_item(ctx, learner)
    with ctx.session() as session:
        found = ctx.active_pack(session, learner.org_id).items[shown.item["id"]]
    practice.answer(ctx, learner, found.id, answer_payload(found, True))
    run_due(ctx)
    events = [d["event"] for d in rx_a.verified(hook_a.secret)[2:]]
    assert events[0] == "answer.recorded"
    answered = rx_a.verified(hook_a.secret)[2]
    assert answered["data"]["learner_id"] == learner.id and answered["data"]["correct"] is True
    assert len(rx_b.requests) == 1  # org B hears nothing of org A's answers
    with ctx.session() as session:
        orgs = session.execute(select(WebhookDelivery.org_id, WebhookDelivery.endpoint_id).distinct()).all()
        assert sorted(orgs) == sorted([(admins["a"].org_id, hook_a.id), (admins["b"].org_id, hook_b.id)])
        assert session.get(User, member_id) is not None


def test_bad_urls_are_refused(ctx: AppContext) -> None:
    admins = _admins(ctx)
    for url in ("ftp://example.org/x", "javascript:alert(1)", "not a url", "http://"):
        with pytest.raises(InvalidInput):
            webhooks.create_endpoint(ctx, admins["a"], url, ["answer.recorded"])
    with pytest.raises(InvalidInput):
        webhooks.create_endpoint(ctx, admins["a"], "https://example.org/x", ["no.such.event"])


def test_webhooks_over_the_api(client: TestClient, ctx: AppContext) -> None:
    _admins(ctx)
    r = client.post("/api/v1/auth/login", json={"email": "admin@a.example", "password": PASSWORD})
    client.cookies.clear()
    headers = {"Authorization": f"Bearer {r.json()['token']}"}
    bad = client.post(
        "/api/v1/webhooks", json={"url": "file:///etc/passwd", "events": ["answer.recorded"]}, headers=headers
    )
    assert bad.status_code == 422 and "http" in bad.text
    made = client.post(
        "/api/v1/webhooks",
        json={"url": "https://hooks.example.org/x", "events": ["role.ready"]},
        headers=headers,
    )
    assert made.status_code == 201 and made.json()["secret"].startswith("whsec_")
    listed = client.get("/api/v1/webhooks", headers=headers).json()
    assert [e["url"] for e in listed] == ["https://hooks.example.org/x"] and "secret" not in listed[0]
    r = client.post("/api/v1/auth/login", json={"email": "admin@b.example", "password": PASSWORD})
    client.cookies.clear()
    other = {"Authorization": f"Bearer {r.json()['token']}"}
    assert client.get("/api/v1/webhooks", headers=other).json() == []
    assert (
        client.patch(
            f"/api/v1/webhooks/{made.json()['id']}", json={"active": False}, headers=other
        ).status_code
        == 404
    )


def test_check_events_and_once_only_events(ctx: AppContext, receivers: tuple[Receiver, Receiver]) -> None:
    from learnloop.services import assessment

    rx, _other = receivers
    admins = _admins(ctx)
    hook = webhooks.create_endpoint(ctx, admins["a"], rx.url, list(webhooks.EVENTS))
    with ctx.session() as session:
        row = create_user(
            session, org_id=admins["a"].org_id, email="cy@a.example", name="Cy", password=PASSWORD
        )
        learner = auth._current(session, row)
    state = assessment.start(ctx, learner, "builder")
    while state.next is not None:
        with ctx.session() as session:
            item = ctx.active_pack(session, learner.org_id).items[state.next.item["id"]]
        state = assessment.answer(ctx, learner, state.next.assessment_id, item.id, answer_payload(item, True))
    run_due(ctx)
    docs = rx.verified(hook.secret)
    events = [d["event"] for d in docs]
    assert state.result is not None
    assert events.count("check.completed") == 1
    completed = next(d for d in docs if d["event"] == "check.completed")
    answers = [d for d in docs if d["event"] == "answer.recorded"]
    assert completed["data"]["check_id"] == state.result.assessment_id
    assert answers and all(d["data"]["check_id"] == state.result.assessment_id for d in answers)
    # target.met and role.ready are sent once per learner (and skill / role), never again
    met = [d["data"]["skill_id"] for d in docs if d["event"] == "target.met"]
    assert len(met) == len(set(met))
    assert events.count("role.ready") <= 1
    assert len({d["id"] for d in docs}) == len(docs)


def test_webhooks_page(client: TestClient, ctx: AppContext) -> None:
    _admins(ctx)
    login = client.get("/login")
    csrf = login.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    r = client.post("/login", data={"email": "admin@a.example", "password": PASSWORD, "csrf_token": csrf})
    assert r.status_code == 200, r.text
    page = client.get("/admin/webhooks")
    assert page.status_code == 200 and "No webhooks yet." in page.text
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    bad = client.post(
        "/admin/webhooks", data={"csrf_token": token, "url": "gopher://x", "events": "answer.recorded"}
    )
    assert bad.status_code == 422 and "http://" in bad.text
    made = client.post(
        "/admin/webhooks",
        data={
            "csrf_token": token,
            "url": "https://hooks.example.org/y",
            "events": ["target.met", "role.ready"],
        },
    )
    assert made.status_code == 200 and "whsec_" in made.text
    again = client.get("/admin/webhooks")
    assert "https://hooks.example.org/y" in again.text and "whsec_" not in again.text


def test_target_met_and_role_ready_once(ctx: AppContext, receivers: tuple[Receiver, Receiver]) -> None:
    from learnloop.store.models import PendingItem

    # a target is met after a few right answers (as in tests/interop/test_badges.py)
    ctx.settings = ctx.settings.model_copy(
        update={"target_min_items": 1, "target_needs_open_kind": False, "target_evidence_nats": 0.0}
    )
    rx, _other = receivers
    admins = _admins(ctx)
    hook = webhooks.create_endpoint(ctx, admins["a"], rx.url, ["target.met", "role.ready"])
    with ctx.session() as session:
        row = create_user(
            session, org_id=admins["a"].org_id, email="di@a.example", name="Di", password=PASSWORD
        )
        learner = auth._current(session, row)
    practice.enrol(ctx, learner, "builder")
    for n in range(24):
        item_id = ("apps.rag.why", "basics.prompts.role")[n % 2]
        with ctx.session() as session:
            item = ctx.active_pack(session).items[item_id]
            session.merge(
                PendingItem(
                    user_id=learner.id, item_id=item.id, reason="next_step:", presentation_id=f"p-{n}"
                )
            )
        practice.answer(ctx, learner, item.id, answer_payload(item, True), presentation_id=f"p-{n}")
    run_due(ctx)
    docs = rx.verified(hook.secret)
    met = sorted(d["data"]["skill_id"] for d in docs if d["event"] == "target.met")
    ready = [d for d in docs if d["event"] == "role.ready"]
    assert met and len(met) == len(set(met))  # each target once, though answered again after
    assert len(ready) == 1 and ready[0]["data"] == {
        **ready[0]["data"],
        "learner_id": learner.id,
        "role_id": "builder",
    }
    assert {d["event"] for d in docs} == {"target.met", "role.ready"}  # answer.recorded not subscribed


NON_PUBLIC = [
    "http://127.0.0.1:8000/hook",
    "http://localhost:8000/hook",
    "http://[::1]:8000/hook",
    "http://[::ffff:127.0.0.1]:8000/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.1.2.3/hook",
    "http://192.168.0.10/hook",
    "http://100.64.0.1/hook",
    "http://0.0.0.0:8000/hook",
    "http://[fd00:ec2::254]/hook",
]


def test_non_public_targets_are_refused_without_the_operator_setting(ctx: AppContext) -> None:
    assert ctx.settings.webhooks_allow_private is False  # the default
    admins = _admins(ctx)
    for url in NON_PUBLIC:
        with pytest.raises(InvalidInput, match="LEARNLOOP_WEBHOOKS_ALLOW_PRIVATE"):
            webhooks.create_endpoint(ctx, admins["a"], url, ["answer.recorded"])
    assert webhooks.list_endpoints(ctx, admins["a"]) == []
    ctx.settings.webhooks_allow_private = True
    assert webhooks.create_endpoint(ctx, admins["a"], NON_PUBLIC[0], ["answer.recorded"]).id


def test_a_target_is_checked_again_at_delivery(ctx: AppContext) -> None:
    """Registered while private targets were allowed (as if its name resolved to a public address
    then: DNS rebinding), delivered after: refused at delivery, nothing sent, not retried."""
    rx = Receiver()
    try:
        ctx.settings.webhooks_allow_private = True
        admins = _admins(ctx)
        hook = webhooks.create_endpoint(
            ctx, admins["a"], rx.url.replace("127.0.0.1", "localhost"), ["member.provisioned"]
        )
        ctx.settings.webhooks_allow_private = False
        with ctx.session() as session:
            provisioning.create_member(session, admins["a"].org_id, email="m@a.example", name="M", ctx=ctx)
        run_due(ctx)
        assert rx.requests == []
        (log,) = webhooks.deliveries(ctx, admins["a"], hook.id)
        assert log.status == "failed" and log.attempts == 1 and "non-public" in (log.last_error or "")
        ctx.settings.webhooks_allow_private = True  # the operator allows it: a new event goes out
        with ctx.session() as session:
            provisioning.create_member(session, admins["a"].org_id, email="n@a.example", name="N", ctx=ctx)
        run_due(ctx)
        assert [d["data"]["email"] for d in rx.verified(hook.secret)] == ["n@a.example"]
    finally:
        rx.server.shutdown()


def test_secrets_are_encrypted_at_rest_and_never_logged(
    ctx: AppContext, receivers: tuple[Receiver, Receiver], caplog: pytest.LogCaptureFixture
) -> None:
    rx, _other = receivers
    rx.codes = [500]
    admins = _admins(ctx)
    caplog.set_level(logging.DEBUG)
    hook = webhooks.create_endpoint(ctx, admins["a"], rx.url, ["member.provisioned"])
    with ctx.session() as session:
        stored = session.get(WebhookEndpoint, hook.id)
        assert stored is not None
        assert stored.secret.startswith("fernet:") and hook.secret not in stored.secret
        assert hook.secret.removeprefix("whsec_") not in stored.secret
        provisioning.create_member(session, admins["a"].org_id, email="s@a.example", name="S", ctx=ctx)
    run_due(ctx)  # a failed try (logged), then the retry
    ctx.settings.jobs_backoff_s = 0.0
    with ctx.session() as session:
        session.execute(update(Job).where(Job.state == "retry").values(run_at=utcnow()))
    run_due(ctx)
    assert len(rx.verified(hook.secret)) == 2  # signed with the secret shown at creation
    assert caplog.records and all(hook.secret not in r.getMessage() for r in caplog.records)
    assert hook.secret not in caplog.text

    # a secret stored in the clear by an earlier version is encrypted on the sweep
    with ctx.session() as session:
        session.execute(
            update(WebhookEndpoint).where(WebhookEndpoint.id == hook.id).values(secret=hook.secret)
        )
    assert webhooks.seal_plain_secrets(ctx) == 1
    with ctx.session() as session:
        row = session.get(WebhookEndpoint, hook.id)
        assert row is not None and row.secret.startswith("fernet:")
        assert webhooks.unseal(ctx, row.secret) == hook.secret
    # under another key the stored secret cannot be read: the delivery fails, says why, no request
    ctx.settings.webhooks_secret_key = SecretStr("another key")
    before = len(rx.requests)
    with ctx.session() as session:
        provisioning.create_member(session, admins["a"].org_id, email="t@a.example", name="T", ctx=ctx)
    run_due(ctx)
    assert len(rx.requests) == before
    assert "unreadable" in (webhooks.deliveries(ctx, admins["a"], hook.id)[0].last_error or "")
