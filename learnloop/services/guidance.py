"""Guidance: the next activity, the learner's path to a role, and the organisation's memory fit.

The policy (``science/policy.py``) is pure; this module gathers its inputs from the store
(mastery, the review cards of ``review_cards.py``, recent answers) and turns its choice
into words for the learner.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from learnloop.config import Settings, get_settings
from learnloop.content.models import Lesson
from learnloop.errors import Conflict, InvalidInput, LearnloopError
from learnloop.i18n import _
from learnloop.science.kt.bkt import learn_prior_for
from learnloop.science.memory import (
    MemoryModel,
    MemoryOptimizer,
    OptimizerUnavailable,
    rating_for_answer,
)
from learnloop.science.path import PathPlan, PlanStep, plan_path
from learnloop.science.policy import (
    Activity,
    Curriculum,
    GraphError,
    LearnerState,
    PolicyConfig,
    UnreachableTarget,
    choose_activity,
    choose_in_skill,
    curriculum_for_role,
    skill_met,
)
from learnloop.services.auth import CurrentUser
from learnloop.services.context import ActivePack, AppContext
from learnloop.services.enrolment import current_role
from learnloop.services.mastery import (
    MasteryModel,
    evidence_of_rows,
    evidence_rule,
    load_model,
    predicted_success,
)
from learnloop.services.review_cards import (
    current_cards,
    item_minutes,
    logged_answers,
    memory_kind,
    memory_model,
    skill_retrievability,
    sync_cards,
)
from learnloop.store.grades import counted_correct, with_decisions
from learnloop.store.models import (
    Mastery,
    ModelParams,
    Response,
    ReviewCard,
    User,
    as_utc,
    utcnow,
)

HISTORY_WINDOW = 500

# -- the policy's inputs --------------------------------------------------------------------


_CURRICULA: dict[tuple[object, ...], tuple[ActivePack, Curriculum]] = {}


def curriculum(
    active: ActivePack, role_id: str, unlock: float, model: MasteryModel, *, code_items: bool = True
) -> Curriculum:
    """The policy's view of a role, cached per loaded pack (the entry keeps the pack alive, so
    its id is not reused), role and mastery parameters. ``code_items=False`` leaves code items
    out (a server that cannot isolate code, see ``learnloop.sandbox``)."""
    key = (id(active), role_id, unlock, model.default, tuple(sorted(model.per_skill.items())), code_items)
    cached = _CURRICULA.get(key)
    if cached is not None and cached[0] is active:
        return cached[1]
    try:
        pack = active.pack
        if not code_items:
            pack = pack.model_copy(update={"items": [i for i in pack.items if i.kind != "code"]})
        built = curriculum_for_role(
            pack,
            role_id,
            unlock_level=unlock,
            skill_params=model.per_skill,
            default_params=model.default,
        )
    except GraphError as exc:
        raise Conflict(
            _("The skill graph of this pack cannot be planned: %(why)s") % {"why": str(exc)}
        ) from None
    if len(_CURRICULA) > 64:
        _CURRICULA.clear()
    _CURRICULA[key] = (active, built)
    return built


def learner_state(
    session: Session, active: ActivePack, user: CurrentUser, model: MasteryModel, now: datetime
) -> tuple[LearnerState, MemoryModel]:
    """What the policy needs of one learner, read with plain column queries (this runs on every
    next item, for learners with thousands of answers): the newest ``HISTORY_WINDOW`` answers
    of the log through its (user, id) index, the cards (answers newer than them folded in
    first), and mastery and attempts from the derived rows."""
    session.flush()  # the log and the cards are read as plain rows from the connection
    # grades as they count: an instructor's decision overrides the provisional grade
    history = (
        session.connection()
        .execute(
            with_decisions(select(Response.id, Response.item_id, Response.skills, counted_correct()))
            .where(Response.user_id == user.id)
            .order_by(Response.id.desc())
            .limit(HISTORY_WINDOW)
        )
        .all()
    )
    memory = memory_model(session, user.org_id)
    newest = history[0][0] if history else 0
    cards = current_cards(session, user.id, user.org_id, active.pack, memory, newest_answer_id=newest)
    mastery = session.execute(
        select(Mastery.skill_id, Mastery.p_known, Mastery.attempts, Mastery.evidence).where(
            Mastery.user_id == user.id
        )
    ).all()
    items = [item_id for _id, item_id, _skills, _correct in history]
    recent = items[: max(16, get_settings().practice_repeat_gap)]
    # answers per skill, oldest first, for the policy's prerequisite diagnosis (a text answer
    # still awaiting an instructor counts with its provisional grade)
    per_skill: dict[str, list[bool]] = {}
    for _id, _item, skills, correct in reversed(history):
        for skill in skills or ():
            per_skill.setdefault(skill, []).append(bool(correct))
    state = LearnerState(
        mastery={skill: p for skill, p, _n, _ev in mastery},
        retrievability=skill_retrievability(cards, active, memory, now),
        attempts={skill: n for skill, _p, n, _ev in mastery},
        answered=Counter(items),
        recent_items=tuple(recent),
        recent_skills=tuple(active.items[i].skills[0] for i in recent if i in active.items),
        history=per_skill,
        evidence=evidence_of_rows(session, user.id, [(skill, ev, n) for skill, _p, n, ev in mastery]),
        now=now.timestamp(),
        p_correct=(
            predicted_success(
                session,
                model,
                user.id,
                [s.id for s in active.pack.skills],
                {skill: p for skill, p, _n, _ev in mastery},
            )
            if model.kind == "logistic"
            else {}
        ),
    )
    return state, memory


def policy_config(memory: MemoryModel, settings: Settings | None = None) -> PolicyConfig:
    """The policy's settings: the organisation's desired retention, and the evidence a role
    target needs and the repeat gap from the settings."""
    settings = settings or get_settings()
    return PolicyConfig(
        desired_retention=memory.desired_retention,
        evidence=evidence_rule(settings),
        repeat_gap=settings.practice_repeat_gap,
    )


def choose_next(
    session: Session,
    ctx: AppContext,
    active: ActivePack,
    user: CurrentUser,
    role_id: str,
    *,
    code_items: bool = True,
    focus: str | None = None,
) -> tuple[Activity, LearnerState]:
    """The activity the policy picks now (always with an item to present), and the state it
    was picked from; ``focus``: a skill the learner chose to practise (its best item)."""
    model = load_model(session, user.org_id)
    cur = curriculum(active, role_id, ctx.settings.unlock_mastery, model, code_items=code_items)
    state, memory = learner_state(session, active, user, model, utcnow())
    if focus is not None:
        chosen = choose_in_skill(cur, state, focus, policy_config(memory, ctx.settings))
        if chosen is None:
            raise InvalidInput(
                _("%(skill)s is not on the path to your target role, or has no practice items.")
                % {"skill": active.pack.skill(focus).name if focus in active.pack.skill_index() else focus}
            )
        return chosen, state
    activity = choose_activity(cur, state, policy_config(memory, ctx.settings))
    if activity is None or activity.item_id is None:
        raise LearnloopError(_("This role has no practice items in the current pack."))
    return activity, state


# -- words for the learner ------------------------------------------------------------------


def encode_reason(activity: Activity) -> str:
    """How the choice is kept with the pending item: ``reason:toward``."""
    return f"{activity.reason}:{activity.toward or ''}"


def decode_reason(stored: str) -> tuple[str, str | None]:
    reason, _sep, toward = stored.partition(":")
    return reason or "next_step", toward or None


class LessonSuggestion(BaseModel):
    id: str
    title: str
    minutes: float


def lesson_first(active: ActivePack, skill_id: str) -> LessonSuggestion | None:
    """The lesson the policy sends the learner to before the next item (``policy.lesson_due``:
    by default after a wrong first answer on a new skill; a learner whose first answer is
    right is only offered it, by the link every practice page has)."""
    lessons: list[Lesson] = active.pack.lessons_for_skill(skill_id)
    if not lessons:
        return None
    lesson = min(lessons, key=lambda x: (x.minutes, x.id))
    return LessonSuggestion(id=lesson.id, title=lesson.title, minutes=lesson.minutes)


def reason_text(reason: str, skill_name: str, toward_name: str | None) -> str:
    if reason == "review":
        return _("Due review: %(skill)s is fading from memory") % {"skill": skill_name}
    if reason == "chosen":
        return _("You chose to practise %(skill)s") % {"skill": skill_name}
    if reason == "maintain":
        return _("Keeping %(skill)s fresh: your targets are met") % {"skill": skill_name}
    if reason == "revisit":
        return _("Checking %(skill)s again: %(target)s builds on it") % {
            "skill": skill_name,
            "target": toward_name or skill_name,
        }
    itself = toward_name is None or toward_name == skill_name
    if reason == "lesson":
        if itself:
            return _("New skill: %(skill)s, itself a target of your role") % {"skill": skill_name}
        return _("New skill: %(skill)s, a step toward %(target)s") % {
            "skill": skill_name,
            "target": toward_name,
        }
    if itself:
        return _("Practising %(skill)s, itself a target of your role") % {"skill": skill_name}
    return _("Next step toward %(target)s") % {"target": toward_name}


def presentation(
    session: Session,
    active: ActivePack,
    user_id: int,
    skill_id: str,
    stored_reason: str,
    attempts: int | None = None,
) -> dict[str, object]:
    """The fields a presented item carries beyond the item: kind, reason in words, and the
    lesson card when the policy sends the learner to the lesson (stored reason "lesson").
    ``attempts`` is accepted from callers that have read it and no longer needed: the card
    follows the policy's choice, not the count of answers."""
    del session, user_id, attempts
    reason, toward = decode_reason(stored_reason)
    skills = active.pack.skill_index()
    toward_name = skills[toward].name if toward and toward in skills else None
    return {
        "activity": "review" if reason in ("review", "maintain") else "practice",
        "reason": reason,
        "reason_text": reason_text(reason, skills[skill_id].name, toward_name),
        "toward_skill_id": toward if toward_name else None,
        "toward_skill_name": toward_name,
        "lesson": lesson_first(active, skill_id) if reason == "lesson" else None,
    }


