"""Real-data regression pins: knowledge tracing on the Gervet et al. Statics split (80/20 users,
their files in $LEARNLOOP_DATA/kt/gervet_statics). A change that costs AUC fails here; the full
comparison with peers and published figures is bench/kt.py."""

from __future__ import annotations

import pytest

from bench.kt import MODELS, load_split
from learnloop.science.kt.metrics import auc
from tests.conftest import data_dir, need

STATICS = data_dir() / "kt" / "gervet_statics"


@pytest.fixture(scope="module")
def split():  # type: ignore[no-untyped-def]
    if not (STATICS / "preprocessed_data_train.csv").exists():
        need(f"the Gervet Statics split is missing ({STATICS}; set LEARNLOOP_DATA)")
    return load_split(data_dir() / "kt", "gervet_statics")


@pytest.mark.parametrize(
    ("method", "expected"),
    # bench/results/kt.json, gervet_statics: learnloop.bkt 0.6923, learnloop.logistic 0.8314
    [("learnloop.bkt", 0.6923), ("learnloop.logistic", 0.8314)],
)
def test_statics_auc_is_pinned(split, method: str, expected: float) -> None:  # type: ignore[no-untyped-def]
    model = MODELS[method]()
    model.fit(split.train)
    predicted = model.predict_proba(split.test)
    assert auc(split.test.correct, predicted) == pytest.approx(expected, abs=0.005)
