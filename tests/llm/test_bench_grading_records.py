"""bench/grading.py writes its auto-grading records (auto_share@t, auto_accuracy@t) from one helper,
in the form bench/results/grading.json already holds."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from bench.grading import auto_records

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results" / "grading.json"


def test_auto_records_share_and_accuracy_per_threshold() -> None:
    conf = np.array([0.9, 0.75, np.nan, 0.5])  # the third answer got no grade
    right = np.array([1.0, 0.0, 0.0, 1.0])
    out = auto_records("corpus", "protocol", "method", conf, right, (0.7, 0.85, 0.95))
    assert [r["metric"] for r in out] == [
        "auto_share@0.7",
        "auto_accuracy@0.7",
        "auto_share@0.85",
        "auto_accuracy@0.85",
        "auto_share@0.95",
        "auto_accuracy@0.95",
    ]
    values = [r["value"] for r in out]
    assert values[:4] == [0.5, 0.5, 0.25, 1.0]
    assert values[4] == 0.0 and values[5] is None  # nothing graded on its own: no accuracy
    assert all((r["dataset"], r["protocol"], r["method"]) == ("corpus", "protocol", "method") for r in out)


def test_auto_records_have_the_fields_of_the_stored_results() -> None:
    stored = [r for r in json.loads(RESULTS.read_text())["records"] if r["metric"].startswith("auto_")]
    assert stored, "bench/results/grading.json holds auto-grading records"
    made = auto_records("c", "p", "m", np.array([0.8]), np.array([1.0]), (0.7,))
    assert {tuple(sorted(r)) for r in made} == {tuple(sorted(r)) for r in stored}
    assert all(isinstance(r["value"], float) and not math.isnan(r["value"]) for r in made)
