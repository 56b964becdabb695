"""Knowledge tracing: P(next answer on a skill is correct) from a learner's history.

Models share one interface (``KnowledgeTracer``): ``fit`` on a ``ResponseLog``,
``predict_proba`` for every row from earlier rows only, and an online ``update`` of a small
JSON state per learner. ``BKT`` is Bayesian knowledge tracing fitted by EM; ``LogisticKT``
is the PFA / Best-LR / DAS3H logistic family.
"""

from learnloop.science.kt.base import KnowledgeTracer, ResponseLog
from learnloop.science.kt.bkt import BKT, BKTParams, bkt_predict, bkt_update
from learnloop.science.kt.features import FeatureSpec
from learnloop.science.kt.logistic import LogisticKT
from learnloop.science.kt.refit import fit_from_log, model_from_dict

__all__ = [
    "BKT",
    "BKTParams",
    "FeatureSpec",
    "KnowledgeTracer",
    "LogisticKT",
    "ResponseLog",
    "bkt_predict",
    "bkt_update",
    "fit_from_log",
    "model_from_dict",
]
