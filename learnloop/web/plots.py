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
import math
import re
import threading
import unicodedata
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, NamedTuple

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
    shares: list[tuple[float, float, str]] = []
    inks: list[str] = []
    for i, row in enumerate(hidden):
        for j, is_hidden in enumerate(row):
            if is_hidden:
                hatched.append(Rectangle((j - 0.5, i - 0.5), 1, 1))
            elif annotate and not np.isnan(grid[i, j]):
                shares.append((j, i, f"{round(100 * grid[i, j])}"))
                inks.append(share_ink(grid[i, j]))
    if shares:
        ax.add_artist(_labels(shares, 7, inks, transform=ax.transData, ha="center"))
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
    values = [
        (b, yi, f"  {b}" + (f" · {h:.1f} h" if h is not None else ""))
        for yi, b, h in zip(y, blocked, hours, strict=True)
    ]
    ax.add_artist(_labels(values, 8, INK, transform=ax.transData))
    _row_labels(ax, y, [_short(lbl, 56) for lbl in labels])
    ax.set_ylim(-0.6, len(labels) - 0.4)
    ax.set_xlabel(blocked_label + " (" + hours_label + ")")
    ax.set_xlim(0, max(blocked, default=1) * 1.3 + 1)
    _value_ticks(ax)
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
        counts = [(lo + v / 2, yi, str(v)) for yi, lo, v in zip(y, left, values, strict=True) if v]
        ink = "white" if colour != "#c9cfdb" else INK
        ax.add_artist(_labels(counts, 8, ink, transform=ax.transData, ha="center"))
        left = [a + b for a, b in zip(left, values, strict=True)]
    _row_labels(ax, y, [_short(r, 40) for r in roles])
    ax.set_xlabel(people_label)
    ax.legend(loc="lower right", frameon=False, ncols=3, fontsize=8, bbox_to_anchor=(1, 1), borderaxespad=0.2)
    _value_ticks(ax)
    return fig


