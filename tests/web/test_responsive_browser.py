"""Every main page at a phone (390x844) and a desktop (1280x900) size in headless Chromium, per role.

Each page must fit its viewport (no horizontal page scroll: wide tables scroll inside their
card), its header must show the brand, the menu and "Log out" whole and without overlap, and
the practice loop must work from the keyboard: Enter submits, and "Next item" is at most two
Tabs from where the feedback page puts the focus. Screenshots go to a temporary folder only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from learnloop.content.loader import load_pack
from learnloop.services.context import AppContext
from learnloop.services.demo import DEMO_PASSWORD, create_demo
from learnloop.store.db import get_engine
from tests.conftest import DEFAULT_PACK, _make_ctx

pytestmark = pytest.mark.browser

#: name -> (width, height, language); 360 and 390 px in both languages, with screenshots at
#: 390x844 and 1280x900, are checked on every page of the router by
#: tests/web/test_axe_browser.py::test_every_router_page_fits_phone_widths
SIZES = {
    "desktop": (1280, 900, "en"),
    "smallest": (320, 640, "zh_CN"),
    "wide-desktop": (1440, 900, "zh_CN"),
}
PAGES = {
    None: ["/", "/login", "/signup", "/no-such-page"],
    "learner001@acme.example": [
        "/",
        "/practice",
        "/skills",
        "/skills/llm.tokens",
        "/path",
        "/lessons",
        "/roles",
        "/reports/me",
        "/check",
        "/tutor",
        "/no-such-page",
    ],
    "manager@acme.example": ["/reports/team", "/reports/me"],
    "instructor@acme.example": ["/items", "/reports/items", "/reviews", "/authoring"],
    "admin@acme.example": ["/admin", "/admin/llm", "/items"],
}

#: the page's width against its viewport's, and every header box that is cut off or overlaps
_LAYOUT = """() => {
  const out = {scroll: document.documentElement.scrollWidth, inner: window.innerWidth, problems: []};
  const visible = el => { const r = el.getBoundingClientRect(); const s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' ? r : null; };
  const boxes = [];
  for (const sel of ['header.top .brand', 'header.top .nav-wide', 'header.top .nav-menu > summary',
                     'header.top .account .lang', 'header.top .account .who', 'header.top .account .logout',
                     'header.top .account a[href="/login"]', 'header.top .account a[href="/signup"]']) {
    const el = document.querySelector(sel); if (!el) continue;
    const r = visible(el); if (!r) continue;
    if (r.left < 0 || r.right > window.innerWidth + 0.5) out.problems.push(sel + ' is cut off');
    boxes.push([sel, r]);
  }
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const [a, ra] = boxes[i], [b, rb] = boxes[j];
    const overlap = Math.min(ra.right, rb.right) - Math.max(ra.left, rb.left) > 1 &&
                    Math.min(ra.bottom, rb.bottom) - Math.max(ra.top, rb.top) > 1;
    if (overlap) out.problems.push(a + ' overlaps ' + b);
  }
  // no cell's content spills over its neighbours (a fixed-width bar in a narrow column did)
  for (const cell of document.querySelectorAll('main td, main th')) {
    if (!visible(cell) || getComputedStyle(cell).writingMode !== 'horizontal-tb') continue;
    if (cell.scrollWidth > cell.clientWidth + 1) {
      out.problems.push('table cell overflows: ' + cell.innerText.trim().slice(0, 40));
    }
  }
  return out;
}"""


@pytest.fixture(scope="module")
def demo_ctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppContext]:
    url = f"sqlite:///{tmp_path_factory.mktemp('responsive') / 'demo.db'}"
    ctx = _make_ctx(url, DEFAULT_PACK)
    create_demo(ctx, learners=12, answers=(5, 20))
    yield ctx
    get_engine(url).dispose()


@pytest.fixture
def ctx(demo_ctx: AppContext) -> AppContext:
    return demo_ctx


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


def _login(page, base: str, email: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(base + "/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_load_state()


@pytest.mark.parametrize("size", sorted(SIZES))
def test_every_page_fits_the_viewport(live_server: str, page, shots: Path, size: str) -> None:  # type: ignore[no-untyped-def]
    width, height, language = SIZES[size]
    page.set_viewport_size({"width": width, "height": height})
    problems: list[str] = []
    checked = 0
    for email, paths in PAGES.items():
        page.context.clear_cookies()
        if email:
            _login(page, live_server, email)
        page.goto(live_server + f"/lang/{language}")
        assert page.locator("html").get_attribute("lang") == ("zh-CN" if language == "zh_CN" else "en")
        for path in paths:
            response = page.goto(live_server + path)
            assert response is not None
            expected = 404 if path == "/no-such-page" else 200
            assert response.status == expected, f"{email} {path}: {response.status}"
            layout = page.evaluate(_LAYOUT)
            if layout["scroll"] > layout["inner"]:
                problems.append(f"{email} {path}: page is {layout['scroll']} px wide in {layout['inner']}")
            problems += [f"{email} {path}: {p}" for p in layout["problems"]]
            name = (
                f"{size}-{(email or 'anonymous').split('@')[0]}-{path.strip('/').replace('/', '_') or 'home'}"
            )
            page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
            checked += 1
            if email and width < 600:
                # the links are behind the menu at phone width, in a row on a desktop
                assert page.locator("header .nav-menu > summary").is_visible()
                assert not page.locator("header .nav-wide").is_visible()
            elif email:
                assert page.locator("header .nav-wide").is_visible()
    assert checked == sum(len(p) for p in PAGES.values())
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("width", [320, 390])
def test_phone_menu_opens_and_logs_out(live_server: str, page, width: int) -> None:  # type: ignore[no-untyped-def]
    page.set_viewport_size({"width": width, "height": 740})
    _login(page, live_server, "admin@acme.example")
    page.goto(live_server + "/lang/en")  # the page-size test may have left the admin in Chinese
    menu = page.locator("header .nav-menu")
    assert not menu.get_by_role("link", name="Skill map").is_visible()
    menu.locator("summary").click()
    link = menu.get_by_role("link", name="Skill map")
    assert link.is_visible()
    box = menu.locator("nav").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
    assert page.evaluate("document.documentElement.scrollWidth") <= width  # open, it still fits
    link.click()
    page.wait_for_url("**/skills")
    logout = page.get_by_role("button", name="Log out")
    box = logout.bounding_box()
    assert box is not None and box["x"] + box["width"] <= width
    logout.click()
    page.wait_for_url(live_server + "/")
    assert page.get_by_role("link", name="Sign up").is_visible()


def _answer_with_the_mouse(page, item) -> None:  # type: ignore[no-untyped-def]
    if item.kind == "text":
        page.fill("textarea[name=text]", item.reference_answers[0])
    else:
        page.fill("textarea[name=code]", item.solution)
    page.click("#answer-form button[type=submit]")
    page.wait_for_selector("article.feedback")


def test_practice_loop_from_the_keyboard(live_server: str, page) -> None:  # type: ignore[no-untyped-def]
    pack = load_pack(DEFAULT_PACK)
    page.set_viewport_size({"width": 390, "height": 844})
    _login(page, live_server, "learner002@acme.example")
    done: set[str] = set()
    seen: list[str] = []
    # one skill with choice and numeric items, practised on its own: the policy brings every
    # kind a skill has within its first 30 items (which kind comes first is the policy's call)
    for _ in range(30):
        page.goto(live_server + "/practice?skill=ml.probability")
        item = pack.item(page.locator("article.item").get_attribute("data-item-id"))
        seen.append(f"{item.id}:{item.kind}")
        # a family item shows this presentation's instance (its numbers, its answer)
        presentation = page.locator("#answer-form input[name=presentation_id]").get_attribute("value")
        item = item.instance_for(presentation or "")
        if item.kind == "choice":
            wrong = next(o for o in item.options or {} if o != item.key)
            radio = page.locator(f"input[name=choice][value='{wrong}']")
            radio.focus()
            page.keyboard.press("Space")
            assert radio.is_checked()
            page.keyboard.press("Enter")  # Enter on a radio button submits the form
        elif item.kind == "numeric":
            box = page.get_by_label("Your answer")  # the field is named by its label
            box.focus()
            if "numeric" not in done:
                # a comma that could mean 1.5 or 1500 is refused, said aloud, and the typing kept
                box.focus()
                page.keyboard.type("1,500")
                page.keyboard.press("Enter")
                page.wait_for_selector("#page-error")
                alert = page.get_by_role("alert")
                assert "1.500" in alert.inner_text() and "1500" in alert.inner_text()
                box = page.get_by_label("Your answer")
                assert box.input_value() == "1,500" and box.get_attribute("aria-invalid") == "true"
                assert "page-error" in (box.get_attribute("aria-describedby") or "")
                assert page.evaluate("document.activeElement.id") == "answer-value"  # back in the box
                box.fill("")
            typed = f"{item.answer:g}"
            if "." in typed and len(typed.split(".")[1]) != 3:  # 0,25 is a decimal; 1,500 is refused
                typed = typed.replace(".", ",")
            page.keyboard.type(typed)
            page.keyboard.press("Enter")
        else:
            _answer_with_the_mouse(page, item)
            continue
        page.wait_for_selector("article.feedback")
        # the verdict has the focus and sits in a live region; "Next item" is at most 2 Tabs on
        assert page.evaluate("document.activeElement.id") == "verdict"
        assert page.locator("#verdict").evaluate("h => h.closest('[role=status]') !== null")
        given = page.locator("[data-given]").inner_text()
        if item.kind == "choice":
            assert given.startswith(f"{wrong})")
            assert page.locator(".correct-answer").inner_text().startswith(f"{item.key})")
        else:
            assert given.startswith(typed)  # the answer as typed, decimal comma and all
            assert page.locator("article.feedback").get_attribute("data-correct") == "true"
        tabs = 0
        while page.evaluate("document.activeElement.id") != "next" and tabs < 2:
            page.keyboard.press("Tab")
            tabs += 1
        assert page.evaluate("document.activeElement.id") == "next", f"not reached in {tabs} Tabs"
        page.keyboard.press("Enter")
        page.wait_for_url("**/practice?skill=ml.probability")
        done.add(item.kind)
        if done == {"choice", "numeric"}:
            break
    assert done == {"choice", "numeric"}, f"only {done} came up: {seen}"


#: roles of the accessibility tree a person operates: each needs a name to be announced by
CONTROL_ROLES = {
    "link",
    "button",
    "textbox",
    "searchbox",
    "combobox",
    "listbox",
    "radio",
    "checkbox",
    "spinbutton",
}


@pytest.mark.parametrize("email", list(PAGES))
def test_every_control_has_an_accessible_name(live_server: str, page, email: str | None) -> None:  # type: ignore[no-untyped-def]
    """Chromium's own accessibility tree (what a screen reader reads) names every control."""
    if email:
        _login(page, live_server, email)
    page.goto(live_server + "/lang/en")
    cdp = page.context.new_cdp_session(page)
    unnamed: list[str] = []
    controls = 0
    for path in PAGES[email]:
        page.goto(live_server + path)
        for node in cdp.send("Accessibility.getFullAXTree")["nodes"]:
            role = node.get("role", {}).get("value")
            if node.get("ignored") or role not in CONTROL_ROLES:
                continue
            controls += 1
            if not str(node.get("name", {}).get("value", "")).strip():
                unnamed.append(f"{path}: a {role} without a name")
    assert controls > 10 * len(PAGES[email]) // 2
    assert not unnamed, "\n".join(unnamed)


