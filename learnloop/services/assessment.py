"""Skill checks: a short adaptive test per role, scored 0-300 per domain with a confidence band.

Items come from the role's skills (choice and numeric items, which are scored instantly).
Their IRT parameters are the calibrated ones (``learnloop fit irt``) where the response log
had enough data, else the authored difficulty. Selection is maximum Fisher information with
randomesque exposure control and content balancing over the role's domains; the check stops
at a standard error of 0.3 or after 25 items. Correctness is never shown during a check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel
from scipy.stats import norm
from sqlalchemy import select
from sqlalchemy.orm import Session

from learnloop.content.graph import topological_order
from learnloop.content.models import Item, Role
from learnloop.content.scoring import AnswerError, score_answer
from learnloop.errors import Conflict, InvalidInput, NotFound
from learnloop.i18n import _
from learnloop.science.cat import CATEngine, CATSession
from learnloop.science.irt import eap
from learnloop.services import answer_hooks, lti, xapi_outbox
from learnloop.services.answers import clean_answer
from learnloop.services.auth import CurrentUser
from learnloop.services.calibration import irt_kind
from learnloop.services.context import ActivePack, AppContext
from learnloop.services.mastery import apply_answer, load_model, mastery_of
from learnloop.services.people import webhooks
from learnloop.store.guard import lock_learner
from learnloop.store.models import Assessment, ModelParams, Response, utcnow

SCALE_CENTRE, SCALE_UNIT = 150.0, 50.0  # score = 150 + 50 * theta, clipped to 0..300
MAX_ITEMS, MIN_ITEMS, SE_TARGET = 25, 8, 0.3
CHECK_KINDS = ("choice", "numeric")
MIN_POPULATION = 5
#: a domain's ability is the overall's plus a deviation of this SD (logits): one model for the
#: overall and the domain scores, so a domain with few answers leans on the rest of the test
DOMAIN_SD = 0.5
#: a domain needs this many questions before it can decide where to start
MIN_DOMAIN_ITEMS = 3


class CheckItem(BaseModel):
    assessment_id: int
    item: dict[str, Any]
    number: int
    max_items: int


class DomainScore(BaseModel):
    domain_id: str
    name: str
    score: float
    low: float
    high: float
    items: int
    #: standard error in score points
    se: float = 0.0
    #: measured to the test's stopping precision (SE_TARGET); else the page says it is not
    precise: bool = False
    #: enough questions for a starting recommendation (MIN_DOMAIN_ITEMS)
    well_measured: bool = False


class CheckResult(BaseModel):
    assessment_id: int
    role_id: str
    role_name: str
    score: float
    low: float
    high: float
    se: float
    items: int
    percentile: float
    percentile_basis: str
    domains: list[DomainScore]
    start_skill_id: str | None
    start_skill_name: str | None
    #: why the overall lies outside the domains' range, when it does
    overall_note: str | None = None
    #: the check reached its stopping precision (SE_TARGET) before its length limit
    precise: bool = True
    #: that precision in score points
    se_target_points: float = 0.0


class CheckState(BaseModel):
    status: str
    next: CheckItem | None = None
    result: CheckResult | None = None


@dataclass
class Bank:
    items: list[Item]
    index: dict[str, int]
    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    domain_of_item: np.ndarray
    domains: list[str]


def to_scale(theta: float) -> float:
    return float(np.clip(SCALE_CENTRE + SCALE_UNIT * theta, 0.0, 300.0))


def calibrated_params(session: Session, org_id: int) -> dict[str, dict[str, float]]:
    """The organisation's newest IRT calibration (``learnloop fit irt``): item id -> a, b, c."""
    row = (
        session.execute(
            select(ModelParams).where(ModelParams.kind == irt_kind(org_id)).order_by(ModelParams.id.desc())
        )
        .scalars()
        .first()
    )
    return dict(row.params.get("items", {})) if row else {}


