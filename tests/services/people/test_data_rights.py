"""Personal data rights: export (JSON and CSV) scoped to the person, erasure that keeps the
organisation's statistics and leaves no e-mail or name anywhere, and SCIM deprovisioning that
follows the organisation's retention."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import pytest
from sqlalchemy import JSON, String, Text, select

from learnloop.errors import Conflict, Forbidden, InvalidInput, NotFound
from learnloop.services import practice, throttle
from learnloop.services.auth import CurrentUser
from learnloop.services.context import AppContext
from learnloop.services.mastery import rebuild_all, snapshot
from learnloop.services.people import consent, data_rights, provisioning, scim
from learnloop.services.reports_items import compute_item_report
from learnloop.services.reports_team import team_report
from learnloop.store.models import (
    Base,
    EmailOutbox,
    ErasureLog,
    Job,
    LoginThrottle,
    Response,
    TutorConversation,
    TutorMessage,
    User,
)
from learnloop.store.models_interop import XapiOutbox
from tests.conftest import answer_payload
from tests.services.report_builders import Org, add_user, make_org, viewer

#: distinctive enough that no other text in the database contains them by chance
NAME = "Zebulon Quixote-Erasme"
EMAIL = "zebulon.quixote@acme.example"


def _practise(ctx: AppContext, user: CurrentUser, answers: int) -> None:
    for n in range(answers):
        shown = practice.next_item(ctx, user)
        with ctx.session() as session:
            item = ctx.active_pack(session).items[shown.item["id"]]
        practice.answer(
            ctx, user, item.id, answer_payload(item, n % 2 == 0), presentation_id=shown.presentation_id
        )


def _org(ctx: AppContext) -> tuple[Org, int]:
    """Acme: an admin, a manager and six learners of team Blue who practised; the one to erase
    has a consent log, a tutor conversation, an e-mail and an xAPI statement naming them."""
    org = make_org(ctx, "Acme")
    add_user(ctx, org, "admin", role="admin", target_role=None)
    add_user(ctx, org, "boss", role="manager", team="Blue", target_role=None)
    for i in range(6):
        add_user(ctx, org, f"l{i}", team="Blue", manager="boss", consent=True)
    target = org.users["l0"]
    with ctx.session() as session:
        member = session.get(User, target)
        assert member is not None
        member.email, member.name = EMAIL, NAME
    for i in range(6):
        _practise(ctx, viewer(ctx, org, f"l{i}"), 4)
    consent.set_consent(ctx, viewer(ctx, org, "l0"), False)
    with ctx.session() as session:
        talk = TutorConversation(org_id=org.id, user_id=target, item_id="basics.tokens.cost")
        session.add(talk)
        session.flush()
        session.add(TutorMessage(conversation_id=talk.id, role="learner", content=f"I am {NAME}"))
        session.add(
            EmailOutbox(
                org_id=org.id,
                user_id=target,
                kind="reminder",
                to_address=EMAIL,
                subject=f"Hello {NAME}",
                body=f"Dear {NAME}, reviews are due.",
            )
        )
        session.add(
            XapiOutbox(
                org_id=org.id,
                statement_id="5b0e0c4e-0000-4000-8000-000000000001",
                event="answered",
                statement={"actor": {"name": NAME, "mbox": f"mailto:{EMAIL}"}},
            )
        )
    return org, target


def test_export_holds_the_learners_data_and_nothing_of_another(ctx: AppContext) -> None:
    org, target = _org(ctx)
    me = viewer(ctx, org, "l0")
    document = data_rights.export_member(ctx, me)
    assert document["schema_version"] == data_rights.SCHEMA_VERSION
    tables = document["tables"]
    with ctx.session() as session:
        mine = set(session.scalars(select(Response.id).where(Response.user_id == target)))
    assert {r["id"] for r in tables["responses"]} == mine and len(mine) == 4
    assert tables["users"][0]["email"] == EMAIL and "password_hash" not in tables["users"][0]
    assert tables["mastery"] and tables["consent_events"] and tables["email_outbox"]
    assert [m["content"] for m in tables["tutor_messages"]] == [f"I am {NAME}"]
    assert len(tables["xapi_outbox"]) == 1
    others = {v for k, v in org.users.items() if k != "l0"}
    for name, rows in tables.items():
        for row in rows:
            assert row.get("user_id") in (None, target), name
            assert row.get("id") not in others or name != "users"
    text = json.dumps(document)
    assert "l1@acme.example" not in text and "L1" not in text
    # CSV: a zip of UTF-8-with-BOM CSV files, one per table
    archive = zipfile.ZipFile(io.BytesIO(data_rights.export_csv_zip(document)))
    raw = archive.read("responses.csv")
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert {int(r["id"]) for r in rows} == mine
    assert json.loads(archive.read("export.json"))["schema_version"] == data_rights.SCHEMA_VERSION
    # a learner cannot export another member; an admin of another organisation cannot either
    with pytest.raises(Forbidden):
        data_rights.export_member(ctx, me, org.users["l1"])
    other = make_org(ctx, "Other")
    add_user(ctx, other, "admin", role="admin", target_role=None)
    with pytest.raises(NotFound):
        data_rights.export_member(ctx, viewer(ctx, other, "admin"), target)
    admin_doc = data_rights.export_member(ctx, viewer(ctx, org, "admin"), target)
    assert {r["id"] for r in admin_doc["tables"]["responses"]} == mine


def _statistics(ctx: AppContext, org: Org) -> tuple[object, ...]:
    items, _newest = compute_item_report(ctx, org.id)
    team = team_report(ctx, viewer(ctx, org, "admin"), org.teams["Blue"])
    with ctx.session() as session:
        state = snapshot(session)
    return (
        items.model_dump(exclude={"computed_at"}),
        team.model_dump(include={"people", "suppressed", "heatmap", "gaps", "readiness"}),
        state,
    )


def _text_anywhere(ctx: AppContext, needles: list[str]) -> list[str]:
    """Every (table.column) whose text (JSON included) contains one of ``needles``."""
    found = []
    with ctx.session() as session:
        for table in Base.metadata.sorted_tables:
            cols = [c for c in table.columns if isinstance(c.type, String | Text | JSON)]
            for col in cols:
                for value in session.execute(select(col)).scalars():
                    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                    if any(n.lower() in text.lower() for n in needles):
                        found.append(f"{table.name}.{col.name}")
    return found


def test_erasure_keeps_statistics_and_leaves_no_trace(any_ctx: AppContext) -> None:
    ctx = any_ctx  # SQLite and PostgreSQL
    org, target = _org(ctx)
    assert _text_anywhere(ctx, [EMAIL, NAME])  # the scan does find them before
    before = _statistics(ctx, org)
    answers = 0
    with ctx.session() as session:
        answers = len(list(session.scalars(select(Response.id).where(Response.user_id == target))))
    other = make_org(ctx, "Other")
    add_user(ctx, other, "admin", role="admin", target_role=None)
    with pytest.raises(NotFound):
        data_rights.erase_member(ctx, viewer(ctx, other, "admin"), target)
    with pytest.raises(Forbidden):
        data_rights.erase_member(ctx, viewer(ctx, org, "boss"), target)
    admin = viewer(ctx, org, "admin")
    with pytest.raises(InvalidInput):
        data_rights.erase_member(ctx, admin, admin.id)

    result = data_rights.erase_member(ctx, admin, target)
    assert result.deleted_rows["tutor_conversations"] == 1 and result.deleted_rows["consent_events"] == 1
    assert _text_anywhere(ctx, [EMAIL, NAME]) == []
    assert _statistics(ctx, org) == before
    with ctx.session() as session:
        assert len(list(session.scalars(select(Response.id).where(Response.user_id == target)))) == answers
        rebuild_all(session)  # learnloop rebuild --check: the replay equals the live state
        session.flush()
        assert snapshot(session) == before[2]
        session.rollback()
        log = session.scalars(select(ErasureLog)).one()
        assert (log.org_id, log.member_id, log.erased_by, log.source) == (org.id, target, admin.id, "admin")
        assert session.scalars(select(TutorMessage)).all() == []
        member = session.get(User, target)
        assert member is not None and member.deactivated_at is not None
    with pytest.raises(Conflict):
        data_rights.erase_member(ctx, admin, target)
    with pytest.raises(Conflict):  # an erased account stays closed
        provisioning.reactivate(ctx, admin, target)


def test_every_table_about_a_person_is_classified() -> None:
    """A new table referring to users must be put in ERASE_TABLES or KEEP_TABLES (or handled)."""
    known = set(data_rights.ERASE_TABLES) | set(data_rights.KEEP_TABLES) | set(data_rights.SPECIAL_TABLES)
    assert set(data_rights.user_tables()) <= known


def test_scim_delete_follows_the_retention(ctx: AppContext) -> None:
    org = make_org(ctx, "Acme")
    add_user(ctx, org, "admin", role="admin", target_role=None)
    gone, later, kept = (add_user(ctx, org, k) for k in ("gone", "later", "kept"))
    admin = viewer(ctx, org, "admin")
    assert data_rights.get_policy(ctx, admin).deprovision_retention_days is None
    scim.delete_user(ctx, org.id, str(kept))  # default: keep (deactivate only)
    with pytest.raises(InvalidInput):
        data_rights.set_policy(ctx, admin, -1)
    with pytest.raises(Forbidden):
        data_rights.set_policy(ctx, viewer(ctx, org, "gone"), 0)

    data_rights.set_policy(ctx, admin, 0)
    scim.delete_user(ctx, org.id, str(gone))
    data_rights.set_policy(ctx, admin, 30)
    scim.delete_user(ctx, org.id, str(later))
    with ctx.session() as session:
        assert session.get(User, kept).email == "kept@acme.example"  # type: ignore[union-attr]
        assert session.get(User, gone).email == f"erased-{gone}@erased.invalid"  # type: ignore[union-attr]
        assert session.scalars(select(ErasureLog.source).where(ErasureLog.member_id == gone)).one() == "scim"
        job = session.scalars(select(Job).where(Job.task == "people.erase")).one()
        assert job.payload == {"org_id": org.id, "member_id": later}
        assert (job.run_at - job.created_at).days >= 29
    # the job, when its time comes, erases (and a second run is a no-op)
    assert data_rights.erase_scheduled(ctx, org.id, later) == "erased"
    assert data_rights.erase_scheduled(ctx, org.id, later) == "already erased"
    assert _text_anywhere(ctx, ["gone@acme.example", "later@acme.example"]) == []


def test_export_and_erase_over_http(client) -> None:  # type: ignore[no-untyped-def]
    ctx: AppContext = client.app.state.ctx
    org = make_org(ctx, "Acme")
    add_user(ctx, org, "admin", role="admin", target_role=None)
    learner = add_user(ctx, org, "ann")

    def login(email: str) -> dict[str, str]:
        from tests.services.report_builders import PASSWORD

        r = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['token']}"}

    ann = login("ann@acme.example")
    r = client.get("/api/v1/me/export?format=json", headers=ann)
    assert r.status_code == 200 and r.json()["tables"]["users"][0]["email"] == "ann@acme.example"
    assert "attachment" in r.headers["content-disposition"]
    r = client.get("/api/v1/me/export?format=csv", headers=ann)
    assert (
        r.status_code == 200
        and zipfile.ZipFile(io.BytesIO(r.content)).read("users.csv")[:3] == b"\xef\xbb\xbf"
    )
    bad = client.get("/api/v1/me/export?format=xml", headers=ann)
    assert bad.status_code == 422 and "json or csv" in bad.text
    assert client.post(f"/api/v1/people/{learner}/erase", headers=ann).status_code == 403
    wrong = client.post(
        "/api/v1/auth/login", json={"email": "ann@acme.example", "password": "not-her-password-9"}
    )
    assert wrong.status_code == 401
    account = throttle.login_budgets(ctx, "ann@acme.example", None)[0].key
    with ctx.session() as session:
        assert session.get(LoginThrottle, account) is not None
    admin = login("admin@acme.example")
    assert client.post(f"/api/v1/people/{learner}/erase", headers=admin).status_code == 200
    with ctx.session() as session:  # the throttle's counter of the account went with it
        assert session.get(LoginThrottle, account) is None
    assert client.post(f"/api/v1/people/{learner}/erase", headers=admin).status_code == 409
    assert client.get("/api/v1/me/export", headers=ann).status_code == 401  # the token is gone


def test_web_settings_download_and_admin_erasure(client) -> None:  # type: ignore[no-untyped-def]
    import re

    from tests.services.report_builders import PASSWORD

    def _login(client, email: str) -> str:  # type: ignore[no-untyped-def]
        client.cookies.clear()
        page = client.get("/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token
        form = {"email": email, "password": PASSWORD, "csrf_token": token.group(1)}
        assert client.post("/login", data=form, follow_redirects=False).status_code == 303
        found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/settings").text)
        assert found
        return found.group(1)

    ctx: AppContext = client.app.state.ctx
    org = make_org(ctx, "Acme")
    add_user(ctx, org, "admin", role="admin", target_role=None)
    ann = add_user(ctx, org, "ann")
    _login(client, "ann@acme.example")
    settings = client.get("/settings").text
    assert "/settings/export?format=json" in settings and "/settings/export?format=csv" in settings
    r = client.get("/settings/export?format=csv")
    assert r.status_code == 200 and "users.csv" in zipfile.ZipFile(io.BytesIO(r.content)).namelist()
    token = _login(client, "admin@acme.example")
    client.post(f"/admin/people/{ann}/deactivate", data={"csrf_token": token})
    assert f'action="/admin/people/{ann}/erase"' in client.get("/admin/people?status=all").text
    unconfirmed = client.post(f"/admin/people/{ann}/erase", data={"csrf_token": token})
    assert unconfirmed.status_code == 422
    done = client.post(
        f"/admin/people/{ann}/erase", data={"csrf_token": token, "confirm": "yes"}, follow_redirects=False
    )
    assert done.status_code == 303
    with ctx.session() as session:
        assert session.get(User, ann).email == f"erased-{ann}@erased.invalid"  # type: ignore[union-attr]


def test_retention_page(client) -> None:  # type: ignore[no-untyped-def]
    import re

    from tests.services.report_builders import PASSWORD

    ctx: AppContext = client.app.state.ctx
    org = make_org(ctx, "Acme")
    add_user(ctx, org, "admin", role="admin", target_role=None)
    page = client.get("/login").text
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found
    form = {"email": "admin@acme.example", "password": PASSWORD, "csrf_token": found.group(1)}
    assert client.post("/login", data=form, follow_redirects=False).status_code == 303
    page = client.get("/admin/data-policy").text
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found
    token = found.group(1)
    bad = client.post("/admin/data-policy", data={"csrf_token": token, "retention_days": "ten"})
    assert bad.status_code == 422
    too_long = client.post("/admin/data-policy", data={"csrf_token": token, "retention_days": "99999"})
    assert too_long.status_code == 422
    ok = client.post(
        "/admin/data-policy", data={"csrf_token": token, "retention_days": "30", "erase_on_deactivate": "yes"}
    )
    assert ok.status_code == 200 and 'value="30"' in ok.text
    assert data_rights.get_policy(ctx, viewer(ctx, org, "admin")).model_dump() == {
        "deprovision_retention_days": 30,
        "erase_on_deactivate": True,
    }
