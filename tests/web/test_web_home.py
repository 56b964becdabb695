"""The signed-in start page per role, the lesson index, error pages with the signed-in header,
and the learner's own answer on the feedback page."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from learnloop.content.loader import load_pack
from learnloop.services.context import AppContext
from learnloop.store.models import User
from tests.conftest import MINI_PACK

PACK = load_pack(MINI_PACK)


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def _signup(client: TestClient, email: str = "mei@example.org") -> str:
    page = client.get("/signup")
    data = {"name": "Mei", "email": email, "password": "long-enough", "csrf_token": _csrf(page.text)}
    assert client.post("/signup", data=data, follow_redirects=False).status_code == 303
    return _csrf(client.get("/roles").text)


def test_learner_home_before_and_after_choosing_a_role(client: TestClient) -> None:
    token = _signup(client)
    page = client.get("/")
    assert page.status_code == 200 and 'id="no-role"' in page.text and 'href="/roles"' in page.text
    client.post("/roles", data={"role_id": "builder", "csrf_token": token})
    page = client.get("/")
    assert page.status_code == 200 and 'id="progress"' in page.text
    met = re.search(r'data-met="(\d+)" data-total="(\d+)"', page.text)
    assert met and int(met.group(1)) <= int(met.group(2)) and int(met.group(2)) >= 1
    assert 'id="recent"' in page.text and "No answers yet" in page.text
    assert 'aria-current="page"' in page.text.split('href="/"', 2)[2][:40]  # "Home" is the current page


@pytest.mark.parametrize(
    ("role", "home"), [("manager", "/reports/team"), ("admin", "/admin"), ("instructor", "/reviews")]
)
def test_each_staff_role_lands_on_its_own_home(
    client: TestClient, ctx: AppContext, role: str, home: str
) -> None:
    _signup(client)
    with ctx.session() as session:
        session.execute(update(User).where(User.email == "mei@example.org").values(role=role))
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == home
    assert client.get(home).status_code == 200


def test_login_goes_home_or_to_the_deep_link(client: TestClient) -> None:
    _signup(client)
    client.cookies.clear()
    form = client.get("/login?next=/skills")
    assert 'value="/skills"' in form.text
    data = {"email": "mei@example.org", "password": "long-enough", "csrf_token": _csrf(form.text)}
    r = client.post("/login", data={**data, "next": "/skills"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/skills"
    client.cookies.clear()
    form = client.get("/login")
    r = client.post("/login", data={**data, "csrf_token": _csrf(form.text)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"


def test_lesson_index_links_every_lesson(client: TestClient) -> None:
    assert client.get("/lessons", follow_redirects=False).headers["location"] == "/login?next=/lessons"
    _signup(client)
    page = client.get("/lessons")
    assert page.status_code == 200
    for lesson in PACK.lessons:
        assert f'href="/lessons/{lesson.id}"' in page.text
        assert client.get(f"/lessons/{lesson.id}").status_code == 200


def test_not_found_keeps_the_signed_in_header_and_speaks_chinese(client: TestClient) -> None:
    anonymous = client.get("/no/such/page")
    assert anonymous.status_code == 404 and 'href="/signup"' in anonymous.text
    _signup(client)
    page = client.get("/no/such/page")
    assert page.status_code == 404 and "Log out" in page.text and "Mei" in page.text
    assert "There is no page at this address." in page.text
    client.get("/lang/zh_CN")
    assert "此地址没有页面。" in client.get("/no/such/page").text
    assert client.get("/api/v1/no/such").json()["error"]["message"] == "not found"


def test_feedback_shows_the_learners_answer_and_focuses_the_verdict(client: TestClient) -> None:
    token = _signup(client)
    client.post("/roles", data={"role_id": "builder", "csrf_token": token})
    for _ in range(8):
        page = client.get("/practice")
        found = re.search(r'data-item-id="([^"]+)"', page.text)
        presentation = re.search(r'name="presentation_id" value="([^"]+)"', page.text)
        assert found and presentation
        item = PACK.item(found.group(1))
        form = {"item_id": item.id, "presentation_id": presentation.group(1), "csrf_token": token}
        if item.kind == "choice":
            assert item.options and item.key
            wrong = next(o for o in item.options if o != item.key)
            fb = client.post("/practice/answer", data={**form, "choice": wrong})
            assert fb.status_code == 200
            assert re.search(r'<h1 class="verdict" id="verdict" tabindex="-1" autofocus>', fb.text)
            assert 'role="status"' in fb.text
            shown = re.search(r"data-given>([^<]+)<", fb.text)
            assert shown and shown.group(1).startswith(f"{wrong}) ")
            assert f"{item.key}) " in fb.text  # beside the correct one
            # "Next item" is the first link after the verdict and the answers
            after = fb.text.split('id="verdict"', 1)[1]
            first_link = re.search(r"<a [^>]*>", after)
            assert first_link and 'href="/practice" id="next"' in first_link.group(0)
            return
        right = {
            "numeric": {"value": str(item.answer)},
            "text": {"text": (item.reference_answers or [""])[0]},
        }
        client.post("/practice/answer", data={**form, **right.get(item.kind, {"code": item.solution or ""})})
    pytest.fail("no choice item came up")


def test_csv_exports_start_with_a_bom_so_excel_reads_chinese_names(
    client: TestClient, ctx: AppContext
) -> None:
    token = _signup(client)
    with ctx.session() as session:
        session.execute(update(User).where(User.email == "mei@example.org").values(role="admin"))
        user_id = session.query(User.id).filter(User.email == "mei@example.org").scalar()
    client.post("/admin/teams", data={"name": "平台组", "csrf_token": token})  # teams come from a list
    client.post(f"/admin/members/{user_id}", data={"role": "admin", "team": "平台组", "csrf_token": token})
    client.post("/roles", data={"role_id": "builder", "csrf_token": token})
    for url in ["/reports/team.csv?table=heatmap", "/reports/team.csv?table=readiness", "/reports/items.csv"]:
        r = client.get(url)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        assert r.content.startswith(b"\xef\xbb\xbf"), url
        assert not r.content[3:].startswith(b"\xef\xbb\xbf")  # one BOM, then the header row
        assert r.content.decode("utf-8-sig").split(",", 1)[0].isidentifier()
    assert "平台组" in client.get("/reports/team.csv?table=heatmap").content.decode("utf-8-sig")


def test_skill_map_links_each_skill_to_its_page_and_lessons(client: TestClient) -> None:
    token = _signup(client)
    client.post("/roles", data={"role_id": "builder", "csrf_token": token})
    skills = client.get("/skills").text
    links = set(re.findall(r'href="/skills/([^"]+)"', skills))
    assert links and links <= {s.id for s in PACK.skills}
    for skill in links:
        own = client.get(f"/skills/{skill}")
        assert own.status_code == 200 and f'data-skill="{skill}"' in own.text
        teaching = [x for x in PACK.lessons if skill in x.skills]
        assert (f'href="/lessons?skill={skill}"' in own.text) == bool(teaching)
        for lesson in teaching:
            assert f'href="/lessons/{lesson.id}"' in own.text
        page = client.get(f"/lessons?skill={skill}")
        assert page.status_code == 200 and 'href="/lessons">All lessons' in page.text
        shown = set(re.findall(r'data-lesson-id="([^"]+)"', page.text))
        assert shown == {x.id for x in PACK.lessons if skill in x.skills}
    assert client.get("/lessons?skill=no.such.skill").status_code == 404
    assert client.get("/skills/no.such.skill").status_code == 404


def test_learner_sets_a_weekly_goal_and_hides_the_streak(client: TestClient) -> None:
    token = _signup(client)
    client.post("/roles", data={"role_id": "builder", "csrf_token": token})
    home = client.get("/")
    assert 'id="goal"' in home.text and "No weekly goal set." in home.text and "data-streak" in home.text
    assert client.post("/home/goal", data={"weekly_answers": "20", "show_streak": "on"}).status_code == 403
    r = client.post(
        "/home/goal", data={"weekly_answers": "20", "csrf_token": token}, follow_redirects=False
    )  # the box unticked: no streak
    assert r.status_code == 303
    home = client.get("/")
    assert 'data-goal="20"' in home.text and "0 of 20 answers this week" in home.text
    assert "data-streak" not in home.text
    bad = client.post("/home/goal", data={"weekly_answers": "lots", "show_streak": "on", "csrf_token": token})
    assert bad.status_code == 422 and "whole number" in bad.text
    client.get("/lang/zh_CN")
    assert "每周目标" in client.get("/").text


def test_home_suggests_a_session_length_for_today(client: TestClient, ctx: AppContext) -> None:
    token = _signup(client)
    assert 'id="session"' not in client.get("/").text  # no role: nothing to suggest yet
    client.post("/roles", data={"role_id": "builder", "csrf_token": token})
    home = client.get("/").text
    found = re.search(r'id="session" data-answers="(\d+)" data-minutes="(\d+)"', home)
    assert found and 1 <= int(found.group(1)) <= 10 and int(found.group(2)) >= 1
    assert "Suggested for today: about" in home
    client.get("/lang/zh_CN")
    assert "今天建议" in client.get("/").text


def test_suggested_session_is_the_due_reviews_and_a_few_steps() -> None:
    from learnloop.services import guidance
    from learnloop.services.learner_goals import SESSION_STEP_ANSWERS, suggested_session

    def step(answers: float, minutes: float) -> guidance.PathStepView:
        return guidance.PathStepView(
            skill_id="s",
            name="S",
            status="in_progress",
            mastery=0.3,
            target=0.8,
            retrievability=None,
            answers=answers,
            minutes=minutes,
            toward_skill_id=None,
            toward_skill_name=None,
            is_target=True,
            open=True,
        )

    due = [guidance.DueReview(skill_id=f"r{k}", name=f"R{k}", retrievability=0.5) for k in range(3)]
    base: dict[str, object] = {
        "role_id": "builder",
        "role_name": "Builder",
        "met": [],
        "answers_to_go": 40.0,
        "minutes_to_go": 60.0,
        "targets_met": 0,
        "targets_total": 2,
        "answers_so_far": 5,
        "next": None,
    }
    path = guidance.PathView.model_validate(
        {**base, "steps": [step(4.2, 8.4), step(30, 30)], "due_reviews": due}
    )
    s = suggested_session(None, None, path)  # type: ignore[arg-type]  # the plan has minutes: no pack read
    assert s is not None and (s.answers, s.reviews, s.minutes) == (8, 3, 16)  # 3 + ceil(4.2), 2 min each
    long_step = guidance.PathView.model_validate({**base, "steps": [step(50, 25)], "due_reviews": []})
    s = suggested_session(None, None, long_step)  # type: ignore[arg-type]
    assert s is not None and s.answers == SESSION_STEP_ANSWERS and s.minutes == 5
    nothing = guidance.PathView.model_validate({**base, "steps": [], "due_reviews": []})
    assert suggested_session(None, None, nothing) is None  # type: ignore[arg-type]
    no_role = guidance.PathView.model_validate(
        {**base, "role_id": None, "steps": [step(4, 8)], "due_reviews": due}
    )
    assert suggested_session(None, None, no_role) is None  # type: ignore[arg-type]