# -- the path to the role -------------------------------------------------------------------


class PathStepView(BaseModel):
    skill_id: str
    name: str
    status: str  # learn | review | revisit | met
    mastery: float
    target: float
    retrievability: float | None
    answers: float
    minutes: float
    toward_skill_id: str | None
    toward_skill_name: str | None
    is_target: bool
    open: bool


class DueReview(BaseModel):
    skill_id: str
    name: str
    retrievability: float


class NextUp(BaseModel):
    kind: str
    skill_id: str
    skill_name: str
    reason: str
    reason_text: str
    lesson: LessonSuggestion | None


class PathView(BaseModel):
    role_id: str | None
    role_name: str | None
    steps: list[PathStepView]
    met: list[PathStepView]
    due_reviews: list[DueReview]
    #: expected over what the product believes of the learner now (``science/path.py``)
    answers_to_go: float
    minutes_to_go: float
    #: the least the path asks for: the answers and minutes if every remaining skill is
    #: already known (the same evidence rule; the low end of the range the page shows)
    answers_if_known: float = 0.0
    minutes_if_known: float = 0.0
    targets_met: int
    targets_total: int
    answers_so_far: int
    next: NextUp | None


def _step_view(step: PlanStep, names: dict[str, str]) -> PathStepView:
    return PathStepView(
        skill_id=step.skill_id,
        name=names[step.skill_id],
        status=step.status,
        mastery=round(step.mastery, 4),
        target=step.target,
        retrievability=None if step.retrievability is None else round(step.retrievability, 4),
        answers=round(step.items, 1),
        minutes=round(step.minutes, 1),
        toward_skill_id=step.toward,
        toward_skill_name=names.get(step.toward) if step.toward else None,
        is_target=step.is_target,
        open=step.open,
    )


