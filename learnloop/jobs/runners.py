"""Who runs the jobs: procrastinate on PostgreSQL, a thread on SQLite; the same queue for both.

- PostgreSQL: enqueueing defers a procrastinate job (queue ``learnloop``, argument: the job row's
  id, a queueing lock per row so it is never waiting twice). A worker is procrastinate's
  (LISTEN/NOTIFY, several workers and processes at once); its one task, ``learnloop.job``,
  calls :func:`learnloop.jobs.queue.run_job` and defers the retry at its due time.
- SQLite: a thread polls the ``jobs`` table for due rows (and wakes at once for jobs enqueued in
  its own process); claiming a row is one update, so several server processes can share the
  file.

Both also run :func:`maintain` every few seconds: the scheduled tasks, jobs left running by a
worker that died, and (PostgreSQL) rows whose hand-over to procrastinate was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import select

from learnloop.jobs import queue
from learnloop.services.context import AppContext
from learnloop.store.db import _normalise_url
from learnloop.store.models import Job, utcnow

log = logging.getLogger("learnloop.jobs")
PROCRASTINATE_QUEUE = "learnloop"
PROCRASTINATE_TASK = "learnloop.job"
MAINTAIN_EVERY_S = 15.0


def _conninfo(url: str) -> str:
    return _normalise_url(url).replace("postgresql+psycopg://", "postgresql://", 1)


@lru_cache(maxsize=16)
def _defer_app(url: str) -> Any:
    """A procrastinate app with a small synchronous pool, for deferring from any thread."""
    import procrastinate

    app = procrastinate.App(
        connector=procrastinate.SyncPsycopgConnector(conninfo=_conninfo(url), min_size=0, max_size=2)
    )
    app.open()
    return app


def defer_to_procrastinate(ctx: AppContext, job_id: int, at: datetime | None = None) -> None:
    from procrastinate.exceptions import AlreadyEnqueued

    app = _defer_app(ctx.settings.database_url)
    with contextlib.suppress(AlreadyEnqueued):  # procrastinate holds this job already
        app.configure_task(
            PROCRASTINATE_TASK,
            queue=PROCRASTINATE_QUEUE,
            queueing_lock=f"job-{job_id}",
            schedule_at=at,
        ).defer(job_id=job_id)


def _resend_lost(ctx: AppContext) -> int:
    """PostgreSQL: hand over again the due rows that waited a while (a lost hand-over; the
    queueing lock makes this a no-op where procrastinate already holds one)."""
    cutoff = utcnow() - timedelta(seconds=30)
    with ctx.session() as session:
        ids = list(
            session.scalars(
                select(Job.id).where(Job.state.in_(queue.WAITING), Job.run_at <= cutoff).limit(200)
            )
        )
    for job_id in ids:
        defer_to_procrastinate(ctx, int(job_id))
    return len(ids)


def maintain(ctx: AppContext, started: float) -> None:
    """The housekeeping every worker does: stale runs, lost hand-overs, scheduled tasks."""
    queue.release_stale(ctx)
    if queue.is_postgres(ctx):
        _resend_lost(ctx)
    if time.monotonic() - started >= ctx.settings.jobs_periodic_delay_s:
        queue.schedule_periodic(ctx)


class Worker:
    """A job worker in a background thread of this process; :meth:`stop` ends it."""

    def __init__(self, ctx: AppContext, *, concurrency: int = 1) -> None:
        self.ctx = ctx
        self.concurrency = concurrency
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self.started = time.monotonic()

    @property
    def postgres(self) -> bool:
        return queue.is_postgres(self.ctx)

    def start(self) -> Worker:
        self._threads.append(
            threading.Thread(target=self._housekeeping, name="learnloop-jobs-maint", daemon=True)
        )
        if self.postgres:
            self._threads.append(
                threading.Thread(target=self._procrastinate, name="learnloop-jobs", daemon=True)
            )
        else:
            self._threads.append(threading.Thread(target=self._poll, name="learnloop-jobs", daemon=True))
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        queue.wake.set()
        if self._loop is not None and self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        for thread in self._threads:
            thread.join(timeout)

    def wait(self) -> None:
        """Block until the worker stops (Ctrl-C in ``learnloop worker``)."""
        try:
            while not self._stop.is_set() and any(t.is_alive() for t in self._threads):
                time.sleep(0.5)
        finally:
            self.stop()

    # -- the threads --------------------------------------------------------------------
    def _housekeeping(self) -> None:
        while not self._stop.is_set():
            try:
                maintain(self.ctx, self.started)
            except Exception:
                log.exception("job housekeeping failed")
            self._stop.wait(MAINTAIN_EVERY_S)

    def _poll(self) -> None:
        while not self._stop.is_set():
            queue.wake.clear()
            try:
                queue.run_due(self.ctx, limit=50)
            except Exception:  # e.g. the database is briefly unreachable: try again shortly
                log.exception("running due jobs failed")
            queue.wake.wait(self.ctx.settings.jobs_poll_s)

    def _procrastinate(self) -> None:
        import procrastinate

        ctx = self.ctx
        app = procrastinate.App(
            connector=procrastinate.PsycopgConnector(conninfo=_conninfo(ctx.settings.database_url))
        )

        @app.task(name=PROCRASTINATE_TASK, queue=PROCRASTINATE_QUEUE)
        def run(job_id: int) -> None:
            due = queue.run_job(ctx, int(job_id))
            if due is not None:
                defer_to_procrastinate(ctx, int(job_id), at=due)

        async def main() -> None:
            async with app.open_async():
                await app.run_worker_async(
                    queues=[PROCRASTINATE_QUEUE],
                    concurrency=self.concurrency,
                    install_signal_handlers=False,
                    delete_jobs="always",
                    wait=True,
                )

        while not self._stop.is_set():
            self._loop = asyncio.new_event_loop()
            self._task = self._loop.create_task(main())
            try:
                self._loop.run_until_complete(self._task)
            except asyncio.CancelledError:
                pass
            except Exception:  # the database went away: start again after a pause
                log.exception("the procrastinate worker stopped; starting again")
            finally:
                self._loop.close()
            self._stop.wait(2.0)


def start_in_process(ctx: AppContext) -> Worker | None:
    """The server's own worker (``LEARNLOOP_JOBS_WORKER=thread``), one per process and database."""
    if ctx.settings.jobs_worker != "thread":
        return None
    return Worker(ctx).start()
