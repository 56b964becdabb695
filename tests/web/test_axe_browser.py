"""axe-core in headless Chromium on every page, per role, in English and Chinese, at a phone and
a desktop size: no serious or critical violation. Every page of the router is also laid out at
360 and 390 px in both languages (no sideways scroll, no overlapping header or table boxes) and
photographed at 390x844 and 1280x900 (``LEARNLOOP_SCREENSHOTS``: the folder to keep them in).

The pages come from the router (``tests/web/router_pages.py``: every GET route of the web
routers, filled in from the demo data), on top of the responsive test's per-role list; a route
that is no page (a download, a redirect) is listed there with the reason.

axe-core comes from the npm registry (``scripts/_axe.sh`` installs it into a cache outside the
repository and exports ``LEARNLOOP_AXE_JS``); it is MPL-2.0 and not vendored here. Without it
the test is skipped locally and fails in CI.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from learnloop.services.context import AppContext
from learnloop.services.demo import DEMO_PASSWORD, create_demo
from learnloop.store.db import get_engine
from tests.conftest import DEFAULT_PACK, _make_ctx, need
from tests.web.router_pages import NOT_PAGES, RouterPages, router_pages, web_get_routes
from tests.web.test_responsive_browser import PAGES

pytestmark = pytest.mark.browser

#: name -> (width, height, UI language); the other two of the four (a phone in English, a
#: desktop in Chinese) are checked on every page by ``test_every_router_page_fits_phone_widths``
#: on the visit that checks its layout
VARIANTS = {
    "desktop-en": (1280, 900, "en"),
    "phone-zh": (390, 844, "zh_CN"),
}
#: the size each language's layout visit runs axe at (the one VARIANTS lacks for it)
AXE_ON_LAYOUT_VISIT = {"en": "phone", "zh_CN": "desktop"}
_RUN = """async () => {
  const result = await axe.run(document, {
    resultTypes: ['violations'],
    runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']},
  });
  return result.violations
    .filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ') + ' :: ' + n.failureSummary)}));
}"""


def _axe_js() -> Path | None:
    """axe.min.js as scripts/_axe.sh installs it (``LEARNLOOP_AXE_JS``, else its cache folder)."""
    path = os.environ.get("LEARNLOOP_AXE_JS")
    if path:
        return Path(path) if Path(path).is_file() else None
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    found = sorted(cache.glob("learnloop/axe-core-*/node_modules/axe-core/axe.min.js"))
    return found[-1] if found else None


@pytest.fixture(scope="module")
def demo_ctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppContext]:
    url = f"sqlite:///{tmp_path_factory.mktemp('axe') / 'demo.db'}"
    ctx = _make_ctx(url, DEFAULT_PACK)
    create_demo(ctx, learners=6, answers=(5, 15))
    yield ctx
    get_engine(url).dispose()


@pytest.fixture
def ctx(demo_ctx: AppContext) -> AppContext:
    return demo_ctx


@pytest.fixture(scope="module")
def found(demo_ctx: AppContext) -> RouterPages:
    return router_pages(demo_ctx)


def test_every_web_page_of_the_router_is_checked_or_explained(found: RouterPages) -> None:
    routes = web_get_routes()
    assert not found.unexplained, "visit these in the demo or list them in NOT_PAGES:\n" + "\n".join(
        found.unexplained
    )
    assert set(NOT_PAGES) <= set(routes), f"no longer routes: {sorted(set(NOT_PAGES) - set(routes))}"
    assert set(found.filled) | set(NOT_PAGES) == set(routes)
    assert len(found.filled) >= 35 and "/skills/{skill_id}" in found.filled


#: the variants that also check the router's pages beyond the responsive test's list: both
#: languages and both sizes, in half the time of all four
ROUTER_VARIANTS = ("desktop-en", "phone-zh")


def _pages(found: RouterPages, variant: str) -> dict[str | None, list[str]]:
    """The responsive test's pages per role, and every page of the router not among them."""
    pages = {who: list(paths) for who, paths in PAGES.items()}
    if variant in ROUTER_VARIANTS:
        for who, paths in found.pages.items():
            pages.setdefault(who, []).extend(p for p in paths if p not in pages[who])
    return pages


