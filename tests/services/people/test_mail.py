"""E-mail through a real SMTP server on loopback (aiosmtpd): invitations and reminders arrive,
in the recipient's language; an SMTP server that is down delays mail and fails nothing else."""

from __future__ import annotations

import email
import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from email.message import Message
from email.policy import default as default_policy

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from learnloop.services import auth
from learnloop.services.auth import create_organisation, create_user
from learnloop.services.context import AppContext
from learnloop.services.people import invitations, mail
from learnloop.store.models import EmailOutbox, Response, ReviewCard, User, utcnow
from tests.conftest import need_module

PASSWORD = "violet-harbour-57-lantern"


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]  # noqa: N802
        self.messages.append(email.message_from_bytes(envelope.content, policy=default_policy))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[int, _Inbox]]:
    need_module("aiosmtpd")
    from aiosmtpd.controller import Controller

    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield controller.port, inbox
    controller.stop()


def _admin(ctx: AppContext) -> auth.CurrentUser:
    with ctx.session() as session:
        org = create_organisation(session, "Acme")
        create_user(
            session, org_id=org.id, email="admin@acme.example", name="Admin", password=PASSWORD, role="admin"
        )
    return auth.login(ctx, email="admin@acme.example", password=PASSWORD).user


def _body(message: Message) -> str:
    part = message.get_body(preferencelist=("plain",))  # type: ignore[attr-defined]
    return str(part.get_content())


def test_invitation_arrives_and_sets_a_password(client: TestClient, ctx: AppContext, smtp) -> None:  # type: ignore[no-untyped-def]
    port, inbox = smtp
    ctx.settings.smtp_host, ctx.settings.smtp_port = "127.0.0.1", port
    ctx.settings.public_url = "http://testserver"
    admin = _admin(ctx)
    out = invitations.invite(ctx, admin, email="New.Person@acme.example", name="New Person")
    assert out.member.email == "new.person@acme.example"
    # the app's job worker may send it first; either way it arrives once
    deadline = time.monotonic() + 20
    while not inbox.messages and time.monotonic() < deadline:
        mail.deliver_pending(ctx)
        time.sleep(0.1)
    time.sleep(0.5)
    assert mail.deliver_pending(ctx).waiting == 0
    [message] = inbox.messages
    assert message["To"] == "new.person@acme.example" and "Acme" in message["Subject"]
    link = next(word for word in _body(message).split() if "/invite/" in word)
    path = link.removeprefix("http://testserver")
    page = client.get(path)
    assert page.status_code == 200 and "new.person@acme.example" in page.text
    csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    weak = client.post(path, data={"password": "short", "csrf_token": csrf})
    assert weak.status_code == 422
    done = client.post(path, data={"password": PASSWORD, "csrf_token": csrf}, follow_redirects=False)
    assert done.status_code == 303
    assert auth.login(ctx, email="new.person@acme.example", password=PASSWORD).user.name == "New Person"
    client.cookies.clear()
    assert client.get(path).status_code == 404  # the link works once
    # inviting someone who already has an account is refused
    with pytest.raises(Exception, match="already has an account"):
        invitations.invite(ctx, admin, email="new.person@acme.example", name="Again")


def test_smtp_down_queues_and_retries(ctx: AppContext) -> None:
    ctx.settings.smtp_host, ctx.settings.smtp_port = "127.0.0.1", _free_port()  # nothing listens
    admin = _admin(ctx)
    invited = invitations.invite(ctx, admin, email="x@acme.example", name="X")  # succeeds all the same
    assert invited.member.email == "x@acme.example"
    report = mail.deliver_pending(ctx)
    assert report.failed == 1 and report.waiting == 1
    with ctx.session() as session:
        message = session.scalars(select(EmailOutbox)).one()
        assert message.status == "pending" and message.attempts == 1 and message.last_error
        assert message.next_attempt_at.replace(tzinfo=None) > utcnow().replace(tzinfo=None)
    # not due again yet; once the server is back and the retry is due, it goes out
    assert mail.deliver_pending(ctx).failed == 0
    need_module("aiosmtpd")
    from aiosmtpd.controller import Controller

    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=ctx.settings.smtp_port)
    controller.start()
    try:
        assert mail.deliver_pending(ctx, now=utcnow() + timedelta(hours=2)).sent == 1
    finally:
        controller.stop()
    assert len(inbox.messages) == 1


