"""The queue: enqueue a job, claim and run it, retry with backoff, dead-letter it.

Every job is a row of ``jobs`` (``store/models.py``) on both backends; that row is the queue:
the one record of its state, attempts and last error. What differs is how a worker finds the
next one (``runners.py``): on PostgreSQL it claims the oldest due row with
``FOR UPDATE SKIP LOCKED`` (many workers, no two on one job, none waiting on another's lock) and
sleeps on ``LISTEN learnloop_jobs``, which each enqueue signals with ``NOTIFY`` in its own
transaction; on SQLite a thread polls the table (and wakes at once for jobs enqueued in its own
process). Running is the same everywhere: a claim is an update that only one worker can win,
the task runs outside any transaction, and the outcome is recorded: done, a retry after
``backoff * 2**(attempt-1)`` seconds, or dead.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import event, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from learnloop.errors import InvalidInput
from learnloop.jobs.registry import PERIODIC, TASKS, JobRun, PermanentFailure, load_tasks
from learnloop.services.context import AppContext
from learnloop.store.models import Job, as_utc, utcnow

log = logging.getLogger("learnloop.jobs")

#: states of a job that still has work ahead of it
WAITING = ("queued", "retry")
ACTIVE = ("queued", "retry", "running")
MAX_PAYLOAD_BYTES = 64_000
#: PostgreSQL: the channel an enqueue notifies and the workers listen on
CHANNEL = "learnloop_jobs"

#: set when a job is enqueued in this process, so an in-process worker runs it at once
wake = threading.Event()


def is_postgres(ctx: AppContext) -> bool:
    return ctx.settings.database_url.startswith(("postgresql", "postgres:"))


def _max_attempts(ctx: AppContext, task: str) -> int:
    spec = TASKS[task]
    return spec.max_attempts or ctx.settings.jobs_max_attempts


def enqueue(
    ctx: AppContext,
    task: str,
    payload: Mapping[str, Any],
    *,
    dedupe_key: str | None = None,
    org_id: int | None = None,
    delay_s: float = 0.0,
    session: Session | None = None,
) -> int:
    """Add a job running ``task`` with ``payload`` (JSON); returns its id.

    ``dedupe_key``: at most one job per key, in any state; enqueueing the same key again returns
    the existing job. ``session``: enqueue inside the caller's transaction (the job exists if,
    and only if, that transaction commits; the workers are woken by that commit)."""
    load_tasks()
    if task not in TASKS:
        raise InvalidInput(f"unknown job task {task!r}; known: {', '.join(sorted(TASKS))}")
    data = dict(payload)
    if len(json.dumps(data)) > MAX_PAYLOAD_BYTES:
        raise InvalidInput(f"a job payload may hold at most {MAX_PAYLOAD_BYTES} bytes of JSON")
    if session is None:
        with ctx.session() as own:
            job_id = _insert(ctx, own, task, data, dedupe_key, org_id, delay_s)
        _handed_over(ctx, job_id)
        return job_id
    job_id = _insert(ctx, session, task, data, dedupe_key, org_id, delay_s)
    event.listen(session, "after_commit", lambda _s: _handed_over(ctx, job_id), once=True)
    return job_id


def _insert(
    ctx: AppContext,
    session: Session,
    task: str,
    payload: dict[str, Any],
    dedupe_key: str | None,
    org_id: int | None,
    delay_s: float,
) -> int:
    if dedupe_key is not None:
        existing = session.scalar(select(Job.id).where(Job.dedupe_key == dedupe_key))
        if existing is not None:
            return int(existing)
    row = Job(
        org_id=org_id,
        task=task,
        payload=payload,
        dedupe_key=dedupe_key,
        state="queued",
        attempts=0,
        max_attempts=_max_attempts(ctx, task),
        run_at=utcnow() + timedelta(seconds=max(delay_s, 0.0)),
        last_error="",
    )
    if not is_postgres(ctx):
        # SQLite has one writer at a time; pysqlite's savepoints would end the caller's
        # transaction early, so there is none here
        session.add(row)
        session.flush()
        return int(row.id)
    try:
        with session.begin_nested():  # a concurrent enqueue of the same key wins: return its job
            session.add(row)
            session.flush()
    except IntegrityError:
        existing = session.scalar(select(Job.id).where(Job.dedupe_key == dedupe_key))
        if existing is None:
            raise
        return int(existing)
    notify(ctx, session)
    return int(row.id)


def notify(ctx: AppContext, session: Session) -> None:
    """PostgreSQL: wake the listening workers when ``session``'s transaction commits (NOTIFY is
    transactional: a rolled-back enqueue wakes nobody, a committed one cannot be missed)."""
    if is_postgres(ctx):
        session.execute(select(func.pg_notify(CHANNEL, "")))


def _handed_over(ctx: AppContext, job_id: int) -> None:
    """Wake this process's own worker (after the job's row is committed)."""
    wake.set()


def backoff_s(ctx: AppContext, attempt: int) -> float:
    """Delay before the retry that follows failed try number ``attempt`` (1, 2, ...)."""
    s = ctx.settings
    return float(min(s.jobs_backoff_s * 2 ** max(attempt - 1, 0), s.jobs_max_backoff_s))


def _claim(ctx: AppContext, job_id: int) -> JobRun | None:
    now = utcnow()
    with ctx.session() as session:
        claimed = session.execute(  # type: ignore[attr-defined]  # an UPDATE's CursorResult
            update(Job)
            .where(Job.id == job_id, Job.state.in_(WAITING), Job.run_at <= now)
            .values(state="running", attempts=Job.attempts + 1, started_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if claimed != 1:
            return None
        row = session.get(Job, job_id)
        assert row is not None
        return JobRun(job_id=row.id, org_id=row.org_id, attempt=row.attempts, max_attempts=row.max_attempts)


def claim_next(ctx: AppContext) -> JobRun | None:
    """PostgreSQL: claim the oldest due job that no other worker holds (``SKIP LOCKED``: the
    workers never wait on each other's rows), or None when none is due."""
    now = utcnow()
    oldest_due = (
        select(Job.id)
        .where(Job.state.in_(WAITING), Job.run_at <= now)
        .order_by(Job.run_at, Job.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    with ctx.session() as session:
        row = session.execute(
            update(Job)
            .where(Job.id == oldest_due)
            .values(state="running", attempts=Job.attempts + 1, started_at=now)
            .returning(Job.id, Job.org_id, Job.attempts, Job.max_attempts)
            .execution_options(synchronize_session=False)
        ).first()
    if row is None:
        return None
    return JobRun(job_id=int(row[0]), org_id=row[1], attempt=int(row[2]), max_attempts=int(row[3]))


def run_job(ctx: AppContext, job_id: int) -> datetime | None:
    """Claim and run one job. Returns when it should run next: a failed try with tries left,
    or a job that is not due yet (woken early); else None (done, dead, or another worker's)."""
    load_tasks()
    run = _claim(ctx, job_id)
    if run is None:
        with ctx.session() as session:
            row = session.get(Job, job_id)
            if row is not None and row.state in WAITING and as_utc(row.run_at) > utcnow():
                return as_utc(row.run_at)
        return None
    return run_claimed(ctx, run)


def run_claimed(ctx: AppContext, run: JobRun) -> datetime | None:
    """Run a job this worker has claimed and record the outcome; returns its retry's due time."""
    load_tasks()
    job_id = run.job_id
    with ctx.session() as session:
        row = session.get(Job, job_id)
        assert row is not None
        task, payload = row.task, dict(row.payload)
    spec = TASKS.get(task)
    try:
        if spec is None:
            raise PermanentFailure(f"no task {task!r} is registered in this version")
        result = spec.fn(ctx, payload, run)
    except Exception as exc:
        permanent = isinstance(exc, PermanentFailure)
        error = f"{type(exc).__name__}: {exc}"[:1500]
        if not permanent:
            log.warning("job %s (%s) try %s failed: %s", job_id, task, run.attempt, error)
        dead = permanent or run.attempt >= run.max_attempts
        due = None if dead else utcnow() + timedelta(seconds=backoff_s(ctx, run.attempt))
        with ctx.session() as session:
            session.execute(
                update(Job)
                .where(Job.id == job_id)
                .values(
                    state="dead" if dead else "retry",
                    last_error=f"try {run.attempt}: {error}",
                    run_at=due or utcnow(),
                    finished_at=utcnow() if dead else None,
                )
            )
        if dead:
            log.error("job %s (%s) is dead after %s tries: %s", job_id, task, run.attempt, error)
        return due
    with ctx.session() as session:
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(state="done", finished_at=utcnow(), result=result if isinstance(result, dict) else None)
        )
    return None


def due_jobs(ctx: AppContext, limit: int = 20) -> list[int]:
    with ctx.session() as session:
        return [
            int(i)
            for i in session.scalars(
                select(Job.id)
                .where(Job.state.in_(WAITING), Job.run_at <= utcnow())
                .order_by(Job.run_at, Job.id)
                .limit(limit)
            )
        ]


def run_due(ctx: AppContext, limit: int | None = None) -> int:
    """Run the jobs that are due now, one after the other; returns how many were tried.
    (`learnloop worker --once`, the SQLite worker's loop, tests.)"""
    tried = 0
    if is_postgres(ctx):  # claim one at a time, skipping rows other workers hold
        while limit is None or tried < limit:
            run = claim_next(ctx)
            if run is None:
                break
            run_claimed(ctx, run)
            tried += 1
        return tried
    while limit is None or tried < limit:
        batch = due_jobs(ctx, 20 if limit is None else min(20, limit - tried))
        if not batch:
            break
        for job_id in batch:
            run_job(ctx, job_id)
            tried += 1
    return tried


def next_due_s(ctx: AppContext) -> float | None:
    """Seconds until the earliest waiting job is due (0 if one is due now), or None."""
    with ctx.session() as session:
        first = session.scalar(select(func.min(Job.run_at)).where(Job.state.in_(WAITING)))
    if first is None:
        return None
    return max((as_utc(first) - utcnow()).total_seconds(), 0.0)


def release_stale(ctx: AppContext) -> int:
    """Jobs left "running" by a worker that died are tried again (or dead-lettered)."""
    cutoff = utcnow() - timedelta(seconds=ctx.settings.jobs_stale_after_s)
    with ctx.session() as session:
        rows = session.scalars(select(Job).where(Job.state == "running", Job.started_at < cutoff)).all()
        for row in rows:
            lost = "the worker running this try stopped before it finished"
            row.last_error = f"try {row.attempts}: {lost}"
            if row.attempts >= row.max_attempts:
                row.state, row.finished_at = "dead", utcnow()
            else:
                row.state, row.run_at = "retry", utcnow()
        return len(rows)


def schedule_periodic(ctx: AppContext, now: datetime | None = None) -> list[int]:
    """Enqueue each scheduled task whose period has passed since its newest job was created.

    Several workers may do this at once: the job of one period has one dedupe key."""
    load_tasks()
    now = now or utcnow()
    made: list[int] = []
    for spec in PERIODIC:
        hours = spec.every_h(ctx.settings)
        if hours <= 0:
            continue
        with ctx.session() as session:
            newest = session.scalar(select(func.max(Job.created_at)).where(Job.task == spec.task))
        if newest is not None and as_utc(newest) > now - timedelta(hours=hours):
            continue
        period = int(now.timestamp() // (hours * 3600))
        made.append(enqueue(ctx, spec.task, {}, dedupe_key=f"periodic:{spec.task}:{hours:g}h:{period}"))
    return made


def depth(ctx: AppContext) -> dict[str, int]:
    """Jobs waiting or running, per task (``learnloop_queue_depth`` in /metrics)."""
    load_tasks()
    counts = {name: 0 for name in TASKS}
    with ctx.session() as session:
        for task, n in session.execute(
            select(Job.task, func.count()).where(Job.state.in_(ACTIVE)).group_by(Job.task)
        ).all():
            counts[str(task)] = int(n)
    return counts
