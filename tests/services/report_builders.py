"""Builders for report tests: organisations, teams and learners with a chosen mastery history.

Mastery and its history are written directly (they are derived state), with one response
per history step so the response log is not empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache

import pytest
from sqlalchemy.orm import Session

from learnloop.services import learner_tally
from learnloop.services.auth import (
    CurrentUser,
    create_organisation,
    create_user,
    get_or_create_team,
    hash_password,
)
from learnloop.services.context import AppContext
from learnloop.store.models import Enrolment, Mastery, MasteryHistory, Organisation, Response, User, utcnow

PASSWORD = "password-123"


@cache
def _password_hash() -> str:
    return hash_password(PASSWORD)  # Argon2 is slow on purpose; hash once for every test user


@dataclass
class Org:
    id: int
    name: str
    teams: dict[str, int] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)


def make_org(ctx: AppContext, name: str) -> Org:
    with ctx.session() as session:
        org = create_organisation(session, name)
        return Org(org.id, org.name)


def add_user(
    ctx: AppContext,
    org: Org,
    key: str,
    *,
    role: str = "learner",
    team: str | None = None,
    manager: str | None = None,
    consent: bool = False,
    target_role: str | None = "builder",
) -> int:
    with ctx.session() as session:
        team_id = None
        if team is not None:
            team_id = get_or_create_team(session, org.id, team).id
            org.teams[team] = team_id
        user = create_user(
            session,
            org_id=org.id,
            email=f"{key}@{org.name.lower().replace(' ', '')}.example",
            name=key.title(),
            password=PASSWORD,
            role=role,
            team_id=team_id,
            password_hash=_password_hash(),
        )
        user.manager_id = org.users[manager] if manager else None
        user.consent_share = consent
        if target_role:
            session.add(Enrolment(user_id=user.id, role_id=target_role, is_active=True))
        org.users[key] = user.id
        return user.id


def set_history(
    ctx: AppContext, org: Org, key: str, skill_id: str, steps: list[tuple[datetime, float]]
) -> None:
    """Append mastery steps (moment, p_known) for one learner and skill; the last is current."""
    user_id = org.users[key]
    with ctx.session() as session:
        row = session.get(Mastery, (user_id, skill_id))
        for at, p in steps:
            response = Response(
                org_id=org.id,
                user_id=user_id,
                item_id="basics.tokens.count",
                skills=[skill_id],
                kind="choice",
                context="practice",
                answer={"choice": "b"},
                correct=True,
                score=1.0,
                hints_used=0,
                duration_ms=20_000,
                created_at=at,
            )
            session.add(response)
            session.flush()
            learner_tally.count_answer(session, response.id, True)  # as the answer path does
            session.add(
                MasteryHistory(
                    user_id=user_id, skill_id=skill_id, response_id=response.id, p_known=p, created_at=at
                )
            )
            if row is None:
                row = Mastery(
                    user_id=user_id, skill_id=skill_id, p_known=p, attempts=0, correct=0, last_response_id=0
                )
                session.add(row)
            row.p_known, row.updated_at, row.last_response_id = p, at, response.id
            row.attempts += 1
            row.correct += 1


def set_mastery(
    ctx: AppContext, org: Org, key: str, values: dict[str, float], at: datetime | None = None
) -> None:
    for skill_id, p in values.items():
        set_history(ctx, org, key, skill_id, [(at or utcnow() - timedelta(hours=1), p)])


def viewer(ctx: AppContext, org: Org, key: str) -> CurrentUser:
    with ctx.session() as session:
        user = session.get(User, org.users[key])
        assert user is not None
        return current_user(session, user)


def current_user(session: Session, user: User) -> CurrentUser:
    org = session.get(Organisation, user.org_id)
    assert org is not None
    return CurrentUser(
        id=user.id,
        org_id=user.org_id,
        org_name=org.name,
        team_id=user.team_id,
        email=user.email,
        name=user.name,
        role=user.role,
        locale="en",
    )


def targets_on_mastery_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reports meet a target on mastery alone: for tests that write mastery directly (derived
    state, one log row per step) and check the gap arithmetic. The evidence a target needs in
    the product has its own tests (tests/services/test_reports_team.py)."""
    from learnloop.science.evidence import EvidenceRule
    from learnloop.services import reports_snapshots, reports_team

    for module in (reports_team, reports_snapshots):
        monkeypatch.setattr(
            module,
            "evidence_rule",
            lambda settings: EvidenceRule(min_items=0, need_open_kind=False, max_age_days=0, threshold=0.0),
        )
