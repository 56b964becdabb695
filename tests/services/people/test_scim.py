"""SCIM 2.0 against a running Learnloop on loopback: scim2-tester's every check passes, and the
mapping (members, teams, deactivation, manager) and the refusals (token, other organisations,
invalid payloads) hold."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from learnloop.services import auth
from learnloop.services.auth import create_organisation, create_user
from learnloop.services.context import AppContext
from learnloop.services.people import scim
from tests.conftest import need_module

PASSWORD = "violet-harbour-57-lantern"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


@pytest.fixture
def server(ctx: AppContext) -> Iterator[str]:
    import uvicorn

    from learnloop.server import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    app = create_app(ctx)
    instance = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not instance.started and time.time() < deadline:
        time.sleep(0.05)
    assert instance.started
    yield f"http://127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(timeout=10)


def _tokens(ctx: AppContext) -> tuple[str, str, int]:
    """SCIM tokens of two organisations, and the id of a member of the second."""
    with ctx.session() as session:
        a = create_organisation(session, "Acme")
        create_user(
            session, org_id=a.id, email="admin@acme.example", name="Admin", password=PASSWORD, role="admin"
        )
        b = create_organisation(session, "Other")
        create_user(
            session, org_id=b.id, email="admin@other.example", name="Admin B", password=PASSWORD, role="admin"
        )
        other_member = create_user(
            session, org_id=b.id, email="bob@other.example", name="Bob", password=PASSWORD
        ).id
    token_a = scim.generate_token(ctx, auth.login(ctx, email="admin@acme.example", password=PASSWORD).user)
    token_b = scim.generate_token(ctx, auth.login(ctx, email="admin@other.example", password=PASSWORD).user)
    return token_a, token_b, other_member


def test_scim2_tester_passes_every_check(ctx: AppContext, server: str) -> None:
    need_module("scim2_tester")
    need_module("httpx2")
    import httpx2
    from scim2_client.engines.httpx2 import SyncSCIMClient
    from scim2_tester import Status, check_server

    token, _other, _member = _tokens(ctx)
    http = httpx2.Client(
        base_url=f"{server}/scim/v2", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    results = check_server(SyncSCIMClient(http))
    failed = [f"{r.title}: {r.reason}" for r in results if r.status not in (Status.SUCCESS, Status.SKIPPED)]
    assert results and not failed, "\n".join(failed)
    assert sum(r.status == Status.SUCCESS for r in results) > 20


def test_users_and_groups_map_to_members_and_teams(ctx: AppContext, server: str) -> None:
    token, token_b, other_member = _tokens(ctx)
    scim_api = httpx.Client(base_url=f"{server}/scim/v2", headers={"Authorization": f"Bearer {token}"})
    ann = auth.login(ctx, email="admin@acme.example", password=PASSWORD)
    boss = scim_api.post(
        "/Users", json={"schemas": [USER], "userName": "boss@acme.example", "displayName": "Bo Boss"}
    ).json()
    created = scim_api.post(
        "/Users",
        json={
            "schemas": [USER, ENTERPRISE],
            "userName": "lin",
            "displayName": "Lin Wu",
            "active": True,
            "emails": [{"value": "lin@acme.example", "primary": True}],
            ENTERPRISE: {"manager": {"value": boss["id"], "$ref": f"{server}/scim/v2/Users/{boss['id']}"}},
        },
    )
    assert created.status_code == 201, created.text
    lin = created.json()
    assert lin[ENTERPRISE]["manager"]["value"] == boss["id"] and lin["active"] is True
    found = scim_api.get("/Users", params={"filter": 'userName eq "lin"'}).json()
    assert found["totalResults"] == 1 and found["Resources"][0]["id"] == lin["id"]
    team = scim_api.post(
        "/Groups", json={"schemas": [GROUP], "displayName": "Blue", "members": [{"value": lin["id"]}]}
    )
    assert team.status_code == 201, team.text
    assert scim_api.get(f"/Users/{lin['id']}").json()["groups"][0]["display"] == "Blue"
    # the same member in Learnloop: team, manager (promoted to manager), active
    from learnloop.services.people import provisioning

    admin = ann.user
    row = provisioning.search_members(ctx, admin, q="lin@").members[0]
    assert row.team == "Blue" and row.manager == "Bo Boss"
    assert provisioning.search_members(ctx, admin, q="boss@").members[0].role == "manager"
    # active=false deactivates at once (PATCH, as identity providers send it)
    with ctx.session() as session:
        from learnloop.store.models import User

        member = session.get(User, int(lin["id"]))
        assert member is not None
        login = auth.login_as(ctx, session, member)
    assert auth.resolve(ctx, login.token) is not None
    patched = scim_api.patch(
        f"/Users/{lin['id']}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": False}],
        },
    )
    assert patched.status_code == 200 and patched.json()["active"] is False, patched.text
    assert auth.resolve(ctx, login.token) is None
    # refusals: no token, a wrong token, another organisation's ids, invalid payloads
    assert httpx.get(f"{server}/scim/v2/Users").status_code == 401
    wrong = httpx.get(f"{server}/scim/v2/Users", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json()["schemas"] == [
        "urn:ietf:params:scim:api:messages:2.0:Error"
    ]
    assert scim_api.get(f"/Users/{other_member}").status_code == 404
    other_api = httpx.Client(base_url=f"{server}/scim/v2", headers={"Authorization": f"Bearer {token_b}"})
    assert other_api.get(f"/Users/{lin['id']}").status_code == 404
    assert other_api.get(f"/Groups/{team.json()['id']}").status_code == 404
    steal = other_api.post(
        "/Groups", json={"schemas": [GROUP], "displayName": "Theirs", "members": [{"value": lin["id"]}]}
    )
    assert steal.status_code == 400 and steal.json()["scimType"] == "invalidValue"
    bad_manager = other_api.post(
        "/Users",
        json={
            "schemas": [USER, ENTERPRISE],
            "userName": "x@other.example",
            ENTERPRISE: {"manager": {"value": boss["id"], "$ref": "x"}},
        },
    )
    assert bad_manager.status_code == 400
    assert (
        other_api.get("/Users", params={"filter": 'userName eq "x@other.example"'}).json()["totalResults"]
        == 0
    )
    assert scim_api.post("/Users", content=b"{not json").status_code == 400
    assert scim_api.post("/Users", json={"schemas": [USER]}).status_code == 400
    duplicate = scim_api.post(
        "/Users", json={"schemas": [USER], "userName": "lin", "emails": [{"value": "z@acme.example"}]}
    )
    assert duplicate.status_code == 409 and duplicate.json()["scimType"] == "uniqueness"
    assert scim_api.get("/Users", params={"filter": 'title co "x"'}).status_code == 400
    assert scim_api.get("/Nothing").status_code == 404
    # deprovisioning removes the member from the organisation
    assert scim_api.delete(f"/Users/{lin['id']}").status_code == 204
    assert scim_api.get(f"/Users/{lin['id']}").status_code == 404
    again = scim_api.post(
        "/Users", json={"schemas": [USER], "userName": "lin", "emails": [{"value": "lin@acme.example"}]}
    )
    assert again.status_code == 201 and again.json()["id"] == lin["id"]  # the same member returns


def test_admin_page_makes_a_token_shown_once(client, ctx: AppContext) -> None:  # type: ignore[no-untyped-def]
    import re

    _tokens(ctx)
    client.cookies.clear()
    page = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    client.post("/login", data={"email": "admin@acme.example", "password": PASSWORD, "csrf_token": csrf})
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/admin/identity").text).group(1)  # type: ignore[union-attr]
    made = client.post("/admin/identity/scim-token", data={"csrf_token": csrf})
    token = re.search(r'<code id="scim-token">([^<]+)</code>', made.text).group(1)  # type: ignore[union-attr]
    assert client.get("/scim/v2/Users", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert token not in client.get("/admin/identity").text
    client.post("/admin/identity/scim-token/revoke", data={"csrf_token": csrf})
    assert client.get("/scim/v2/Users", headers={"Authorization": f"Bearer {token}"}).status_code == 401
