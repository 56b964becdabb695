"""The team report's PDF: table headers wrap inside their columns, in English and Chinese; the
PDF read back with a real PDF reader (pypdf) holds every header, one line at a time.

The learner's own progress report as a PDF (``/reports/me.pdf``), and a shared learner's for
their manager (``/reports/learners/{id}.pdf``): drawn by the same machinery, in English and
Chinese, linked from the learner's pages, and as private as the page it prints."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from matplotlib.backends.backend_agg import FigureCanvasAgg
from sqlalchemy import select

from learnloop import i18n
from learnloop.server import create_app
from learnloop.services.context import AppContext
from learnloop.services.demo import DEMO_PASSWORD, create_demo
from learnloop.services.reports_learner import LearnerReport
from learnloop.store.db import get_engine
from learnloop.store.models import User
from learnloop.web import plots
from learnloop.web.report_pdf import PDF_LIST_ROWS, learner_pdf
from tests.conftest import DEFAULT_PACK, _make_ctx, need_module


@pytest.mark.parametrize(
    "header",
    [
        ["Role", "Skill", "People below target", "Mean gap", "Estimated hours to close"],
        ["岗位", "技能", "低于目标的人数", "平均差距", "估计弥补差距所需的小时数（按当前进度）"],
        ["A header far longer than its narrow column could ever hold on one line", "x", "y", "z", "w"],
    ],
)
def test_table_headers_stay_inside_their_cells(header: list[str]) -> None:
    rows = [["Builder", "Prompt basics", "3 / 5", "12%", "4.5"]] * 2 + [
        ["构建者", "提示词基础", "3 / 5", "", "—"]
    ]
    with plots.plotting(cjk=True):
        fig = plots.text_page("Title", ["a line"], rows, header, [0.24, 0.32, 0.18, 0.1, 0.16])
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        renderer = canvas.get_renderer()
        # the table's rules: vertical ones at the column edges, horizontal ones under each row
        (rules,) = [a for a in fig.artists if hasattr(a, "get_segments")]
        segments = [fig.transFigure.transform(seg) for seg in rules.get_segments()]
        xs = sorted({round(float(s[0][0]), 3) for s in segments if abs(s[0][0] - s[1][0]) < 1e-9})
        ys = sorted(
            {round(float(s[0][1]), 3) for s in segments if abs(s[0][1] - s[1][1]) < 1e-9}, reverse=True
        )
        assert len(xs) == len(header) + 1 and len(ys) == len(rows) + 2
        # the header's texts, then the rows' cells (one artist that draws them all, in row order)
        boxes = {
            (0, int(t.get_gid().rsplit("-", 1)[1])): (t.get_text(), t.get_window_extent(renderer))
            for t in fig.texts
            if (t.get_gid() or "").startswith("table-header-")
        }
        (cells,) = [a for a in fig.artists if a.get_gid() == "table-cells"]
        for k, ((_x, _y, text), box) in enumerate(zip(cells.cells, cells.boxes(renderer), strict=True)):
            boxes[(k // len(header) + 1, k % len(header))] = (text, box)
        for (row, col), (text, box) in boxes.items():
            assert xs[col] - 0.5 <= box.x0 and box.x1 <= xs[col + 1] + 0.5, (row, col, text)
            assert ys[row + 1] - 0.5 <= box.y0 and box.y1 <= ys[row] + 0.5, (row, col, text)
        assert len(boxes) == len(header) * (len(rows) + 1)
        assert [text for (row, _), (text, _) in sorted(boxes.items()) if row] == [c for r in rows for c in r]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppContext]:
    """The demo organisation, shared by the team and the learner PDF tests (test_learner_pdf)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('report_pdf') / 'demo.db'}"
    ctx = _make_ctx(url, DEFAULT_PACK)
    # every group shown, so the gaps table has rows with a handful of demo learners
    ctx = AppContext(settings=ctx.settings.model_copy(update={"report_min_group": 1}))
    create_demo(ctx, learners=6, answers=(8, 15))
    yield ctx
    get_engine(url).dispose()


