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
from learnloop.store.models import LLMBudget, LLMCacheEntry, LLMUsage, Team, User, utcnow
from learnloop.store.models_llm_quota import LLMQuota


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

    def quota_spent(self, org_id: int | None, user_id: int | None) -> str | None:
        """Why the member's or their team's monthly quota refuses a model call; None if neither."""
        if org_id is None or user_id is None:
            return None
        with self.ctx.session() as session:
            return quota_refusal(session, org_id, user_id)

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


def _quota_row(session: Any, org_id: int) -> LLMQuota | None:
    return session.get(LLMQuota, org_id)


def _used(
    session: Any, org_id: int, *, user_id: int | None = None, team_id: int | None = None
) -> tuple[int, float]:
    """Tokens (prompt + completion) and US dollars of this month's model calls of a member or a team."""
    query = select(
        func.coalesce(func.sum(LLMUsage.prompt_tokens + LLMUsage.completion_tokens), 0),
        func.coalesce(func.sum(LLMUsage.cost_usd), 0.0),
    ).where(LLMUsage.org_id == org_id, LLMUsage.created_at >= month_start())
    if user_id is not None:
        query = query.where(LLMUsage.user_id == user_id)
    if team_id is not None:
        query = query.join(User, User.id == LLMUsage.user_id).where(User.team_id == team_id)
    tokens, cost = session.execute(query).one()
    return int(tokens or 0), float(cost or 0.0)


def _over(used: tuple[int, float], tokens: int | None, usd: float | None) -> bool:
    return bool((tokens and used[0] >= tokens) or (usd and used[1] >= usd))


def quota_refusal(session: Any, org_id: int, user_id: int) -> str | None:
    """The message refusing a model call when the member's own or their team's monthly quota is
    used up; None while both have room (or none is set)."""
    quota = _quota_row(session, org_id)
    if quota is None:
        return None
    if (quota.user_monthly_tokens or quota.user_monthly_usd) and _over(
        _used(session, org_id, user_id=user_id), quota.user_monthly_tokens, quota.user_monthly_usd
    ):
        return _("Your personal model quota for this month is used up.")
    if quota.team_monthly_tokens or quota.team_monthly_usd:
        team_id = session.scalar(select(User.team_id).where(User.id == user_id, User.org_id == org_id))
        if team_id is not None and _over(
            _used(session, org_id, team_id=team_id), quota.team_monthly_tokens, quota.team_monthly_usd
        ):
            return _("Your team's model quota for this month is used up.")
    return None


def quota_refusal_for(ctx: AppContext, user: CurrentUser) -> str | None:
    """:func:`quota_refusal` for a signed-in member."""
    with ctx.session() as session:
        return quota_refusal(session, user.org_id, user.id)


class Quotas(BaseModel):
    """Monthly model quotas of an organisation's members and teams (None: no limit)."""

    user_monthly_tokens: int | None = None
    user_monthly_usd: float | None = None
    team_monthly_tokens: int | None = None
    team_monthly_usd: float | None = None


class QuotaLine(BaseModel):
    """This month's use of one member or team against its quota."""

    id: int
    name: str
    tokens: int
    cost_usd: float
    over: bool


def _quotas(session: Any, org_id: int) -> Quotas:
    row = _quota_row(session, org_id)
    if row is None:
        return Quotas()
    return Quotas(
        user_monthly_tokens=row.user_monthly_tokens or None,
        user_monthly_usd=row.user_monthly_usd or None,
        team_monthly_tokens=row.team_monthly_tokens or None,
        team_monthly_usd=row.team_monthly_usd or None,
    )


def set_quotas(ctx: AppContext, user: CurrentUser, quotas: Quotas) -> Quotas:
    """Set the organisation's monthly quotas per member and per team (None or 0: no limit); admins only."""
    user.require("admin")
    for value in (quotas.user_monthly_tokens, quotas.team_monthly_tokens):
        if value is not None and not (0 <= value < 10**12):
            raise InvalidInput(_("a token quota must be a whole number between 0 and 10^12"))
    for cost in (quotas.user_monthly_usd, quotas.team_monthly_usd):
        if cost is not None and not (0 <= cost < 1e7):
            raise InvalidInput(_("a cost quota must be a number of US dollars between 0 and 10,000,000"))
    with ctx.session() as session:
        session.merge(
            LLMQuota(
                org_id=user.org_id,
                user_monthly_tokens=quotas.user_monthly_tokens or None,
                user_monthly_usd=quotas.user_monthly_usd or None,
                team_monthly_tokens=quotas.team_monthly_tokens or None,
                team_monthly_usd=quotas.team_monthly_usd or None,
                updated_at=utcnow(),
            )
        )
        session.flush()
        return _quotas(session, user.org_id)


def _quota_lines(session: Any, org_id: int, quotas: Quotas) -> tuple[list[QuotaLine], list[QuotaLine]]:
    """Each team's use this month, and the ten members who used the most."""
    start = month_start()
    tokens = func.sum(LLMUsage.prompt_tokens + LLMUsage.completion_tokens)
    cost = func.sum(LLMUsage.cost_usd)
    team_rows = session.execute(
        select(Team.id, Team.name, func.coalesce(tokens, 0), func.coalesce(cost, 0.0))
        .select_from(Team)
        .outerjoin(User, User.team_id == Team.id)
        .outerjoin(LLMUsage, (LLMUsage.user_id == User.id) & (LLMUsage.created_at >= start))
        .where(Team.org_id == org_id)
        .group_by(Team.id, Team.name)
        .order_by(Team.name)
    ).all()
    user_rows = session.execute(
        select(User.id, User.name, tokens, cost)
        .join(LLMUsage, LLMUsage.user_id == User.id)
        .where(LLMUsage.org_id == org_id, LLMUsage.created_at >= start)
        .group_by(User.id, User.name)
        .order_by(tokens.desc(), User.name)
        .limit(10)
    ).all()

    def line(row: Any, limit_tokens: int | None, limit_usd: float | None) -> QuotaLine:
        used = (int(row[2] or 0), float(row[3] or 0.0))
        return QuotaLine(
            id=int(row[0]),
            name=str(row[1]),
            tokens=used[0],
            cost_usd=round(used[1], 6),
            over=_over(used, limit_tokens, limit_usd),
        )

    return (
        [line(r, quotas.team_monthly_tokens, quotas.team_monthly_usd) for r in team_rows],
        [line(r, quotas.user_monthly_tokens, quotas.user_monthly_usd) for r in user_rows],
    )


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
    quotas: Quotas = Quotas()
    #: this month's use per team and of the ten members who used the most, against the quotas
    teams: list[QuotaLine] = []
    top_users: list[QuotaLine] = []


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
        quotas = _quotas(session, user.org_id)
        team_lines, user_lines = _quota_lines(session, user.org_id, quotas)
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
        quotas=quotas,
        teams=team_lines,
        top_users=user_lines,
    )


def set_budget(ctx: AppContext, user: CurrentUser, monthly_usd: float) -> float | None:
    """Set the organisation's monthly model budget (0 removes it); admins only."""
    user.require("admin")
    if not (0 <= monthly_usd < 1e7):
        raise InvalidInput(_("the budget must be a number of US dollars between 0 and 10,000,000"))
    with ctx.session() as session:
        session.merge(LLMBudget(org_id=user.org_id, monthly_usd=float(monthly_usd), updated_at=utcnow()))
        return _budget_limit(ctx, session, user.org_id)
