"""The job queue's PostgreSQL runner, without a library: claims with ``FOR UPDATE SKIP LOCKED``
(never one job twice, never a wait on another worker's row), wake-ups by ``LISTEN``/``NOTIFY``
(a transactional signal: a committed enqueue wakes the workers, a rolled-back one does not
exist), and the removal of the procrastinate schema an earlier version installed."""

from __future__ import annotations

import importlib
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from learnloop import jobs
from learnloop.jobs import queue
from learnloop.jobs.registry import JobRun
from learnloop.services.context import AppContext
from learnloop.store.db import get_engine
from learnloop.store.models import Job
from tests.conftest import MINI_PACK, POSTGRES_URL, _make_ctx, _postgres_database, need

SEEN: list[int] = []
SEEN_LOCK = threading.Lock()


@jobs.task("test.pg.record", max_attempts=1)
def record(ctx: AppContext, payload: dict[str, Any], run: JobRun) -> dict[str, Any]:
    time.sleep(float(payload.get("sleep", 0.0)))
    with SEEN_LOCK:
        SEEN.append(run.job_id)
    return {"job": run.job_id}


@pytest.fixture
def pg_ctx() -> Iterator[AppContext]:
    if not POSTGRES_URL:
        need("no PostgreSQL server (set LEARNLOOP_TEST_POSTGRES_URL)")
    databases = _postgres_database()
    url = next(databases)
    try:
        yield _make_ctx(url, MINI_PACK)
    finally:
        next(databases, None)


def test_concurrent_claims_skip_locked_rows_and_run_each_job_once(pg_ctx: AppContext) -> None:
    SEEN.clear()
    ids = [jobs.enqueue(pg_ctx, "test.pg.record", {"sleep": 0.02}) for _ in range(30)]
    claimed: list[int] = []
    errors: list[BaseException] = []

    def claimer() -> None:
        try:
            while (run := queue.claim_next(pg_ctx)) is not None:
                claimed.append(run.job_id)
                queue.run_claimed(pg_ctx, run)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=claimer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert Counter(claimed) == Counter(ids)  # every job claimed exactly once
    assert sorted(SEEN) == sorted(ids)
    with pg_ctx.session() as session:
        states = Counter(session.scalars(text("SELECT state FROM jobs WHERE task = 'test.pg.record'")))
    assert states == {"done": 30}


def test_a_locked_row_is_skipped_not_waited_for(pg_ctx: AppContext) -> None:
    first = jobs.enqueue(pg_ctx, "test.pg.record", {})
    second = jobs.enqueue(pg_ctx, "test.pg.record", {})
    engine = get_engine(pg_ctx.settings.database_url)
    with engine.connect() as other:  # another worker, mid-claim, holds the oldest row
        other.execute(text("SELECT id FROM jobs WHERE id = :i FOR UPDATE"), {"i": first})
        started = time.monotonic()
        run = queue.claim_next(pg_ctx)
        assert run is not None and run.job_id == second
        assert time.monotonic() - started < 5  # no wait on the lock (it is held until rollback)
        other.rollback()
    later = queue.claim_next(pg_ctx)
    assert later is not None and later.job_id == first


def test_notify_wakes_an_idle_worker_long_before_its_poll(pg_ctx: AppContext) -> None:
    """With a 60 s poll, only the NOTIFY of the enqueue's commit can start the job in seconds;
    an enqueue rolled back with its caller's transaction never runs."""
    SEEN.clear()
    ctx = pg_ctx
    ctx.settings = ctx.settings.model_copy(update={"jobs_poll_s": 60.0, "jobs_periodic_delay_s": 3600.0})
    worker = jobs.Worker(ctx, concurrency=2).start()
    try:
        time.sleep(1.5)  # the worker found nothing and sleeps on its 60 s poll
        with pytest.raises(RuntimeError), ctx.session() as session:
            jobs.enqueue(ctx, "test.pg.record", {}, session=session)
            raise RuntimeError("the caller fails")
        started = time.monotonic()
        job_id = jobs.enqueue(ctx, "test.pg.record", {})
        while job_id not in SEEN and time.monotonic() - started < 20:
            time.sleep(0.05)
        waited = time.monotonic() - started
    finally:
        worker.stop()
    assert [job_id] == SEEN, f"the job did not run within 20 s of its NOTIFY (waited {waited:.1f} s)"
    with ctx.session() as session:
        assert session.query(Job).count() == 1  # the rolled-back enqueue left nothing


def test_the_migration_drops_an_old_procrastinate_schema(pg_ctx: AppContext) -> None:
    migration = importlib.import_module("learnloop.store.migrations.versions.0028_jobs_without_procrastinate")
    engine = get_engine(pg_ctx.settings.database_url)
    with engine.begin() as conn:  # what procrastinate's schema looked like, in small
        conn.exec_driver_sql("CREATE TYPE procrastinate_job_status AS ENUM ('todo', 'doing')")
        conn.exec_driver_sql(
            "CREATE TABLE procrastinate_jobs (id bigserial PRIMARY KEY, status procrastinate_job_status)"
        )
        conn.exec_driver_sql(
            "CREATE FUNCTION procrastinate_notify_queue() RETURNS trigger LANGUAGE plpgsql "
            "AS $$ BEGIN RETURN NEW; END $$"
        )
        conn.exec_driver_sql(
            "CREATE TRIGGER procrastinate_jobs_notify AFTER INSERT ON procrastinate_jobs "
            "FOR EACH ROW EXECUTE FUNCTION procrastinate_notify_queue()"
        )
    with engine.begin() as conn:
        conn.exec_driver_sql(migration._DROP_PROCRASTINATE)
    with engine.connect() as conn:
        left = conn.execute(
            text(
                "SELECT count(*) FROM pg_class WHERE relname LIKE 'procrastinate%' "
                "UNION ALL SELECT count(*) FROM pg_proc WHERE proname LIKE 'procrastinate%' "
                "UNION ALL SELECT count(*) FROM pg_type WHERE typname LIKE 'procrastinate%'"
            )
        ).scalars()
        assert list(left) == [0, 0, 0]
        assert conn.execute(text("SELECT to_regclass('jobs') IS NOT NULL")).scalar()
