"""Demo data: an organisation with teams and simulated learners with plausible histories.

Simulated learners follow the same practice policy as real ones; whether they answer
correctly is drawn from a hidden true-skill model (prerequisite-gated learning with
BKT-style transitions and per-item difficulty), so mastery, gaps and item statistics on
every page look like a real cohort's.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from sqlalchemy import func, select

from learnloop.content.graph import topological_order
from learnloop.content.models import Item
from learnloop.content.scoring import score_numeric
from learnloop.science.policy import ItemOption, choose_item, choose_skill
from learnloop.services.auth import create_organisation, create_user, get_or_create_team, hash_password
from learnloop.services.context import AppContext
from learnloop.services.mastery import apply_answer, load_model
from learnloop.services.people import consent
from learnloop.services.people.provisioning import check_manager
from learnloop.services.practice import _targets
from learnloop.store.models import Enrolment, Organisation, Response, utcnow

DEMO_PASSWORD = "learnloop-demo"
DEMO_ORG = "Acme AI Academy"
TEAMS = ("Platform", "Applied AI", "Product", "Data Operations")
FIRST = (
    "Ada",
    "Ben",
    "Chen",
    "Dana",
    "Eli",
    "Fatima",
    "Goro",
    "Hana",
    "Ivan",
    "Jia",
    "Kofi",
    "Lena",
    "Mateo",
    "Nia",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sven",
    "Tao",
    "Uma",
    "Vik",
    "Wei",
    "Yara",
)
LAST = ("Li", "Smith", "Garcia", "Okafor", "Wang", "Müller", "Sato", "Khan", "Silva", "Novak")


@dataclass
class DemoSummary:
    org_id: int
    org_name: str
    join_code: str
    learners: int
    responses: int
    logins: dict[str, str]
    created: bool


def create_demo(
    ctx: AppContext, *, learners: int = 60, answers: tuple[int, int] = (15, 70), seed: int = 7
) -> DemoSummary:
    """Create the demo organisation once (idempotent: returns the existing one)."""
    rng = np.random.default_rng(seed)
    # what the learners wrote draws from its own stream, so the histories do not depend on it
    answer_rng = np.random.default_rng(seed + 1)
    with ctx.session() as session:
        existing = (
            session.execute(select(Organisation).where(Organisation.name == DEMO_ORG)).scalars().first()
        )
        if existing is not None:
            count = (
                session.scalar(
                    select(func.count()).select_from(Response).where(Response.org_id == existing.id)
                )
                or 0
            )
            enrolled = (
                session.scalar(
                    select(func.count(func.distinct(Response.user_id))).where(Response.org_id == existing.id)
                )
                or 0
            )
            return DemoSummary(
                existing.id, existing.name, existing.join_code, enrolled, count, _logins(), created=False
            )
        active = ctx.active_pack(session)
        org = create_organisation(session, DEMO_ORG, slug="acme")
        model = load_model(session, org.id)
        teams = [get_or_create_team(session, org.id, name) for name in TEAMS]
        shared_hash = hash_password(DEMO_PASSWORD)
        staff = {}
        for email, name, role, team_id in (
            ("admin@acme.example", "Alex Admin", "admin", None),
            ("manager@acme.example", "Morgan Manager", "manager", teams[0].id),
            ("instructor@acme.example", "Irene Instructor", "instructor", None),
        ):
            staff[role] = create_user(
                session,
                org_id=org.id,
                email=email,
                name=name,
                password=DEMO_PASSWORD,
                role=role,
                team_id=team_id,
                password_hash=shared_hash,
            )
        roles = [r.id for r in active.pack.roles]
        order = topological_order(active.prerequisites)
        difficulty = {i.id: i.item_params.b for i in active.pack.items}
        start = utcnow() - timedelta(days=56)
        total = 0
        for index in range(learners):
            team = teams[index % len(teams)]
            name = f"{FIRST[index % len(FIRST)]} {LAST[(index * 7) % len(LAST)]}"
            user = create_user(
                session,
                org_id=org.id,
                email=f"learner{index + 1:03d}@acme.example",
                name=name,
                password=DEMO_PASSWORD,
                team_id=team.id,
                password_hash=shared_hash,
                is_simulated=True,
            )
            # reporting lines and consent through the people services, as the pages set them
            if team.id == teams[0].id:
                manager = check_manager(session, org.id, user, staff["manager"].id)
                user.manager_id = manager.id if manager else None
            consent.record(session, user, bool(rng.random() < 0.7), at=start)
            role_id = roles[int(rng.integers(len(roles)))]
            session.add(Enrolment(user_id=user.id, role_id=role_id, is_active=True, created_at=start))
            targets = _targets(active, role_id, ctx.settings.unlock_mastery)
            skills = [s for s in order if s in targets]
            practicable = {s for s in skills if active.items_by_skill.get(s)}
            aptitude = rng.normal(0.0, 0.8)
            known = {s: bool(rng.random() < 0.25 + 0.1 * aptitude) for s in skills}
            rows: dict = {}
            mastery = {s: model.prior(s) for s in skills}
            history: list[str] = []
            moment = start + timedelta(days=float(rng.uniform(0, 20)))
            for _ in range(int(rng.integers(*answers))):
                picked = choose_skill(
                    skills, active.prerequisites, mastery, targets, ctx.settings.unlock_mastery, practicable
                )
                if picked is None:
                    break
                skill_id, _reason = picked
                options = [ItemOption(i.id, difficulty[i.id]) for i in active.items_by_skill[skill_id]]
                option, _p = choose_item(
                    options,
                    model.predict(skill_id, mastery[skill_id]),
                    history[-8:],
                    Counter(history),
                    ctx.settings.target_success,
                )
                item = active.items[option.item_id]
                base = 0.88 if known[skill_id] else 0.22
                logit_p = math.log(base / (1 - base)) + 0.6 * aptitude - 0.5 * option.difficulty
                correct = bool(rng.random() < 1 / (1 + math.exp(-logit_p)))
                if not known[skill_id] and rng.random() < 0.18 + 0.05 * aptitude:
                    known[skill_id] = True
                moment += timedelta(minutes=float(rng.uniform(1, 6)))
                if rng.random() < 0.08:
                    moment += timedelta(days=float(rng.uniform(1, 4)))
                hints = int(rng.random() < 0.25) + int(rng.random() < 0.1)
                answer = _simulated_answer(item, correct, answer_rng)
                response = Response(
                    org_id=org.id,
                    user_id=user.id,
                    item_id=item.id,
                    skills=list(item.skills),
                    kind=item.kind,
                    context="practice",
                    answer=answer,
                    correct=correct,
                    score=1.0 if correct else 0.0,
                    hints_used=hints,
                    duration_ms=int(rng.uniform(15, 240) * 1000 * item.minutes),
                    created_at=moment,
                )
                session.add(response)
                session.flush()
                changes = apply_answer(
                    session,
                    model,
                    rows,
                    user_id=user.id,
                    skills=list(item.skills),
                    correct=correct,
                    response_id=response.id,
                    at=moment,
                )
                for s, (_b, after) in changes.items():
                    mastery[s] = after
                history.append(item.id)
                total += 1
        return DemoSummary(org.id, org.name, org.join_code, learners, total, _logins(), created=True)


def _simulated_answer(item: Item, correct: bool, rng: np.random.Generator) -> dict[str, object]:
    """A stored answer that agrees with ``correct``: the key or a distractor for a choice item
    (distractors unequally attractive, as real ones are), the answer or a typical slip (a
    wrong power of ten, a doubled or halved value) for a numeric one. Other kinds are marked
    simulated: their text or code is not made up."""
    if item.kind == "choice" and item.options and item.key:
        wrong = sorted(k for k in item.options if k != item.key)
        if correct or not wrong:
            return {"choice": item.key, "simulated": True}
        weights = np.array([2.0**-k for k in range(len(wrong))])
        return {"choice": wrong[int(rng.choice(len(wrong), p=weights / weights.sum()))], "simulated": True}
    if item.kind == "numeric" and item.answer is not None:
        if correct:
            return {"value": item.answer, "simulated": True}
        for value in [item.answer * float(f) for f in rng.permutation([10.0, 0.1, 2.0, 0.5])] + [
            item.answer + 1.0,
            item.answer - 1.0,
        ]:
            if not score_numeric(item, value).correct:  # wrong by the item's own tolerance
                return {"value": value, "simulated": True}
    return {"simulated": True}


def _logins() -> dict[str, str]:
    return {
        "admin@acme.example": DEMO_PASSWORD,
        "manager@acme.example": DEMO_PASSWORD,
        "instructor@acme.example": DEMO_PASSWORD,
        "learner001@acme.example": DEMO_PASSWORD,
    }
