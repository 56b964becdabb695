"""Who runs the jobs: the same queue (the ``jobs`` table) on both backends, woken differently.

- PostgreSQL: each worker thread claims the oldest due row with ``FOR UPDATE SKIP LOCKED``
  (:func:`learnloop.jobs.queue.claim_next`), so several threads, processes and machines share
  the queue without two running one job or waiting on each other. When none is due they sleep
  until a listener thread hears ``NOTIFY learnloop_jobs`` (sent by each enqueue's own
  transaction, so a committed job always wakes them), a retry's backoff runs out, or
  ``jobs_poll_s`` passes (the safety net if the listening connection was cut).
- SQLite: a thread polls the ``jobs`` table for due rows (and wakes at once for jobs enqueued in
  its own process); claiming a row is one update, so several server processes can share the
  file.

Both also run :func:`maintain` every few seconds: the scheduled tasks and jobs left running by a
worker that died. No library and no second store: the queue is ours, on the driver the app uses
(pg8000), and its state lives in one table that ``/admin/jobs`` and the backups read.
"""

from __future__ import annotations

import contextlib
import logging
import select as select_io
import threading
import time
from typing import Any

from learnloop.jobs import queue
from learnloop.services.context import AppContext
from learnloop.store.db import get_engine

log = logging.getLogger("learnloop.jobs")
MAINTAIN_EVERY_S = 15.0
#: pause before a listener whose connection failed connects again
RECONNECT_S = 2.0


def maintain(ctx: AppContext, started: float) -> None:
    """The housekeeping every worker does: stale runs, scheduled tasks."""
    queue.release_stale(ctx)
    if time.monotonic() - started >= ctx.settings.jobs_periodic_delay_s:
        queue.schedule_periodic(ctx)


def _listen_connection(url: str) -> Any:
    """A connection of its own (not the pool's), in autocommit, listening on the jobs channel."""
    engine = get_engine(url)
    cargs, cparams = engine.dialect.create_connect_args(engine.url)
    conn = engine.dialect.loaded_dbapi.connect(*cargs, **cparams)
    conn.autocommit = True
    cursor = conn.cursor()
    cursor.execute(f"LISTEN {queue.CHANNEL}")
    return conn


class Worker:
    """A job worker in a background thread of this process; :meth:`stop` ends it."""

    def __init__(self, ctx: AppContext, *, concurrency: int = 1) -> None:
        self.ctx = ctx
        self.concurrency = concurrency
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        #: PostgreSQL: set by the listener when a job was enqueued anywhere
        self._notified = threading.Event()
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
                threading.Thread(target=self._listen, name="learnloop-jobs-listen", daemon=True)
            )
            self._threads += [
                threading.Thread(target=self._claim_loop, name=f"learnloop-jobs-{i}", daemon=True)
                for i in range(self.concurrency)
            ]
        else:
            self._threads.append(threading.Thread(target=self._poll, name="learnloop-jobs", daemon=True))
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        queue.wake.set()
        self._notified.set()
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

    def _claim_loop(self) -> None:
        """PostgreSQL: run due jobs (claimed with SKIP LOCKED), then sleep until woken."""
        ctx = self.ctx
        while not self._stop.is_set():
            self._notified.clear()
            wait = ctx.settings.jobs_poll_s
            try:
                queue.run_due(ctx, limit=50)
                due_in = queue.next_due_s(ctx)
                if due_in is not None:
                    wait = min(wait, max(due_in, 0.05))
            except Exception:  # e.g. the database is briefly unreachable: try again shortly
                log.exception("running due jobs failed")
            self._notified.wait(wait)

    def _listen(self) -> None:
        """PostgreSQL: hold a ``LISTEN`` connection and wake the claim loops on each ``NOTIFY``."""
        url = self.ctx.settings.database_url
        while not self._stop.is_set():
            conn = None
            try:
                conn = _listen_connection(url)
                cursor = conn.cursor()
                self._notified.set()  # (re)connected: look once for anything missed meanwhile
                while not self._stop.is_set():
                    readable, _, _ = select_io.select([conn._usock], [], [], 1.0)
                    if not readable:
                        continue
                    cursor.execute("SELECT 1")  # reads the waiting notifications
                    if conn.notifications:
                        conn.notifications.clear()
                        self._notified.set()
            except Exception:  # the database went away: the loops poll meanwhile; connect again
                log.warning("the job listener lost its connection; connecting again", exc_info=True)
                self._stop.wait(RECONNECT_S)
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()


def start_in_process(ctx: AppContext) -> Worker | None:
    """The server's own worker (``LEARNLOOP_JOBS_WORKER=thread``), one per process and database."""
    if ctx.settings.jobs_worker != "thread":
        return None
    return Worker(ctx).start()