def my_path(ctx: AppContext, user: CurrentUser) -> PathView:
    """The ordered skills to the learner's role with estimated answers and minutes, due reviews
    and the next activity. Computed from the current state, so it re-plans after every answer."""
    with ctx.session() as session:
        active = ctx.active_pack(session, user.org_id)
        role_id = current_role(session, user.id)
        if role_id is None or role_id not in active.roles:
            return PathView(
                role_id=None,
                role_name=None,
                steps=[],
                met=[],
                due_reviews=[],
                answers_to_go=0,
                minutes_to_go=0,
                targets_met=0,
                targets_total=0,
                answers_so_far=0,
                next=None,
            )
        role = active.roles[role_id]
        model = load_model(session, user.org_id)
        cur = curriculum(active, role_id, ctx.settings.unlock_mastery, model)
        state, memory = learner_state(session, active, user, model, utcnow())
        cfg = policy_config(memory, ctx.settings)
        try:
            # learners' speed: a prior over it until the organisation's log is fitted
            plan: PathPlan = plan_path(
                cur, state, cfg, learn_prior=learn_prior_for(fitted=model.params_id is not None)
            )
        except UnreachableTarget as exc:
            raise Conflict(
                _("The role %(role)s cannot be reached with the current pack: %(why)s.")
                % {"role": role.name, "why": str(exc)}
            ) from None
        shown = active.localized()  # names in the UI language; ids and structure are the base's
        names = {s.id: s.name for s in shown.pack.skills}
        activity = choose_activity(cur, state, cfg)
        nxt = None
        if activity is not None:
            nxt = NextUp(
                kind=activity.kind,
                skill_id=activity.skill_id,
                skill_name=names[activity.skill_id],
                reason=activity.reason,
                reason_text=reason_text(
                    activity.reason,
                    names[activity.skill_id],
                    names.get(activity.toward) if activity.toward else None,
                ),
                lesson=lesson_first(shown, activity.skill_id) if activity.kind == "lesson" else None,
            )
        due = sorted(
            (
                DueReview(skill_id=s, name=names[s], retrievability=round(r, 4))
                for s, r in state.retrievability.items()
                if s in cur.targets and r < cfg.desired_retention
            ),
            key=lambda d: (d.retrievability, d.skill_id),
        )
        met = sum(1 for s in cur.role_targets if skill_met(cur, state, cfg, s, cur.targets[s]))
        answers = (
            session.scalar(select(func.count()).select_from(Response).where(Response.user_id == user.id)) or 0
        )
        return PathView(
            role_id=role.id,
            role_name=shown.roles[role.id].name,
            steps=[_step_view(s, names) for s in plan.steps],
            met=[_step_view(s, names) for s in plan.met],
            due_reviews=due,
            answers_to_go=round(plan.items, 1),
            minutes_to_go=round(plan.minutes, 1),
            answers_if_known=round(plan.items_if_known, 1),
            minutes_if_known=round(plan.minutes_if_known, 1),
            targets_met=met,
            targets_total=len(cur.role_targets),
            answers_so_far=answers,
            next=nxt,
        )


