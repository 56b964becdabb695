"""The product's tasks. Each is a thin call into a service; the services own the transactions.

- ``grade.text``: grade a free-text answer with a served model (``services/grading_jobs.py``).
- ``fit.kt`` / ``fit.irt``: refit knowledge tracing / item parameters from the log, scheduled
  every ``jobs_fit_kt_every_h`` / ``jobs_fit_irt_every_h`` hours.
- ``reports.snapshots``: the weekly report snapshots of every organisation, every
  ``jobs_snapshots_every_h`` hours.
- ``xapi.deliver``: send due xAPI statements (``services/xapi_outbox.py``), enqueued with each
  statement and swept every 5 minutes for retries.
- ``lti.passback``: a learner's scores to the LTI gradebooks (``services/lti.py``), enqueued at
  the end of the minute of an answer by a learner with graded placements.
- ``webhook.deliver``: POST one signed webhook delivery (``services/people/webhooks.py``),
  enqueued with the event; ``webhook.sweep`` (every 5 minutes) enqueues any left without a job.
- ``people.erase``: erase a SCIM-deprovisioned member after the organisation's retention
  (``services/people/data_rights.py``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from learnloop.errors import LearnloopError
from learnloop.jobs.registry import JobRun, periodic, task
from learnloop.services.context import AppContext


@task("grade.text")
def grade_text(ctx: AppContext, payload: dict[str, Any], run: JobRun) -> dict[str, Any] | None:
    from learnloop.services.grading_jobs import land_grade

    return land_grade(ctx, payload, run)


@task("fit.kt", max_attempts=2)
def fit_kt(ctx: AppContext, payload: dict[str, Any], run: JobRun) -> dict[str, Any] | None:
    from learnloop.services.calibration import fit_kt_each

    try:  # each organisation on its own answers; one without answers is skipped
        runs = fit_kt_each(ctx, model=str(payload.get("model", "auto")))
    except LearnloopError as exc:
        return {"skipped": exc.message}
    return {
        str(done.org_id): (
            {"model": s.model, "answers": s.answers, "skills": s.skills_fitted, "rebuilt": s.rebuilt_answers}
            if (s := done.summary) is not None
            else {"skipped": done.skipped}
        )
        for done in runs
    }


@task("fit.irt", max_attempts=2)
def fit_irt(ctx: AppContext, payload: dict[str, Any], run: JobRun) -> dict[str, Any] | None:
    from learnloop.services.calibration import fit_irt_each

    try:  # each organisation on its own answers; one without answers is skipped
        runs = fit_irt_each(ctx, model=str(payload.get("model", "2pl")))
    except LearnloopError as exc:
        return {"skipped": exc.message}
    return {
        str(done.org_id): (
            {"model": s.model, "responses": s.responses, "calibrated": s.calibrated_items}
            if (s := done.summary) is not None
            else {"skipped": done.skipped}
        )
        for done in runs
    }


@task("reports.snapshots", max_attempts=3)
def report_snapshots(ctx: AppContext, payload: dict[str, Any], run: JobRun) -> dict[str, Any] | None:
    from learnloop.services.reports_snapshots import ensure_weekly_snapshots
    from learnloop.store.models import Organisation

    with ctx.session() as session:
        orgs = [int(i) for i in session.scalars(select(Organisation.id).order_by(Organisation.id))]
    return {"weeks_added": sum(ensure_weekly_snapshots(ctx, org_id) for org_id in orgs)}


@task("xapi.deliver", max_attempts=1)
def xapi_deliver(ctx: AppContext, payload: dict[str, Any], run: JobRun) -> dict[str, Any] | None:
    """Send the xAPI statements that are due (services/xapi_outbox.py keeps its own retries)."""
    from learnloop.services.xapi_outbox import deliver_pending

    report = deliver_pending(ctx)
    return {"sent": report.sent, "failed": report.failed}


@task("lti.passback", max_attempts=3)
def lti_passback(ctx: AppContext, payload: dict[str, Any], run: JobRun) -> dict[str, Any] | None:
    """Send a learner's scores to the LTI platforms' gradebooks (services/lti.py)."""
    from learnloop.services.lti import passback_user

    report = passback_user(ctx, int(payload["user_id"]))
    if report.failed and not run.last:
        raise RuntimeError(f"{report.failed} scores not accepted; tried again later")
    return report.model_dump()


@task("mail.send")
def mail_send(ctx: AppContext, payload: dict[str, Any], run: JobRun) -> dict[str, Any] | None:
    """Send one e-mail of the outbox (services/people/mail.py); an SMTP failure is retried."""
    from learnloop.services.people.mail import deliver_one

    return {"result": deliver_one(ctx, int(payload["message_id"]), final=run.last)}


@task("people.reminders", max_attempts=1)
def people_reminders(ctx: AppContext, payload: dict[str, Any], run: JobRun) -> dict[str, Any] | None:
    """Queue this round's reminder e-mails (due reviews, inactivity) and the weekly digests."""
    from learnloop.services.people.mail import send_digests, send_reminders

    return {"queued": send_reminders(ctx), "digests": send_digests(ctx)}


@task("webhook.deliver", max_attempts=8)
def webhook_deliver(ctx: AppContext, payload: dict[str, Any], run: JobRun) -> dict[str, Any] | None:
    """POST one webhook delivery (services/people/webhooks.py); a failure is retried with back-off."""
    from learnloop.services.people.webhooks import deliver_one

    return {"result": deliver_one(ctx, int(payload["delivery_id"]), final=run.last)}


@task("webhook.sweep", max_attempts=1)
def webhook_sweep(ctx: AppContext, payload: dict[str, Any], run: JobRun) -> dict[str, Any] | None:
    """Enqueue the delivery of webhook events raised without a job (members provisioned)."""
    from learnloop.services.people.webhooks import sweep

    return {"pending": sweep(ctx)}


@task("people.erase", max_attempts=3)
def people_erase(ctx: AppContext, payload: dict[str, Any], run: JobRun) -> dict[str, Any] | None:
    """Erase a SCIM-deprovisioned member once the retention period ran out (data_rights.py)."""
    from learnloop.services.people.data_rights import erase_scheduled

    return {"result": erase_scheduled(ctx, int(payload["org_id"]), int(payload["member_id"]))}


periodic("fit.kt", lambda s: s.jobs_fit_kt_every_h)
periodic("fit.irt", lambda s: s.jobs_fit_irt_every_h)
periodic("reports.snapshots", lambda s: s.jobs_snapshots_every_h)
periodic("people.reminders", lambda s: s.reminders_every_h)
# statements whose delivery failed are due again after their backoff: a sweep every 5 minutes
periodic("xapi.deliver", lambda s: 1 / 12)
periodic("webhook.sweep", lambda s: 1 / 12)
