"""The exchange page in headless Chromium, as an admin uses it: choose a QTI package from the
disk (the page's script sends it base64-encoded: the site takes no multipart), check it, read
the problems, import a clean one; axe-core finds no serious problem on the page with a
report.

Waits use locator expectations, never `wait_for_function` with a string: the page's CSP
(script-src 'self') refuses the eval Playwright polls such a string with, so the wait failed
whenever the first check came too early (stop 25's CI)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from learnloop.content.loader import load_pack
from learnloop.interop import qti
from learnloop.services.context import AppContext
from tests.conftest import MINI_PACK
from tests.interop.test_badges import PASSWORD, _admin
from tests.interop.test_exchange import _renamed
from tests.web.conftest import chromium_browser, live_server, page  # noqa: F401  (fixtures)
from tests.web.test_axe_browser import _RUN, _axe_js

pytestmark = pytest.mark.browser


def _login(pg, base: str, email: str) -> None:  # type: ignore[no-untyped-def]
    pg.goto(base + "/login")
    pg.fill("input[name=email]", email)
    pg.fill("input[name=password]", PASSWORD)
    pg.click("form button[type=submit]")
    pg.wait_for_load_state()


def test_exchange_page_in_a_browser(
    ctx: AppContext,
    live_server: str,  # noqa: F811
    page,  # noqa: F811
    tmp_path: Path,
) -> None:  # type: ignore[no-untyped-def]
    axe = _axe_js()
    if axe is not None:
        page.context.add_init_script(path=str(axe))
    _admin(ctx, "admin@example.org")
    pack = load_pack(MINI_PACK)
    data, _ = qti.export_package([i.model_dump(mode="json", exclude_none=True) for i in pack.items])
    good = tmp_path / "items.zip"
    good.write_bytes(_renamed(data, "n"))
    members = {
        n: zipfile.ZipFile(io.BytesIO(data)).read(n) for n in zipfile.ZipFile(io.BytesIO(data)).namelist()
    }
    members["items/apps.rag.why.xml"] = members["items/apps.rag.why.xml"].replace(
        b"qti-choice-interaction", b"qti-hotspot-interaction"
    )
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        for name, content in members.items():
            zf.writestr(name, content)

    _login(page, live_server, "admin@example.org")
    page.goto(live_server + "/admin/exchange")
    page.set_input_files("#exchange-file", str(bad))
    expect(page.locator("input[name=data_b64]")).not_to_have_value("")
    assert page.input_value("select[name=format]") == "qti"  # chosen from the file's name
    page.click("button[value=check]")
    page.wait_for_load_state()
    text = page.inner_text("main") if page.query_selector("main") else page.inner_text("body")
    assert "items/apps.rag.why.xml: qti-hotspot-interaction is not supported" in text
    assert "nothing was stored" in text

    page.set_input_files("#exchange-file", str(good))
    expect(page.locator("input[name=filename]")).to_have_value("items.zip")
    page.click("button[value=check]")
    page.wait_for_load_state()
    assert "No problems found" in page.inner_text("body")
    if axe is not None:
        # the page with a report of problems (the router's axe test sees it without one)
        page.goto(live_server + "/admin/exchange")
        page.set_input_files("#exchange-file", str(bad))
        expect(page.locator("input[name=data_b64]")).not_to_have_value("")
        page.click("button[value=check]")
        page.wait_for_load_state()
        assert page.evaluate(_RUN) == []
        page.goto(live_server + "/admin/exchange")
    page.set_input_files("#exchange-file", str(good))
    expect(page.locator("input[name=filename]")).to_have_value("items.zip")
    page.click("button[value=import]")
    page.wait_for_load_state()
    assert "drafts waiting for review" in page.inner_text("body")
