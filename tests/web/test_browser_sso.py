"""End to end in headless Chromium: log in through a real OpenID Connect provider on loopback
(oidc-provider-mock), arriving in Learnloop with a just-in-time account."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from learnloop.services import auth
from learnloop.services.auth import create_organisation, create_user
from learnloop.services.context import AppContext
from learnloop.services.people import oidc
from tests.conftest import need_module

pytestmark = pytest.mark.browser
PASSWORD = "violet-harbour-57-lantern"


@pytest.fixture
def provider() -> Iterator[str]:
    need_module("oidc_provider_mock")
    import oidc_provider_mock

    with oidc_provider_mock.run_server_in_thread() as server:
        yield f"http://localhost:{server.server_port}"


def test_browser_logs_in_through_the_provider(live_server: str, page, ctx: AppContext, provider: str) -> None:  # type: ignore[no-untyped-def]
    with ctx.session() as session:
        org = create_organisation(session, "Acme", slug="acme")
        create_user(
            session, org_id=org.id, email="admin@acme.example", name="Admin", password=PASSWORD, role="admin"
        )
    admin = auth.login(ctx, email="admin@acme.example", password=PASSWORD).user
    oidc.configure(
        ctx,
        admin,
        issuer=provider,
        client_id="learnloop",
        client_secret="s",
        domains="acme.example",
        sso_only=True,
    )
    page.goto(live_server + "/login", wait_until="domcontentloaded")
    page.fill("#sso input[name=email]", "mei@acme.example")
    page.click("#sso button[type=submit]")
    page.wait_for_url(provider + "/oauth2/authorize**", wait_until="domcontentloaded")
    page.fill("input[name=sub]", "mei@acme.example")
    page.click("button:has-text('Authorize')", no_wait_after=True)
    page.wait_for_url(live_server + "/**", wait_until="domcontentloaded")
    page.goto(live_server + "/settings", wait_until="domcontentloaded")
    assert "mei" in page.inner_text("header")
    # with SSO only, the password form is refused for the organisation's members
    page.context.clear_cookies()
    page.goto(live_server + "/login", wait_until="domcontentloaded")
    page.fill("form[action='/login'] input[name=email]", "admin@acme.example")
    page.fill("form[action='/login'] input[name=password]", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    assert "single sign-on" in page.inner_text("#page-error")
