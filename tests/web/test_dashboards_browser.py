"""Every dashboard in headless Chromium on the demo organisation, with a screenshot of each.

Screenshots go to var/screenshots/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from learnloop.content.loader import load_pack
from learnloop.services.context import AppContext
from learnloop.services.demo import DEMO_PASSWORD, create_demo
from learnloop.store.db import get_engine
from learnloop.store.models import Response, User, utcnow
from tests.conftest import DEFAULT_PACK, _make_ctx

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
PLANTED: dict[str, str] = {}


@pytest.fixture(scope="module")
def demo_ctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppContext]:
    url = f"sqlite:///{tmp_path_factory.mktemp('dash') / 'demo.db'}"
    ctx = _make_ctx(url, DEFAULT_PACK)
    create_demo(ctx, learners=48, answers=(15, 45))
    PLANTED["item"] = _plant_a_miskeyed_item(ctx)
    yield ctx
    get_engine(url).dispose()


def _plant_a_miskeyed_item(ctx: AppContext) -> str:
    """Forty learners answer a choice item no one has seen; the strongest pick the same wrong option."""
    rng = random.Random(3)
    with ctx.session() as session:
        seen = {r[0] for r in session.query(Response.item_id).distinct()}
        item = next(i for i in ctx.active_pack(session).pack.items if i.kind == "choice" and i.id not in seen)
        assert item.key and item.options
        wrong = sorted(o for o in item.options if o != item.key)[0]
        learners = session.query(User).filter(User.is_simulated.is_(True)).order_by(User.id).all()[:40]
        at = utcnow() - timedelta(days=1)
        for user in learners:
            rows = session.query(Response.correct).filter(Response.user_id == user.id).all()
            strong = sum(r[0] for r in rows) / max(len(rows), 1) > 0.5
            choice = wrong if strong or rng.random() < 0.3 else item.key
            session.add(
                Response(
                    org_id=user.org_id,
                    user_id=user.id,
                    item_id=item.id,
                    skills=list(item.skills),
                    kind="choice",
                    context="practice",
                    answer={"choice": choice},
                    correct=choice == item.key,
                    score=float(choice == item.key),
                    hints_used=0,
                    duration_ms=30_000,
                    created_at=at,
                )
            )
    return item.id


@pytest.fixture
def ctx(demo_ctx: AppContext) -> AppContext:
    return demo_ctx


def _login(page, base: str, email: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(base + "/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_load_state()


def _shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)


def _plots_loaded(page) -> int:  # type: ignore[no-untyped-def]
    """Number of plots on the page, after checking each one decoded to a real picture."""
    plots = page.locator("img.plot")
    for i in range(plots.count()):
        assert plots.nth(i).evaluate("img => img.complete && img.naturalWidth > 200")
    return plots.count()


def test_manager_dashboard_filters_and_exports(live_server: str, page) -> None:  # type: ignore[no-untyped-def]
    _login(page, live_server, "manager@acme.example")
    page.click("nav >> text=Reports")
    page.wait_for_url("**/reports/team")
    assert _plots_loaded(page) == 1  # the trend; heatmap, gaps and readiness are coloured tables
    cells = page.locator("table.heatmap td[data-share]")
    assert cells.count() >= 4 and page.locator("table.heatmap td.hidden").count() >= 1
    assert page.locator("#gaps tbody tr").count() >= 1
    assert page.locator("#roles tbody tr").count() == len(load_pack(DEFAULT_PACK).roles)
    assert page.locator("#trend tbody tr").count() >= 2
    # Names only for the manager's consenting direct reports, all in the manager's team.
    assert {t.strip() for t in page.locator("#people tbody tr td:nth-child(2)").all_inner_texts()} == {
        "Platform"
    }
    _shot(page, "reports_team.png")

    page.select_option("select[name=team]", label="Platform (13)")
    page.click("#filters button[type=submit]")
    page.wait_for_url("**/reports/team?team=*")
    assert "Platform" in page.locator("h1 + p").inner_text()
    _shot(page, "reports_team_platform.png")

    with page.expect_download() as pdf:
        page.click("text=PDF report")
    assert Path(pdf.value.path()).read_bytes()[:5] == b"%PDF-"
    with page.expect_download() as csv_file:
        page.click("text=CSV (gaps)")
    saved = Path(csv_file.value.path()).read_bytes()
    assert saved.startswith(b"\xef\xbb\xbf")  # a BOM, so Excel reads UTF-8
    assert saved.decode("utf-8-sig").startswith("role_id,role,skill_id")

    page.click("#people tbody tr a >> nth=0")
    page.wait_for_url("**/reports/learners/*")
    assert page.locator("h1").inner_text().startswith("Progress of")


def test_manager_dashboard_in_chinese(live_server: str, page) -> None:  # type: ignore[no-untyped-def]
    _login(page, live_server, "manager@acme.example")
    page.goto(live_server + "/lang/zh_CN")
    page.goto(live_server + "/reports/team")
    assert "团队分析" in page.locator("h1").inner_text()
    assert _plots_loaded(page) == 1
    _shot(page, "reports_team_zh.png")


def test_learner_dashboard(live_server: str, page) -> None:  # type: ignore[no-untyped-def]
    _login(page, live_server, "learner001@acme.example")
    page.goto(live_server + "/reports")
    page.wait_for_url("**/reports/me")
    assert _plots_loaded(page) == 2
    assert page.locator("#domains tbody tr").count() >= 2
    assert page.locator("#credentials").is_visible()
    _shot(page, "reports_learner.png")


def test_instructor_dashboard_links_flags_to_items(live_server: str, page) -> None:  # type: ignore[no-untyped-def]
    _login(page, live_server, "instructor@acme.example")
    page.goto(live_server + "/reports")
    page.wait_for_url("**/reports/items")
    assert _plots_loaded(page) == 1
    suspect = PLANTED["item"]
    flagged = page.locator(f"tr[data-flagged='{suspect}']")
    assert flagged.locator("[data-flag=key_suspect]").count() == 1
    assert page.locator("#coverage tbody tr").count() == len(load_pack(DEFAULT_PACK).skills)
    _shot(page, "reports_items.png")
    flagged.locator("a").click()
    page.wait_for_url(f"**/items/{suspect}")
