"""Server-side plots for the report pages (SVG) and the printable team report (PDF).

matplotlib's object API only (no pyplot state), imported on first use so pages without
plots never pay for it. SVG text stays text (``svg.fonttype: none``) so the browser sets it
in the page's fonts, Chinese included; the PDF embeds DejaVu Sans with Noto Sans CJK as
fallback, as Type 3 fonts (STYLE). Every builder takes plain lists and translated labels and
returns a Figure.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from markupsafe import Markup, escape

if TYPE_CHECKING:
    from matplotlib.figure import Figure

INK = "#1d2433"
MUTED = "#5b6478"
ACCENT = "#2f6fde"
OK = "#1f8a4c"
WARN = "#d97706"
BAD = "#c2410c"
GRID = "#e3e6ee"
#: Colour stops for a share from 0 to 1 (none, half, all meet the target): the PDF's heatmap
#: colour map and the page's heatmap cells use the same linear blend of these.
SHARE_STOPS = (BAD, "#f4d35e", OK)
DOMAIN_COLOURS = ("#2f6fde", "#1f8a4c", "#c2410c", "#7c3aed", "#0e7490", "#b45309", "#be185d", "#4d7c0f")
STYLE: dict[str, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "learnloop",
    # Type 3: matplotlib subsets the glyphs itself (up to 256 a font, as many fonts as needed
    # since 3.11, CJK included, each with its ToUnicode map so the text stays searchable).
    # Type 42 embeds TrueType subset by fontTools, which parses the whole font first: about
    # 0.9 s for Noto Sans CJK (65,535 glyphs) on every PDF, a third of DejaVu's time in Latin.
    "pdf.fonttype": 3,
    "font.family": ["DejaVu Sans"],
    "font.size": 9,
    "axes.edgecolor": "#c9cfdb",
    "axes.labelcolor": INK,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    # titles at the top of their axes (where matplotlib's automatic placement puts them anyway,
    # nothing being drawn above an axes) without measuring the axes' tick labels every draw
    "axes.titley": 1.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "figure.dpi": 100,
}
#: Chinese text needs a CJK font to be measured (SVG) and embedded (PDF); font fallback
#: costs time on every label, so only Chinese pages pay for it.
CJK_FAMILY = ["DejaVu Sans", "Noto Sans CJK SC"]
#: Approximate width of one character of 9-point text, in inches, for margins.
CHAR_IN = 0.068
_lock = threading.RLock()
#: the weight of titles and table headers while plotting: bold, or normal for CJK text (a bold
#: CJK font is a second large font to load and embed in a PDF)
_headings = threading.local()


def _heading_weight() -> str:
    return str(getattr(_headings, "weight", "bold"))


@contextmanager
def plotting(cjk: bool = False) -> Iterator[None]:
    """Build and save figures in here: one at a time, in the report style, with CJK glyphs if asked.

    matplotlib's settings are process-wide and drawing holds the GIL anyway, so plots are
    drawn one after another under a lock rather than racing on shared settings.
    """
    import matplotlib

    style = dict(STYLE)
    if cjk:
        style["font.family"] = CJK_FAMILY
        style["axes.titleweight"] = "normal"
    with _lock, matplotlib.rc_context(style):
        _headings.weight = "normal" if cjk else "bold"
        try:
            yield
        finally:
            _headings.weight = "bold"


def share_colour(value: float) -> str:
    """The heatmap colour of a share in [0, 1], as #rrggbb (linear in RGB between SHARE_STOPS)."""
    value = min(max(value, 0.0), 1.0) * (len(SHARE_STOPS) - 1)
    low = min(int(value), len(SHARE_STOPS) - 2)
    t = value - low
    a, b = (tuple(int(c[k : k + 2], 16) for k in (1, 3, 5)) for c in SHARE_STOPS[low : low + 2])
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(a, b, strict=True))


def share_ink(value: float) -> str:
    """Text colour readable on ``share_colour(value)``."""
    return "#ffffff" if value < 0.25 or value > 0.8 else INK


_CJK = re.compile("[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef]")


def needs_cjk(locale: str, text: str) -> bool:
    """Whether a plot needs the CJK font: a Chinese page, or Chinese in its labels."""
    return locale.startswith("zh") or _CJK.search(text) is not None


