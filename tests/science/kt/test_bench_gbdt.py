"""bench/kt_gbdt.py chooses GBDTKT's settings on a validation split (issue 19): every base x tree
setting x tree count is scored on valid, and the product default gets its fit and online time."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench import kt_gbdt
from learnloop.science.kt import ResponseLog
from learnloop.science.kt.gbdt import GBDTKT
from tests.conftest import need_module


def _log(seed: int, users: int) -> ResponseLog:
    rng = np.random.default_rng(seed)
    n = users * 30
    return ResponseLog(
        user=np.repeat(np.arange(users), 30).astype(np.int64),
        skill=rng.integers(0, 5, n).astype(np.int64),
        correct=rng.integers(0, 2, n).astype(np.int8),
        item=rng.integers(0, 30, n).astype(np.int64),
    )


def test_every_setting_is_scored_on_valid_and_the_default_is_timed() -> None:
    need_module("lightgbm")
    records = kt_gbdt.gervet_gbdt_records(
        Path("unused"),
        ["toy"],
        lambda _data, _name: (_log(0, 40), _log(1, 10)),
        0,
        bases={"defaults": GBDTKT().base},
        grid={"default trees": ({}, 50), "smaller": ({"num_leaves": 7}, 25)},
    )
    by = {(r["method"], r["metric"]): r["value"] for r in records}
    assert ("learnloop.gbdt (defaults; smaller) trees=25", "valid_auc") in by
    assert ("learnloop.gbdt (defaults; default trees) trees=50", "valid_auc") in by
    assert ("learnloop.logistic (defaults)", "valid_auc") in by
    timed = [
        m
        for m, metric in by
        if m.startswith("learnloop.gbdt (product default") and metric == "online_update_us"
    ]
    assert len(timed) == 1
    assert all(
        isinstance(v, float) and 0.0 <= v <= 1.0 for (m, metric), v in by.items() if metric == "valid_auc"
    )
