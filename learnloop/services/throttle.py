"""Login throttling: failed attempts counted per account and per client address.

Every attempt takes one unit from each of its counters *before* the password is checked, and a
successful one gives them back, so a thousand wrong guesses sent at once cannot all reach the
(deliberately slow) password hash: past the limit they are refused at once with HTTP 429. The
counters live in the database (``login_throttle``), one fixed window each, so the limits hold
across every worker process. The keys are salted hashes: the table stores no e-mail or address.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import Table, case, delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from learnloop.errors import RateLimited
from learnloop.i18n import _
from learnloop.services.context import AppContext
from learnloop.store.models import LoginThrottle, as_utc, utcnow

#: about one attempt in this many also clears the counters of past windows
CLEAN_EVERY = 200


@dataclass(frozen=True)
class Budget:
    key: str
    limit: int


def _key(ctx: AppContext, kind: str, value: str) -> str:
    digest = hashlib.sha256(f"{ctx.settings.secret_key}\x1f{kind}\x1f{value}".encode()).hexdigest()
    return f"{kind}:{digest[:60]}"


def login_budgets(ctx: AppContext, email: str, address: str | None) -> list[Budget]:
    """The counters a login (or a sign-up probing an address) spends from."""
    s = ctx.settings
    budgets = [Budget(_key(ctx, "acct", email.strip().lower()), s.login_account_failures)]
    if address:
        budgets.append(Budget(_key(ctx, "addr", address), s.login_address_failures))
    return budgets


def _bump(session: Session, key: str, window_s: int) -> tuple[int, int]:
    """Add one attempt to ``key`` atomically; (attempts in the window, seconds left in it)."""
    now = utcnow()
    cutoff = now - timedelta(seconds=window_s)
    table = cast(Table, LoginThrottle.__table__)
    dialect = session.get_bind().dialect.name
    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    upsert = insert(table).values(key=key, window_start=now, attempts=1)
    expired = table.c.window_start < cutoff
    stmt = upsert.on_conflict_do_update(
        index_elements=[table.c.key],
        set_={
            "attempts": case((expired, 1), else_=table.c.attempts + 1),
            "window_start": case((expired, now), else_=table.c.window_start),
        },
    ).returning(table.c.attempts, table.c.window_start)
    attempts, started = session.execute(stmt).one()
    left = window_s - int((now - as_utc(started)).total_seconds())
    return int(attempts), max(1, left)


def spend(ctx: AppContext, budgets: list[Budget]) -> None:
    """Take one attempt from every budget, or raise :class:`RateLimited` if one is used up."""
    window = ctx.settings.login_window_s
    if window <= 0 or not budgets:
        return
    wait = 0
    with ctx.session() as session:
        if secrets.randbelow(CLEAN_EVERY) == 0:
            _forget_expired(session, window)
        for budget in budgets:
            attempts, left = _bump(session, budget.key, window)
            if attempts > budget.limit:
                wait = max(wait, left)
    if wait:
        minutes = max(1, round(wait / 60))
        raise RateLimited(
            _("Too many login attempts. Try again in %(minutes)d minutes.") % {"minutes": minutes},
            retry_after=wait,
        )


def refund(ctx: AppContext, budgets: list[Budget]) -> None:
    """A successful login: its attempt does not count, and the account's failures are forgiven."""
    if ctx.settings.login_window_s <= 0 or not budgets:
        return
    with ctx.session() as session:
        for budget in budgets:
            if budget.key.startswith("acct:"):
                session.execute(delete(LoginThrottle).where(LoginThrottle.key == budget.key))
            else:
                session.execute(
                    update(LoginThrottle)
                    .where(LoginThrottle.key == budget.key, LoginThrottle.attempts > 0)
                    .values(attempts=LoginThrottle.attempts - 1)
                )


def _forget_expired(session: Session, window_s: int) -> None:
    """Drop counters whose window has passed, so guessed e-mail addresses do not pile up."""
    cutoff = utcnow() - timedelta(seconds=window_s)
    session.execute(delete(LoginThrottle).where(LoginThrottle.window_start < cutoff))