def test_hint_text_stays_inside_its_box_at_phone_width(live_server: str, page) -> None:  # type: ignore[no-untyped-def]
    page.set_viewport_size({"width": 360, "height": 740})
    _login(page, live_server, "learner004@acme.example")
    page.goto(live_server + "/lang/en")
    page.goto(live_server + "/practice")
    page.get_by_role("button", name="Show a hint").click()
    page.wait_for_url("**/practice#hints")
    hint = page.locator("#hints .hint").first
    box = hint.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360
    inside = hint.evaluate(
        """h => { const r = h.getBoundingClientRect();
                  const texts = [...h.querySelectorAll('p, li, code, pre')];
                  return texts.length > 0 && texts.every(t => { const q = t.getBoundingClientRect();
                    return q.left >= r.left - 0.5 && q.right <= r.right + 0.5 && q.top >= r.top - 0.5
                           && q.bottom <= r.bottom + 0.5; }); }"""
    )
    assert inside, hint.evaluate("h => h.outerHTML")


#: the main pages per role, checked at 200% zoom
ZOOM_PAGES = {
    "learner003@acme.example": ["/", "/practice", "/skills", "/path", "/lessons", "/reports/me"],
    "instructor@acme.example": ["/items", "/authoring", "/reports/items"],
    "manager@acme.example": ["/reports/team"],
    "admin@acme.example": ["/admin", "/admin/people"],
}
#: every visible control that sticks out of the viewport and cannot be scrolled to inside a card
_UNREACHABLE = """() => {
  const out = [];
  const scrolls = el => { for (let a = el.parentElement; a; a = a.parentElement) {
      const o = getComputedStyle(a).overflowX; if (o === 'auto' || o === 'scroll') return true; }
    return false; };
  for (const el of document.querySelectorAll('a[href], button, input, select, textarea, summary')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0 || getComputedStyle(el).visibility === 'hidden') continue;
    if (el.matches('.skip') && document.activeElement !== el) continue;  // shown when focused
    if ((r.left < -0.5 || r.right > window.innerWidth + 0.5) && !scrolls(el)) {
      out.push(el.tagName.toLowerCase() + ' ' + (el.innerText || el.name || el.getAttribute('href') || '').trim().slice(0, 30));
    }
  }
  return out;
}"""