def test_team_pdf_holds_the_wrapped_headers_in_both_languages(demo: AppContext) -> None:
    need_module("pypdf")
    from pypdf import PdfReader

    with TestClient(create_app(demo)) as client:
        form = client.get("/login").text
        token = form.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        client.post(
            "/login", data={"email": "manager@acme.example", "password": DEMO_PASSWORD, "csrf_token": token}
        )
        fragments: dict[str, list[tuple[str, float, float]]] = {}
        for language in ("en", "zh_CN"):
            client.get(f"/lang/{language}")
            r = client.get("/reports/team.pdf")
            assert r.status_code == 200 and r.content.startswith(b"%PDF")
            found: list[tuple[str, float, float]] = []
            PdfReader(io.BytesIO(r.content)).pages[0].extract_text(
                visitor_text=lambda t, cm, tm, _font, _size, out=found: (
                    out.append((t.strip(), cm[4] + tm[4], cm[5] + tm[5])) if t.strip() else None
                )
            )
            fragments[language] = found
    for language in ("en", "zh_CN"):
        found = fragments[language]
        i18n.set_locale(language)
        role = i18n.gettext_("Role")
        i18n.set_locale("en")
        y_role = next(y for t, _, y in found if t == role)
        row = [f for f in found if abs(f[2] - y_role) <= 8]  # the header's lines, wrapped about its middle
        starts = sorted({round(x, 1) for _, x, _ in row})
        assert len(starts) == 5, (language, row)  # five columns
        for text, x, _y in row:
            right = next((s for s in starts if s > x + 1), None)
            if right is not None:  # each header line ends before the next column begins
                assert x + plots._text_width(text, plots.TABLE_FONT) * 72 <= right + 1, (language, text)
        if language == "en":
            lines = [t for t, _, _ in row]
            assert "Estimated hours" in lines and "to close" in lines  # wrapped, not run on


