"""The learner's progress report as a PDF, drawn with the team report's machinery (``web.plots``:
an A4 text page with a wrapped-header table, then titled charts) from the same service result
the page shows (``services.reports_learner.learner_report``), in the reader's language."""

from __future__ import annotations

from datetime import UTC, date, datetime

from learnloop import i18n
from learnloop.i18n import _
from learnloop.services.reports_learner import LearnerReport
from learnloop.web import plots
from learnloop.web.render import percent

#: rows of the credentials list and the due reviews on the PDF's first page
PDF_LIST_ROWS = 8


def learner_charts(r: LearnerReport) -> dict[str, plots.Chart]:
    """The learner report's charts, for the page and the PDF alike."""
    charts: dict[str, plots.Chart] = {}
    if r.timeline:
        series = [
            (d.name, [date.fromisoformat(p.day) for p in d.points], [p.mastery for p in d.points])
            for d in r.timeline
        ]
        charts["timeline"] = plots.Chart(plots.timeline, (series,), {"mastery_label": _("Mastery")})
    if r.domains:
        targets = [d.target or 0.0 for d in r.domains] if r.role_id else None
        charts["radar"] = plots.Chart(
            plots.radar,
            ([d.name for d in r.domains], [d.mastery for d in r.domains], targets),
            {"mastery_label": _("Mastery"), "target_label": _("Target role")},
        )
    return charts


def _title(r: LearnerReport) -> str:
    return _("My progress") if r.is_self else _("Progress of %(name)s") % {"name": r.name}


def _summary(r: LearnerReport, now: datetime) -> list[str]:
    lines = [r.name, _("Generated %(when)s") % {"when": now.strftime("%Y-%m-%d %H:%M UTC")}]
    if r.role_name:
        lines.append(_("Target role: %(role)s") % {"role": r.role_name})
        lines.append(_("%(met)d of %(total)d targets met") % {"met": r.targets_met, "total": r.targets_total})
        if r.role_ready:
            lines.append(_("Every target of %(role)s is met: ready for the role.") % {"role": r.role_name})
    else:
        lines.append(_("No target role chosen yet."))
    lines.append(i18n.ngettext_("%(num)d answer", "%(num)d answers", r.answers) % {"num": r.answers})
    if r.answers == 0:
        lines.append(_("No answers yet."))
    if r.credentials:
        lines.append(_("Credentials earned"))
        for c in r.credentials[:PDF_LIST_ROWS]:
            earned = (
                " · " + _("earned %(when)s") % {"when": c.earned_at.strftime("%Y-%m-%d")}
                if c.earned_at
                else ""
            )
            lines.append(
                "  "
                + c.skill_name
                + " · "
                + _("Level %(level)d · mastery %(mastery)s")
                % {"level": c.level, "mastery": percent(c.mastery)}
                + earned
            )
        if len(r.credentials) > PDF_LIST_ROWS:
            lines.append("  " + _("and %(n)d more") % {"n": len(r.credentials) - PDF_LIST_ROWS})
    if r.reviews_available:
        if r.reviews:
            lines.append(_("Due reviews"))
            for v in r.reviews[:PDF_LIST_ROWS]:
                due = " · " + _("due %(when)s") % {"when": v.due_at.strftime("%Y-%m-%d")} if v.due_at else ""
                lines.append("  " + (v.skill_name or v.skill_id or v.item_id or "") + due)
            if len(r.reviews) > PDF_LIST_ROWS:
                lines.append("  " + _("and %(n)d more") % {"n": len(r.reviews) - PDF_LIST_ROWS})
        else:
            lines.append(_("Nothing to review right now."))
    return lines


def learner_pdf(r: LearnerReport, now: datetime | None = None) -> bytes:
    """The printable progress report: a page of figures and the table of domains, then the
    charts of the page (mastery per domain, mastery over time)."""
    lines = _summary(r, now or datetime.now(UTC))
    header = [_("Domain"), _("Skills"), _("Mastery"), _("Target")]
    table = [[_clip(d.name, 48), str(d.skills), percent(d.mastery), percent(d.target)] for d in r.domains]
    if not table:
        lines.append(_("Choose a target role or answer a few items to see your domains."))
    titles = {"radar": _("Mastery per domain"), "timeline": _("Mastery over time")}
    drawn = [*lines, *header, *(row[0] for row in table), *(d.name for d in r.timeline)]
    with plots.plotting(plots.needs_cjk(i18n.get_locale(), "\n".join(drawn))):
        charts = learner_charts(r)
        pages = [plots.text_page(_title(r), lines, table or None, header, [0.52, 0.14, 0.17, 0.17])]
        pages += [
            plots.titled(charts[name].figure(), title) for name, title in titles.items() if name in charts
        ]
        return plots.pdf(pages, _title(r))


def _clip(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"