def test_main_pages_at_200_percent_zoom(live_server: str, page) -> None:  # type: ignore[no-untyped-def]
    """A 1280-px window at 200% zoom: 640 CSS px at two device pixels each. No page scrolls
    sideways, the header stays whole, and every control is on screen or in a scrolling card."""
    zoomed = page.context.browser.new_context(
        viewport={"width": 640, "height": 450}, device_scale_factor=2, locale="en-US"
    )
    tab = zoomed.new_page()
    tab.set_default_timeout(20_000)
    problems: list[str] = []
    try:
        for email, paths in ZOOM_PAGES.items():
            zoomed.clear_cookies()
            _login(tab, live_server, email)
            tab.goto(live_server + "/lang/en")
            assert tab.evaluate("window.devicePixelRatio") == 2 and tab.evaluate("window.innerWidth") == 640
            for path in paths:
                response = tab.goto(live_server + path)
                assert response is not None and response.status == 200, f"{email} {path}"
                layout = tab.evaluate(_LAYOUT)
                if layout["scroll"] > layout["inner"]:
                    problems.append(
                        f"{email} {path}: page is {layout['scroll']} px wide in {layout['inner']}"
                    )
                problems += [f"{email} {path}: {p}" for p in layout["problems"]]
                problems += [f"{email} {path}: unreachable {c}" for c in tab.evaluate(_UNREACHABLE)]
            tab.keyboard.press("Tab")  # the first Tab shows "Skip to content", on screen
            problems += [f"{email} {path}: unreachable {c}" for c in tab.evaluate(_UNREACHABLE)]
    finally:
        zoomed.close()
    assert not problems, "\n".join(problems)