def _bank(active: ActivePack, role: Role, calibrated: dict[str, dict[str, float]]) -> Bank:
    skills = active.role_skills(role)
    domain_of_skill = {s.id: s.domain for s in active.pack.skills}
    items = [i for i in active.pack.items if i.kind in CHECK_KINDS and i.skills[0] in skills]
    if not items:
        raise Conflict(_("This role has no items for a skill check yet."))
    domains = [
        d.id for d in active.pack.meta.domains if any(domain_of_skill[i.skills[0]] == d.id for i in items)
    ]
    a, b, c = [], [], []
    for item in items:
        fitted = calibrated.get(item.id)
        if fitted:
            a.append(fitted["a"])
            b.append(fitted["b"])
            c.append(fitted.get("c", 0.0))
        else:
            params = item.item_params
            # Uncalibrated choice items: lower asymptote of blind guessing among the options.
            guess = 1.0 / len(item.options) if item.kind == "choice" and item.options else 0.0
            a.append(params.a)
            b.append(params.b)
            c.append(params.c or guess)
    domain_index = {d: k for k, d in enumerate(domains)}
    return Bank(
        items=items,
        index={i.id: k for k, i in enumerate(items)},
        a=np.array(a),
        b=np.array(b),
        c=np.array(c),
        domain_of_item=np.array([domain_index[domain_of_skill[i.skills[0]]] for i in items]),
        domains=domains,
    )


def _engine(bank: Bank, role: Role, active: ActivePack) -> CATEngine:
    # Content balancing: each domain's share of the test follows its share of the role's targets.
    domain_of_skill = {s.id: s.domain for s in active.pack.skills}
    weights = np.array(
        [sum(1 for s in role.targets if domain_of_skill[s] == d) for d in bank.domains], dtype=float
    )
    weights = np.where(weights > 0, weights, 0.5)  # prerequisite-only domains still get a little
    # ... and within a domain, its share is split evenly over the item kinds it has, so a check
    # is not mostly numeric calculations (categories: domain x kind)
    kinds = sorted({item.kind for item in bank.items})
    kind_of_item = np.array([kinds.index(item.kind) for item in bank.items], dtype=np.int64)
    category = bank.domain_of_item * len(kinds) + kind_of_item
    present = np.bincount(category, minlength=len(bank.domains) * len(kinds)) > 0
    per_domain = present.reshape(len(bank.domains), len(kinds)).sum(axis=1)
    shares = np.where(
        present.reshape(len(bank.domains), len(kinds)),
        (weights / np.maximum(per_domain, 1))[:, None],
        0.0,
    ).ravel()
    return CATEngine(
        bank.a,
        bank.b,
        bank.c,
        skills=category,
        skill_targets=shares,
        selection="fisher",
        exposure="randomesque",
        randomesque_size=3,
        se_target=SE_TARGET,
        min_items=MIN_ITEMS,
        max_items=MAX_ITEMS,
    )


def _session(engine: CATEngine, bank: Bank, row: Assessment) -> CATSession:
    administered, responses = [], []
    for item_id, correct in zip(row.administered, row.responses, strict=False):
        if item_id in bank.index:
            administered.append(bank.index[item_id])
            responses.append(int(correct))
    return engine.resume(
        {"administered": administered, "responses": responses, "passed_over": []},
        random_state=row.id * 7919 + len(administered),
    )


def _load(session: Session, user: CurrentUser, assessment_id: int) -> Assessment:
    row = session.get(Assessment, assessment_id)
    if row is None or row.user_id != user.id:
        raise NotFound(_("No such skill check."))
    return row


def active_check(ctx: AppContext, user: CurrentUser) -> int | None:
    """The id of the learner's unfinished skill check, if any (the tutor stays silent then)."""
    with ctx.session() as session:
        row = session.execute(
            select(Assessment.id).where(Assessment.user_id == user.id, Assessment.status == "in_progress")
        ).first()
        return row[0] if row else None


def start(ctx: AppContext, user: CurrentUser, role_id: str) -> CheckState:
    """Start a skill check for ``role_id`` (or resume the unfinished one for it)."""
    with ctx.session() as session:
        active = ctx.active_pack(session)
        role = active.role(role_id)
        lock_learner(session, user.id)  # two starts at once resume one check
        row = (
            session.execute(
                select(Assessment).where(
                    Assessment.user_id == user.id,
                    Assessment.status == "in_progress",
                    Assessment.role_id == role.id,
                )
            )
            .scalars()
            .first()
        )
        if row is None:
            row = Assessment(
                org_id=user.org_id,
                user_id=user.id,
                role_id=role.id,
                status="in_progress",
                administered=[],
                responses=[],
            )
            session.add(row)
            session.flush()
        return _advance(session, active, role, row)


