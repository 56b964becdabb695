"""Real-data regression pins: knowledge tracing on the Gervet et al. Statics split (80/20 users,
their files in $LEARNLOOP_DATA/kt/gervet_statics). A change that costs AUC fails here; the full
comparison with peers and published figures is bench/kt.py."""

from __future__ import annotations

import numpy as np
import pytest

from bench.kt import HYPER, MODELS, load_split
from learnloop.science.kt import LogisticKT, ResponseLog
from learnloop.science.kt.base import answers_of
from learnloop.science.kt.features import (
    LearnerCounters,
    LearnerState,
    dense_features,
    dense_row,
    history_counts,
)
from learnloop.science.kt.metrics import auc
from tests.conftest import data_dir, need
from tests.science.kt.conftest import replay

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


def _first_learners(log: ResponseLog, k: int) -> ResponseLog:
    """The rows of the first ``k`` learners of ``log`` (in order of first appearance)."""
    _, first = np.unique(log.user, return_index=True)
    chosen = log.user[np.sort(first)[:k]]
    keep = np.isin(log.user, chosen)

    def part(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else a[keep]

    return ResponseLog(
        user=log.user[keep],
        skill=log.skill[keep],
        correct=log.correct[keep],
        item=part(log.item),
        timestamp=part(log.timestamp),
        answer=part(log.answer),
    )


@pytest.mark.parametrize("dataset", ["akt_assist2009_pid", "gervet_assistments09"])
def test_online_counters_and_predictions_equal_the_batch_path_on_real_learners(dataset: str) -> None:
    """One implementation of each feature: on real learners (AKT's ASSIST2009 files, whose
    multi-skill answers are several rows; Gervet's ASSISTments09 with item ids), the batch
    counters (``history_counts``, what fitting reads) equal the online ``LearnerCounters``
    advanced answer by answer (what the product's learner state holds), feature by feature,
    and the bench's fitted model predicts the same from both paths."""
    if not (data_dir() / "kt" / dataset).is_dir():
        need(f"the {dataset} files are missing ({data_dir() / 'kt' / dataset}; set LEARNLOOP_DATA)")
    split = load_split(data_dir() / "kt", dataset)
    train, test = _first_learners(split.train, 150), _first_learners(split.test, 40)
    hyper = HYPER.get(dataset, {}).get("learnloop.logistic", {})
    model = MODELS["learnloop.logistic"](**hyper).fit(train)
    assert isinstance(model, LogisticKT)
    if dataset == "akt_assist2009_pid":
        assert (answers_of(test).size > 1).any()  # the sample holds multi-skill answers

    sub = test
    keep = ~answers_of(sub).repeat
    sub = ResponseLog(
        user=sub.user[keep],
        skill=sub.skill[keep],
        correct=sub.correct[keep],
        item=None if sub.item is None else sub.item[keep],
        timestamp=None if sub.timestamp is None else sub.timestamp[keep],
        answer=None if sub.answer is None else sub.answer[keep],
    )
    spec = model.features
    batch = dense_features(spec, history_counts(spec, sub, int(sub.skill.max()) + 1, False), False)
    counters = LearnerCounters(spec, with_windows=False)
    states: dict[int, LearnerState] = {}
    online = np.empty_like(batch)
    groups = answers_of(sub)
    for first, size in zip(groups.first.tolist(), groups.size.tolist(), strict=True):
        state = states.setdefault(int(sub.user[first]), counters.initial())
        item = None if sub.item is None else int(sub.item[first])
        for r in range(first, first + size):
            online[r] = dense_row(spec, counters.counts(state, int(sub.skill[r]), item, None), False)
        counters.update(
            state, [int(s) for s in sub.skill[first : first + size]], int(sub.correct[first]), item, None
        )
    assert len(batch) > 500
    np.testing.assert_allclose(online, batch, rtol=0, atol=1e-12)

    np.testing.assert_allclose(replay(model, test), model.predict_proba(test), rtol=0, atol=1e-9)
