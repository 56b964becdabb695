"""The optional DKT-style GRU (``deep`` extra): learns a simulated log better than chance,
replays online as in batch, and round-trips through JSON. Skipped without torch."""

from __future__ import annotations

import json

import numpy as np
import pytest

from learnloop.science.kt import ResponseLog
from learnloop.science.kt.metrics import auc
from tests.conftest import need_module
from tests.science.kt.conftest import TRUE_PARAMS, replay, simulate_bkt

need_module("torch")

from learnloop.science.kt.deep import DeepKT  # noqa: E402


@pytest.fixture(scope="module")
def fitted() -> tuple[DeepKT, ResponseLog]:
    train = simulate_bkt(TRUE_PARAMS, n_users=150, length=30, seed=11)
    test = simulate_bkt(TRUE_PARAMS, n_users=60, length=30, seed=12)
    model = DeepKT(hidden=16, embed=8, max_epochs=5, patience=2, lr=1e-2, threads=1).fit(train)
    return model, test


def test_deep_beats_chance(fitted: tuple[DeepKT, ResponseLog]) -> None:
    model, test = fitted
    assert auc(test.correct, model.predict_proba(test)) > 0.65


def test_deep_online_equals_batch_and_round_trips(fitted: tuple[DeepKT, ResponseLog]) -> None:
    model, test = fitted
    head = ResponseLog(user=test.user[:300], skill=test.skill[:300], correct=test.correct[:300])
    batch = model.predict_proba(head)
    np.testing.assert_allclose(replay(model, head), batch, atol=1e-4)
    again = DeepKT.from_dict(json.loads(json.dumps(model.to_dict())))
    np.testing.assert_allclose(again.predict_proba(head), batch, atol=1e-6)
    state = model.initial_state()
    model.update(state, 0, 1)
    assert 0.0 < model.predict_next(json.loads(json.dumps(state)), 0) < 1.0
    assert not hasattr(model, "mastery")  # P(correct) only: no P(known) under another name
