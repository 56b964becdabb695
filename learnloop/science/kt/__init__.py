"""Knowledge tracing: P(next answer on a skill is correct) from a learner's history."""

from learnloop.science.kt.base import KnowledgeTracer, ResponseLog
from learnloop.science.kt.bkt import BKTParams, bkt_predict, bkt_update

__all__ = ["BKTParams", "KnowledgeTracer", "ResponseLog", "bkt_predict", "bkt_update"]