# -- fitting the organisation's memory parameters --------------------------------------------


class MemoryFit(BaseModel):
    org_id: int
    reviews: int
    fitted: bool
    parameters: list[float]
    answers_replayed: int


def fit_memory(ctx: AppContext, user: CurrentUser) -> MemoryFit:
    """Fit FSRS parameters to the organisation's review log and re-derive its cards.

    Needs the fsrs optimizer extra (torch, pandas); below one mini-batch of reviews the
    library keeps its defaults and nothing is stored.
    """
    from fsrs import ReviewLog

    user.require("manager", "instructor")
    with ctx.session() as session:
        active = ctx.active_pack(session, user.org_id)
        minutes = item_minutes(active.pack)
        answers = logged_answers(session, Response.org_id == user.org_id)
        card_ids: dict[tuple[int, str], int] = {}
        logs = []
        for answer in answers:
            card_id = card_ids.setdefault((answer.user_id, answer.item_id), len(card_ids) + 1)
            duration = answer.duration_ms / 1000 if answer.duration_ms is not None else None
            rating = rating_for_answer(
                answer.correct,
                minutes=minutes.get(answer.item_id, 1.0),
                duration_s=duration,
                hints_used=answer.hints_used,
            )
            logs.append(
                ReviewLog(
                    card_id=card_id,
                    rating=rating,
                    review_datetime=as_utc(answer.created_at),
                    review_duration=answer.duration_ms,
                )
            )
    try:
        fit = MemoryOptimizer().fit(logs)
    except OptimizerUnavailable as exc:
        raise LearnloopError(str(exc)) from None
    rebuilt = 0
    if fit.fitted_:
        with ctx.session() as session:
            session.add(
                ModelParams(
                    kind=memory_kind(user.org_id), params=dict(fit.params().to_dict()), n_responses=len(logs)
                )
            )
            session.flush()
            org_users = select(User.id).where(User.org_id == user.org_id)
            session.execute(delete(ReviewCard).where(ReviewCard.user_id.in_(org_users)))
            session.flush()
            for user_id in session.execute(org_users).scalars().all():
                rebuilt += sync_cards(session, user_id, user.org_id, active.pack)
    return MemoryFit(
        org_id=user.org_id,
        reviews=len(logs),
        fitted=fit.fitted_,
        parameters=list(fit.parameters_),
        answers_replayed=rebuilt,
    )


