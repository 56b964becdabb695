"""Cost of updating mastery after one answer, on the request path.

Measures (1) the knowledge-tracing update alone (BKT, and the logistic model's online
update), (2) the live mastery update of one answer on SQLite under each model ``learnloop
fit kt`` can choose (``mastery.apply_answer`` with loading the live model, the learner's
mastery rows and, under the logistic model, their stored state, then writing them back; and
the same with the commit), on the ai_era pack with a demo log, and (3) the whole
``practice.answer`` service call: scoring, appending the response, updating mastery, one
transaction (with default BKT, and under the fitted logistic model).

    python -m bench.mastery_update
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import select

from bench._common import record, write_results
from learnloop.config import Settings
from learnloop.content.loader import load_pack
from learnloop.science.kt import BKTParams, bkt_update
from learnloop.services import auth, packs, practice
from learnloop.services.auth import default_organisation
from learnloop.services.calibration import fit_kt
from learnloop.services.context import AppContext
from learnloop.services.demo import create_demo
from learnloop.services.mastery import apply_answer, load_model, mastery_of
from learnloop.store.db import migrate
from learnloop.store.models import KTState, Response, User, utcnow

ROOT = Path(__file__).resolve().parents[1]
PROTOCOL = "median of repeated single updates on this machine; service call includes SQLite commit (WAL)"
LIVE_PROTOCOL = (
    "median over 300 answers of one demo learner, one transaction each: load the live model "
    "(cached per row), the learner's mastery rows and KT state, update, flush; SQLite (WAL)"
)
LIVE_DATASET = "ai_era pack, demo log (60 learners)"


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
    log = ResponseLog(
        user=np.sort(rng.integers(0, 100, m)),
        skill=rng.integers(0, 20, m),
        correct=rng.integers(0, 2, m).astype(np.int8),
        item=rng.integers(0, 200, m),
    )
    model = LogisticKT().fit(log)
    state = model.initial_state()
    start = time.perf_counter()
    for k in range(n):
        state = model.update(state, k % 20, k % 2, item=k % 200)
    return (time.perf_counter() - start) / n * 1e6


def _new_ctx(tmp: str) -> AppContext:
    url = f"sqlite:///{tmp}/bench.db"
    migrate(url)
    ctx = AppContext(settings=Settings(database_url=url))
    packs.import_pack(ctx, ROOT / "packs" / "ai_era")
    return ctx


def _live_update_us(ctx: AppContext, n: int = 300, seed: int = 0) -> tuple[list[float], list[float]]:
    """Per answer: the mastery update (model, rows and state loaded, updated, flushed) and the
    same with the commit, in µs, for one learner of the demo log answering ``n`` more items."""
    pack = load_pack(ROOT / "packs" / "ai_era")
    rng = np.random.default_rng(seed)
    with ctx.session() as session:
        user = session.execute(select(User).where(User.email == "learner001@acme.example")).scalar_one()
        user_id, org_id = user.id, user.org_id
    update, total = [], []
    for _ in range(n):
        item = pack.items[int(rng.integers(len(pack.items)))]
        correct = bool(rng.random() < 0.6)
        session_cm = ctx.session()
        session = session_cm.__enter__()
        try:
            now = utcnow()
            response = Response(
                org_id=org_id,
                user_id=user_id,
                item_id=item.id,
                skills=list(item.skills),
                kind=item.kind,
                context="practice",
                answer={"bench": True},
                correct=correct,
                score=float(correct),
                hints_used=0,
                duration_ms=1000,
                created_at=now,
            )
            session.add(response)
            session.flush()
            start = time.perf_counter()
            model = load_model(session, default_organisation(session).id)
            rows = mastery_of(session, user_id)
            apply_answer(
                session,
                model,
                rows,
                user_id=user_id,
                skills=list(item.skills),
                correct=correct,
                response_id=response.id,
                at=now,
                item_id=item.id,
            )
            session.flush()
            update.append((time.perf_counter() - start) * 1e6)
        except BaseException as exc:
            session_cm.__exit__(type(exc), exc, exc.__traceback__)
            raise
        session_cm.__exit__(None, None, None)
        total.append((time.perf_counter() - start) * 1e6)
    return update, total


def _service_ms(ctx: AppContext, email: str, n: int = 60) -> list[float]:
    pack = load_pack(ROOT / "packs" / "ai_era")
    user = auth.signup(ctx, email=email, name="Bench", password="password-1").user
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
    records = [record("synthetic", PROTOCOL, "learnloop.bkt_update", "update_us", _bkt_us())]
    logistic = _logistic_us()
    if logistic is not None:
        records.append(record("synthetic", PROTOCOL, "learnloop.logistic_kt.update", "update_us", logistic))
    with tempfile.TemporaryDirectory() as tmp:
        ctx = _new_ctx(tmp)
        service = _service_ms(ctx, "bench@example.org")
        records += [
            record(
                "ai_era pack, 60 answers",
                PROTOCOL,
                "learnloop.practice.answer (choice/numeric)",
                "median_ms",
                statistics.median(service),
            ),
            record(
                "ai_era pack, 60 answers",
                PROTOCOL,
                "learnloop.practice.answer (choice/numeric)",
                "p90_ms",
                float(np.percentile(service, 90)),
            ),
        ]
        create_demo(ctx, learners=60)
        for kind in ("bkt", "logistic"):
            summary = fit_kt(ctx, model=kind)
            update, total = _live_update_us(ctx)
            method = f"learnloop.mastery.apply_answer ({kind}, fitted on {summary.answers} skill-answers)"
            records += [
                record(LIVE_DATASET, LIVE_PROTOCOL, method, "median_us", statistics.median(update)),
                record(LIVE_DATASET, LIVE_PROTOCOL, method, "p90_us", float(np.percentile(update, 90))),
                record(
                    LIVE_DATASET, LIVE_PROTOCOL, method + " + commit", "median_us", statistics.median(total)
                ),
            ]
            if kind == "logistic":
                # what the update reads and writes besides the mastery rows: the learner's state,
                # here after 300+ answers within the widest time window (its lists are longest)
                with ctx.session() as session:
                    sizes = [len(json.dumps(s)) for s in session.execute(select(KTState.state)).scalars()]
                records += [
                    record(LIVE_DATASET, LIVE_PROTOCOL, "kt_states.state (JSON)", "max_bytes", max(sizes)),
                    record(
                        LIVE_DATASET,
                        LIVE_PROTOCOL,
                        "kt_states.state (JSON)",
                        "median_bytes",
                        float(statistics.median(sizes)),
                    ),
                ]
        live = _service_ms(ctx, "bench-logistic@example.org")
        method = "learnloop.practice.answer (choice/numeric, logistic model live)"
        records += [
            record(LIVE_DATASET, PROTOCOL, method, "median_ms", statistics.median(live)),
            record(LIVE_DATASET, PROTOCOL, method, "p90_ms", float(np.percentile(live, 90))),
        ]
    write_results("mastery_update", records, packages=["numpy", "sqlalchemy"])


if __name__ == "__main__":
    main()
