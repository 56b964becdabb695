"""The team report's one read of mastery (``reports.team_mastery``: P(known) and the stored
evidence summary from the covering index) gives what the two reads it replaces gave
(P(known) read row by row here, and ``mastery.evidence_matrix`` reading the rows), cell by cell,
with learners who never answered a skill right and rows stored before migration 0034, on
SQLite and PostgreSQL."""

from __future__ import annotations

import time

import numpy as np
from sqlalchemy import select, update

from learnloop.content.loader import load_pack
from learnloop.services import auth, mastery, practice
from learnloop.services.auth import CurrentUser
from learnloop.services.context import AppContext
from learnloop.services.reports import people_of_org, team_mastery
from learnloop.store.models import Mastery
from tests.conftest import MINI_PACK, answer_payload

PACK = load_pack(MINI_PACK)


def _learner(ctx: AppContext, email: str) -> CurrentUser:
    user = auth.signup(ctx, email=email, name="T", password="tidal-ferry-quartz-81").user
    practice.enrol(ctx, user, "builder")
    return user


def _practise(ctx: AppContext, user: CurrentUser, rights: list[bool]) -> None:
    for right in rights:
        shown = practice.next_item(ctx, user)
        item = PACK.item(shown.item["id"])
        practice.answer(ctx, user, item.id, answer_payload(item, right=right))


def test_one_read_equals_the_two_it_replaces(any_ctx: AppContext) -> None:
    users = [_learner(any_ctx, f"read{k}@example.org") for k in range(4)]
    _practise(any_ctx, users[0], [True] * 10)
    _practise(any_ctx, users[1], [k % 3 != 1 for k in range(14)])
    _practise(any_ctx, users[2], [False] * 4)  # answered, never right: reads like a legacy row
    # users[3] never answers
    with any_ctx.session() as session:  # users[1]'s rows as stored before 0034
        session.execute(
            update(Mastery)
            .where(Mastery.user_id == users[1].id)
            .values(evidence=None, ev_items=0, ev_open=False, ev_cusum=0.0, ev_last_right=None)
        )
    rule = mastery.EvidenceRule(min_items=2, need_open_kind=False, max_age_days=30, threshold=1.0)
    skill_ids = [s.id for s in PACK.skills]
    bank = {s: [i for i in PACK.items if s in i.skills] for s in skill_ids}
    priors = np.full(len(skill_ids), 0.1)
    now = time.time()
    with any_ctx.session() as session:
        active = any_ctx.active_pack(session, users[0].org_id)
        people = [p for p in people_of_org(session, active, users[0].org_id) if p.id in {u.id for u in users}]
        assert len(people) == 4
        ids = [p.id for p in people]
        targets = np.full((len(people), len(skill_ids)), 0.3)
        targets[:, 0] = np.nan
        before = np.tile(priors, (len(people), 1))
        for row in session.scalars(select(Mastery).where(Mastery.user_id.in_(ids))):
            if row.skill_id in skill_ids:
                before[ids.index(row.user_id), skill_ids.index(row.skill_id)] = row.p_known
        met_before = mastery.evidence_matrix(session, ids, skill_ids, bank, rule, before, targets, now)
        matrix, stored = team_mastery(session, users[0].org_id, people, skill_ids, priors)
        met = mastery.evidence_matrix(
            session, ids, skill_ids, bank, rule, matrix, targets, now, stored=stored
        )
    assert (matrix == before).all() and (met == met_before).all()
    assert set(stored[4]) == {users[1].id}  # only the rows without stored evidence are folded
    assert met[:, 1:].any() and not met[:, 1:].all()  # learners told apart
    assert (matrix[ids.index(users[3].id)] == priors).all()