def _advance(session: Session, active: ActivePack, role: Role, row: Assessment) -> CheckState:
    bank = _bank(active, role, calibrated_params(session, row.org_id))
    cat = _session(_engine(bank, role, active), bank, row)
    if row.current_item and row.current_item in bank.index:
        item = active.items[row.current_item]
        return CheckState(
            status="in_progress",
            next=CheckItem(
                assessment_id=row.id,
                item=item.public_view(),
                number=len(row.administered) + 1,
                max_items=MAX_ITEMS,
            ),
        )
    nxt = cat.next_item()
    if nxt is None:
        return CheckState(status="done", result=_finish(session, active, role, bank, cat, row))
    row.current_item = bank.items[nxt].id
    return CheckState(
        status="in_progress",
        next=CheckItem(
            assessment_id=row.id,
            item=bank.items[nxt].public_view(),
            number=len(row.administered) + 1,
            max_items=MAX_ITEMS,
        ),
    )


def answer(ctx: AppContext, user: CurrentUser, assessment_id: int, item_id: str, payload: Any) -> CheckState:
    """Record one answer; returns the next item or the result. Never says whether it was right."""
    with ctx.session() as session:
        active = ctx.active_pack(session)
        # One answer per question, whichever process serves it: read the check under the lock.
        lock_learner(session, user.id)
        row = _load(session, user, assessment_id)
        if row.current_item != item_id and row.administered and row.administered[-1] == item_id:
            # the answer just recorded, sent again (a double click, a retry): nothing to add
            return _state(session, active, row)
        if row.status != "in_progress":
            raise Conflict(_("This skill check is already finished."))
        if row.current_item != item_id:
            raise Conflict(_("This is not the current question of your skill check."))
        item = active.item(item_id)
        if isinstance(payload, dict) and payload.get("dont_know") is True and len(payload) == 1:
            # "I don't know": a wrong answer, honestly given (no guess to add noise)
            clean: dict[str, Any] = {"dont_know": True}
            correct, score = False, 0.0
        else:
            clean = clean_answer(item, payload, ctx.settings.max_answer_bytes, kinds=CHECK_KINDS)
            try:
                scored = score_answer(item, clean)
            except AnswerError as exc:
                raise InvalidInput(str(exc)) from None
            correct, score = scored.correct, scored.score
        now = utcnow()
        response = Response(
            org_id=user.org_id,
            user_id=user.id,
            item_id=item.id,
            skills=list(item.skills),
            kind=item.kind,
            context="check",
            answer=clean,
            correct=correct,
            score=score,
            hints_used=0,
            duration_ms=None,
            created_at=now,
        )
        session.add(response)
        session.flush()
        # Check answers are evidence too: mastery follows every answer in the log.
        rows = mastery_of(session, user.id)
        apply_answer(
            session,
            load_model(session, user.org_id),
            rows,
            user_id=user.id,
            skills=list(item.skills),
            correct=correct,
            response_id=response.id,
            at=now,
        )
        answer_hooks.after_answer(
            session,
            ctx,
            active,
            user.org_id,
            user.id,
            item,
            response,
            now,
            rows=rows,
            check_id=row.id,
            passback=False,
        )
        row.administered = [*row.administered, item.id]
        row.responses = [*row.responses, int(correct)]
        row.current_item = None
        state = _advance(session, active, active.role(row.role_id), row)
        if row.status == "done":
            xapi_outbox.record_check_completed(session, active, row)
            webhooks.check_completed(session, ctx, row)
            lti.schedule_passback(ctx, session, user.id)
        return state


