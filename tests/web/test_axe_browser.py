"""axe-core in headless Chromium on every main page, per role, in English and Chinese, at a
phone and a desktop size: no serious or critical violation.

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
from tests.web.test_responsive_browser import PAGES

pytestmark = pytest.mark.browser

#: name -> (width, height, UI language)
VARIANTS = {
    "desktop-en": (1280, 900, "en"),
    "phone-en": (390, 844, "en"),
    "desktop-zh": (1280, 900, "zh_CN"),
    "phone-zh": (390, 844, "zh_CN"),
}
#: pages beyond the responsive test's: a lesson, an item's page, a skill's page
EXTRA = {
    "learner001@acme.example": ["/lessons/lesson.llm.tokens"],
    "instructor@acme.example": ["/items/llm.tokens.what-is-a-token"],
}
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


def _login(page, base: str, email: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(base + "/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_load_state()


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_no_serious_accessibility_violations(live_server: str, page, variant: str) -> None:  # type: ignore[no-untyped-def]
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
    for email, paths in PAGES.items():
        page.context.clear_cookies()
        if email:
            _login(page, live_server, email)
        page.goto(live_server + f"/lang/{language}")
        for path in [*paths, *EXTRA.get(email or "", [])]:
            response = page.goto(live_server + path)
            assert response is not None and response.status in (200, 404), f"{email} {path}"
            for v in page.evaluate(_RUN):
                problems.append(f"{email} {path}: {v['impact']} {v['id']} ({v['help']}): {v['nodes']}")
            checked += 1
    assert checked >= 20
    assert not problems, "\n".join(problems)
