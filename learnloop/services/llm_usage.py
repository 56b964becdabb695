"""Model usage in the database: the gateway's cache and accounts, budgets, the admin usage report."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Integer, cast, func, select

from learnloop.errors import InvalidInput
from learnloop.i18n import _
from learnloop.llm.gateway import Gateway, UsageEvent
from learnloop.services.auth import CurrentUser
from learnloop.services.context import AppContext
from learnloop.store.models import LLMBudget, LLMCacheEntry, LLMUsage, User, utcnow


def month_start(now: datetime | None = None) -> datetime:
    now = now or utcnow()
    return datetime(now.year, now.month, 1, tzinfo=UTC)


class DbLedger:
    """The gateway's :class:`~learnloop.llm.gateway.Ledger` on the application database.

    Each method is its own short transaction, so a model call never holds one open.
    """

    def __init__(self, ctx: AppContext):
        self.ctx = ctx

    def cached(self, key: str) -> dict[str, Any] | None:
        with self.ctx.session() as session:
            row = session.get(LLMCacheEntry, key)
            if row is None:
                return None
            row.hits += 1
            return dict(row.response)

    def store(self, key: str, model: str, response: dict[str, Any]) -> None:
        with self.ctx.session() as session:
            session.merge(LLMCacheEntry(key=key, model=model[:200], response=response, hits=0))

    def forget(self, key: str) -> None:
        with self.ctx.session() as session:
            row = session.get(LLMCacheEntry, key)
            if row is not None:
                session.delete(row)

    def budget_left(self, org_id: int | None) -> float | None:
        if org_id is None:
            return None
        with self.ctx.session() as session:
            limit = _budget_limit(self.ctx, session, org_id)
            if limit is None:
                return None
            return limit - _spent(session, org_id)

    def record(self, event: UsageEvent) -> None:
        with self.ctx.session() as session:
            session.add(
                LLMUsage(
                    org_id=event.org_id,
                    user_id=event.user_id,
                    task=event.task,
                    provider=event.provider,
                    model=event.model[:200],
                    prompt_tokens=event.prompt_tokens,
                    completion_tokens=event.completion_tokens,
                    cost_usd=event.cost_usd,
                    cached=event.cached,
                    outcome=event.outcome,
                    latency_ms=event.latency_ms,
                )
            )


def _budget_limit(ctx: AppContext, session: Any, org_id: int) -> float | None:
    row = session.get(LLMBudget, org_id)
    limit = row.monthly_usd if row is not None else ctx.settings.llm_default_budget_usd
    return limit if limit and limit > 0 else None


def _spent(session: Any, org_id: int) -> float:
    total = session.execute(
        select(func.coalesce(func.sum(LLMUsage.cost_usd), 0.0)).where(
            LLMUsage.org_id == org_id, LLMUsage.created_at >= month_start()
        )
    ).scalar_one()
    return float(total or 0.0)


def gateway_for(ctx: AppContext) -> Gateway:
    """The model gateway with the database as its cache and ledger."""
    return Gateway(ctx.settings, DbLedger(ctx))


class UsageLine(BaseModel):
    who: str
    task: str
    provider: str
    model: str
    calls: int
    cached: int
    failed: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


class UsageReport(BaseModel):
    month: str
    budget_usd: float | None
    spent_usd: float
    lines: list[UsageLine]
    routes: dict[str, str]
    endpoints: dict[str, str]


def usage_report(ctx: AppContext, user: CurrentUser) -> UsageReport:
    """This month's model usage of the caller's organisation, by person, task and model (admins)."""
    user.require("admin")
    start = month_start()
    with ctx.session() as session:
        rows = session.execute(
            select(
                User.name,
                LLMUsage.task,
                LLMUsage.provider,
                LLMUsage.model,
                func.count(),
                func.sum(cast(LLMUsage.cached, Integer)),
                func.sum(cast(LLMUsage.outcome.in_(("error", "timeout", "budget")), Integer)),
                func.sum(LLMUsage.prompt_tokens),
                func.sum(LLMUsage.completion_tokens),
                func.sum(LLMUsage.cost_usd),
            )
            .outerjoin(User, User.id == LLMUsage.user_id)
            .where(LLMUsage.org_id == user.org_id, LLMUsage.created_at >= start)
            .group_by(User.name, LLMUsage.task, LLMUsage.provider, LLMUsage.model)
            .order_by(User.name, LLMUsage.task)
        ).all()
        budget = _budget_limit(ctx, session, user.org_id)
        spent = _spent(session, user.org_id)
    gateway = Gateway(ctx.settings)
    # Only where each task goes: never a key.
    endpoints = {}
    for task in ("tutor", "grade", "author", "embed"):
        endpoint = gateway.endpoint(task)
        endpoints[task] = f"{endpoint.base_url} · {endpoint.model}" if endpoint.base_url else "—"
    return UsageReport(
        month=start.strftime("%Y-%m"),
        budget_usd=budget,
        spent_usd=round(spent, 6),
        lines=[
            UsageLine(
                who=name or "—",
                task=task,
                provider=provider,
                model=model,
                calls=int(calls),
                cached=int(cached or 0),
                failed=int(failed or 0),
                prompt_tokens=int(pt or 0),
                completion_tokens=int(ct or 0),
                cost_usd=round(float(cost or 0.0), 6),
            )
            for name, task, provider, model, calls, cached, failed, pt, ct, cost in rows
        ],
        routes={task: ",".join(gateway.route(task)) for task in ("tutor", "grade", "author", "embed")},
        endpoints=endpoints,
    )


def set_budget(ctx: AppContext, user: CurrentUser, monthly_usd: float) -> float | None:
    """Set the organisation's monthly model budget (0 removes it); admins only."""
    user.require("admin")
    if not (0 <= monthly_usd < 1e7):
        raise InvalidInput(_("the budget must be a number of US dollars between 0 and 10,000,000"))
    with ctx.session() as session:
        session.merge(LLMBudget(org_id=user.org_id, monthly_usd=float(monthly_usd), updated_at=utcnow()))
        return _budget_limit(ctx, session, user.org_id)