def test_learning_loop_without_javascript(live_server: str, page) -> None:  # type: ignore[no-untyped-def]
    """JavaScript off: log in, answer, read the feedback and go on, all by posting forms."""
    pack = load_pack(DEFAULT_PACK)
    plain = page.context.browser.new_context(java_script_enabled=False, locale="en-US")
    tab = plain.new_page()
    tab.set_default_timeout(20_000)
    try:
        tab.goto(live_server + "/login")
        tab.fill("input[name=email]", "learner005@acme.example")
        tab.fill("input[name=password]", DEMO_PASSWORD)
        tab.click("form button[type=submit]")
        tab.goto(live_server + "/lang/en")
        answered: list[str] = []
        for _ in range(12):
            tab.goto(live_server + "/practice")
            assert tab.get_by_role("button", name="Log out").count() == 1  # signed in
            item = pack.item(tab.locator("article.item").get_attribute("data-item-id") or "")
            presentation = tab.locator("#answer-form input[name=presentation_id]").get_attribute("value")
            item = item.instance_for(presentation or "")
            if item.kind not in ("choice", "numeric"):
                continue  # text and code answers are graded the same way; these two suffice
            if item.kind == "choice":
                tab.check(f"input[name=choice][value='{item.key}']")
            else:
                tab.fill("input[name=value]", f"{item.answer:g}")
            tab.click("#answer-form button[type=submit]")  # a plain form post
            feedback = tab.locator("article.feedback")
            assert feedback.get_attribute("data-correct") == "true", tab.content()[:2000]
            assert tab.locator("#verdict").inner_text() == "Correct"
            tab.click("#next")  # a link back to the loop
            assert tab.url.endswith("/practice")
            answered.append(item.kind)
            if len(answered) >= 2:
                break
        assert len(answered) >= 2, f"only {answered} came up"
    finally:
        plain.close()


def test_the_unit_stays_beside_the_numeric_answer_at_320_px(live_server: str, page, ctx: AppContext) -> None:  # type: ignore[no-untyped-def]
    """A numeric item with a unit on the practice page at 320 px: the unit sits on the answer
    box's line, right of it and on screen, not on a line of its own under it."""
    from sqlalchemy import delete, select

    from learnloop.store.models import PendingItem, User

    pack = load_pack(DEFAULT_PACK)
    item = max(
        (i for i in pack.items if i.kind == "numeric" and i.unit and not i.retired and not i.family),
        key=lambda i: len(i.unit or ""),
    )
    email = "learner006@acme.example"
    with ctx.session() as session:  # the item on the learner's screen, as the loop leaves it
        user_id = session.scalars(select(User.id).where(User.email == email)).one()
        session.execute(delete(PendingItem).where(PendingItem.user_id == user_id))
        session.add(PendingItem(user_id=user_id, item_id=item.id, reason="test"))
    page.set_viewport_size({"width": 320, "height": 640})
    _login(page, live_server, email)
    page.goto(live_server + "/lang/zh_CN")
    page.goto(live_server + "/practice")
    assert page.locator("article.item").get_attribute("data-item-id") == item.id
    box, unit = page.locator("#answer-value").bounding_box(), page.locator("#answer-unit").bounding_box()
    assert box is not None and unit is not None
    assert unit["x"] >= box["x"] + box["width"] and unit["x"] + unit["width"] <= 320, (item.unit, box, unit)
    assert box["y"] <= unit["y"] + unit["height"] / 2 <= box["y"] + box["height"], (item.unit, box, unit)