def _large_report(gaps: int = 45, people: int = 3000) -> Any:
    """A team report of a large organisation: more gaps than the PDF lists, people with Chinese names."""
    from datetime import UTC, datetime, timedelta

    from learnloop.services import reports_team as rt

    now = datetime(2026, 12, 1, tzinfo=UTC)
    skills = [rt.SkillRef(id=f"s{k}", name=f"Skill {k}", domain="d") for k in range(8)]
    teams = [rt.TeamRef(id=k, name=f"Team {k}", people=people // 4) for k in range(1, 5)]
    crowd = [
        rt.PersonReadiness(
            id=n, name=f"学员{n}", team_name="Team 1", met=1, total=3, hours_to_ready=5.0, status="far"
        )
        for n in range(people)
    ]
    return rt.TeamReport(
        org_name="Large Org",
        generated_at=now,
        min_group=5,
        close_share=0.75,
        team=None,
        role=None,
        teams=teams,
        roles=[rt.RoleRef(id="r", name="Builder", holders=people)],
        people=people,
        without_role=0,
        suppressed=False,
        answers_seen=True,
        skills=skills,
        heatmap=[
            rt.HeatmapRow(
                team_id=t.id,
                team_name=t.name,
                people=t.people,
                suppressed=False,
                cells=[
                    rt.HeatCell(
                        skill_id=s.id,
                        measured=9,
                        share_met=0.5,
                        mean_mastery=0.5,
                        mean_target=0.7,
                        suppressed=False,
                    )
                    for s in skills
                ],
            )
            for t in teams
        ],
        gaps=[
            rt.GapRow(
                role_id="r",
                role_name="Builder",
                skill_id=f"g{k}",
                skill_name=f"Gap skill {k}",
                target=0.8,
                holders=people,
                blocked=people - k,
                share_blocked=0.5,
                mean_gap=0.2,
                hours=10.0,
                hours_per_person=1.0,
                blocked_weeks_ago=None,
            )
            for k in range(gaps)
        ],
        readiness=[
            rt.ReadinessRow(
                role_id="r",
                role_name="Builder",
                holders=people,
                suppressed=False,
                ready=0,
                close=0,
                far=people,
                mean_hours_to_ready=5.0,
                people=crowd,
            )
        ],
        trend=[
            rt.TrendPoint(
                week_start=now - timedelta(weeks=w),
                people=people,
                suppressed=False,
                blocked=9,
                hours=3.0,
                ready=1,
                current=w == 0,
            )
            for w in range(4, -1, -1)
        ],
        notes=[],
    )


def test_team_pdf_of_a_large_organisation_is_a_summary() -> None:
    """The gaps table stops at its 40 largest and says the CSV has the rest; people are never
    listed, so their (Chinese) names neither reach the PDF nor bring in the CJK font."""
    need_module("pypdf")
    from pypdf import PdfReader

    from learnloop.web.routes_reports import PDF_GAP_ROWS, _team_pdf

    i18n.set_locale("en")
    data = _team_pdf(_large_report())
    reader = PdfReader(io.BytesIO(data))
    first = reader.pages[0].extract_text()
    assert f"The {PDF_GAP_ROWS} largest of 45 gaps" in first and "CSV" in first
    assert "Gap skill 39" in first and "Gap skill 40" not in first
    # read in page order (copied, or read aloud): the title and lines, then the table's rows
    assert first.index("Team skills report") < first.index("The 40 largest") < first.index("Gap skill 0")
    assert len(reader.pages) == 5  # the summary page and four charts
    assert b"NotoSansCJK" not in data and "学员" not in "".join(p.extract_text() for p in reader.pages)


def _client(ctx: AppContext, email: str) -> TestClient:
    client = TestClient(create_app(ctx))
    form = client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token
    r = client.post(
        "/login",
        data={"email": email, "password": DEMO_PASSWORD, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    assert r.status_code == 303
    return client


def _text(pdf: bytes) -> list[str]:
    from pypdf import PdfReader

    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


def _t(language: str, message: str) -> str:
    i18n.set_locale(language)
    try:
        return i18n.gettext_(message)
    finally:
        i18n.set_locale("en")


@pytest.mark.parametrize("language", ["en", "zh_CN"])
def test_learners_own_pdf_in_both_languages(demo: AppContext, language: str) -> None:
    need_module("pypdf")
    client = _client(demo, "learner001@acme.example")
    client.get(f"/lang/{language}")
    page = client.get("/reports/me")
    assert page.status_code == 200 and 'href="/reports/me.pdf" download' in page.text
    home = client.get("/")
    assert 'href="/reports/me.pdf"' in home.text  # the home links it too
    r = client.get("/reports/me.pdf")
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF") and "my-progress.pdf" in r.headers["content-disposition"]
    pages = _text(r.content)
    first = pages[0]
    assert _t(language, "My progress") in first
    for header in ("Domain", "Skills", "Mastery", "Target"):
        assert _t(language, header) in first, (language, header)
    # the domains of the page are the rows of the PDF's table, with the page's percentages
    domains = re.findall(r'data-domain="[^"]+" data-mastery="[^"]+"><td>([^<]+)</td>', page.text)
    assert domains
    flat = first.replace("\n", " ")
    for name in domains:
        assert name.replace("&amp;", "&") in flat, (language, name)
    # the charts of the page follow, each titled
    assert len(pages) == 3
    assert _t(language, "Mastery per domain") in pages[1] and _t(language, "Mastery over time") in pages[2]
    if language == "zh_CN":
        assert b"NotoSansCJK" in r.content or b"CJK" in r.content  # Chinese glyphs embedded


def test_a_shared_learners_pdf_for_the_manager_and_nobody_else(demo: AppContext) -> None:
    need_module("pypdf")
    with demo.session() as session:
        manager = session.scalars(select(User).where(User.email == "manager@acme.example")).one()
        reports = session.scalars(
            select(User).where(User.manager_id == manager.id, User.email != "learner001@acme.example")
        ).all()
    manager_client = _client(demo, "manager@acme.example")
    manager_client.get("/lang/en")  # the team test may have left the manager in Chinese
    shown = [u for u in reports if manager_client.get(f"/reports/learners/{u.id}").status_code == 200]
    hidden = [u for u in reports if u not in shown]
    assert shown, "the demo has a direct report who shares their progress"
    page = manager_client.get(f"/reports/learners/{shown[0].id}")
    assert f'href="/reports/learners/{shown[0].id}.pdf" download' in page.text
    r = manager_client.get(f"/reports/learners/{shown[0].id}.pdf")
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    assert f"progress-{shown[0].id}.pdf" in r.headers["content-disposition"]
    assert f"Progress of {shown[0].name}" in _text(r.content)[0]
    for user in hidden:  # who does not share is as absent from the PDF as from the page
        assert manager_client.get(f"/reports/learners/{user.id}.pdf").status_code == 404
    learner = _client(demo, "learner001@acme.example")
    assert learner.get(f"/reports/learners/{shown[0].id}.pdf").status_code == 404  # a peer's: no
    assert learner.get("/reports/learners/not-a-number.pdf").status_code in (404, 422)
    signed_out = TestClient(create_app(demo))
    r = signed_out.get("/reports/me.pdf", follow_redirects=False)
    assert r.status_code in (303, 401) and not r.content.startswith(b"%PDF")


def _report(**overrides: object) -> LearnerReport:
    base: dict[str, object] = {
        "user_id": 7,
        "name": "新学员",
        "is_self": True,
        "role_id": None,
        "role_name": None,
        "answers": 0,
        "targets_met": 0,
        "targets_total": 0,
        "role_ready": False,
        "timeline": [],
        "domains": [],
        "credentials": [],
        "reviews_available": True,
        "reviews": [],
    }
    return LearnerReport.model_validate({**base, **overrides})


def test_a_new_learners_pdf_says_what_to_do_and_long_lists_are_cut() -> None:
    """No answers and no role: one page that says so (no empty charts). Many due reviews: the
    first PDF_LIST_ROWS and how many more."""
    need_module("pypdf")
    i18n.set_locale("en")
    pages = _text(learner_pdf(_report()))
    assert len(pages) == 1
    assert "No target role chosen yet." in pages[0] and "0 answers" in pages[0]
    assert "Choose a target role or answer a few items" in pages[0].replace("\n", " ")
    reviews = [
        {
            "item_id": None,
            "skill_id": f"s{k}",
            "skill_name": f"Review skill {k}",
            "due_at": None,
            "retrievability": None,
        }
        for k in range(PDF_LIST_ROWS + 5)
    ]
    text = _text(learner_pdf(_report(reviews=reviews, answers=3)))[0]
    assert f"Review skill {PDF_LIST_ROWS - 1}" in text and f"Review skill {PDF_LIST_ROWS}" not in text
    assert "and 5 more" in text


def _shown(pdf: bytes) -> list[tuple[str, float, float]]:
    """Each text the PDF shows, with where it starts (page points)."""
    from pypdf import PdfReader

    found: list[tuple[str, float, float]] = []
    PdfReader(io.BytesIO(pdf)).pages[0].extract_text(
        visitor_text=lambda t, cm, tm, _font, _size: (
            found.append((t.strip(), cm[4] + tm[4], cm[5] + tm[5])) if t.strip() else None
        )
    )
    return found


@pytest.mark.parametrize("cjk", [False, True])
def test_labels_write_the_pdf_as_matplotlib_draws_them(cjk: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """The PDF's own text writer (glyphs looked up once, plots._PdfGlyphs) puts the same texts,
    in the same fonts, at the same places as matplotlib's draw_text: left, centred and right
    aligned, turned, kerned ("AV", "Te"), Latin with Chinese in one string, several colours."""
    need_module("pypdf")
    import matplotlib
    from matplotlib.figure import Figure

    if not matplotlib.__version__.startswith(plots._PdfGlyphs.MATPLOTLIB):
        pytest.skip(f"the PDF's own text writer is for matplotlib {plots._PdfGlyphs.MATPLOTLIB}x only")
    texts = ["Team skills report", "AVAWAY Te To", "1641 / 1592 · 65.3 h", "Prompt injection and jailbreak"]
    if cjk:
        texts += ["团队技能报告", "LLM application engineer：1641 人，178 人已就绪"]

    def draw() -> bytes:
        with plots.plotting(cjk=cjk):
            fig = Figure(figsize=(6, 4))
            ax = fig.add_subplot()
            ax.set_xlim(0, 10)
            ax.set_ylim(0, 10)
            ax.set_axis_off()
            rows = [(5.0, 1.0 + k, t) for k, t in enumerate(texts)]
            for ha, rotation in (("left", 0.0), ("center", 0.0), ("right", 0.0), ("right", 50.0)):
                ax.add_artist(
                    plots._labels(
                        rows,
                        9,
                        [(plots.INK, plots.MUTED)[k % 2] for k in range(len(rows))],
                        transform=ax.transData,
                        ha=ha,
                        rotation=rotation,
                    )
                )
            fig.add_artist(plots._labels([(0.1, 0.95, texts[0])], 15, plots.INK, va="top", weight="bold"))
            return plots.pdf([fig], "t")

    fast = draw()
    monkeypatch.setattr(plots._PdfGlyphs, "MATPLOTLIB", "no such version")
    slow = draw()
    assert fast != slow  # the two writers did write
    got, want = _shown(fast), _shown(slow)  # a string in two fonts is two fragments
    assert [t for t, _, _ in got] == [t for t, _, _ in want]
    # every text, in the order drawn (the spaces between fragments of two fonts not written)
    assert "".join(t for t, _, _ in got) == "".join(t.replace(" 人", "人") for t in [*texts * 4, texts[0]])
    for (text, x, y), (_, x0, y0) in zip(got, want, strict=True):
        # within matplotlib's measuring of the width to align by (hinted advances): 0.1 pt
        assert abs(x - x0) < 0.15 and abs(y - y0) < 0.15, (text, x - x0, y - y0)
    fonts = re.compile(rb"/BaseFont /(\S+)")
    assert sorted(set(fonts.findall(fast))) == sorted(set(fonts.findall(slow)))