def _figure(
    width: float,
    height: float,
    *,
    left: float = 0.6,
    right: float = 0.3,
    top: float = 0.45,
    bottom: float = 0.5,
) -> Figure:
    """A figure with margins in inches (constrained layout would measure every label twice)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(
        left=min(left / width, 0.6),
        right=1 - min(right / width, 0.35),
        top=1 - min(top / height, 0.4),
        bottom=min(bottom / height, 0.6),
    )
    return fig


def _width(labels: Sequence[str], limit: int) -> float:
    """Inches the longest (shortened) label needs."""
    return CHAR_IN * min(max((len(lbl) for lbl in labels), default=4), limit) + 0.25


@dataclass(frozen=True)
class Chart:
    """A figure not drawn yet: the builder and its arguments, which also key the SVG cache."""

    build: Callable[..., Figure]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)

    def figure(self) -> Figure:
        return self.build(*self.args, **self.kwargs)

    def key(self, locale: str) -> str:
        text = repr((self.build.__name__, self.args, sorted(self.kwargs.items()), locale))
        return hashlib.sha256(text.encode()).hexdigest()


#: Drawn SVGs by chart key: a dashboard shown again with the same figures is not redrawn.
CACHE_SIZE = 128
_svgs: OrderedDict[str, str] = OrderedDict()


def clear_cache() -> None:
    with _lock:
        _svgs.clear()


def svg(fig: Figure) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def img(chart: Chart, alt: str, locale: str = "en", css_class: str = "plot") -> Markup:
    """An <img> with the chart's SVG as a data URI (its ids and styles stay out of the page's)."""
    key = chart.key(locale)
    with _lock:
        drawn = _svgs.get(key)
        if drawn is None:
            with plotting(needs_cjk(locale, repr((chart.args, chart.kwargs)))):
                drawn = base64.b64encode(svg(chart.figure()).encode()).decode()
            _svgs[key] = drawn
            while len(_svgs) > CACHE_SIZE:
                _svgs.popitem(last=False)
        else:
            _svgs.move_to_end(key)
    return Markup('<img class="{}" alt="{}" src="data:image/svg+xml;base64,{}">').format(
        css_class, escape(alt), Markup(drawn)
    )  # noqa: S704 - base64 text, nothing to escape


def pdf(figures: Sequence[Figure], title: str) -> bytes:
    from matplotlib.backends.backend_pdf import PdfPages

    buffer = io.BytesIO()
    with PdfPages(buffer, metadata={"Title": title, "Creator": "Learnloop", "CreationDate": None}) as doc:
        for fig in figures:
            doc.savefig(fig)
    return buffer.getvalue()


def _short(label: str, limit: int = 28) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


# --------------------------------------------------------------------------- team views

#: Above this many cells the heatmap is read by colour alone (labels would cost seconds).
MAX_ANNOTATED_CELLS = 130


def heatmap(
    rows: list[str],
    columns: list[str],
    values: list[list[float | None]],
    hidden: list[list[bool]],
    *,
    colour_label: str,
    hidden_label: str,
    empty_label: str,
) -> Figure:
    """Rows x columns of shares in [0, 1]; hidden cells hatched, cells without a value blank."""
    import numpy as np
    from matplotlib.collections import PatchCollection
    from matplotlib.colors import LinearSegmentedColormap
    from matplotlib.patches import Patch, Rectangle

    n_rows, n_cols = max(len(rows), 1), max(len(columns), 1)
    left = _width(rows, 24)
    bottom = 0.75 * _width(columns, 28) + 0.45
    width = min(left + 1.3 + 0.3 * n_cols, 13.0)
    fig = _figure(width, bottom + 0.35 + 0.3 * n_rows, left=left, right=1.2, top=0.2, bottom=bottom)
    ax = fig.add_subplot()
    if not rows or not columns:
        ax.text(0.5, 0.5, empty_label, ha="center", va="center", color=MUTED, transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    grid = np.array([[np.nan if v is None else v for v in row] for row in values], dtype=float)
    cmap = LinearSegmentedColormap.from_list("gap", list(SHARE_STOPS)).with_extremes(bad="#f3f4f8")
    # interpolation "none": the SVG carries the cells as a tiny picture the browser scales up
    # crisply, instead of a resampled full-size one.
    image = ax.imshow(
        np.ma.masked_invalid(grid), cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto", interpolation="none"
    )
    annotate = len(rows) * len(columns) <= MAX_ANNOTATED_CELLS
    hatched = []
    for i, row in enumerate(hidden):
        for j, is_hidden in enumerate(row):
            if is_hidden:
                hatched.append(Rectangle((j - 0.5, i - 0.5), 1, 1))
            elif annotate and not np.isnan(grid[i, j]):
                ax.text(
                    j,
                    i,
                    f"{round(100 * grid[i, j])}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color=share_ink(grid[i, j]),
                )
    if hatched:
        ax.add_collection(
            PatchCollection(hatched, facecolor="#e8ebf2", hatch="///", edgecolor=MUTED, linewidth=0),
            autolim=False,
        )
    _column_labels(ax, [_short(c) for c in columns])
    _row_labels(ax, list(range(len(rows))), [_short(r, 24) for r in rows])
    for spine in ax.spines.values():
        spine.set_visible(False)
    bar = fig.colorbar(
        image,
        ax=ax,
        fraction=0.3 / width,
        pad=0.015,
        ticks=[0, 0.5, 1],
        format=lambda x, _: f"{round(100 * x)}%",
    )
    bar.set_label(colour_label)
    if any(any(r) for r in hidden):
        fig.legend(
            handles=[Patch(facecolor="#e8ebf2", hatch="///", edgecolor=MUTED, label=hidden_label)],
            loc="lower left",
            bbox_to_anchor=(0.005, 0.005),
            frameon=False,
            fontsize=8,
            handlelength=1.5,
        )
    return fig


def gap_bars(
    labels: list[str], blocked: list[int], hours: list[float | None], *, blocked_label: str, hours_label: str
) -> Figure:
    """Horizontal bars: people blocked per (role, skill), with the estimated hours to close."""
    n = max(len(labels), 1)
    left = _width(labels, 56)
    fig = _figure(9.0, 0.75 + 0.27 * n, left=left, top=0.1, bottom=0.5)
    ax = fig.add_subplot()
    y = list(range(len(labels)))[::-1]
    ax.barh(y, blocked, color=ACCENT, height=0.7)
    for yi, b, h in zip(y, blocked, hours, strict=True):
        text = f"{b}" + (f" · {h:.1f} h" if h is not None else "")
        ax.text(b, yi, "  " + text, va="center", fontsize=8, color=INK)
    _row_labels(ax, y, [_short(lbl, 56) for lbl in labels])
    ax.set_ylim(-0.6, len(labels) - 0.4)
    ax.set_xlabel(blocked_label + " (" + hours_label + ")")
    ax.set_xlim(0, max(blocked, default=1) * 1.3 + 1)
    return fig


def readiness_bars(
    roles: list[str],
    ready: list[int],
    close: list[int],
    far: list[int],
    *,
    labels: tuple[str, str, str],
    people_label: str,
) -> Figure:
    """Stacked horizontal bars per role: ready, close, further away."""
    n = max(len(roles), 1)
    fig = _figure(9.0, 1.05 + 0.36 * n, left=_width(roles, 40), top=0.4, bottom=0.5)
    ax = fig.add_subplot()
    y = list(range(len(roles)))[::-1]
    left = [0] * len(roles)
    for values, colour, label in (
        (ready, OK, labels[0]),
        (close, WARN, labels[1]),
        (far, "#c9cfdb", labels[2]),
    ):
        ax.barh(y, values, left=left, color=colour, height=0.6, label=label)
        for yi, lo, v in zip(y, left, values, strict=True):
            if v:
                ax.text(
                    lo + v / 2,
                    yi,
                    str(v),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if colour != "#c9cfdb" else INK,
                )
        left = [a + b for a, b in zip(left, values, strict=True)]
    _row_labels(ax, y, [_short(r, 40) for r in roles])
    ax.set_xlabel(people_label)
    ax.legend(loc="lower right", frameon=False, ncols=3, fontsize=8, bbox_to_anchor=(1, 1), borderaxespad=0.2)
    return fig


def trend(
    weeks: list[date], series: list[tuple[str, list[float | None], str]], *, empty_label: str
) -> Figure:
    """Small multiples, one per series (label, values, colour), over the same weeks."""
    fig = _figure(9.0, 2.4, left=0.5, right=0.15, top=0.35, bottom=0.55)
    fig.subplots_adjust(wspace=0.3)
    axes = fig.subplots(1, max(len(series), 1), squeeze=False)[0]
    for ax, (label, values, colour) in zip(axes, series, strict=False):
        points = [(w, v) for w, v in zip(weeks, values, strict=True) if v is not None]
        ax.set_title(label, loc="left", fontsize=9, fontweight="normal")
        if not points:
            ax.text(0.5, 0.5, empty_label, ha="center", va="center", color=MUTED, transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        xs, ys = zip(*points, strict=True)
        ax.plot(xs, ys, marker="o", markersize=3, color=colour, linewidth=1.8)
        ax.set_ylim(bottom=0, top=max(ys) * 1.15 if max(ys) > 0 else 1)
        ax.yaxis.set_major_locator(_few_ticks())
        ax.grid(axis="y", color=GRID, linewidth=0.6)
        # The first, middle and last week: ticks are costly to draw, and the table has every week.
        ax.set_xticks(sorted({xs[0], xs[len(xs) // 2], xs[-1]}))
        ax.tick_params(axis="x", labelsize=7)
        ax.xaxis.set_major_formatter(_date_format())
    return fig


# Category labels are plain texts, not tick labels: a matplotlib tick is several artists and
# costs about ten times as much to draw, and a heatmap has dozens of them.


def _row_labels(ax: Any, positions: list[int], labels: list[str]) -> None:
    from matplotlib.transforms import blended_transform_factory

    ax.set_yticks([])
    at = blended_transform_factory(ax.transAxes, ax.transData)
    for y, label in zip(positions, labels, strict=True):
        ax.text(-0.008, y, label, transform=at, ha="right", va="center", color=MUTED)


def _column_labels(ax: Any, labels: list[str]) -> None:
    from matplotlib.transforms import blended_transform_factory

    ax.set_xticks([])
    at = blended_transform_factory(ax.transData, ax.transAxes)
    for x, label in enumerate(labels):
        ax.text(
            x + 0.25,
            -0.02,
            label,
            transform=at,
            ha="right",
            va="top",
            rotation=50,
            rotation_mode="anchor",
            color=MUTED,
        )


def _few_ticks() -> Any:
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(nbins=3, integer=True)


def _date_format() -> Any:
    from matplotlib.dates import DateFormatter

    return DateFormatter("%m-%d")


# --------------------------------------------------------------------------- learner views


def timeline(series: list[tuple[str, list[date], list[float]]], *, mastery_label: str) -> Figure:
    """Mean mastery per domain over days (steps: mastery holds until the next answer)."""
    names = [name for name, _, _ in series]
    fig = _figure(7.0, 3.0, left=0.6, right=_width(names, 24) + 0.3, top=0.15, bottom=0.45)
    ax = fig.add_subplot()
    for k, (name, days, values) in enumerate(series):
        ax.step(
            days,
            values,
            where="post",
            marker="o",
            markersize=2.5,
            linewidth=1.6,
            color=DOMAIN_COLOURS[k % len(DOMAIN_COLOURS)],
            label=_short(name, 24),
        )
    ax.set_ylim(0, 1.02)
    ax.set_ylabel(mastery_label)
    ax.yaxis.set_major_formatter(lambda x, _: f"{round(100 * x)}%")
    ax.grid(axis="y", color=GRID, linewidth=0.6)
    _day_ticks(ax, sorted({d for _, days, _ in series for d in days}))
    ax.tick_params(axis="x", labelsize=8)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, fontsize=8)
    return fig


def _day_ticks(ax: Any, days: list[date], most: int = 6) -> None:
    """At most ``most`` ticks on whole days, each labelled once (month-day, with the year when
    the days span years). One day alone gets a day of room on each side; matplotlib's own
    locator put ticks every few hours there, or every half year with no data at all, and
    labelled them all alike."""
    from datetime import timedelta

    from matplotlib.dates import date2num

    if not days:
        return
    first, last = days[0], days[-1]
    span = (last - first).days
    step = max(1, -(-span // (most - 1))) if span else 1
    ticks = [first + timedelta(days=k) for k in range(0, span + 1, step)]
    if span and ticks[-1] != last and (last - ticks[-1]).days * 2 >= step:
        ticks.append(last)
    fmt = "%Y-%m-%d" if first.year != last.year else "%m-%d"
    ax.set_xticks([date2num(d) for d in ticks], [d.strftime(fmt) for d in ticks])
    pad = timedelta(days=1) if not span else timedelta(hours=12)
    ax.set_xlim(date2num(first - pad), date2num(last + pad))


def radar(
    labels: list[str],
    mastery: list[float],
    target: list[float] | None,
    *,
    mastery_label: str,
    target_label: str,
) -> Figure:
    """Mastery per domain against the role's target; a bar chart when there are under three domains."""
    import numpy as np

    if len(labels) < 3:
        fig = _figure(5.0, 1.1 + 0.5 * max(len(labels), 1), left=_width(labels, 30), top=0.35, bottom=0.4)
        ax = fig.add_subplot()
        y = list(range(len(labels)))[::-1]
        ax.barh(y, mastery, color=ACCENT, height=0.5, label=mastery_label)
        if target:
            ax.scatter(target, y, marker="|", s=300, color=INK, label=target_label, zorder=3)
        ax.set_yticks(y, [_short(lbl, 30) for lbl in labels])
        ax.set_xlim(0, 1)
        ax.xaxis.set_major_formatter(lambda x, _: f"{round(100 * x)}%")
        ax.legend(loc="lower right", frameon=False, fontsize=8, ncols=2, bbox_to_anchor=(1, 1))
        return fig
    fig = _figure(4.8, 4.2, left=1.0, right=1.0, top=0.6, bottom=0.5)
    ax = fig.add_subplot(projection="polar")
    angles = np.linspace(0, 2 * np.pi, len(labels), endpoint=False).tolist()
    closed = [*angles, angles[0]]
    ax.plot(closed, [*mastery, mastery[0]], color=ACCENT, linewidth=2, label=mastery_label)
    ax.fill(closed, [*mastery, mastery[0]], color=ACCENT, alpha=0.2)
    if target:
        ax.plot(closed, [*target, target[0]], color=INK, linewidth=1.2, linestyle="--", label=target_label)
    ax.set_xticks(angles, [_short(lbl, 20) for lbl in labels], fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_yticks([0.25, 0.5, 0.75, 1.0], ["25%", "50%", "75%", "100%"], fontsize=7, color=MUTED)
    fig.legend(loc="upper left", bbox_to_anchor=(0.01, 0.99), frameon=False, fontsize=8)
    return fig


# --------------------------------------------------------------------------- item views


def item_map(
    p_values: list[float],
    discrimination: list[float],
    flagged: list[bool],
    *,
    p_label: str,
    r_label: str,
    flagged_label: str,
    fine_label: str,
) -> Figure:
    """Each item by p-value and point-biserial; flagged items in red, the zero line marked."""
    fig = _figure(9.0, 3.4, left=0.7, top=0.15, bottom=0.55)
    ax = fig.add_subplot()
    fine = [(p, r) for p, r, f in zip(p_values, discrimination, flagged, strict=True) if not f]
    bad = [(p, r) for p, r, f in zip(p_values, discrimination, flagged, strict=True) if f]
    if fine:
        ax.scatter(*zip(*fine, strict=True), s=14, color=ACCENT, alpha=0.7, label=fine_label)
    if bad:
        ax.scatter(*zip(*bad, strict=True), s=28, color=BAD, marker="D", label=flagged_label)
    ax.axhline(0, color=INK, linewidth=0.8)
    for x in (0.05, 0.95):
        ax.axvline(x, color=MUTED, linewidth=0.6, linestyle=":")
    ax.set_xlim(0, 1)
    ax.set_xlabel(p_label)
    ax.set_ylabel(r_label)
    ax.grid(color=GRID, linewidth=0.5)
    if fine or bad:
        ax.legend(loc="lower left", frameon=False, fontsize=8)
    return fig


def titled(fig: Figure, title: str, room: float = 0.45) -> Figure:
    """Put a title above a figure, in ``room`` more inches (the PDF has no headings of its own)."""
    width, height = fig.get_size_inches()
    params = fig.subplotpars
    top_in, bottom_in = (1 - params.top) * height + room, params.bottom * height
    fig.set_size_inches(width, height + room)
    fig.subplots_adjust(top=1 - top_in / (height + room), bottom=bottom_in / (height + room))
    fig.suptitle(
        title,
        x=0.01,
        y=1 - 0.12 / (height + room),
        ha="left",
        va="top",
        fontsize=11,
        fontweight=_heading_weight(),
    )
    return fig


def text_page(
    title: str,
    lines: list[str],
    table: list[list[str]] | None = None,
    header: list[str] | None = None,
    widths: list[float] | None = None,
) -> Figure:
    """A PDF page of text: a title, lines of figures, and an optional table (its first 40 rows)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.27, 11.69))  # A4 portrait
    fig.text(0.06, 0.95, title, fontsize=15, fontweight=_heading_weight(), color=INK, va="top")
    y = 0.91
    for line in lines:
        fig.text(0.06, y, line, fontsize=9.5, color=INK, va="top")
        y -= 0.022
    if table:
        _table(fig, (0.06, 0.05, 0.88, max(y - 0.07, 0.1)), table[:40], header, widths)
    return fig


#: font size (points) of the tables in PDF text pages
TABLE_FONT = 7.5
#: a table row's height, and the space left of a cell's text (inches)
ROW_IN, CELL_PAD_IN = TABLE_FONT / 72 * 1.5, 0.05


def _table(
    fig: Figure,
    rect: tuple[float, float, float, float],
    rows: list[list[str]],
    header: list[str] | None,
    widths: list[float] | None,
) -> None:
    """A ruled table from the top of ``rect`` (figure fractions): the header wrapped to its
    column (a cell never widens to its text) in as many lines as the longest needs, then a row
    per line. The header is texts, the rows one artist that draws each cell's line straight
    (_Cells) and one set of rules, rather than matplotlib's table, whose cells are each a box
    and a text measured again and again (most of a text page's drawing time)."""
    from matplotlib.collections import LineCollection

    left, bottom, width, height = rect
    fig_w, fig_h = fig.get_size_inches()
    columns = len(header or rows[0])
    widths = widths or [1 / columns] * columns
    edges = [left]
    for w in widths:
        edges.append(edges[-1] + w * width)
    wrapped = [
        _wrap(h, w * width * fig_w - 0.12, TABLE_FONT) for h, w in zip(header or [], widths, strict=True)
    ]
    row_h = ROW_IN / fig_h
    header_h = row_h * (0.35 + 0.7 * max((h.count("\n") + 1 for h in wrapped), default=1)) if wrapped else 0.0
    pad = CELL_PAD_IN / fig_w
    top = bottom + height
    for k, (x0, text) in enumerate(zip(edges, wrapped, strict=False)):
        fig.text(
            x0 + pad,
            top - header_h / 2,
            text,
            fontsize=TABLE_FONT,
            fontweight=_heading_weight(),
            color=INK,
            va="center",
            ha="left",
            gid=f"table-header-{k}",
        )
    y = top - header_h
    cells = []
    for row in rows:
        cells += [(x0 + pad, y - row_h / 2, text) for x0, text in zip(edges, row, strict=False)]
        y -= row_h
    fig.add_artist(_cells(cells, TABLE_FONT, INK, gid="table-cells"))
    ys = (
        [top, *(top - header_h - row_h * r for r in range(len(rows) + 1))]
        if wrapped
        else [top - row_h * r for r in range(len(rows) + 1)]
    )
    rules = [[(edges[0], yy), (edges[-1], yy)] for yy in ys]
    rules += [[(x, ys[0]), (x, ys[-1])] for x in edges]
    fig.add_artist(LineCollection(rules, colors=GRID, linewidths=0.8, transform=fig.transFigure))


def _cells(cells: list[tuple[float, float, str]], points: float, colour: str, gid: str) -> Any:
    """One artist for many one-line texts, each from its left edge and centred on its line at
    (x, y) in figure fractions, all in one font. A matplotlib Text measures its whole string
    before it draws it, to align its box: a third of a table's drawing time. These share one
    baseline offset per line, from the font's ascent and descent (what Text centres a line on
    whenever its glyphs stay within them), and are measured only when asked (``boxes``)."""
    from matplotlib.artist import Artist
    from matplotlib.font_manager import FontProperties, findfont, get_font
    from matplotlib.transforms import Bbox

    class Cells(Artist):
        def __init__(self) -> None:
            super().__init__()
            self.cells = cells
            self.prop = FontProperties(size=points)
            self.set_gid(gid)
            # drawn after the page's texts (zorder 3), as texts made after them would be: the
            # PDF then reads title, lines, header, rows in that order when copied or read aloud
            self.set_zorder(3.01)

        def _baseline_offset(self, renderer: Any) -> float:
            """From a line's centre down to its baseline, in display units."""
            font = get_font(findfont(self.prop))
            table: dict[str, Any] = dict(font.get_sfnt_table("OS/2") or font.get_sfnt_table("hhea") or {})
            head: dict[str, Any] = dict(font.get_sfnt_table("head") or {})
            ascent = table.get("sTypoAscender", table.get("ascent"))
            descent = table.get("sTypoDescender", table.get("descent"))
            if ascent is None or descent is None or not head.get("unitsPerEm"):
                _, h, d = renderer.get_text_width_height_descent("lp", self.prop, ismath=False)
                return float(h) / 2 - float(d)
            em = renderer.points_to_pixels(points) / head["unitsPerEm"]
            return float((ascent + descent) * em / 2)

        def _anchors(self, renderer: Any) -> list[tuple[float, float, str]]:
            figure = self.get_figure(root=True)
            assert figure is not None, "drawn in a figure"
            trans = figure.transFigure
            down = self._baseline_offset(renderer)
            out = []
            for x, y, text in self.cells:
                px, py = trans.transform((x, y))
                out.append((float(px), float(py) - down, text))
            return out

        def draw(self, renderer: Any) -> None:
            if not self.get_visible():
                return
            gc = renderer.new_gc()
            gc.set_foreground(colour)
            gc.set_alpha(self.get_alpha())
            height = renderer.get_canvas_width_height()[1]
            renderer.open_group("cells", gid=self.get_gid())
            for x, y, text in self._anchors(renderer):
                if text:
                    renderer.draw_text(gc, x, height - y if renderer.flipy() else y, text, self.prop, 0.0)
            renderer.close_group("cells")
            gc.restore()
            self.stale = False

        def boxes(self, renderer: Any) -> list[Bbox]:
            """Each cell's text box in display units, in the order given."""
            out = []
            for x, y, text in self._anchors(renderer):
                w, h, d = renderer.get_text_width_height_descent(text or " ", self.prop, ismath=False)
                out.append(Bbox.from_bounds(x, y - d, w, h))
            return out

    return Cells()


def _text_width(text: str, points: float) -> float:
    """Width of ``text`` in inches at ``points`` in bold (an upper bound: wide Latin glyphs
    0.62 em, CJK and other wide glyphs a full em)."""
    return sum(points / 72 * (1.0 if unicodedata.east_asian_width(ch) in "WF" else 0.62) for ch in text)


def _wrap(text: str, inches: float, points: float) -> str:
    """``text`` in lines of at most ``inches`` at ``points`` (breaking at spaces; CJK anywhere)."""
    lines: list[str] = []
    line = ""
    for token in re.findall(r"\S+\s*|\s+", text) if " " in text else list(text):
        candidate = line + token
        if line and _text_width(candidate.rstrip(), points) > inches:
            lines.append(line.rstrip())
            line = token.lstrip()
            while _text_width(line.rstrip(), points) > inches and len(line) > 1:  # one long word
                cut = max(1, int(len(line) * inches / _text_width(line, points)))
                lines.append(line[:cut])
                line = line[cut:]
        else:
            line = candidate
    if line.strip():
        lines.append(line.rstrip())
    return "\n".join(lines)
