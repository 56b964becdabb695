"""Report pages: the learner's progress, the manager's team analytics (with CSV and PDF) and
the instructor's item analysis. Plots are drawn on the server (``web.plots``)."""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup

from learnloop import i18n
from learnloop.deps import get_ctx
from learnloop.errors import InvalidInput
from learnloop.i18n import _
from learnloop.services import item_bank
from learnloop.services.auth import CurrentUser
from learnloop.services.context import AppContext
from learnloop.services.reports_items import ItemReport, item_report
from learnloop.services.reports_learner import LearnerReport, learner_report
from learnloop.services.reports_team import TREND_COMPARE_WEEKS, TeamReport, team_report
from learnloop.web import plots
from learnloop.web.render import percent, render
from learnloop.web.report_pdf import learner_charts, learner_pdf
from learnloop.web.routes import page_user

router = APIRouter(include_in_schema=False)
CSV_TABLES = ("gaps", "heatmap", "readiness", "trend")


def _team_filter(team: str, role: str) -> tuple[int | None, str | None]:
    team = team.strip()
    if team and not team.isdigit():
        raise InvalidInput(_("The team filter must be a team id."))
    return (int(team) if team else None), (role.strip() or None)


@router.get("/reports")
def reports_home(request: Request) -> Response:
    user = page_user(request)
    if user.role in ("manager", "admin"):
        return RedirectResponse("/reports/team", status_code=303)
    if user.role == "instructor":
        return RedirectResponse("/reports/items", status_code=303)
    return RedirectResponse("/reports/me", status_code=303)


# --------------------------------------------------------------------------- learner


