"""Refit a knowledge-tracing model from the product's own response log, and load one back.

``fit_from_log`` is what ``learnloop fit kt`` calls; ``model_from_dict`` restores any model
from its ``to_dict`` JSON by its ``kind``.
"""

from __future__ import annotations

from typing import Any

from learnloop.science.kt.base import KnowledgeTracer, ResponseLog
from learnloop.science.kt.bkt import BKT
from learnloop.science.kt.deep import DeepKT
from learnloop.science.kt.gbdt import GBDTKT
from learnloop.science.kt.logistic import LogisticKT

# DeepKT's and GBDTKT's modules import numpy only; torch (the ``deep`` extra) is needed to fit
# DeepKT, lightgbm (the ``kt-gbdt`` extra) to fit or load GBDTKT.
MODELS: dict[str, type[BKT] | type[LogisticKT] | type[DeepKT] | type[GBDTKT]] = {
    BKT.kind: BKT,
    LogisticKT.kind: LogisticKT,
    DeepKT.kind: DeepKT,
    GBDTKT.kind: GBDTKT,
}


def fit_from_log(log: ResponseLog, kind: str = "bkt", **hyper: Any) -> KnowledgeTracer:
    """Fit a ``kind`` model ("bkt", "logistic" or, with the ``deep`` extra, "dkt", with ``kt-gbdt`` "gbdt") on ``log`` with the given hyper-parameters.

    A log with no answers gives an unfitted-but-usable BKT (population defaults) rather than
    an error, so a new installation can always write a model."""
    if kind not in MODELS:
        raise ValueError(f"unknown knowledge-tracing model {kind!r}; choose from {sorted(MODELS)}")
    model = MODELS[kind](**hyper)
    return model.fit(log)


def model_from_dict(data: dict[str, Any]) -> KnowledgeTracer:
    kind = data.get("kind")
    if kind not in MODELS:
        raise ValueError(f"unknown knowledge-tracing model {kind!r}; choose from {sorted(MODELS)}")
    return MODELS[kind].from_dict(data)
