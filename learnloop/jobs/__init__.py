"""Background jobs: one queue table and one interface; SKIP LOCKED + LISTEN/NOTIFY on PostgreSQL,
a polling thread on SQLite.

    from learnloop.jobs import enqueue, task

    @task("mail.send")                      # register once, at import
    def send(ctx, payload, run): ...        # raise to retry; PermanentFailure to give up

    enqueue(ctx, "mail.send", {"to": ...}, dedupe_key=f"mail:{message_id}", org_id=org_id)

Retries back off exponentially (``jobs_backoff_s`` doubling, at most ``jobs_max_backoff_s``);
after ``max_attempts`` tries a job is dead-lettered, shown on ``/admin/jobs`` with its last
error, and may be tried again from there. See docs/architecture.md, "Background jobs".
"""

from __future__ import annotations

from learnloop.jobs.queue import depth, enqueue, run_due, run_job, schedule_periodic
from learnloop.jobs.registry import JobRun, PermanentFailure, periodic, task
from learnloop.jobs.runners import Worker, start_in_process

__all__ = [
    "JobRun",
    "PermanentFailure",
    "Worker",
    "depth",
    "enqueue",
    "periodic",
    "run_due",
    "run_job",
    "schedule_periodic",
    "start_in_process",
    "task",
]
