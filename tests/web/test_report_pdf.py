"""The team report's PDF: table headers wrap inside their columns, in English and Chinese; the
PDF read back with a real PDF reader (pypdf) holds every header, one line at a time."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from matplotlib.backends.backend_agg import FigureCanvasAgg

from learnloop import i18n
from learnloop.server import create_app
from learnloop.services.context import AppContext
from learnloop.services.demo import DEMO_PASSWORD, create_demo
from learnloop.web import plots
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
    rows = [["Builder", "Prompt basics", "3 / 5", "12%", "4.5"]] * 3
    with plots.plotting(cjk=True):
        fig = plots.text_page("Title", ["a line"], rows, header, [0.24, 0.32, 0.18, 0.1, 0.16])
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        renderer = canvas.get_renderer()
        table = fig.axes[0].tables[0]
        for (row, col), cell in table.get_celld().items():
            box, text = cell.get_window_extent(renderer), cell.get_text().get_window_extent(renderer)
            assert text.x0 >= box.x0 - 0.5 and text.x1 <= box.x1 + 0.5, (row, col, cell.get_text().get_text())
            assert text.y0 >= box.y0 - 0.5 and text.y1 <= box.y1 + 0.5, (row, col, cell.get_text().get_text())


def test_team_pdf_holds_the_wrapped_headers_in_both_languages(tmp_path: Path) -> None:
    need_module("pypdf")
    from pypdf import PdfReader

    ctx = _make_ctx(f"sqlite:///{tmp_path / 'demo.db'}", DEFAULT_PACK)
    # every group shown, so the gaps table has rows with a handful of demo learners
    ctx = AppContext(settings=ctx.settings.model_copy(update={"report_min_group": 1}))
    create_demo(ctx, learners=6, answers=(5, 10))
    with TestClient(create_app(ctx)) as client:
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
    assert len(reader.pages) == 5  # the summary page and four charts
    assert b"NotoSansCJK" not in data and "学员" not in "".join(p.extract_text() for p in reader.pages)