def test_reminders_arrive_in_the_learners_language_and_respect_opt_out(ctx: AppContext, smtp) -> None:  # type: ignore[no-untyped-def]
    port, inbox = smtp
    ctx.settings.smtp_host, ctx.settings.smtp_port = "127.0.0.1", port
    admin = _admin(ctx)
    now = utcnow()
    with ctx.session() as session:
        ids = {}
        for key, locale in (("due", "zh_CN"), ("idle", "en"), ("quiet", "en"), ("demo", "en")):
            user = create_user(
                session,
                org_id=admin.org_id,
                email=f"{key}@acme.example",
                name=key.title(),
                password=PASSWORD,
                locale=locale,
                is_simulated=key == "demo",
            )
            ids[key] = user.id
            session.add(
                Response(
                    org_id=admin.org_id,
                    user_id=user.id,
                    item_id="basics.tokens.count",
                    skills=[],
                    kind="choice",
                    answer={},
                    correct=True,
                    score=1.0,
                    created_at=now - timedelta(days=1 if key == "due" else 10),
                )
            )
        session.flush()
        for key in ("due", "demo"):
            session.add(
                ReviewCard(
                    user_id=ids[key], item_id="basics.tokens.count", state=2, due=now - timedelta(hours=1)
                )
            )
        session.get(User, ids["quiet"]).email_reminders = False  # type: ignore[union-attr]
    quiet = auth.login(ctx, email="quiet@acme.example", password=PASSWORD).user
    assert mail.get_reminders(ctx, quiet).reminders is False
    ctx.settings.smtp_host = ""
    assert mail.send_reminders(ctx) == 0  # no SMTP server: nothing piles up in the outbox
    ctx.settings.smtp_host = "127.0.0.1"
    assert mail.send_reminders(ctx) == 2
    assert mail.send_reminders(ctx) == 0  # not twice in a row
    mail.deliver_pending(ctx)
    by_to = {m["To"]: m for m in inbox.messages}
    assert set(by_to) == {"due@acme.example", "idle@acme.example"}
    assert "复习" in by_to["due@acme.example"]["Subject"]  # Chinese for the learner who reads Chinese
    assert "10 days" in _body(by_to["idle@acme.example"]) and "/settings" in _body(by_to["idle@acme.example"])


def test_csv_import_can_invite_everyone_it_creates(ctx: AppContext, smtp) -> None:  # type: ignore[no-untyped-def]
    from learnloop.services.people import csv_import

    port, inbox = smtp
    ctx.settings.smtp_host, ctx.settings.smtp_port = "127.0.0.1", port
    admin = _admin(ctx)
    data = b"email,name\na@acme.example,A\nb@acme.example,B\n"
    assert csv_import.import_csv(ctx, admin, data, dry_run=False, invite=True).created == 2
    assert mail.deliver_pending(ctx).sent == 2
    assert sorted(m["To"] for m in inbox.messages) == ["a@acme.example", "b@acme.example"]


def test_weekly_digests_respect_consent_and_group_size(ctx: AppContext, smtp) -> None:  # type: ignore[no-untyped-def]
    port, inbox = smtp
    ctx.settings.smtp_host, ctx.settings.smtp_port = "127.0.0.1", port
    admin = _admin(ctx)
    now = utcnow()
    with ctx.session() as session:
        boss = create_user(
            session,
            org_id=admin.org_id,
            email="boss@acme.example",
            name="Boss",
            password=PASSWORD,
            role="manager",
        )
        for i in range(5):
            person = create_user(
                session,
                org_id=admin.org_id,
                email=f"p{i}@acme.example",
                name=f"Person {i}",
                password=PASSWORD,
            )
            person.manager_id = boss.id
            person.consent_share = i < 2
            person.email_reminders = i != 0  # Person 0 opted out of e-mail
            if i < 3:
                session.add(
                    Response(
                        org_id=admin.org_id,
                        user_id=person.id,
                        item_id="basics.tokens.count",
                        skills=[],
                        kind="choice",
                        answer={},
                        correct=True,
                        score=1.0,
                        created_at=now - timedelta(days=1),
                    )
                )
    assert mail.send_digests(ctx) == 3  # Persons 1 and 2 (answered, not opted out) and the boss
    assert mail.send_digests(ctx) == 0  # weekly
    mail.deliver_pending(ctx)
    by_to = {m["To"]: _body(m) for m in inbox.messages}
    assert set(by_to) == {"boss@acme.example", "p1@acme.example", "p2@acme.example"}
    team = by_to["boss@acme.example"]
    assert "3 of 5 people practised" in team
    assert "Person 0: 1 answers" in team and "Person 1: 1 answers" in team  # consented
    assert "Person 2" not in team and "Person 3" not in team  # no consent: no name
    assert "1 questions" in by_to["p1@acme.example"]