def _finish(
    session: Session, active: ActivePack, role: Role, bank: Bank, cat: CATSession, row: Assessment
) -> CheckResult:
    z = float(norm.ppf(0.95))  # 90% band
    domains: list[DomainScore] = []
    names = {d.id: d.name for d in active.pack.meta.domains}
    administered = np.array(cat.administered, dtype=int)
    answers = np.array(cat.responses, dtype=float)
    for k, domain in enumerate(bank.domains):
        mine = bank.domain_of_item[administered] == k if administered.size else np.zeros(0, dtype=bool)
        if not mine.any():
            continue
        items, rest = administered[mine], administered[~mine]
        # one model: the domain's ability is the rest of the test's plus a deviation (DOMAIN_SD),
        # so the domain's prior is the rest's posterior widened by it (N(0, 1) when nothing else)
        if rest.size:
            r_theta, r_se = eap(answers[~mine][None, :], bank.a[rest], bank.b[rest], bank.c[rest])
            prior_mean = float(np.ravel(r_theta)[0])
            prior_sd = float(np.hypot(np.ravel(r_se)[0], DOMAIN_SD))
        else:
            prior_mean, prior_sd = 0.0, 1.0
        theta, se = eap(
            answers[mine][None, :],
            bank.a[items],
            bank.b[items],
            bank.c[items],
            prior_mean=prior_mean,
            prior_sd=prior_sd,
        )
        t, s = float(np.ravel(theta)[0]), float(np.ravel(se)[0])
        domains.append(
            DomainScore(
                domain_id=domain,
                name=names[domain],
                score=round(to_scale(t), 1),
                low=round(to_scale(t - z * s), 1),
                high=round(to_scale(t + z * s), 1),
                items=int(mine.sum()),
                se=round(SCALE_UNIT * s, 1),
                precise=s <= SE_TARGET,
                well_measured=int(mine.sum()) >= MIN_DOMAIN_ITEMS,
            )
        )
    score = to_scale(cat.theta)
    others = [
        float(o)
        for o in session.execute(
            select(Assessment.score).where(
                Assessment.org_id == row.org_id,
                Assessment.role_id == role.id,
                Assessment.status == "done",
                Assessment.id != row.id,
                Assessment.score.is_not(None),
            )
        )
        .scalars()
        .all()
        if o is not None
    ]
    if len(others) >= MIN_POPULATION:
        percentile = (
            100.0 * (sum(o < score for o in others) + 0.5 * sum(o == score for o in others)) / len(others)
        )
        basis = "organisation"
    else:
        percentile = 100.0 * float(norm.cdf(cat.theta))
        basis = "calibration"
    start_skill = _starting_point(active, role, domains)
    overall_note = None
    if domains and not (min(d.score for d in domains) <= round(score, 1) <= max(d.score for d in domains)):
        overall_note = _(
            "The overall score reads every answer at once and is measured more precisely than any "
            "domain; each domain's score leans on the rest of the test in proportion to how few "
            "questions it had, so the overall can lie outside the domains' range."
        )
    result = CheckResult(
        assessment_id=row.id,
        role_id=role.id,
        role_name=role.name,
        score=round(score, 1),
        low=round(to_scale(cat.theta - z * cat.se), 1),
        high=round(to_scale(cat.theta + z * cat.se), 1),
        se=round(cat.se, 3),
        items=len(cat.administered),
        percentile=round(percentile, 1),
        percentile_basis=basis,
        domains=domains,
        start_skill_id=start_skill,
        start_skill_name=active.pack.skill(start_skill).name if start_skill else None,
        overall_note=overall_note,
        precise=cat.se <= SE_TARGET,
        se_target_points=SCALE_UNIT * SE_TARGET,
    )
    row.status = "done"
    row.score = result.score
    row.finished_at = utcnow()
    row.result = result.model_dump(mode="json")
    return result


def _starting_point(active: ActivePack, role: Role, domains: list[DomainScore]) -> str | None:
    """The first skill, in prerequisite order, of the weakest well-measured domain of the role
    (``MIN_DOMAIN_ITEMS`` questions or more; the weakest measured one when none is)."""
    if not domains:
        return None
    candidates = [d for d in domains if d.well_measured] or domains
    weakest = min(candidates, key=lambda d: (d.score, -d.items)).domain_id
    needed = active.role_skills(role)
    for skill_id in topological_order(active.prerequisites):
        if skill_id in needed and active.pack.skill(skill_id).domain == weakest:
            return skill_id
    return None


def _state(session: Session, active: ActivePack, row: Assessment) -> CheckState:
    if row.status == "done" and row.result is not None:
        return CheckState(status="done", result=CheckResult.model_validate(row.result))
    return _advance(session, active, active.role(row.role_id), row)


def result(ctx: AppContext, user: CurrentUser, assessment_id: int) -> CheckState:
    with ctx.session() as session:
        row = _load(session, user, assessment_id)
        if row.status != "done" or row.result is None:
            lock_learner(session, user.id)  # choosing the next question writes it
            session.refresh(row)
        return _state(session, ctx.active_pack(session), row)


def history(ctx: AppContext, user: CurrentUser) -> list[CheckResult]:
    with ctx.session() as session:
        rows = (
            session.execute(
                select(Assessment)
                .where(Assessment.user_id == user.id, Assessment.status == "done")
                .order_by(Assessment.id.desc())
            )
            .scalars()
            .all()
        )
        return [CheckResult.model_validate(r.result) for r in rows if r.result]
