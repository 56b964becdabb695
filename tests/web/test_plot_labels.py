"""Chart tick labels: every tick of the progress chart names a distinct day, also for a learner
with one day of answers (the axis used to repeat "01-01 07-01")."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from learnloop.web import plots


def _labels(days: list[date]) -> list[str]:
    with plots.plotting():
        fig = plots.timeline(
            [("LLMs", days, [0.3] * len(days)), ("RAG", days, [0.1] * len(days))], mastery_label="M"
        )
        FigureCanvasAgg(fig).draw()
        return [t.get_text() for t in fig.axes[0].get_xticklabels()]


@pytest.mark.parametrize(
    ("days", "first", "last"),
    [
        ([date(2026, 12, 6)], "12-06", "12-06"),
        ([date(2026, 12, 1), date(2026, 12, 6)], "12-01", "12-06"),
        ([date(2026, 1, 1) + timedelta(days=k) for k in range(0, 340, 7)], "01-01", "12-03"),
        ([date(2025, 12, 20), date(2026, 1, 3)], "2025-12-20", "2026-01-03"),
    ],
)
def test_progress_chart_ticks_are_distinct_days(days: list[date], first: str, last: str) -> None:
    labels = _labels(days)
    assert labels and len(labels) == len(set(labels)) <= 7
    assert labels[0] == first and labels[-1] == last
