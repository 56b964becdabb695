"""What follows an answer (``services/answer_hooks.py``): the one statement that decides which
hooks run reads each part of the setup right, on SQLite and PostgreSQL, and with nothing set
up an answer's hooks are that one statement."""

from __future__ import annotations

import uuid

from sqlalchemy import event

from learnloop.services import answer_hooks, auth, mastery, practice
from learnloop.services.badges import BadgeState
from learnloop.services.context import AppContext
from learnloop.store.models import Response
from learnloop.store.models_interop import (
    BadgeCredential,
    BadgeSettings,
    LtiGradeLink,
    LtiPlatform,
    XapiSettings,
)
from learnloop.store.models_webhooks import WebhookEndpoint


def _learner(ctx: AppContext, email: str) -> auth.CurrentUser:
    user = auth.signup(ctx, email=email, name="T", password="tidal-ferry-quartz-81").user
    practice.enrol(ctx, user, "builder")
    return user


def test_probe_reads_each_part_of_the_setup(any_ctx: AppContext) -> None:
    ada, bob = _learner(any_ctx, "ada@example.org"), _learner(any_ctx, "bob@example.org")
    nothing = answer_hooks.Setup(False, False, False, BadgeState("builder", None, False))
    with any_ctx.session() as session:
        assert answer_hooks.probe(session, ada.org_id, ada.id) == nothing
    with any_ctx.session() as session:
        session.add(
            XapiSettings(
                org_id=ada.org_id,
                enabled=False,
                endpoint="https://lrs.example.org/xAPI/",
                home_page="https://learn.example.org",
                id_namespace=str(uuid.uuid4()),
            )
        )
        session.add(
            WebhookEndpoint(
                org_id=ada.org_id,
                url="https://hooks.example.org/",
                events=["answer.recorded"],
                secret="s",
                active=False,
            )
        )
    with any_ctx.session() as session:  # switched off: still nothing
        assert answer_hooks.probe(session, ada.org_id, ada.id) == nothing
    with any_ctx.session() as session:
        session.query(XapiSettings).update({XapiSettings.enabled: True})
        session.query(WebhookEndpoint).update({WebhookEndpoint.active: True})
        session.add(BadgeSettings(org_id=ada.org_id, skill_badges=True))
        platform = LtiPlatform(
            org_id=ada.org_id,
            name="LMS",
            issuer="https://lms.example.org",
            client_id="c",
            deployment_ids=["d"],
            auth_login_url="https://lms.example.org/login",
            auth_token_url="https://lms.example.org/token",
            jwks_url="https://lms.example.org/jwks",
        )
        session.add(platform)
        session.flush()
        session.add(
            LtiGradeLink(
                org_id=ada.org_id,
                platform_id=platform.id,
                user_id=ada.id,
                sub="ada",
                resource_link_id="r1",
                lineitem="https://lms.example.org/li/1",
                target="practice",
            )
        )
        # a skill credential is not the role's
        session.add(
            BadgeCredential(
                id=str(uuid.uuid4()), org_id=ada.org_id, user_id=ada.id, skill_id="basics.tokens", document={}
            )
        )
    with any_ctx.session() as session:
        got = answer_hooks.probe(session, ada.org_id, ada.id)
        assert got == answer_hooks.Setup(True, True, True, BadgeState("builder", None, True))
        # the organisation's parts are shared, the learner's are not
        assert answer_hooks.probe(session, bob.org_id, bob.id) == answer_hooks.Setup(
            True, True, False, BadgeState("builder", None, True)
        )
    credential = str(uuid.uuid4())
    with any_ctx.session() as session:
        session.add(
            BadgeCredential(id=credential, org_id=ada.org_id, user_id=ada.id, role_id="builder", document={})
        )
    with any_ctx.session() as session:
        assert answer_hooks.probe(session, ada.org_id, ada.id).badges == BadgeState(
            "builder", credential, True
        )


def test_with_nothing_set_up_the_hooks_are_one_statement(any_ctx: AppContext) -> None:
    ada = _learner(any_ctx, "ada@example.org")
    shown = practice.next_item(any_ctx, ada)
    practice.answer(any_ctx, ada, shown.item["id"], _wrong(shown.item))
    with any_ctx.session() as session:
        response = session.query(Response).filter_by(user_id=ada.id).one()
        active = any_ctx.active_pack(session, ada.org_id)
        item = active.items[response.item_id]
        rows = mastery.mastery_of(session, ada.id)
        statements: list[str] = []
        engine = session.get_bind()

        def count(*args: object) -> None:
            statements.append(str(args[2]))

        event.listen(engine, "before_cursor_execute", count)
        try:
            answer_hooks.after_answer(
                session, any_ctx, active, ada.org_id, ada.id, item, response, response.created_at, rows=rows
            )
        finally:
            event.remove(engine, "before_cursor_execute", count)
    # the probe only: no hook applies, and the credential check takes the rows it was given
    # (one wrong answer meets no target)
    assert len(statements) == 1, statements
    assert "xapi_settings" in statements[0] and "webhook_endpoints" in statements[0]


def _wrong(item: dict[str, object]) -> dict[str, object]:
    if item.get("kind") == "choice":
        options = sorted(item.get("options") or {})  # type: ignore[call-overload]
        return {"choice": options[-1]}
    if item.get("kind") == "numeric":
        return {"value": -12345}
    return {"text": "no idea"}
