"""The ``learnloop`` command line (Typer)."""

from __future__ import annotations

import functools
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from learnloop.config import get_settings
from learnloop.content.loader import PackError
from learnloop.errors import LearnloopError
from learnloop.science.simulation import POLICIES
from learnloop.services.context import AppContext

app = typer.Typer(
    help="Learnloop: adaptive, measured learning toward AI-era roles.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
fit_app = typer.Typer(help="Fit models from the response log.", no_args_is_help=True)
app.add_typer(fit_app, name="fit")
sandbox_app = typer.Typer(help="The code sandbox that runs learners' code.", no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")

F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def clean_errors(func: F) -> F:
    """Turn the project's errors into a message on stderr and exit status 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except PackError as exc:
            _fail(str(exc))
        except LearnloopError as exc:
            details = "".join(f"\n  - {d}" for d in exc.details)
            _fail(exc.message + details)
        except FileNotFoundError as exc:
            _fail(f"no such file or folder: {exc.filename}")

    return wrapper  # type: ignore[return-value]


def _ctx() -> AppContext:
    return AppContext(settings=get_settings())


def _ensure_ready(ctx: AppContext) -> None:
    from learnloop.services import packs
    from learnloop.services.auth import default_organisation
    from learnloop.store.db import migrate

    migrate(ctx.settings.database_url)
    with ctx.session() as session:
        from sqlalchemy import select

        from learnloop.store.models import ContentPack

        has_pack = session.execute(select(ContentPack.id).limit(1)).first() is not None
        default_organisation(session)
    if not has_pack:
        packs.import_pack(ctx, ctx.settings.default_pack)


@app.command()
@clean_errors
def init() -> None:
    """Create or upgrade the database and load the default content pack if none is loaded."""
    ctx = _ctx()
    _ensure_ready(ctx)
    from learnloop.services.packs import active_pack_summary

    s = active_pack_summary(ctx)
    typer.echo(
        f"database ready at {ctx.settings.database_url}; pack {s.pack_id} {s.version}: "
        f"{s.skills} skills, {s.roles} roles, {s.items} items, {s.lessons} lessons"
    )


@app.command(name="import")
@clean_errors
def import_(
    pack: Path = typer.Argument(..., help="pack folder (or, with --format case, a CFPackage JSON file)"),
    format: str = typer.Option("pack", "--format", help="pack | case | qti"),
    out: Path | None = typer.Option(None, "--out", help="with --format case: the pack draft folder to write"),
) -> None:
    """Validate a pack folder and make it the active pack (nothing is written if it is invalid).

    With --format case: turn a CASE CFPackage into a pack draft folder (--out), validated like
    any pack; add items and lessons, then import the folder."""
    from learnloop.services.packs import import_pack

    if format == "qti":
        import yaml

        from learnloop.services.qti_io import import_qti

        if out is None:
            _fail("--format qti needs --out FILE.yaml for the items")
            return
        items = import_qti(_ctx(), None, pack.read_bytes())
        dumped = [i.model_dump(mode="json", exclude_none=True, exclude_defaults=True) for i in items]
        out.write_text(yaml.safe_dump(dumped, allow_unicode=True, sort_keys=False), encoding="utf-8")
        typer.echo(f"wrote {len(items)} items to {out} (add them to a pack's items/)")
        return
    if format == "case":
        from learnloop.services.case_io import import_case_folder

        if out is None:
            _fail("--format case needs --out FOLDER for the pack draft")
            return
        draft = import_case_folder(pack.read_bytes(), out)
        typer.echo(
            f"wrote pack draft {draft.meta.id} to {out}: {len(draft.skills)} skills, {len(draft.roles)} roles"
        )
        return
    if format != "pack":
        _fail("--format must be pack, case or qti")
    from learnloop.store.db import migrate

    ctx = _ctx()
    migrate(ctx.settings.database_url)
    s = import_pack(ctx, pack)
    state = "imported" if s.changed else "already active (unchanged)"
    typer.echo(
        f"pack {s.pack_id} {s.version} {state}: {s.skills} skills, {s.roles} roles, "
        f"{s.items} items, {s.lessons} lessons"
    )


@app.command()
@clean_errors
def export(
    directory: Path = typer.Argument(
        ..., help="folder to write the active pack to (a file for case, moodle-csv)"
    ),
    format: str = typer.Option("pack", "--format", help="pack | case | moodle-csv | qti"),
    base_uri: str = typer.Option(
        "https://learnloop.invalid/case", "--base-uri", help="case: where ids resolve"
    ),
    case_version: str = typer.Option("1.1", "--case-version", help="case: CASE 1.1 or 1.0"),
) -> None:
    """Write the active pack as a pack folder that `learnloop import` reads back unchanged, or
    its framework as a CASE CFPackage (--format case) or Moodle competency CSV (moodle-csv)."""
    from learnloop.services.packs import export_pack

    if format == "qti":
        from learnloop.services.qti_io import export_qti

        data, skipped = export_qti(_ctx(), None)
        directory.write_bytes(data)
        typer.echo(f"wrote the items (QTI 3.0) to {directory}; not exported: {len(skipped)}")
        return
    if format in ("case", "moodle-csv"):
        import json

        from learnloop.services import case_io

        ctx = _ctx()
        if format == "case":
            package = case_io.export_case(ctx, None, base_uri, case_version)
            text = json.dumps(package, ensure_ascii=False, indent=1)
        else:
            text = case_io.moodle_csv(ctx, None)
        directory.write_text(text, encoding="utf-8")
        typer.echo(f"wrote the framework ({format}) to {directory}")
        return
    if format != "pack":
        _fail("--format must be pack, case, moodle-csv or qti")

    s = export_pack(_ctx(), directory)
    typer.echo(f"wrote pack {s.pack_id} ({s.items} items) to {directory}")


@app.command()
@clean_errors
def demo(learners: int = typer.Option(60, min=1, max=5000), seed: int = 7) -> None:
    """Create a demo organisation with teams and simulated learners with histories."""
    from learnloop.services.demo import create_demo

    ctx = _ctx()
    _ensure_ready(ctx)
    s = create_demo(ctx, learners=learners, seed=seed)
    _print_demo(s)


def _print_demo(s: Any) -> None:
    state = "created" if s.created else "already present"
    typer.echo(
        f"demo organisation {s.org_name!r} {state}: {s.learners} learners, {s.responses} answers; "
        f"join code {s.join_code}"
    )
    for email, password in s.logins.items():
        typer.echo(f"  log in as {email} / {password}")


@app.command()
@clean_errors
def serve(
    host: str = typer.Option(None),
    port: int = typer.Option(None),
    demo: bool = typer.Option(False, "--demo", help="create the demo organisation first"),
    workers: int = typer.Option(1, min=1, max=64, help="worker processes (use PostgreSQL beyond 1)"),
) -> None:
    """Serve the web app and the API."""
    import uvicorn

    from learnloop.server import create_app

    ctx = _ctx()
    _ensure_ready(ctx)
    if demo:
        from learnloop.services.demo import create_demo

        _print_demo(create_demo(ctx))
    host = host or ctx.settings.host
    port = port or ctx.settings.port
    running = f"Learnloop is running at http://{host}:{port}/  (API docs: http://{host}:{port}/api/docs)"
    if workers > 1:
        typer.echo(f"Starting {workers} workers on http://{host}:{port}/ ...")
        sys.stdout.flush()
        # each worker process builds its own app from the same settings (environment)
        uvicorn.run(
            "learnloop.server:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
        )
    else:
        import threading
        import time

        server = uvicorn.Server(uvicorn.Config(create_app(ctx), host=host, port=port, log_level="warning"))

        def announce() -> None:  # the address only once the port is bound and serving
            while not server.started and not server.should_exit:
                time.sleep(0.05)
            if server.started:
                typer.echo(running)
                sys.stdout.flush()

        threading.Thread(target=announce, daemon=True).start()
        server.run()


@app.command()
@clean_errors
def worker(
    once: bool = typer.Option(False, "--once", help="run the jobs due now, then exit"),
    concurrency: int = typer.Option(1, min=1, max=32, help="jobs at once (PostgreSQL)"),
) -> None:
    """Run background jobs (grading, scheduled fits, snapshots) until stopped with Ctrl-C.

    `learnloop serve` runs a worker in each server process already (LEARNLOOP_JOBS_WORKER=thread);
    run this one beside servers started with LEARNLOOP_JOBS_WORKER=off."""
    from learnloop.jobs import queue
    from learnloop.jobs.runners import Worker, maintain

    ctx = _ctx()
    _ensure_ready(ctx)
    if once:
        maintain(ctx, started=float("-inf"))
        typer.echo(f"ran {queue.run_due(ctx)} due jobs")
        return
    backend = "LISTEN/NOTIFY, SKIP LOCKED (PostgreSQL)" if queue.is_postgres(ctx) else "polling (SQLite)"
    typer.echo(f"job worker running: {backend}; Ctrl-C stops it")
    sys.stdout.flush()

    def interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # Ctrl-C, and SIGTERM from a process manager (systemd, docker stop), end the worker after
    # the job in hand; SIGINT is set here too, since a shell starts background jobs ignoring it
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    running = Worker(ctx, concurrency=concurrency).start()
    try:
        running.wait()
    except KeyboardInterrupt:
        running.stop()


@app.command()
@clean_errors
def rebuild(
    check: bool = typer.Option(False, help="only report whether the rebuild equals the live state"),
    evidence: bool = typer.Option(
        False, help="only store the evidence of mastery rows written before it was stored (after an upgrade)"
    ),
) -> None:
    """Rebuild derived mastery from the append-only response log."""
    from learnloop.services import learner_tally
    from learnloop.services.mastery import backfill_evidence, rebuild_all, snapshot

    ctx = _ctx()
    if evidence:
        with ctx.session() as session:
            filled = backfill_evidence(session)
        typer.echo(f"stored the evidence of {filled} mastery rows")
        return
    with ctx.session() as session:
        before = snapshot(session), learner_tally.snapshot(session)
        count = rebuild_all(session)
        session.flush()
        after = snapshot(session), learner_tally.snapshot(session)
        if check:
            session.rollback()
    same = before == after
    typer.echo(
        f"replayed {count} answers; rebuilt mastery {'equals' if same else 'differs from'} the live state"
        + (" (check only, nothing written)" if check else "")
    )
    if check and not same:
        raise typer.Exit(code=1)


@app.command()
@clean_errors
def backup(file: Path = typer.Argument(..., help="the dump to write (gzip-compressed JSON Lines)")) -> None:
    """Write a consistent, portable dump of every table (SQLite or PostgreSQL) to FILE."""
    from learnloop.i18n import _
    from learnloop.services.backup import backup as run_backup

    s = run_backup(_ctx().settings.database_url, file)
    typer.echo(
        _("wrote %(rows)d rows of %(tables)d tables (schema %(revision)s) to %(file)s")
        % {"rows": s.total, "tables": len(s.rows), "revision": ", ".join(s.schema_revisions), "file": file}
    )


@app.command()
@clean_errors
def restore(file: Path = typer.Argument(..., help="a dump written by `learnloop backup`")) -> None:
    """Load FILE into an empty database (either backend), then upgrade its schema to this version."""
    from learnloop.i18n import _
    from learnloop.services.backup import restore as run_restore

    s = run_restore(_ctx().settings.database_url, file)
    typer.echo(
        _("restored %(rows)d rows of %(tables)d tables (schema %(revision)s) from %(file)s")
        % {"rows": s.total, "tables": len(s.rows), "revision": ", ".join(s.schema_revisions), "file": file}
    )


@fit_app.command("irt")
@clean_errors
def fit_irt(
    model: str = typer.Option("2pl", help="1pl, 2pl or 3pl"),
    min_responses: int = typer.Option(30, min=1, help="answers an item needs to be calibrated"),
    dask: str = typer.Option(
        "", "--dask", help="a Dask scheduler address (tcp://host:8786), or 'local' for a LocalCluster"
    ),
    partitions: int = typer.Option(8, min=1, max=10_000, help="blocks of learners on the cluster"),
    org: int = typer.Option(
        0, "--org", min=0, help="only this organisation (its id); default: each organisation in turn"
    ),
) -> None:
    """Calibrate item parameters from each organisation's own answers; its skill checks use them from then on."""
    from learnloop.i18n import _
    from learnloop.services.calibration import CalibrationSummary, fit_irt_each
    from learnloop.services.calibration import fit_irt as run_fit

    def show(s: CalibrationSummary, name: str) -> None:
        typer.echo(
            _(
                "%(org)s: %(model)s: %(learners)d learners, %(responses)d first answers; %(calibrated)d "
                "items calibrated, %(authored)d keep their authored difficulty; log-likelihood "
                "%(loglik)s (%(converged)s)"
            )
            % {
                "org": name,
                "model": s.model,
                "learners": s.learners,
                "responses": s.responses,
                "calibrated": s.calibrated_items,
                "authored": s.authored_items,
                "loglik": s.log_likelihood,
                "converged": _("converged") if s.converged else _("NOT converged"),
            }
        )
        for warning in s.warnings[:10]:
            typer.echo(_("  note: %(note)s") % {"note": warning})

    options: dict[str, Any] = {
        "model": model,
        "min_responses": min_responses,
        "dask": dask or None,
        "partitions": partitions,
    }
    if org:
        show(run_fit(_ctx(), org, **options), _("organisation %(org)d") % {"org": org})
        return
    _show_each(
        fit_irt_each(_ctx(), **options),
        show,
        _("No organisation has answers to choice or numeric items to fit yet."),
    )


def _show_each(runs: list[Any], show: Any, nothing: str) -> None:
    """A per-organisation fit's results, one organisation after another (exit 2 when none
    had anything to fit)."""
    from learnloop.errors import LearnloopError
    from learnloop.i18n import _

    if not any(done.summary is not None for done in runs):
        raise LearnloopError(nothing, details=[str(done.skipped) for done in runs])
    for done in runs:
        name = f"{done.org_name} (#{done.org_id})"
        if done.summary is not None:
            show(done.summary, name)
        else:
            typer.echo(_("%(org)s: skipped: %(reason)s") % {"org": name, "reason": done.skipped})


@app.command()
@clean_errors
def simulate(
    learners: int = typer.Option(
        100, min=1, max=20000, help="simulated learners (each runs under every policy)"
    ),
    seed: int = typer.Option(0, help="the same seed gives the same learners and the same answers"),
    role: list[str] = typer.Option(None, help="role id (repeat for several; default: every role, by turns)"),
    policy: list[str] = typer.Option(
        None,
        help="policy (repeat; default: all): "
        + ", ".join(POLICIES)
        + " (oracle is a bound: it reads the true state)",
    ),
    pack: Path = typer.Option(None, help="pack folder (default: the default pack)"),
    target_shift: float = typer.Option(
        0.0,
        min=-5.0,
        max=5.0,
        help="move every role target by this many logits (stricter when positive): "
        "answers traded for retention, as in bench/policy.py",
    ),
) -> None:
    """Compare practice policies on simulated learners with a known true skill model."""
    from learnloop.i18n import _
    from learnloop.services.guidance import simulate as run

    ctx = _ctx()
    rows = run(
        pack or ctx.settings.default_pack,
        learners=learners,
        seed=seed,
        roles=role or None,
        policies=policy or None,
        target_shift=target_shift,
    )
    width = max([len(r["policy"]) for r in rows] + [16]) + 1
    typer.echo(
        f"{_('policy'):<{width}} {_('reached'):>8} {_('median answers'):>14} {_('median minutes'):>14} "
        f"{_('retention 30 days'):>17}"
    )
    for r in rows:
        typer.echo(
            f"{r['policy']:<{width}} {r['reached_share']:>8.0%} {r['median_items']:>14.1f} "
            f"{r['median_minutes']:>14.0f} {r['mean_retention']:>17.3f}"
        )
    if any(r["policy"] == "oracle" for r in rows):
        typer.echo(_("oracle is a bound, not a policy: it reads each simulated learner's true state."))


@fit_app.command("kt")
@clean_errors
def fit_kt(
    model: str = typer.Option(
        "auto", help="auto (the best on held-out learners), bkt, logistic or gbdt (the kt-gbdt extra)"
    ),
    max_guess: float = typer.Option(0.3, min=0.01, max=0.5),
    max_slip: float = typer.Option(0.3, min=0.01, max=0.5),
    dask: str = typer.Option(
        "", "--dask", help="a Dask scheduler address (tcp://host:8786), or 'local' for a LocalCluster"
    ),
    partitions: int = typer.Option(8, min=1, max=10_000, help="blocks of learners on the cluster"),
    org: int = typer.Option(
        0, "--org", min=0, help="only this organisation (its id); default: each organisation in turn"
    ),
) -> None:
    """Fit knowledge tracing (BKT and the logistic model) on each organisation's own answers and rebuild its learners' mastery with it."""
    from learnloop.i18n import _
    from learnloop.services.calibration import KTSummary, fit_kt_each
    from learnloop.services.calibration import fit_kt as run_fit

    def show(s: KTSummary, name: str) -> None:
        typer.echo(
            _(
                "%(org)s: %(model)s: %(learners)d learners, %(answers)d skill-answers, %(skills)d skills "
                "fitted; in-sample AUC %(auc)s; mastery rebuilt from %(rebuilt)d answers"
            )
            % {
                "org": name,
                "model": s.model,
                "learners": s.learners,
                "answers": s.answers,
                "skills": s.skills_fitted,
                "auc": s.auc_in_sample,
                "rebuilt": s.rebuilt_answers,
            }
        )
        if any(v is not None for v in s.held_out_auc.values()):
            typer.echo(
                _("held-out AUC: %(scores)s (%(protocol)s)")
                % {
                    "scores": ", ".join(f"{k} {v}" for k, v in s.held_out_auc.items()),
                    "protocol": s.selection,
                }
            )
        for note in s.notes:
            typer.echo(_("  note: %(note)s") % {"note": note})

    options: dict[str, Any] = {
        "max_guess": max_guess,
        "max_slip": max_slip,
        "model": model,
        "dask": dask or None,
        "partitions": partitions,
    }
    if org:
        show(run_fit(_ctx(), org, **options), _("organisation %(org)d") % {"org": org})
        return
    _show_each(fit_kt_each(_ctx(), **options), show, _("No organisation has answers to fit yet."))


@sandbox_app.command("setup")
@clean_errors
def sandbox_setup() -> None:
    """Create the unprivileged user submissions run as (as root), then check the sandbox."""
    import os
    import pwd
    import shutil
    import subprocess

    from learnloop.i18n import _

    user = get_settings().code_user
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(user)
        except KeyError:
            useradd = shutil.which("useradd") or "/usr/sbin/useradd"
            subprocess.run(  # noqa: S603 - fixed arguments
                [
                    useradd,
                    "--system",
                    "--no-create-home",
                    "--home-dir",
                    "/nonexistent",
                    "--shell",
                    "/usr/sbin/nologin",
                    user,
                ],
                check=True,
            )
            typer.echo(_("created the user %(user)s") % {"user": user})
    else:
        typer.echo(_("not root: submissions will run as this user, mapped to nobody in a user namespace"))
    sandbox_check()


@sandbox_app.command("check")
@clean_errors
def sandbox_check() -> None:
    """Say whether learners' code can be isolated here (exit 2 when code items are off)."""
    from learnloop.i18n import _
    from learnloop.sandbox.judge import get_sandbox

    state = get_sandbox(get_settings()).availability(refresh=True)
    if not state.ok:
        _fail(_("code items are off: %(reason)s") % {"reason": state.reason})
    typer.echo(_("sandbox ready: %(detail)s") % {"detail": state.detail})
    missing = [name for name, ok in (("NumPy", state.numpy), ("pandas", state.pandas)) if not ok]
    if missing:
        typer.echo(
            _(
                "warning: %(names)s not importable in the sandbox (Debian: apt-get install python3-numpy python3-pandas)"
            )
            % {"names": ", ".join(missing)}
        )


xapi_app = typer.Typer(
    help="xAPI statements to the organisations' learning record stores.", no_args_is_help=True
)
app.add_typer(xapi_app, name="xapi")


@xapi_app.command("deliver")
@clean_errors
def xapi_deliver(
    every: float = typer.Option(0.0, min=0.0, help="keep delivering, every this many seconds (0: once)"),
) -> None:
    """Send the statements that are due (a worker's loop with --every)."""
    import time

    from learnloop.services.xapi_outbox import deliver_pending

    ctx = _ctx()
    while True:
        report = deliver_pending(ctx)
        typer.echo(f"sent {report.sent}, failed {report.failed}")
        if every <= 0:
            return
        time.sleep(every)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
