"""Cost of updating mastery after one answer, on the request path.

Measures (1) the knowledge-tracing update alone (BKT, and the logistic model's online
update) and (2) the whole ``practice.answer`` service call on SQLite: scoring, appending
the response, updating mastery, one transaction.

    python -m bench.mastery_update
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bench._common import record, write_results
from learnloop.config import Settings
from learnloop.content.loader import load_pack
from learnloop.science.kt import BKTParams, bkt_update
from learnloop.services import auth, packs, practice
from learnloop.services.context import AppContext
from learnloop.store.db import migrate

ROOT = Path(__file__).resolve().parents[1]
PROTOCOL = "median of repeated single updates on this machine; service call includes SQLite commit (WAL)"


def _bkt_us(n: int = 20000) -> float:
    params = BKTParams()
    p = 0.2
    start = time.perf_counter()
    for k in range(n):
        p = bkt_update(p, k % 3 != 0, params)
    return (time.perf_counter() - start) / n * 1e6


def _logistic_us(n: int = 2000) -> float | None:
    from learnloop.science.kt.base import ResponseLog
    from learnloop.science.kt.logistic import LogisticKT

    rng = np.random.default_rng(0)
    m = 4000
    log = ResponseLog(user=np.sort(rng.integers(0, 100, m)), skill=rng.integers(0, 20, m),
                      correct=rng.integers(0, 2, m).astype(np.int8), item=rng.integers(0, 200, m))
    model = LogisticKT().fit(log)
    state = model.initial_state()
    start = time.perf_counter()
    for k in range(n):
        state = model.update(state, k % 20, k % 2, item=k % 200)
    return (time.perf_counter() - start) / n * 1e6


def _service_ms(n: int = 60) -> list[float]:
    pack = load_pack(ROOT / "packs" / "ai_era")
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        migrate(url)
        ctx = AppContext(settings=Settings(database_url=url))
        packs.import_pack(ctx, ROOT / "packs" / "ai_era")
        user = auth.signup(ctx, email="bench@example.org", name="Bench", password="password-1").user
        practice.enrol(ctx, user, "llm-app-engineer")
        times = []
        for _ in range(n):
            shown = practice.next_item(ctx, user)
            item = pack.item(shown.item["id"])
            if item.kind == "choice":
                payload = {"choice": item.key}
            elif item.kind == "numeric":
                payload = {"value": item.answer}
            elif item.kind == "text":
                payload = {"text": (item.reference_answers or ["x"])[0]}
            else:
                payload = {"code": item.solution}
            start = time.perf_counter()
            practice.answer(ctx, user, item.id, payload)
            if item.kind in ("choice", "numeric"):
                times.append((time.perf_counter() - start) * 1000)
        return times


def main() -> None:
    service = _service_ms()
    records = [
        record("synthetic", PROTOCOL, "learnloop.bkt_update", "update_us", _bkt_us()),
        record("ai_era pack, 60 answers", PROTOCOL, "learnloop.practice.answer (choice/numeric)",
               "median_ms", statistics.median(service)),
        record("ai_era pack, 60 answers", PROTOCOL, "learnloop.practice.answer (choice/numeric)",
               "p90_ms", float(np.percentile(service, 90))),
    ]
    logistic = _logistic_us()
    if logistic is not None:
        records.insert(1, record("synthetic", PROTOCOL, "learnloop.logistic_kt.update", "update_us", logistic))
    write_results("mastery_update", records, packages=["numpy", "sqlalchemy"])


if __name__ == "__main__":
    main()
