"""An organisation's model quotas per user and per team (``services/llm_usage.py``); same ``Base``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Float, ForeignKey, Integer
from sqlalchemy.orm import Mapped, mapped_column

from learnloop.store.models import Base, utcnow


class LLMQuota(Base):
    """Monthly limits on model use per member and per team, alongside the organisation's
    budget (``LLMBudget``). Each limit is in tokens (prompt + completion) or US dollars; None
    or 0 is no limit."""

    __tablename__ = "llm_quotas"
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    user_monthly_tokens: Mapped[int | None] = mapped_column(Integer)
    user_monthly_usd: Mapped[float | None] = mapped_column(Float)
    team_monthly_tokens: Mapped[int | None] = mapped_column(Integer)
    team_monthly_usd: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