# -- the simulation benchmark from the command line ------------------------------------------


def simulate(
    pack_path: Path,
    *,
    learners: int,
    seed: int,
    roles: list[str] | None = None,
    policies: list[str] | None = None,
    target_shift: float = 0.0,
) -> list[dict[str, object]]:
    """Run the simulated-learner comparison of policies (``science/simulation.py``) on a pack,
    with every role target moved by ``target_shift`` logits."""
    from dataclasses import asdict

    from learnloop.content.loader import load_pack
    from learnloop.science.simulation import POLICIES, summarise
    from learnloop.science.simulation import simulate as run

    pack = load_pack(pack_path)
    chosen = policies or list(POLICIES)
    unknown = sorted(set(chosen) - set(POLICIES))
    if unknown:
        raise LearnloopError(f"unknown policies: {', '.join(unknown)} (choose from {', '.join(POLICIES)})")
    known_roles = {r.id for r in pack.roles}
    missing = sorted(set(roles or []) - known_roles)
    if missing:
        raise LearnloopError(
            f"unknown roles: {', '.join(missing)} (the pack has {', '.join(sorted(known_roles))})"
        )
    try:
        outcomes = run(
            pack, policies=chosen, learners=learners, seed=seed, roles=roles, target_shift=target_shift
        )
    except (GraphError, UnreachableTarget) as exc:
        raise LearnloopError(str(exc)) from None
    return [asdict(s) for s in summarise(outcomes)]


def due_reviews(ctx: AppContext, user: CurrentUser) -> list[DueReview]:
    """The learner's skills whose review is due, most forgotten first (empty without a role)."""
    return my_path(ctx, user).due_reviews


# -- the learner's home page ------------------------------------------------------------------


class RecentAnswer(BaseModel):
    item_id: str
    skill_id: str | None
    skill_name: str | None
    kind: str
    #: practice | check
    context: str
    correct: bool
    at: datetime


class LearnerHome(BaseModel):
    """What a learner sees first: the role and progress toward it, the reviews due, the next
    activity, and the latest answers (instructors' decisions applied to the grades)."""

    path: PathView
    recent: list[RecentAnswer]
    answers_today: int


def learner_home(ctx: AppContext, user: CurrentUser, recent: int = 5) -> LearnerHome:
    path = my_path(ctx, user)
    with ctx.session() as session:
        names = {s.id: s.name for s in ctx.active_pack(session).localized().pack.skills}
        rows = session.execute(
            with_decisions(
                select(
                    Response.item_id,
                    Response.skills,
                    Response.kind,
                    Response.context,
                    counted_correct(),
                    Response.created_at,
                ).where(Response.user_id == user.id)
            )
            .order_by(Response.id.desc())
            .limit(recent)
        ).all()
        start_of_day = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
        today = (
            session.scalar(
                select(func.count())
                .select_from(Response)
                .where(Response.user_id == user.id, Response.created_at >= start_of_day)
            )
            or 0
        )
    answers = []
    for item_id, skills, kind, context, correct, at in rows:
        skill_id = str(skills[0]) if skills else None
        answers.append(
            RecentAnswer(
                item_id=item_id,
                skill_id=skill_id,
                skill_name=names.get(skill_id) if skill_id else None,
                kind=kind,
                context=context,
                correct=bool(correct),
                at=as_utc(at),
            )
        )
    return LearnerHome(path=path, recent=answers, answers_today=today)