def _login(page, base: str, email: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(base + "/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_load_state()


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_no_serious_accessibility_violations(
    live_server: str, page, found: RouterPages, variant: str
) -> None:  # type: ignore[no-untyped-def]
    axe = _axe_js()
    if axe is None:
        need("axe-core is not installed (scripts/_axe.sh installs it from npm)")
        return
    width, height, language = VARIANTS[variant]
    page.set_viewport_size({"width": width, "height": height})
    # an init script runs in every page before its own (the pages' CSP forbids inline scripts)
    page.context.add_init_script(path=str(axe))
    problems: list[str] = []
    checked = 0
    for email, paths in _pages(found, variant).items():
        page.context.clear_cookies()
        if email:
            _login(page, live_server, email)
        page.goto(live_server + f"/lang/{language}")
        for path in paths:
            response = page.goto(live_server + path)
            assert response is not None and response.status in (200, 404), f"{email} {path}"
            for v in page.evaluate(_RUN):
                problems.append(f"{email} {path}: {v['impact']} {v['id']} ({v['help']}): {v['nodes']}")
            checked += 1
    assert checked >= 40
    assert not problems, "\n".join(problems)


#: phone widths every page of the router is laid out at, in both languages (the header and
#: tables checked at each); screenshots at a phone and a desktop size
LAYOUT_WIDTHS = (360, 390)
SHOT_SIZES = {"phone": (390, 844), "desktop": (1280, 900)}


@pytest.mark.parametrize("language", ["en", "zh_CN"])
def test_every_router_page_fits_phone_widths(
    live_server: str, page, found: RouterPages, language: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """Every page of the router (and the responsive test's list), at 360 and 390 px: no sideways
    page scroll (``scrollWidth`` <= the viewport), nothing in the header cut off or overlapping,
    no table cell spilling over its neighbours. The page is loaded once and the viewport resized
    (Chromium lays it out again); a screenshot at 390x844 and at 1280x900 each, and axe at the
    size of this language that ``test_no_serious_accessibility_violations`` leaves out."""
    from tests.web.test_responsive_browser import _LAYOUT

    shots = Path(os.environ.get("LEARNLOOP_SCREENSHOTS") or tmp_path) / language
    shots.mkdir(parents=True, exist_ok=True)
    axe = _axe_js()
    if axe is not None:
        page.context.add_init_script(path=str(axe))
    problems: list[str] = []
    checked = 0
    for email, paths in _pages(found, ROUTER_VARIANTS[0]).items():
        page.context.clear_cookies()
        page.set_viewport_size({"width": LAYOUT_WIDTHS[-1], "height": 844})
        if email:
            _login(page, live_server, email)
        page.goto(live_server + f"/lang/{language}")
        for path in paths:
            page.set_viewport_size({"width": LAYOUT_WIDTHS[-1], "height": 844})
            response = page.goto(live_server + path)
            assert response is not None and response.status in (200, 404), f"{email} {path}"
            who = (email or "anonymous").split("@")[0]
            for width in LAYOUT_WIDTHS:
                page.set_viewport_size({"width": width, "height": 844})
                layout = page.evaluate(_LAYOUT)
                assert layout["inner"] == width
                if layout["scroll"] > layout["inner"]:
                    problems.append(f"{width} px {email} {path}: page is {layout['scroll']} px wide")
                problems += [f"{width} px {email} {path}: {p}" for p in layout["problems"]]
            if email and page.locator("header.top").count():  # the links are behind the menu at phone width
                if not page.locator("header .nav-menu > summary").is_visible():
                    problems.append(f"{email} {path}: no menu button at phone width")
                if page.locator("header .nav-wide").is_visible():
                    problems.append(f"{email} {path}: the wide navigation shows at phone width")
            for size, (width, height) in SHOT_SIZES.items():
                page.set_viewport_size({"width": width, "height": height})
                name = f"{size}-{who}-{path.strip('/').replace('/', '_') or 'home'}.png"
                page.screenshot(path=str(shots / name), full_page=True)
                if axe is not None and size == AXE_ON_LAYOUT_VISIT[language]:
                    for v in page.evaluate(_RUN):
                        problems.append(
                            f"{size} {email} {path}: {v['impact']} {v['id']} ({v['help']}): {v['nodes']}"
                        )
            checked += 1
    assert checked >= 40 and len(list(shots.glob("*.png"))) == 2 * checked
    assert not problems, "\n".join(problems)
    if axe is None:
        need("axe-core is not installed (scripts/_axe.sh installs it from npm)")