@router.get("/reports/me.pdf")
def my_progress_pdf(request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    user = page_user(request)
    return _learner_pdf_response(learner_report(ctx, user))


@router.get("/reports/me")
def my_progress(request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    user = page_user(request)
    report = learner_report(ctx, user)
    return render(request, "reports_learner.html", r=report, figures=_learner_figures(report))


@router.get("/reports/learners/{user_id}.pdf")
def learner_progress_pdf(user_id: int, request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    user = page_user(request)
    return _learner_pdf_response(learner_report(ctx, user, user_id))


@router.get("/reports/learners/{user_id}")
def learner_progress(user_id: int, request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    user = page_user(request)
    report = learner_report(ctx, user, user_id)
    return render(request, "reports_learner.html", r=report, figures=_learner_figures(report))


def _learner_pdf_response(report: LearnerReport) -> Response:
    name = "my-progress.pdf" if report.is_self else f"progress-{report.user_id}.pdf"
    return Response(
        learner_pdf(report),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _learner_figures(r: LearnerReport) -> dict[str, Markup]:
    charts = learner_charts(r)
    locale = i18n.get_locale()
    alts = {
        "timeline": _("Line chart of mastery over time per domain, from the first answer to the last."),
        "radar": _("Mastery per domain against the target role; the same figures are in the table below."),
    }
    return {name: plots.img(chart, alts[name], locale) for name, chart in charts.items()}


# --------------------------------------------------------------------------- team


@router.get("/reports/team")
def team_page(
    request: Request, team: str = "", role: str = "", ctx: AppContext = Depends(get_ctx)
) -> Response:
    user = page_user(request)
    team_id, role_id = _team_filter(team, role)
    report = team_report(ctx, user, team_id, role_id)
    return render(
        request,
        "reports_team.html",
        r=report,
        figures=_team_figures(report),
        query=_query(team_id, role_id),
        tables=CSV_TABLES,
        share_colour=plots.share_colour,
        share_ink=plots.share_ink,
    )


#: first in every CSV export: without it Excel reads UTF-8 as the local code page and garbles
#: Chinese team and skill names; csv readers take it off with the encoding "utf-8-sig"
CSV_BOM = "\ufeff"


@router.get("/reports/team.csv")
def team_csv(
    request: Request, table: str = "gaps", team: str = "", role: str = "", ctx: AppContext = Depends(get_ctx)
) -> Response:
    user = page_user(request)
    if table not in CSV_TABLES:
        raise InvalidInput(_("Unknown table: choose gaps, heatmap, readiness or trend."))
    team_id, role_id = _team_filter(team, role)
    report = team_report(ctx, user, team_id, role_id)
    header, rows = team_tables(report)[table]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return Response(
        CSV_BOM + buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="team-{table}.csv"'},
    )


@router.get("/reports/team.pdf")
def team_pdf(
    request: Request, team: str = "", role: str = "", ctx: AppContext = Depends(get_ctx)
) -> Response:
    user = page_user(request)
    team_id, role_id = _team_filter(team, role)
    report = team_report(ctx, user, team_id, role_id)
    return Response(
        _team_pdf(report),
        media_type="application/pdf",
        headers={"Content-Disposition": 'attachment; filename="team-report.pdf"'},
    )


def _query(team_id: int | None, role_id: str | None) -> str:
    parts = ([f"team={team_id}"] if team_id is not None else []) + ([f"role={role_id}"] if role_id else [])
    return "&".join(parts)


def _selection(r: TeamReport) -> str:
    team = r.team.name if r.team else _("All teams")
    role = r.role.name if r.role else _("All roles")
    return f"{r.org_name} · {team} · {role}"


def _team_charts(r: TeamReport) -> dict[str, plots.Chart]:
    """The team report's charts (for the page and the PDF alike)."""
    skill_names = [s.name for s in r.skills]
    rows = [row.team_name or _("No team") for row in r.heatmap]
    charts = {
        "heatmap": plots.Chart(
            plots.heatmap,
            (
                rows,
                skill_names,
                [[c.share_met for c in row.cells] for row in r.heatmap],
                [[c.suppressed for c in row.cells] for row in r.heatmap],
            ),
            {
                "colour_label": _("Meeting the target"),
                "hidden_label": _("Fewer than %(n)d people: hidden") % {"n": r.min_group},
                "empty_label": _("No data"),
            },
        ),
    }
    top = r.gaps[:15]
    if top:
        charts["gaps"] = plots.Chart(
            plots.gap_bars,
            (
                [f"{g.role_name}: {g.skill_name}" for g in top],
                [g.blocked for g in top],
                [g.hours for g in top],
            ),
            {"blocked_label": _("People below target"), "hours_label": _("estimated hours to close")},
        )
    shown = [x for x in r.readiness if not x.suppressed]
    if shown:
        charts["readiness"] = plots.Chart(
            plots.readiness_bars,
            (
                [x.role_name for x in shown],
                [x.ready or 0 for x in shown],
                [x.close or 0 for x in shown],
                [x.far or 0 for x in shown],
            ),
            {"labels": (_("Ready"), _("Close"), _("Further away")), "people_label": _("People")},
        )
    weeks = [p.week_start.date() for p in r.trend]
    charts["trend"] = plots.Chart(
        plots.trend,
        (
            weeks,
            [
                (
                    _("Targets not met"),
                    [None if p.blocked is None else float(p.blocked) for p in r.trend],
                    plots.BAD,
                ),
                (_("Estimated hours to close"), [p.hours for p in r.trend], plots.WARN),
                (_("People ready"), [None if p.ready is None else float(p.ready) for p in r.trend], plots.OK),
            ],
        ),
        {"empty_label": _("Hidden or no data")},
    )
    return charts


def _team_figures(r: TeamReport) -> dict[str, Markup]:
    """The page's one drawn plot: the heatmap, gaps and readiness are tables with colour and
    bars in HTML (text a reader can select, and no plotting time); the PDF draws them all."""
    trend = _team_charts(r)["trend"]
    alt = _("Line charts of the trend over weeks; the same figures are in the table below.")
    return {"trend": plots.img(trend, alt, i18n.get_locale())}


#: rows of the gaps table on the PDF's first page; the CSV export has them all
PDF_GAP_ROWS = 40


def _team_pdf(r: TeamReport) -> bytes:
    """The printable report: one page of figures and the largest gaps, then the charts. A
    summary, never a list of people: a 10,000-person organisation prints as fast as a team."""
    lines = [
        _selection(r),
        _("Generated %(when)s") % {"when": r.generated_at.strftime("%Y-%m-%d %H:%M UTC")},
        _("People: %(n)d, without a target role: %(m)d") % {"n": r.people, "m": r.without_role},
        _("Groups under %(n)d people are hidden.") % {"n": r.min_group},
    ]
    lines += [_note_text(code, r.min_group) for code in r.notes]
    for x in r.readiness:
        lines.append(
            _("%(role)s: %(holders)d holders, %(ready)s ready, %(close)s close")
            % {"role": x.role_name, "holders": x.holders, "ready": _num(x.ready), "close": _num(x.close)}
        )
    header = [_("Role"), _("Skill"), _("People below target"), _("Mean gap"), _("Estimated hours to close")]
    table = [
        [
            _clip(g.role_name, 30),
            _clip(g.skill_name, 40),
            f"{g.blocked} / {g.holders}",
            percent(g.mean_gap),
            _num(g.hours),
        ]
        for g in r.gaps[:PDF_GAP_ROWS]
    ]
    if len(r.gaps) > PDF_GAP_ROWS:
        lines.append(
            _("The %(shown)d largest of %(total)d gaps; the CSV export of gaps lists them all.")
            % {"shown": PDF_GAP_ROWS, "total": len(r.gaps)}
        )
    titles = {
        "heatmap": _("Share of people meeting their role's target, per team and skill"),
        "gaps": _("Skills that block roles"),
        "readiness": _("Readiness per role"),
        "trend": _("Trend over weeks"),
    }
    # the CJK font only where a drawn label needs it (not the people lists: never drawn)
    drawn = [*lines, *(s.name for s in r.skills), *(t.name for t in r.teams), *(x.name for x in r.roles)]
    drawn += [row.team_name or "" for row in r.heatmap]
    drawn += [f"{g.role_name} {g.skill_name}" for g in r.gaps[:PDF_GAP_ROWS]]
    with plots.plotting(plots.needs_cjk(i18n.get_locale(), "\n".join(drawn))):
        charts = _team_charts(r)
        pages = [
            plots.text_page(_("Team skills report"), lines, table, header, [0.24, 0.32, 0.18, 0.1, 0.16])
        ]
        pages += [
            plots.titled(charts[name].figure(), title) for name, title in titles.items() if name in charts
        ]
        return plots.pdf(pages, _("Team skills report"))


def _num(value: int | float | None) -> str:
    return "—" if value is None else str(value)


def _clip(value: object, limit: int = 34) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _note_text(code: str, min_group: int) -> str:
    texts = {
        "empty_team": _("This team has no members yet."),
        "nobody": _("No one is in this selection."),
        "no_roles": _("No one in this selection has chosen a target role yet."),
        "small_group": _(
            "Fewer than %(n)d people are in this selection, so its figures are hidden to protect "
            "their privacy."
        )
        % {"n": min_group},
        "no_answers": _("No answers yet: everyone is at the starting mastery."),
    }
    return texts.get(code, code)


def team_tables(r: TeamReport) -> dict[str, tuple[list[str], list[list[Any]]]]:
    """The report's tables for CSV export: the same figures as the page and the PDF."""
    gaps = (
        [
            "role_id",
            "role",
            "skill_id",
            "skill",
            "target",
            "holders",
            "blocked",
            "share_blocked",
            "mean_gap",
            "hours",
            "hours_per_person",
            f"blocked_{TREND_COMPARE_WEEKS}_weeks_ago",
        ],
        [
            [
                g.role_id,
                g.role_name,
                g.skill_id,
                g.skill_name,
                g.target,
                g.holders,
                g.blocked,
                g.share_blocked,
                g.mean_gap,
                g.hours,
                g.hours_per_person,
                g.blocked_weeks_ago,
            ]
            for g in r.gaps
        ],
    )
    heat_rows = []
    for row in r.heatmap:
        for skill, cell in zip(r.skills, row.cells, strict=True):
            if cell.measured:
                heat_rows.append(
                    [
                        row.team_id,
                        row.team_name or "",
                        skill.id,
                        skill.name,
                        cell.measured,
                        "" if cell.suppressed else cell.share_met,
                        "" if cell.suppressed else cell.mean_mastery,
                        "" if cell.suppressed else cell.mean_target,
                        int(cell.suppressed),
                    ]
                )
    heatmap = (
        [
            "team_id",
            "team",
            "skill_id",
            "skill",
            "people",
            "share_met",
            "mean_mastery",
            "mean_target",
            "hidden",
        ],
        heat_rows,
    )
    readiness = (
        ["role_id", "role", "holders", "ready", "close", "far", "mean_hours_to_ready", "hidden"],
        [
            [
                x.role_id,
                x.role_name,
                x.holders,
                x.ready,
                x.close,
                x.far,
                x.mean_hours_to_ready,
                int(x.suppressed),
            ]
            for x in r.readiness
        ],
    )
    trend = (
        ["week_start", "people", "blocked", "hours", "ready", "hidden", "current_week"],
        [
            [
                p.week_start.date().isoformat(),
                p.people,
                p.blocked,
                p.hours,
                p.ready,
                int(p.suppressed),
                int(p.current),
            ]
            for p in r.trend
        ],
    )
    return {"gaps": gaps, "heatmap": heatmap, "readiness": readiness, "trend": trend}


# --------------------------------------------------------------------------- items


@router.get("/reports/items")
def items_page(
    request: Request,
    q: str = Query("", max_length=200),
    skill: str = Query("", max_length=80),
    kind: str = Query("", max_length=20),
    flagged: bool = Query(False),
    page: int = Query(1, ge=1, le=100_000),
    ctx: AppContext = Depends(get_ctx),
) -> Response:
    user = page_user(request)
    report = item_report(ctx, user)
    flt = item_bank.ItemFilter(q=q, skill=skill, kind=kind, page=page)
    wanted = set(item_bank.matching_ids(ctx, user, flt)) if flt.is_set() else None
    rows = [x for x in report.items if (wanted is None or x.item_id in wanted) and (x.flags or not flagged)]
    shown, page, pages = item_bank.page_of(rows, flt.page)
    return render(
        request,
        "reports_items.html",
        r=report,
        figures=_item_figures(report),
        flt=flt,
        flagged=flagged,
        shown=shown,
        matching=len(rows),
        page=page,
        pages=pages,
        skills=[(c.skill_id, c.name) for c in report.coverage],
        kinds=list(item_bank.ITEM_KINDS),
    )


@router.get("/reports/items.csv")
def items_csv(request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    user: CurrentUser = page_user(request)
    r = item_report(ctx, user)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        [
            "item_id",
            "kind",
            "skill_id",
            "attempts",
            "respondents",
            "p_value",
            "point_biserial",
            "exposure",
            "median_seconds",
            "irt_a",
            "irt_b",
            "irt_c",
            "irt_source",
            "flags",
        ]
    )
    for x in r.items:
        writer.writerow(
            [
                x.item_id,
                x.kind,
                x.skill_id,
                x.attempts,
                x.respondents,
                x.p_value,
                x.point_biserial,
                x.exposure,
                x.median_seconds,
                x.irt_a,
                x.irt_b,
                x.irt_c,
                x.irt_source or "",
                " ".join(x.flags),
            ]
        )
    return Response(
        CSV_BOM + buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="item-statistics.csv"'},
    )


def _item_figures(r: ItemReport) -> dict[str, Markup]:
    judged = [x for x in r.items if x.p_value is not None and x.point_biserial is not None]
    if not judged:
        return {}
    chart = plots.Chart(
        plots.item_map,
        (
            [x.p_value or 0.0 for x in judged],
            [x.point_biserial or 0.0 for x in judged],
            [bool(x.flags) for x in judged],
        ),
        {
            "p_label": _("p-value (share correct on first attempt)"),
            "r_label": _("Point-biserial"),
            "flagged_label": _("Flagged"),
            "fine_label": _("No flag"),
        },
    )
    return {
        "map": plots.img(
            chart,
            _(
                "Scatter plot of items by p-value and point-biserial; the same "
                "figures are in the table below."
            ),
            i18n.get_locale(),
        )
    }
