"""The job queue on SQLite and PostgreSQL: retries with backoff, dead letters, retry by an
admin, de-duplication, lost workers, scheduled tasks, and the real runners (a polling thread on
SQLite; on PostgreSQL claim loops with SKIP LOCKED woken by LISTEN/NOTIFY, see test_pg_queue.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from learnloop import jobs
from learnloop.config import Settings
from learnloop.errors import Conflict, Forbidden, InvalidInput, NotFound
from learnloop.jobs import admin as jobs_admin
from learnloop.jobs import queue
from learnloop.jobs.registry import JobRun, PermanentFailure
from learnloop.services import auth
from learnloop.services.context import AppContext
from learnloop.services.packs import import_pack
from learnloop.store.db import migrate
from learnloop.store.models import Job, Organisation, User, utcnow
from tests.conftest import MINI_PACK

#: failures still to give, per payload key (the tasks below read and count it down)
FAILS: dict[str, int] = {}
RUNS: dict[str, list[int]] = {}


@jobs.task("test.flaky", max_attempts=3)
def flaky(ctx: AppContext, payload: dict[str, Any], run: JobRun) -> dict[str, Any]:
    key = str(payload["key"])
    RUNS.setdefault(key, []).append(run.attempt)
    if FAILS.get(key, 0) > 0:
        FAILS[key] -= 1
        raise RuntimeError(f"flaky failure of {key}")
    return {"ok": key, "attempt": run.attempt}


@jobs.task("test.permanent")
def permanent(ctx: AppContext, payload: dict[str, Any], run: JobRun) -> None:
    raise PermanentFailure("cannot ever work")


@pytest.fixture(autouse=True)
def _fresh_counts() -> None:
    FAILS.clear()
    RUNS.clear()


def _fast(ctx: AppContext, **extra: Any) -> AppContext:
    ctx.settings = ctx.settings.model_copy(update={"jobs_backoff_s": 0.2, "jobs_max_backoff_s": 5.0, **extra})
    return ctx


def _row(ctx: AppContext, job_id: int) -> Job:
    with ctx.session() as session:
        row = session.get(Job, job_id)
        assert row is not None
        return row


def _admin(ctx: AppContext, email: str = "root@example.org") -> auth.CurrentUser:
    user = auth.signup(ctx, email=email, name="Root", password="violet-harbour-57-lantern").user
    with ctx.session() as session:
        row = session.get(User, user.id)
        assert row is not None
        row.role = "admin"
    return user.model_copy(update={"role": "admin"})


def test_retry_with_backoff_then_success(any_ctx: AppContext) -> None:
    ctx = _fast(any_ctx)
    FAILS["a"] = 2
    job_id = jobs.enqueue(ctx, "test.flaky", {"key": "a"})
    assert _row(ctx, job_id).state == "queued"
    before = utcnow()
    due = queue.run_job(ctx, job_id)
    row = _row(ctx, job_id)
    assert row.state == "retry" and row.attempts == 1 and "flaky failure of a" in row.last_error
    assert due is not None and 0.15 <= (due - before).total_seconds() <= 1.5  # backoff 0.2 s
    assert queue.run_job(ctx, job_id) == due  # not due yet: nobody claims it, it says when
    assert _row(ctx, job_id).attempts == 1
    time.sleep(0.25)
    before = utcnow()
    due = queue.run_job(ctx, job_id)
    assert due is not None and 0.35 <= (due - before).total_seconds() <= 2.0  # doubled: 0.4 s
    time.sleep(0.45)
    assert queue.run_due(ctx) == 1
    row = _row(ctx, job_id)
    assert row.state == "done" and row.attempts == 3 and row.result == {"ok": "a", "attempt": 3}
    assert RUNS["a"] == [1, 2, 3]


def test_dead_letter_after_max_attempts_then_retry_from_admin(any_ctx: AppContext) -> None:
    ctx = _fast(any_ctx, jobs_backoff_s=0.0)
    admin = _admin(ctx)
    FAILS["b"] = 10
    job_id = jobs.enqueue(ctx, "test.flaky", {"key": "b"}, org_id=admin.org_id)
    assert queue.run_due(ctx) == 3  # backoff 0: the three tries at once, then no more
    row = _row(ctx, job_id)
    assert row.state == "dead" and row.attempts == 3 and row.finished_at is not None
    assert "try 3: RuntimeError: flaky failure of b" in row.last_error
    assert queue.run_due(ctx) == 0
    listed = {j.id: j for j in jobs_admin.list_jobs(ctx, admin, "dead")}
    assert listed[job_id].can_retry and listed[job_id].attempts == 3
    FAILS["b"] = 0
    view = jobs_admin.retry_job(ctx, admin, job_id)
    assert view.state == "queued" and view.attempts == 0
    with pytest.raises(Conflict):  # only a dead job can be retried
        jobs_admin.retry_job(ctx, admin, job_id)
    assert queue.run_due(ctx) == 1
    row = _row(ctx, job_id)
    assert row.state == "done" and row.attempts == 1 and "tried again by Root" in row.last_error


def test_jobs_are_scoped_to_the_admins_organisation(any_ctx: AppContext) -> None:
    ctx = _fast(any_ctx)
    admin = _admin(ctx)
    with ctx.session() as session:
        other = Organisation(name="Other", slug="other", join_code="other-code-1")
        session.add(other)
        session.flush()
        other_id = other.id
    mine = jobs.enqueue(ctx, "test.permanent", {}, org_id=admin.org_id)
    theirs = jobs.enqueue(ctx, "test.permanent", {}, org_id=other_id)
    shared = jobs.enqueue(ctx, "test.permanent", {})
    queue.run_due(ctx)
    assert _row(ctx, theirs).state == "dead" and _row(ctx, theirs).attempts == 1  # no retries
    seen = {j.id for j in jobs_admin.list_jobs(ctx, admin)}
    assert mine in seen and shared in seen and theirs not in seen
    with pytest.raises(NotFound):
        jobs_admin.retry_job(ctx, admin, theirs)
    learner = auth.signup(ctx, email="l@example.org", name="L", password="violet-harbour-57-lantern").user
    with pytest.raises(Forbidden):
        jobs_admin.list_jobs(ctx, learner)
    with pytest.raises(InvalidInput):
        jobs_admin.list_jobs(ctx, admin, "nonsense")


def test_dedupe_key_and_unknown_task(any_ctx: AppContext) -> None:
    ctx = _fast(any_ctx)
    first = jobs.enqueue(ctx, "test.flaky", {"key": "c"}, dedupe_key="once")
    again = jobs.enqueue(ctx, "test.flaky", {"key": "c2"}, dedupe_key="once")
    assert first == again and _row(ctx, first).payload == {"key": "c"}
    with pytest.raises(InvalidInput, match="unknown job task"):
        jobs.enqueue(ctx, "no.such.task", {})
    with pytest.raises(InvalidInput, match="payload"):
        jobs.enqueue(ctx, "test.flaky", {"key": "x" * 70_000})
    # inside a caller's transaction: the job exists only if that transaction commits
    with pytest.raises(RuntimeError), ctx.session() as session:
        jobs.enqueue(ctx, "test.flaky", {"key": "d"}, dedupe_key="rolled-back", session=session)
        raise RuntimeError("the caller fails")
    with ctx.session() as session:
        assert session.query(Job).filter(Job.dedupe_key == "rolled-back").count() == 0


def test_a_job_left_running_by_a_dead_worker_is_tried_again(any_ctx: AppContext) -> None:
    ctx = _fast(any_ctx, jobs_stale_after_s=60)
    FAILS["e"] = 0
    job_id = jobs.enqueue(ctx, "test.flaky", {"key": "e"})
    with ctx.session() as session:  # as if a worker claimed it and was killed
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(state="running", attempts=1, started_at=utcnow() - timedelta(minutes=5))
        )
    assert queue.release_stale(ctx) == 1
    row = _row(ctx, job_id)
    assert row.state == "retry" and "stopped before it finished" in row.last_error
    assert queue.run_due(ctx) == 1 and _row(ctx, job_id).state == "done"


def test_scheduled_tasks_once_per_period(any_ctx: AppContext) -> None:
    ctx = _fast(any_ctx, jobs_fit_kt_every_h=24, jobs_fit_irt_every_h=0, jobs_snapshots_every_h=6)
    mine = {"fit.kt", "fit.irt", "reports.snapshots"}  # other scheduled tasks are their owners' tests'

    def scheduled(at: datetime) -> dict[str, int]:
        made = {_row(ctx, i).task: i for i in queue.schedule_periodic(ctx, at)}
        return {task: job for task, job in made.items() if task in mine}

    now = utcnow()
    first = scheduled(now)
    assert set(first) == {"fit.kt", "reports.snapshots"}  # fit.irt is off
    assert scheduled(now + timedelta(hours=1)) == {}  # not due again yet
    assert set(scheduled(now + timedelta(hours=7))) == {"reports.snapshots"}
    # the scheduled fits run as jobs: with too few answers they finish and say why
    queue.run_job(ctx, first["fit.kt"])
    kt = _row(ctx, first["fit.kt"])
    assert kt.state == "done" and kt.result is not None


def test_queue_depth_counts_waiting_and_running_jobs(any_ctx: AppContext) -> None:
    ctx = _fast(any_ctx)
    FAILS["f"] = 0
    before = queue.depth(ctx)
    jobs.enqueue(ctx, "test.flaky", {"key": "f"})
    jobs.enqueue(ctx, "test.flaky", {"key": "f"})
    assert queue.depth(ctx)["test.flaky"] == before.get("test.flaky", 0) + 2
    queue.run_due(ctx)
    assert queue.depth(ctx)["test.flaky"] == 0


def test_the_real_runner_runs_and_retries_jobs(any_ctx: AppContext) -> None:
    """The in-process worker of each backend: a thread polling SQLite; on PostgreSQL a listener
    (LISTEN/NOTIFY) and claim loops on the jobs table (FOR UPDATE SKIP LOCKED)."""
    ctx = _fast(any_ctx)
    FAILS["g"] = 1
    worker = jobs.Worker(ctx).start()
    try:
        job_id = jobs.enqueue(ctx, "test.flaky", {"key": "g"})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _row(ctx, job_id).state != "done":
            time.sleep(0.2)
    finally:
        worker.stop()
    row = _row(ctx, job_id)
    assert row.state == "done" and row.attempts == 2, (row.state, row.attempts, row.last_error)
    assert RUNS["g"] == [1, 2]


def test_learnloop_worker_command(tmp_path: Path) -> None:
    """`learnloop worker` runs the jobs until it is interrupted."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    env = {
        **os.environ,
        "LEARNLOOP_DATABASE_URL": url,
        "LEARNLOOP_DEFAULT_PACK": str(MINI_PACK),
        "LEARNLOOP_JOBS_POLL_S": "0.2",
        # no scheduled fits or snapshots during the test: the worker runs only the job it is given
        "LEARNLOOP_JOBS_PERIODIC_DELAY_S": "3600",
    }
    migrate(url)
    ctx = AppContext(settings=Settings(database_url=url, default_pack=MINI_PACK))
    import_pack(ctx, MINI_PACK)
    worker = subprocess.Popen(
        [sys.executable, "-m", "learnloop.cli", "worker"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        job_id = jobs.enqueue(ctx, "fit.irt", {})
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and _row(ctx, job_id).state != "done":
            time.sleep(0.2)
        row = _row(ctx, job_id)
        assert row.state == "done" and row.result is not None, (row.state, row.last_error)
    finally:
        # what a process manager sends; Ctrl-C (SIGINT) takes the same path
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=90)  # a loaded CI machine exits slowly
    assert "job worker running: polling (SQLite)" in out, err
    assert worker.returncode == 0, err
