"""Parsed model parameters, cached per stored row.

``model_params`` rows are never updated: a new fit adds a row. So a model parsed from a row
(FSRS weights, a knowledge-tracing model) can be kept for the process's lifetime, keyed by the
database, the row and its fit time, instead of being rebuilt on every request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Any, Generic, NamedTuple, TypeVar

from sqlalchemy import case, event, literal_column, select, union_all
from sqlalchemy.orm import Session

from learnloop.store.models import ModelParams

T = TypeVar("T")


class ParamsCache(Generic[T]):
    """Models built from ``model_params`` rows, at most ``size`` of them (oldest dropped first)."""

    def __init__(self, size: int = 16) -> None:
        self._size = size
        self._items: dict[tuple[str, int, datetime], T] = {}
        self._lock = threading.Lock()

    def get(self, session: Session, row_id: int, fitted_at: datetime, build: Callable[[Any], T]) -> T:
        """The model of row ``row_id``, built by ``build(params)`` the first time it is asked for."""
        key = (str(session.get_bind().engine.url), row_id, fitted_at)
        with self._lock:
            cached = self._items.get(key)
        if cached is not None:
            return cached
        params = session.execute(select(ModelParams.params).where(ModelParams.id == row_id)).scalar_one()
        model = build(params)
        with self._lock:
            if len(self._items) >= self._size:
                self._items.pop(next(iter(self._items)))
            self._items[key] = model
        return model


class Head(NamedTuple):
    """The newest ``model_params`` row of a group of kinds: what a cached model is keyed by."""

    id: int
    kind: str
    fitted_at: datetime


_HEADS = "learnloop.params_heads"


@event.listens_for(Session, "after_flush")
def _forget_heads(session: Session, _flush_context: Any) -> None:
    """A fit stored in this transaction is the newest row of its kind from then on."""
    if _HEADS in session.info and any(isinstance(obj, ModelParams) for obj in session.new):
        del session.info[_HEADS]


def newest_heads(session: Session, *groups: tuple[str, ...]) -> list[Head | None]:
    """Per group of kinds, the newest row of its first kind, else the newest of its other kinds
    (None: no row), read in one statement for all the groups not read in this transaction yet.

    A request that needs several models (the knowledge-tracing model and the FSRS weights of
    the practice loop's next item) reads their heads at once; a later call in the same
    transaction for a group read before is answered from the session (``model_params`` rows
    are only ever added, and a fit landing meanwhile is picked up by the next transaction)."""
    transaction = session.get_transaction()
    held = session.info.get(_HEADS)
    if held is None or held[0] is not transaction:
        held = session.info[_HEADS] = (transaction, {})
    known: dict[tuple[str, ...], Head | None] = held[1]
    missing = tuple(group for group in groups if group not in known)
    if missing:
        found = {
            int(row[3]): Head(int(row[0]), str(row[1]), row[2])
            for row in session.execute(_heads_query(missing))
        }
        for k, group in enumerate(missing):
            known[group] = found.get(k)
    return [known[group] for group in groups]


@lru_cache(maxsize=32)
def _heads_query(groups: tuple[tuple[str, ...], ...]) -> Any:
    """The statement of :func:`newest_heads` for these groups, built once per process (the
    kinds are the code's constants; building it cost more than running it)."""
    parts = []
    for k, group in enumerate(groups):
        part = (
            select(
                ModelParams.id,
                ModelParams.kind,
                ModelParams.fitted_at,
                literal_column(str(k)).label("part"),
            )
            .where(ModelParams.kind.in_(group))
            .order_by(case((ModelParams.kind == group[0], 0), else_=1), ModelParams.id.desc())
            .limit(1)
            .subquery()
        )
        parts.append(select(part))
    return parts[0] if len(parts) == 1 else union_all(*parts)