def trend(
    weeks: list[date], series: list[tuple[str, list[float | None], str]], *, empty_label: str
) -> Figure:
    """Small multiples, one per series (label, values, colour), over the same weeks."""
    from matplotlib.dates import date2num

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
        top = max(ys) * 1.15 if max(ys) > 0 else 1
        ax.set_ylim(bottom=0, top=top)
        levels = [float(v) for v in _few_ticks().tick_values(0, top) if 0 <= v <= top * (1 + 1e-9)]
        _ticks(ax, "y", levels, list(ax.yaxis.get_major_formatter().format_ticks(levels)), grid=True)
        # The first, middle and last week: the table has every week.
        shown = sorted({xs[0], xs[len(xs) // 2], xs[-1]})
        _ticks(ax, "x", [float(date2num(d)) for d in shown], [d.strftime("%m-%d") for d in shown], size=7)
    return fig


def _value_ticks(ax: Any) -> None:
    """The x axis's ticks where matplotlib would put them (its locator and formatter, on the
    axis's final limits) drawn by _ticks, and the x label as far below them as matplotlib
    would set it: below the tick labels' boxes (as tall as "lp"), by the label pad."""
    from matplotlib import rcParams
    from matplotlib.font_manager import FontProperties, findfont, get_font

    low, high = sorted(ax.get_xlim())
    span = (high - low) * 1e-9
    values = [float(v) for v in ax.xaxis.get_major_locator()() if low - span <= v <= high + span]
    labels = list(ax.xaxis.get_major_formatter().format_ticks(values))
    _ticks(ax, "x", values, labels)
    font = get_font(findfont(FontProperties(size=_font_size())))
    font.set_size(_font_size(), 72)
    font.set_text("lp")
    label_height = font.get_width_height()[1] / 64  # points
    ax.xaxis.labelpad += rcParams["xtick.major.size"] + rcParams["xtick.major.pad"] + label_height


def _ticks(
    ax: Any, which: str, values: list[float], labels: list[str], size: float | None = None, grid: bool = False
) -> None:
    """Ticks on the x or y axis at ``values`` (data units), as three artists: the marks (one
    line of tick markers), the labels (_labels) and the grid lines if asked (one collection),
    in the report style's tick length, pad, width and colour. matplotlib makes each tick five
    artists, copies their properties, and measures its labels to place them: most of a small
    chart's drawing time."""
    from matplotlib import rcParams
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D
    from matplotlib.markers import TICKDOWN, TICKLEFT
    from matplotlib.transforms import ScaledTranslation, blended_transform_factory

    figure = ax.get_figure(root=True)
    length, width = rcParams[f"{which}tick.major.size"], rcParams[f"{which}tick.major.width"]
    pad = (length + rcParams[f"{which}tick.major.pad"]) / 72
    colour = rcParams[f"{which}tick.color"]
    if which == "x":
        ax.set_xticks([])
        at = blended_transform_factory(ax.transData, ax.transAxes)
        marks, shift, ha, va, marker = ([(v, 0.0) for v in values], (0, -pad), "center", "top", TICKDOWN)
        across = blended_transform_factory(ax.transData, ax.transAxes)
        lines = [[(v, 0.0), (v, 1.0)] for v in values]
    else:
        ax.set_yticks([])
        at = blended_transform_factory(ax.transAxes, ax.transData)
        marks, shift, ha, va, marker = ([(0.0, v) for v in values], (-pad, 0), "right", "center", TICKLEFT)
        across = at
        lines = [[(0.0, v), (1.0, v)] for v in values]
    if not values:
        return
    if grid:
        ax.add_artist(LineCollection(lines, colors=GRID, linewidths=0.6, transform=across, zorder=1.4))
    xs, ys = zip(*marks, strict=True)
    ax.add_artist(
        Line2D(
            xs,
            ys,
            linestyle="none",
            marker=marker,
            markersize=length,
            markeredgewidth=width,
            color=colour,
            transform=at,
            clip_on=False,
            zorder=1.5,
        )
    )
    offset = at + ScaledTranslation(*shift, figure.dpi_scale_trans)
    items = [(x, y, label) for (x, y), label in zip(marks, labels, strict=True)]
    ax.add_artist(_labels(items, size or _font_size(), colour, transform=offset, ha=ha, va=va))


# Category labels are one _labels artist, not tick labels: a matplotlib tick is several artists
# and costs about ten times as much to draw, and a heatmap has dozens of them.


def _row_labels(ax: Any, positions: list[int], labels: list[str]) -> None:
    from matplotlib.transforms import blended_transform_factory

    ax.set_yticks([])
    at = blended_transform_factory(ax.transAxes, ax.transData)
    items = [(-0.008, y, label) for y, label in zip(positions, labels, strict=True)]
    ax.add_artist(_labels(items, _font_size(), MUTED, transform=at, ha="right"))


def _column_labels(ax: Any, labels: list[str]) -> None:
    from matplotlib.transforms import blended_transform_factory

    ax.set_xticks([])
    at = blended_transform_factory(ax.transData, ax.transAxes)
    items = [(x + 0.25, -0.02, label) for x, label in enumerate(labels)]
    ax.add_artist(_labels(items, _font_size(), MUTED, transform=at, ha="right", va="top", rotation=50))


def _font_size() -> float:
    """The report style's text size in points."""
    from matplotlib import rcParams

    return float(rcParams["font.size"])


def _few_ticks() -> Any:
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(nbins=3, integer=True)


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
    # drawn before the table's header and rows (zorder 3 and 3.01): read in page order
    fig.add_artist(
        _labels([(0.06, 0.95, title)], 15, INK, va="top", weight=_heading_weight(), gid="title", zorder=2.98)
    )
    y = 0.91
    items = []
    for line in lines:
        items.append((0.06, y, line))
        y -= 0.022
    fig.add_artist(_labels(items, 9.5, INK, va="top", gid="lines", zorder=2.99))
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
    """The table's cells: each from its left edge and centred on its line at (x, y) in figure
    fractions (see _labels). Drawn after the page's texts (zorder 3), as texts made after them
    would be: the PDF then reads title, lines, header, rows in that order when copied or read
    aloud."""
    return _labels(cells, points, colour, gid=gid, zorder=3.01)


def _labels(
    items: list[tuple[float, float, str]],
    points: float,
    colour: str | list[str],
    *,
    transform: Any = None,
    ha: str = "left",
    va: str = "center",
    rotation: float = 0.0,
    weight: str = "normal",
    gid: str | None = None,
    zorder: float = 3.0,
) -> Any:
    """One artist for many one-line texts in one font: each at (x, y) in ``transform`` (figure
    fractions by default), aligned there by ``ha`` (left, center, right) and ``va`` (center:
    the line's middle; top: its top), turned ``rotation`` degrees about that point (matplotlib's
    rotation_mode "anchor"); ``colour`` one for all or one per text; ``zorder`` orders them
    among the figure's other artists, and so in the PDF's reading order.

    A matplotlib Text measures its whole string before it draws it, to align its box, and the
    PDF backend lays every string out again with HarfBuzz and loads each glyph once more: about
    50 us a character, most of a report's drawing time. These share one baseline offset per
    line, from the font's ascent and descent (what Text centres a line on whenever its glyphs
    stay within them); they are measured only when asked (``boxes``) or when aligned right or
    centred; and in a PDF they are written by ``_PdfGlyphs`` from glyphs looked up once per
    process (``renderer.draw_text`` elsewhere)."""
    from matplotlib.artist import Artist
    from matplotlib.font_manager import FontProperties, findfont, get_font
    from matplotlib.transforms import Bbox

    colours = [colour] * len(items) if isinstance(colour, str) else list(colour)
    angle = math.radians(rotation)
    cos, sin = math.cos(angle), math.sin(angle)

    class Labels(Artist):
        def __init__(self) -> None:
            super().__init__()
            self.cells = items
            self.prop = FontProperties(size=points, weight=weight)
            self.set_gid(gid)
            self.set_zorder(zorder)

        def _baseline_offset(self, renderer: Any) -> float:
            """From a line's middle (va center) or top (va top) down to its baseline, in display units."""
            if va == "top":
                _, h, d = renderer.get_text_width_height_descent("lp", self.prop, ismath=False)
                return float(h) - float(d)
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

        def _anchors(self, renderer: Any, glyphs: _PdfGlyphs | None = None) -> list[tuple[float, float, str]]:
            """Each text's baseline start in display units."""
            trans = transform if transform is not None else self.get_figure(root=True).transFigure  # type: ignore[union-attr]
            down = self._baseline_offset(renderer)
            share = {"left": 0.0, "center": 0.5, "right": 1.0}[ha]
            out = []
            for x, y, text in self.cells:
                px, py = trans.transform((x, y))
                dx = 0.0
                if share and text:
                    width = (
                        glyphs.width(text)
                        if glyphs is not None
                        else renderer.get_text_width_height_descent(text, self.prop, ismath=False)[0]
                    )
                    dx = -share * float(width)
                out.append((float(px) + dx * cos + down * sin, float(py) + dx * sin - down * cos, text))
            return out

        def draw(self, renderer: Any) -> None:
            if not self.get_visible():
                return
            glyphs = _PdfGlyphs.of(renderer, self.prop)
            gc = renderer.new_gc()
            gc.set_alpha(self.get_alpha())
            height = renderer.get_canvas_width_height()[1]
            renderer.open_group("labels", gid=self.get_gid())
            for (x, y, text), ink in zip(self._anchors(renderer, glyphs), colours, strict=True):
                if not text:
                    continue
                gc.set_foreground(ink)
                if glyphs is not None:
                    glyphs.show(gc, x, y, text, rotation)
                else:
                    renderer.draw_text(
                        gc, x, height - y if renderer.flipy() else y, text, self.prop, rotation
                    )
            renderer.close_group("labels")
            gc.restore()
            self.stale = False

        def boxes(self, renderer: Any) -> list[Bbox]:
            """Each text's box in display units, in the order given (unturned texts)."""
            out = []
            for x, y, text in self._anchors(renderer):
                w, h, d = renderer.get_text_width_height_descent(text or " ", self.prop, ismath=False)
                out.append(Bbox.from_bounds(x, y - d, w, h))
            return out

    return Labels()


class _Glyph(NamedTuple):
    """A character's glyph: its font file (path, face index) and an FT2Font of it (fonts are
    read once per thread: compare fonts by ``path``), its index there and its advance in ems."""

    path: tuple[str, int]
    font: Any
    glyph_index: int
    advance: float


#: the most pairs of characters whose kerning is kept per font chain
KERN_PAIRS = 200_000
#: font files (a fallback chain) -> (character -> its glyph, or None for a character that is
#: not one glyph of its own; pair of characters -> kerning in ems)
_GLYPHS: dict[tuple[tuple[str, int], ...], tuple[dict[str, _Glyph | None], dict[str, float]]] = {}
#: per PDF being written: (font file, character) -> (Type 3 subset, character code in it)
_TRACKED: weakref.WeakKeyDictionary[Any, dict[tuple[tuple[str, int], str], tuple[int, int]]] = (
    weakref.WeakKeyDictionary()
)


class _PdfGlyphs:
    """Texts written into a PDF from glyphs looked up once per process, for ``_labels``.

    matplotlib's PDF ``draw_text`` lays each string out with HarfBuzz (font fallback included)
    and loads every glyph again before it writes the string: about 50 us a character. Here each
    character's glyph (through the same fallback chain: ``FT2Font._layout``), its advance and
    the kerning of each pair of characters are looked up once and kept; a text is then written
    as matplotlib writes it: the glyphs recorded for the Type 3 subsets, runs of one font
    subset shown with TJ and the pairs' kerning between them. (HarfBuzz kerns with the font's
    GPOS table, this with its kern table: equal for DejaVu Sans.) This uses the PDF backend's
    internals, so only with the matplotlib minor version it was written for (3.11); with any
    other, ``of`` answers None and the texts go through ``renderer.draw_text``."""

    MATPLOTLIB = "3.11."

    def __init__(self, renderer: Any, prop: Any) -> None:
        from matplotlib import font_manager

        self.renderer = renderer
        self.file = renderer.file
        self.size = float(prop.get_size_in_points())
        self.prop = prop
        chain = tuple((p.path, p.face_index) for p in font_manager.fontManager._find_fonts_by_props(prop))
        self.table, self.kerns = _GLYPHS.setdefault(chain, ({}, {}))
        self.font = renderer._get_font_ttf(prop)

    @classmethod
    def of(cls, renderer: Any, prop: Any) -> _PdfGlyphs | None:
        import matplotlib
        from matplotlib import rcParams
        from matplotlib.backends.backend_mixed import MixedModeRenderer
        from matplotlib.backends.backend_pdf import RendererPdf

        if isinstance(renderer, MixedModeRenderer):  # how PdfPages draws: the PDF renderer inside
            renderer = renderer._renderer
        if (
            not isinstance(renderer, RendererPdf)
            or not matplotlib.__version__.startswith(cls.MATPLOTLIB)
            or rcParams["pdf.fonttype"] != 3
            or rcParams["pdf.use14corefonts"]
        ):
            return None
        return cls(renderer, prop)

    def _glyph(self, char: str) -> _Glyph | None:
        if char not in self.table:
            from matplotlib.ft2font import LoadFlags

            items = self.font._layout(char, LoadFlags.NO_HINTING)
            found = None
            if len(items) == 1:  # else not one glyph for one character: left to matplotlib
                item = items[0]
                font = item.ft_object
                glyph = font.load_glyph(item.glyph_index, flags=LoadFlags.NO_HINTING)
                advance = glyph.linearHoriAdvance / 65536 / self.size
                found = _Glyph((font.fname, font.face_index), font, int(item.glyph_index), advance)
            self.table[char] = found
        return self.table[char]

    def _kern(self, pair: str, left: _Glyph, right: _Glyph) -> float:
        """The kerning between two characters, in ems (none across fonts)."""
        kern = self.kerns.get(pair)
        if kern is None:
            from matplotlib.ft2font import Kerning

            kern = 0.0
            if left.path == right.path:
                font = left.font
                kern = (
                    font.get_kerning(left.glyph_index, right.glyph_index, Kerning.UNSCALED)
                    / font.units_per_EM
                )
            if len(self.kerns) >= KERN_PAIRS:  # bounded: names in many scripts make many pairs
                self.kerns.clear()
            self.kerns[pair] = kern
        return kern

    def layout(self, text: str) -> list[tuple[str, _Glyph, float]] | None:
        """Each character with its glyph and the kerning before it (ems), or None when one of
        them is not a glyph of its own."""
        out = []
        before = None
        for k, char in enumerate(text):
            glyph = self._glyph(char)
            if glyph is None:
                return None
            kern = self._kern(text[k - 1 : k + 1], before, glyph) if before is not None else 0.0
            out.append((char, glyph, kern))
            before = glyph
        return out

    def width(self, text: str) -> float:
        """``text``'s advance in points (display units of a PDF)."""
        glyphs = self.layout(text)
        if glyphs is None:
            return float(self.renderer.get_text_width_height_descent(text, self.prop, ismath=False)[0])
        return sum(glyph.advance + kern for _, glyph, kern in glyphs) * self.size

    def show(self, gc: Any, x: float, y: float, text: str, rotation: float) -> None:
        from matplotlib.backends.backend_pdf import Op
        from matplotlib.font_manager import FontPath

        glyphs = self.layout(text)
        if glyphs is None:
            self.renderer.draw_text(gc, x, y, text, self.prop, rotation)
            return
        renderer, file = self.renderer, self.file
        renderer.check_gc(gc, gc._rgb)
        a = math.radians(rotation)
        ops: list[Any] = [Op.gsave, math.cos(a), math.sin(a), -math.sin(a), math.cos(a), x, y]
        ops += [Op.concat_matrix, Op.begin_text]
        tracked = _TRACKED.setdefault(file, {})
        shown: list[bytes | float] = []  # a TJ array: runs of character codes, kerns between
        run: list[int] = []
        current = None
        pen = start = 0.0
        for char, glyph, kern in glyphs:
            found = tracked.get((glyph.path, char))
            if found is None:
                found = file._character_tracker.track_glyph(glyph.font, char, glyph.glyph_index)
                tracked[glyph.path, char] = found
            subset, code = found
            pen += kern * self.size
            if (glyph.path, subset) != current:
                if run:
                    shown.append(bytes(run))
                    ops += [shown, Op.showkern]
                    shown, run = [], []
                name = file.fontName(FontPath(*glyph.path), subset)
                ops += [name, self.size, Op.selectfont, pen - start, 0, Op.textpos]
                current, start = (glyph.path, subset), pen
            elif kern:
                shown += [bytes(run), -1000 * kern]  # TJ: thousandths of an em, to the left
                run = []
            run.append(code)
            pen += glyph.advance * self.size
        if run:
            shown.append(bytes(run))
            ops += [shown, Op.showkern]
        ops += [Op.end_text, Op.grestore]
        file.output(*ops)


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
