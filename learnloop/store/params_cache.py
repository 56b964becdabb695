"""Parsed model parameters, cached per stored row.

``model_params`` rows are never updated: a new fit adds a row. So a model parsed from a row
(FSRS weights, a knowledge-tracing model) can be kept for the process's lifetime, keyed by the
database, the row and its fit time, instead of being rebuilt on every request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import select
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
