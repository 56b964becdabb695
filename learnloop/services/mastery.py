"""Derived mastery: updated after every answer, and rebuilt from the response log on demand.

Both paths call :func:`apply_answer`, so a rebuild replays exactly what the live loop did.

The live model is the newest ``model_params`` row of kind ``kt`` (written by ``learnloop fit
kt``; rows of the older kind ``bkt`` are still read). It is either per-skill BKT or the
logistic model (``LogisticKT``).

One meaning per field. ``Mastery.p_known`` is P(skill known), the scale of the role targets,
under every model: per-skill BKT (Corbett & Anderson 1995) with the answered item's guess rate
(1/options for a choice item, small for numbers, free text and code) and the skill's fitted
slip and learning rate, each answer moving it by at most 0.25 (``science/evidence.py``), so a
wrong answer of any kind lowers it. ``Mastery.p_correct`` is the live model's P(correct) on
the skill's next (average) item: the logistic model's prediction where it traces the skill,
else BKT's; it chooses items, never decides "met". Skills without fitted parameters use the
population's defaults. Whether a role target is met also needs evidence
(:func:`skill_evidence`, :func:`target_gaps`).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm import Session, undefer
from sqlalchemy.orm.attributes import flag_modified

from learnloop.errors import InvalidInput, NotFound
from learnloop.i18n import _
from learnloop.science.evidence import (
    GAPS,
    EvidenceRule,
    SkillEvidence,
    gap_tests,
    item_guess,
    mastery_step,
    needs,
    target_gaps,
)
from learnloop.science.kt import BKTParams, LogisticKT, bkt_predict
from learnloop.science.kt.gbdt import GBDTKT  # lightgbm (the kt-gbdt extra) only to load one
from learnloop.services import learner_tally
from learnloop.services.review_cards import memory_kind, rebuild_cards
from learnloop.store.grades import counted_correct, with_decisions
from learnloop.store.models import (
    ContentPack,
    KTState,
    Mastery,
    MasteryHistory,
    Response,
    User,
    as_utc,
)
from learnloop.store.params_cache import ParamsCache, newest_heads

#: model_params kinds fitted across every organisation, before fits were per organisation
#: (``bkt``: before 0006): read for an organisation that has no fit of its own yet
SHARED_KINDS = ("kt", "bkt")


def kt_kind(org_id: int) -> str:
    """The ``model_params`` kind of an organisation's knowledge-tracing fit (``learnloop fit
    kt``): fitted on its own learners' answers only, read only for its learners."""
    return f"kt.org.{org_id}"


_STATE_CACHE = "learnloop.kt_states"  # Session.info key: (model row, user) -> KTState of this transaction


@dataclass(frozen=True)
class MasteryModel:
    """The live mastery model: per-skill BKT parameters (fitted by ``learnloop fit kt``, else
    defaults) and, when the fit chose it, the logistic model that drives mastery."""

    default: BKTParams
    per_skill: dict[str, BKTParams]
    #: the ``model_params`` row this model came from (None: defaults, nothing fitted yet)
    params_id: int | None = None
    #: the P(correct) model when the fit chose one: the logistic model or the trees on it
    tracer: LogisticKT | GBDTKT | None = None
    skill_codes: dict[str, int] = field(default_factory=dict)
    item_codes: dict[str, int] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return "logistic" if self.tracer is not None else "bkt"

    def params(self, skill_id: str) -> BKTParams:
        return self.per_skill.get(skill_id, self.default)

    def prior(self, skill_id: str) -> float:
        return self.params(skill_id).p_init

    def predict(self, skill_id: str, p_known: float) -> float:
        return bkt_predict(p_known, self.params(skill_id))

    def traces(self, skill_id: str) -> bool:
        """Whether the logistic model drives this skill (it saw the skill in training)."""
        return self.tracer is not None and skill_id in self.skill_codes

    def skill_code(self, skill_id: str) -> int:
        """The model's code of a skill; skills unseen in training get stable codes above the
        fitted ones (no skill-specific weights, their own counters)."""
        code = self.skill_codes.get(skill_id)
        if code is not None:
            return code
        return len(self.skill_codes) + zlib.crc32(skill_id.encode()) % 1_000_000_007

    def item_code(self, item_id: str | None) -> int | None:
        if item_id is None:
            return None
        code = self.item_codes.get(item_id)
        if code is not None:
            return code
        return len(self.item_codes) + zlib.crc32(item_id.encode()) % 1_000_000_007


#: (database, pack row) -> the table below; the database is part of the key because row ids
#: repeat across databases (a process may serve several, e.g. tests or a migration tool)
_GUESSES: dict[tuple[str, int], dict[str, tuple[str, float | None, str]]] = {}


def item_emissions(session: Session, pack_row: int | None = None) -> dict[str, tuple[str, float | None, str]]:
    """item id -> (kind, guess rate, variant family) for the active pack's items (cached per
    pack row; ``pack_row``: the active pack's row, when the caller has read it in this
    transaction). Items that left the pack are absent: their answers use the skill's guess rate."""
    if pack_row is None:
        row = session.execute(
            select(ContentPack.id).where(ContentPack.is_active.is_(True)).order_by(ContentPack.id.desc())
        ).first()
        if row is None:
            return {}
        pack_row = int(row[0])
    key = (str(session.get_bind().engine.url), pack_row)
    cached = _GUESSES.get(key)
    if cached is None:
        document = session.get(ContentPack, pack_row)
        items = (document.document or {}).get("items", []) if document is not None else []
        cached = {}
        for raw in items:
            options = raw.get("options")
            kind = str(raw.get("kind", ""))
            cached[str(raw.get("id"))] = (
                kind,
                item_guess(kind, len(options) if isinstance(options, dict) else None),
                str(raw.get("family") or raw.get("id")),
            )
        if len(_GUESSES) > 8:
            _GUESSES.clear()
        _GUESSES[key] = cached
    return cached


def _bkt_from_dict(params: dict[str, Any]) -> tuple[BKTParams, dict[str, BKTParams]]:
    return (
        BKTParams.from_dict(params.get("default", {})),
        {k: BKTParams.from_dict(v) for k, v in params.get("skills", {}).items()},
    )


_models: ParamsCache[MasteryModel] = ParamsCache()


def load_model(session: Session, org_id: int) -> MasteryModel:
    """The live mastery model of an organisation's learners: its newest own fit, else the newest
    fit shared by every organisation (written before fits were per organisation), else the
    defaults."""
    # the FSRS weights' row is read with it: the practice loop needs both (one statement)
    head = newest_heads(session, (kt_kind(org_id), *SHARED_KINDS), (memory_kind(org_id),))[0]
    if head is None:
        return MasteryModel(default=BKTParams(), per_skill={})
    kind, row_id = str(head.kind), int(head.id)
    return _models.get(session, row_id, head.fitted_at, lambda params: _parse(kind, row_id, params))


def org_of(session: Session, user_id: int) -> int:
    """The learner's organisation (whose model traces them)."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(_("No learner has the id %(user)d.") % {"user": user_id})
    return int(user.org_id)


def _models_of(
    session: Session, user_ids: Iterable[int] | None, org_id: int | None = None
) -> dict[int, MasteryModel]:
    """user id -> their organisation's live model (one load per organisation), for ``user_ids``
    (at least: any user id in their range may be in the result), else every learner of
    ``org_id``, else everyone."""
    query = select(User.id, User.org_id)
    if org_id is not None:
        query = query.where(User.org_id == org_id)
    if user_ids is not None:
        wanted = sorted(set(user_ids))
        if not wanted:
            return {}
        query = query.where(User.id.between(wanted[0], wanted[-1]))
    per_org: dict[int, MasteryModel] = {}
    out: dict[int, MasteryModel] = {}
    for uid, org_id in session.execute(query):
        model = per_org.get(org_id)
        if model is None:
            model = per_org[org_id] = load_model(session, int(org_id))
        out[int(uid)] = model
    return out


def _parse(kind: str, row_id: int, params: dict[str, Any]) -> MasteryModel:
    if kind == "bkt":
        default, per_skill = _bkt_from_dict(params)
        return MasteryModel(default=default, per_skill=per_skill, params_id=row_id)
    default, per_skill = _bkt_from_dict(params.get("bkt", {}))
    tracer: LogisticKT | GBDTKT | None = None
    if params.get("model") == "logistic" and params.get("params"):
        tracer = LogisticKT.from_dict(params["params"])
    elif params.get("model") == "gbdt" and params.get("params"):
        tracer = GBDTKT.from_dict(params["params"])
    return MasteryModel(
        default=default,
        per_skill=per_skill,
        params_id=row_id,
        tracer=tracer,
        skill_codes={s: k for k, s in enumerate(params.get("skills", []))},
        item_codes={i: k for k, i in enumerate(params.get("items", []))},
    )


def mastery_of(session: Session, user_id: int, *, with_evidence: bool = False) -> dict[str, Mastery]:
    """The learner's mastery rows by skill; ``with_evidence``: their evidence column read with
    them (an answer folds into it), not one read per row later."""
    query = select(Mastery).where(Mastery.user_id == user_id)
    if with_evidence:
        query = query.options(undefer(Mastery.evidence))
    return {m.skill_id: m for m in session.execute(query).scalars()}


def _finite(value: float, fallback: float) -> float:
    return value if math.isfinite(value) else fallback


def _fold(
    model: MasteryModel,
    state: dict[str, Any],
    skills: list[str],
    item_id: str | None,
    correct: bool,
    at: datetime,
) -> None:
    """One answer into the logistic state, all its skills at once (as the fitted log groups
    an answer's rows: none of them reads another)."""
    assert model.tracer is not None
    timestamp = as_utc(at).timestamp() if model.tracer.with_windows_ else None
    item = model.item_code(item_id)
    codes = [model.skill_code(skill_id) for skill_id in skills]
    if codes:
        model.tracer.update_answer(state, codes, int(correct), item, timestamp)


def _state_row(session: Session, model: MasteryModel, user_id: int, response_id: int) -> KTState:
    """This learner's logistic state before ``response_id``: from this transaction's cache, the
    store, or (no row, or one kept under another model) replayed from their earlier answers."""
    assert model.tracer is not None and model.params_id is not None
    cache: dict[tuple[int, int], KTState] = session.info.setdefault(_STATE_CACHE, {})
    row = cache.get((model.params_id, user_id))
    if row is None:
        row = session.get(KTState, user_id)
        if row is None or row.model_params_id != model.params_id or row.last_response_id >= response_id:
            state = model.tracer.initial_state()
            last = 0
            for rid, item_id, skills, correct, created_at in session.execute(
                with_decisions(
                    select(
                        Response.id, Response.item_id, Response.skills, counted_correct(), Response.created_at
                    )
                )
                .where(Response.user_id == user_id, Response.id < response_id)
                .order_by(Response.id)
            ):
                _fold(model, state, list(skills), item_id, bool(correct), created_at)
                last = rid
            if row is None:
                row = KTState(
                    user_id=user_id, model_params_id=model.params_id, state=state, last_response_id=last
                )
                session.add(row)
            else:
                row.model_params_id, row.state, row.last_response_id = model.params_id, state, last
        cache[(model.params_id, user_id)] = row
    return row


def _store_predictions(model: MasteryModel, row: KTState) -> list[float]:
    """Every traced skill's P(correct) from ``row.state`` (as of its last answer), kept on the row."""
    assert model.tracer is not None
    p = [float(x) for x in model.tracer.predict_all(row.state)]
    row.predictions = {"for": row.last_response_id, "p": p}
    return p


def _stored_predictions(session: Session, model: MasteryModel, user_id: int) -> list[float] | None:
    """The learner's predictions under ``model``: this transaction's state, else the stored
    predictions (a small column; the state is decoded only when they are missing or stale)."""
    assert model.tracer is not None and model.params_id is not None
    cache: dict[tuple[int, int], KTState] = session.info.get(_STATE_CACHE, {})
    row = cache.get((model.params_id, user_id))
    if row is None:
        found = session.execute(
            select(KTState.model_params_id, KTState.last_response_id, KTState.predictions).where(
                KTState.user_id == user_id
            )
        ).first()
        if found is None or found[0] != model.params_id:
            return None
        stored = found[2]
        if stored and stored.get("for") == found[1]:
            return [float(x) for x in stored["p"]]
        row = session.get(KTState, user_id)
        if row is None:
            return None
    fresh = row.predictions
    if fresh and fresh.get("for") == row.last_response_id:
        return [float(x) for x in fresh["p"]]
    return _store_predictions(model, row)


def apply_answer(
    session: Session,
    model: MasteryModel,
    rows: dict[str, Mastery],
    *,
    user_id: int,
    skills: list[str],
    correct: bool,
    response_id: int,
    at: datetime,
    item_id: str | None = None,
    kind: str | None = None,
    store_predictions: bool = True,
    tally: bool = True,
    pack_row: int | None = None,
) -> dict[str, tuple[float, float]]:
    """Update mastery rows (in ``rows`` and the session) for one answer.

    ``correct`` must be right or wrong (1/0, True/False): anything else is ``InvalidInput``
    and nothing is written. ``item_id`` and ``kind`` default to the logged response's; ``at``
    is the answer's time (the response's ``created_at``). Each answered skill's evidence
    (``Mastery.evidence``, what a target needs besides P(known)) is folded in. P(known) takes
    the bounded BKT step with the item's guess rate (the module docstring). Under the
    logistic model the learner's state is loaded (or replayed from their earlier answers),
    advanced by this answer and written back, and the answered skills get the model's
    P(correct); every other case (BKT, a skill unseen in
    training, a non-finite prediction) takes the BKT prediction. Only the answered skills' rows change (``predicted_success`` gives every skill's
    current prediction without writing). Returns skill -> (before, after). ``pack_row``: the
    active pack's row, when the caller has read it in this transaction.
    """
    if correct not in (0, 1):
        raise InvalidInput(
            _("An answer is right (1) or wrong (0); got %(value)s.") % {"value": repr(correct)}
        )
    correct = bool(correct)
    if item_id is None:
        response = session.get(Response, response_id)
        item_id = response.item_id if response is not None else None
    emission = item_emissions(session, pack_row).get(item_id or "")
    guess = emission[1] if emission is not None else None
    if kind is None:
        if emission is not None:
            kind = emission[0]
        else:
            response = session.get(Response, response_id)
            kind = str(response.kind) if response is not None else ""
    # an item that left the pack: its kind's guess rate, and it counts as its own family
    ev_guess, family = (
        (emission[1], emission[2]) if emission is not None else (item_guess(kind), item_id or "")
    )
    moment = as_utc(at).timestamp()
    state: dict[str, Any] | None = None
    if model.tracer is not None:
        state_row = _state_row(session, model, user_id, response_id)
        state = state_row.state
        _fold(model, state, skills, item_id, correct, at)
        flag_modified(state_row, "state")
        state_row.last_response_id = response_id
        state_row.updated_at = at
        if store_predictions:  # a replay of the whole log stores them once per learner, at the end
            _store_predictions(model, state_row)
    changes: dict[str, tuple[float, float]] = {}
    for skill_id in skills:
        params = model.params(skill_id)
        row = rows.get(skill_id)
        if row is None:
            row = Mastery(
                user_id=user_id,
                skill_id=skill_id,
                p_known=model.prior(skill_id),
                attempts=0,
                correct=0,
                last_response_id=0,
            )
            session.add(row)
            rows[skill_id] = row
        before = row.p_known
        evidence = _row_evidence(session, row, response_id).fold(
            family=family, kind=kind, correct=correct, params=params, guess=ev_guess, at=moment
        )
        keep_evidence(row, evidence)
        p_known = _finite(mastery_step(before, correct, params, guess), params.p_init)
        p_correct = bkt_predict(p_known, params)
        if state is not None and model.tracer is not None and model.traces(skill_id):
            p_correct = _finite(model.tracer.predict_next(state, model.skill_codes[skill_id]), p_correct)
        row.p_known = p_known
        row.p_correct = p_correct
        row.attempts += 1
        row.correct += int(correct)
        row.last_response_id = response_id
        row.updated_at = at
        session.add(
            MasteryHistory(
                user_id=user_id,
                skill_id=skill_id,
                response_id=response_id,
                p_known=row.p_known,
                created_at=at,
            )
        )
        changes[skill_id] = (before, row.p_known)
    if tally:  # a replay of the log counts the tallies once, at the end
        learner_tally.count_answer(session, response_id, correct)
    return changes


def predicted_success(
    session: Session,
    model: MasteryModel,
    user_id: int,
    skill_ids: Iterable[str],
    known: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """P(correct) on each skill's next (average) item, now.

    Under the logistic model this reads the predictions stored with the learner's state when
    their last answer was folded in, so it follows every answer on any skill (cross-skill
    transfer, recency), where ``Mastery.p_correct`` changes only when its skill is answered;
    reading them costs one small column (the state is decoded, and the predictions stored,
    only when they are missing or older than the state). Skills the model
    did not see in training, learners without a state under this model, and BKT use the BKT
    prediction from the stored P(known) or the prior. ``known``: the learner's stored P(known)
    per skill, when the caller has read it already.
    """
    if known is None:
        known = {m.skill_id: m.p_known for m in mastery_of(session, user_id).values()}
    traced: list[float] | None = None
    if model.tracer is not None and model.params_id is not None:
        traced = _stored_predictions(session, model, user_id)
        if traced is None and not known:  # no answers yet: the population's first attempt
            traced = [float(x) for x in model.tracer.predict_all(model.tracer.initial_state())]
    out: dict[str, float] = {}
    for skill_id in skill_ids:
        params = model.params(skill_id)
        p_known = known.get(skill_id, params.p_init)
        fallback = bkt_predict(p_known, params)
        code = model.skill_codes.get(skill_id, -1)
        if traced is not None and model.traces(skill_id) and 0 <= code < len(traced):
            out[skill_id] = _finite(traced[code], fallback)
        else:
            out[skill_id] = fallback
    return out


def _log_query(*first: Any) -> Any:
    """The answer log as mastery folds it, with the instructors' decisions applied: ``first``
    columns, then user, item, skills, kind, counted right, time."""
    return with_decisions(
        select(
            *first,
            Response.user_id,
            Response.item_id,
            Response.skills,
            Response.kind,
            counted_correct(),
            Response.created_at,
        )
    )


def rebuild_all(session: Session, user_id: int | None = None, org_id: int | None = None) -> int:
    """Drop derived mastery and replay the response log (one learner's, one organisation's, or
    everyone's), each learner under their organisation's model, with the instructors'
    decisions applied; returns answers replayed."""
    models = _models_of(session, None if user_id is None else [user_id], org_id)
    for table in (MasteryHistory, Mastery, KTState):
        wipe = delete(table)
        if user_id is not None:
            wipe = wipe.where(table.user_id == user_id)
        elif org_id is not None:
            wipe = wipe.where(table.user_id.in_(select(User.id).where(User.org_id == org_id)))
        session.execute(wipe)
    session.info.pop(_STATE_CACHE, None)
    session.flush()
    per_user: dict[int, dict[str, Mastery]] = {}
    cache: dict[tuple[int, int], KTState] = session.info.setdefault(_STATE_CACHE, {})
    count = 0
    query = _log_query(Response.id)
    if user_id is not None:
        query = query.where(Response.user_id == user_id)
    elif org_id is not None:
        query = query.where(Response.org_id == org_id)
    for rid, uid, item_id, skills, kind, correct, created_at in session.execute(
        query.order_by(Response.id)
    ).yield_per(5000):
        model = models[uid]
        rows = per_user.get(uid)
        if rows is None:
            rows = per_user[uid] = {}
            if model.tracer is not None and model.params_id is not None:
                # The replay starts every learner from the beginning: no earlier answers to read.
                fresh = KTState(
                    user_id=uid,
                    model_params_id=model.params_id,
                    state=model.tracer.initial_state(),
                    last_response_id=0,
                )
                session.add(fresh)
                cache[(model.params_id, uid)] = fresh
        apply_answer(
            session,
            model,
            rows,
            user_id=uid,
            skills=list(skills),
            correct=bool(correct),
            response_id=rid,
            at=created_at,
            item_id=item_id,
            kind=str(kind),
            store_predictions=False,
            tally=False,
        )
        count += 1
        if count % 5000 == 0:
            session.flush()
    for (_params_id, uid), row in cache.items():
        _store_predictions(models[uid], row)
    session.flush()
    learner_tally.rebuild(session, user_id, org_id)
    if org_id is None:  # review cards come from the log alone, not from any model
        rebuild_cards(session, user_id)
    return count


def snapshot(session: Session) -> dict[tuple[int, str], tuple[Any, ...]]:
    """Mastery state (with its evidence) as comparable tuples, for checking a rebuild equals
    the live state. Rows stored before their evidence was (0034) count with the log's fold."""
    rows = session.execute(select(Mastery)).scalars().all()
    legacy: dict[int, set[str]] = {}
    for m in rows:
        if m.attempts and m.ev_items == 0 and m.ev_cusum == 0 and SkillEvidence.from_json(m.evidence) is None:
            legacy.setdefault(m.user_id, set()).add(m.skill_id)
    folded = {
        key: ev for uid, skills in legacy.items() for key, ev in _fold_log(session, [uid], skills).items()
    }

    def summary(m: Mastery) -> tuple[int, bool, float, float | None]:
        ev = folded.get((m.user_id, m.skill_id))
        if ev is not None:
            return ev.n_items, ev.open_right, ev.cusum, ev.last_right_at
        return m.ev_items, bool(m.ev_open), m.ev_cusum, m.ev_last_right

    out: dict[tuple[int, str], tuple[Any, ...]] = {}
    for m in rows:
        items, open_right, cusum, last_right = summary(m)
        out[(m.user_id, m.skill_id)] = (
            round(m.p_known, 12),
            m.attempts,
            m.correct,
            m.last_response_id,
            None if m.p_correct is None else round(m.p_correct, 12),
            items,
            open_right,
            round(cusum, 9),
            None if last_right is None else round(last_right, 3),
        )
    return out


def backfill_evidence(session: Session, user_ids: Sequence[int] | None = None) -> int:
    """Store the evidence of mastery rows written before it was stored (0034), folded from the
    log (``learnloop rebuild --evidence``: cheaper than a whole rebuild for a large log).
    Returns the rows filled."""
    query = select(Mastery.user_id, Mastery.skill_id).where(Mastery.evidence.is_(None), Mastery.attempts > 0)
    if user_ids is not None:
        query = query.where(Mastery.user_id.in_(list(user_ids)))
    todo: dict[int, set[str]] = {}
    for uid, skill_id in session.execute(query):
        todo.setdefault(uid, set()).add(skill_id)
    users = sorted(todo)
    filled = 0
    for start in range(0, len(users), _CHUNK):
        chunk = users[start : start + _CHUNK]
        wanted = set().union(*(todo[u] for u in chunk))
        folded = _fold_log(session, chunk, wanted)
        updates = [
            {
                "u": uid,
                "s": skill_id,
                "evidence": ev.to_json(),
                "ev_items": ev.n_items,
                "ev_open": ev.open_right,
                "ev_cusum": ev.cusum,
                "ev_last_right": ev.last_right_at,
            }
            for (uid, skill_id), ev in folded.items()
            if skill_id in todo[uid]
        ]
        if updates:
            session.connection().execute(
                update(Mastery)
                .where(Mastery.user_id == bindparam("u"), Mastery.skill_id == bindparam("s"))
                .values(
                    evidence=bindparam("evidence"),
                    ev_items=bindparam("ev_items"),
                    ev_open=bindparam("ev_open"),
                    ev_cusum=bindparam("ev_cusum"),
                    ev_last_right=bindparam("ev_last_right"),
                ),
                updates,
            )
        filled += len(updates)
    return filled


def keep_evidence(row: Mastery, evidence: SkillEvidence) -> None:
    """Store a skill's evidence on its mastery row: the fold and the summary a target check
    reads."""
    row.evidence = evidence.to_json()
    row.ev_items = evidence.n_items
    row.ev_open = evidence.open_right
    row.ev_cusum = evidence.cusum
    row.ev_last_right = evidence.last_right_at


def _row_evidence(session: Session, row: Mastery, response_id: int) -> SkillEvidence:
    """The evidence stored on ``row``; a row written before it was stored (or in an older form)
    is folded from the learner's answers before ``response_id``."""
    if row.attempts == 0:
        return SkillEvidence()
    stored = SkillEvidence.from_json(row.evidence)
    if stored is not None:
        return stored
    folded = _fold_log(session, [row.user_id], {row.skill_id}, before_id=response_id)
    return folded.get((row.user_id, row.skill_id), SkillEvidence())


def _fold_log(
    session: Session,
    user_ids: Sequence[int],
    skills: set[str] | None,
    *,
    before_id: int | None = None,
    moments: Sequence[float] = (),
    on_moment: Any = None,
) -> dict[tuple[int, str], SkillEvidence]:
    """Evidence folded from the answer log with the instructors' decisions applied (what
    :func:`apply_answer` stores, answer by answer): for rows stored before 0034 and for past
    moments. With ``moments`` (ascending POSIX seconds) the log is read once in time order and
    ``on_moment(moment, folded)`` sees the evidence of the answers given before each."""
    models = _models_of(session, user_ids)
    emissions = item_emissions(session)
    folded: dict[tuple[int, str], SkillEvidence] = {}
    columns = _log_query()
    if moments:  # one time-ordered read over everyone, by id range (no bind-parameter limit)
        wanted_users = set(user_ids)
        queries = [
            columns.where(Response.user_id.between(min(user_ids), max(user_ids))).order_by(
                Response.created_at, Response.id
            )
        ]
    else:
        wanted_users = None
        queries = [
            columns.where(Response.user_id.in_(user_ids[start : start + _CHUNK])).order_by(Response.id)
            for start in range(0, len(user_ids), _CHUNK)
        ]
    pending = list(moments)
    for query in queries:
        if before_id is not None:
            query = query.where(Response.id < before_id)
        for uid, item_id, skill_list, kind, correct, created_at in session.execute(query).yield_per(5000):
            if wanted_users is not None and uid not in wanted_users:
                continue
            at = as_utc(created_at).timestamp()
            while pending and at >= pending[0]:
                on_moment(pending.pop(0), folded)
            _kind, guess, family = emissions.get(item_id, (kind, item_guess(str(kind)), item_id))
            for skill_id in skill_list or ():
                if skills is not None and skill_id not in skills:
                    continue
                key = (uid, skill_id)
                folded[key] = (folded.get(key) or SkillEvidence()).fold(
                    family=family,
                    kind=str(kind),
                    correct=bool(correct),
                    params=models[uid].params(skill_id),
                    guess=guess,
                    at=at,
                )
    for moment in pending:
        on_moment(moment, folded)
    return folded


#: learners per query when reading many (keeps every driver under its bind-parameter limit)
_CHUNK = 5000


def skill_evidence(
    session: Session, user_id: int, skills: Iterable[str] | None = None
) -> dict[str, SkillEvidence]:
    """What backs the learner's mastery of each skill (``science/evidence.py``): distinct
    items (variant families once) and kinds answered right, evidence against guessing, the
    newest right answer. Read from the mastery rows, where each answer folds it in."""
    wanted = set(skills) if skills is not None else None
    stored = session.execute(
        select(Mastery.skill_id, Mastery.evidence, Mastery.attempts).where(Mastery.user_id == user_id)
    ).all()
    return evidence_of_rows(session, user_id, [row for row in stored if wanted is None or row[0] in wanted])


def evidence_of_rows(
    session: Session, user_id: int, rows: Iterable[tuple[str, Any, int]]
) -> dict[str, SkillEvidence]:
    """:func:`skill_evidence` from the learner's mastery rows as (skill, evidence column,
    attempts), when the caller read them with other columns."""
    out: dict[str, SkillEvidence] = {}
    legacy: set[str] = set()
    for skill_id, stored, attempts in rows:
        if not attempts:
            continue
        evidence = SkillEvidence.from_json(stored)
        if evidence is None:
            legacy.add(skill_id)
        else:
            out[skill_id] = evidence
    if legacy:
        out.update({s: e for (_u, s), e in _fold_log(session, [user_id], legacy).items()})
    return out


def evidence_rule(settings: Any) -> EvidenceRule:
    """The evidence a role target needs, from the settings."""
    return EvidenceRule(
        min_items=settings.target_min_items,
        need_open_kind=settings.target_needs_open_kind,
        max_age_days=settings.target_max_age_days,
        threshold=settings.target_evidence_nats,
    )


def target_gaps_for(
    items: Iterable[Any],
    p_known: float,
    target: float,
    evidence: SkillEvidence | None,
    rule: EvidenceRule,
    now: float | None,
) -> list[str]:
    """Why a role target is not met (empty: met), against the skill's enabled items (the
    kinds it has; its distinct items, variant families once)."""
    kinds, families = _bank(items)
    return target_gaps(p_known, target, evidence, rule, kinds, now, families)


def _bank(items: Iterable[Any]) -> tuple[set[str], int]:
    """A skill's enabled items as a target sees them: their kinds, and how many distinct items
    (variant families once)."""
    bank = list(items)
    return {str(i.kind) for i in bank}, len({str(getattr(i, "family", None) or i.id) for i in bank})


def targets_met(
    session: Session,
    settings: Any,
    items_by_skill: Mapping[str, Iterable[Any]],
    user_id: int,
    targets: Mapping[str, float],
    at: datetime,
    *,
    rows: Mapping[str, Mastery] | None = None,
) -> dict[str, float]:
    """Of ``targets`` (skill -> the mastery its target needs), those the learner meets at
    ``at``: mastery at the target and the evidence the rule asks for (:func:`target_gaps_for`).
    Returns P(known) of each met skill. The one test behind "target met" and "role ready" in
    xAPI statements, webhooks and credentials. ``rows``: the learner's mastery rows, when the
    caller holds them (read in this transaction and updated there)."""
    if rows is None:
        rows = mastery_of(session, user_id)
    reached = {s: t for s, t in targets.items() if s in rows and rows[s].p_known >= t}
    if not reached:
        return {}
    evidence = skill_evidence(session, user_id, list(reached))
    rule = evidence_rule(settings)
    moment = as_utc(at).timestamp()
    return {
        s: rows[s].p_known
        for s, t in reached.items()
        if not target_gaps_for(items_by_skill.get(s, ()), rows[s].p_known, t, evidence.get(s), rule, moment)
    }


def evidence_matrix(
    session: Session,
    user_ids: list[int],
    skill_ids: list[str],
    items_by_skill: Mapping[str, Iterable[Any]],
    rule: EvidenceRule,
    matrix: Any,
    targets: Any,
    now: float,
    stored: tuple[Any, Any, Any, Any, dict[int, set[str]]] | None = None,
) -> Any:
    """people x skills: whether each targeted skill's mastery (``matrix``) meets its target
    (``targets``, NaN where none) with enough evidence (the rule of :func:`target_gaps_for`),
    now. Reads the evidence summary stored on the mastery rows: no answer is read (rows stored
    before 0034 excepted). Cells without a target are True. ``stored``: that summary (items,
    open kind right, CUSUM, newest right: people x skills) and the skills of rows stored before
    0034 by learner, when the caller read them with the matrix (``reports.team_mastery``)."""
    import numpy as np

    shape = (len(user_ids), len(skill_ids))
    items, right, cusum = np.zeros(shape), np.zeros(shape, dtype=bool), np.zeros(shape)
    last = np.full(shape, np.nan)
    if not user_ids or not skill_ids:
        return np.ones(shape, dtype=bool)
    row = {u: i for i, u in enumerate(user_ids)}
    col = {s: j for j, s in enumerate(skill_ids)}
    legacy: dict[int, set[str]] = {}
    if stored is not None:
        items, right, cusum, last, legacy = stored
    for start in range(0, len(user_ids) if stored is None else 0, _CHUNK):
        for uid, skill_id, n, open_right, total, last_right, stale_form in session.execute(
            select(
                Mastery.user_id,
                Mastery.skill_id,
                Mastery.ev_items,
                Mastery.ev_open,
                Mastery.ev_cusum,
                Mastery.ev_last_right,
                (Mastery.evidence.is_(None)) & (Mastery.attempts > 0),
            ).where(Mastery.user_id.in_(user_ids[start : start + _CHUNK]))
        ):
            j = col.get(skill_id)
            if j is None:
                continue
            if stale_form:
                legacy.setdefault(uid, set()).add(skill_id)
                continue
            i = row[uid]
            items[i, j], right[i, j], cusum[i, j] = n, bool(open_right), total
            if last_right is not None:
                last[i, j] = last_right
    if legacy:  # rows stored before 0034: one read of those learners' answers
        wanted = set().union(*legacy.values())
        for (uid, skill_id), ev in _fold_log(session, sorted(legacy), wanted).items():
            if skill_id in legacy[uid]:
                _put((items, right, cusum, last), row[uid], col[skill_id], ev)
    return _judge(skill_ids, items_by_skill, rule, matrix, targets, now, items, right, cusum, last)


def evidence_matrices(
    session: Session,
    user_ids: list[int],
    skill_ids: list[str],
    items_by_skill: Mapping[str, Iterable[Any]],
    rule: EvidenceRule,
    moments: Sequence[tuple[float, Any]],
    targets: Any,
) -> list[Any]:
    """:func:`evidence_matrix` at past moments (ascending POSIX seconds, each with the mastery
    matrix of that moment), from the answers given before each: one read of the log, folded
    in time order, as the weekly trend snapshots need (a job, once a week)."""
    import numpy as np

    shape = (len(user_ids), len(skill_ids))
    if not user_ids or not skill_ids:
        return [np.ones(shape, dtype=bool) for _ in moments]
    row = {u: i for i, u in enumerate(user_ids)}
    col = {s: j for j, s in enumerate(skill_ids)}
    mastery_at = dict(moments)
    out: list[Any] = []

    def judge(moment: float, folded: dict[tuple[int, str], SkillEvidence]) -> None:
        items, right, cusum = np.zeros(shape), np.zeros(shape, dtype=bool), np.zeros(shape)
        last = np.full(shape, np.nan)
        for (uid, skill_id), ev in folded.items():
            _put((items, right, cusum, last), row[uid], col[skill_id], ev)
        matrix = mastery_at[moment]
        out.append(
            _judge(skill_ids, items_by_skill, rule, matrix, targets, moment, items, right, cusum, last)
        )

    _fold_log(session, user_ids, set(skill_ids), moments=[m for m, _ in moments], on_moment=judge)
    return out


def _put(arrays: tuple[Any, Any, Any, Any], i: int, j: int, ev: SkillEvidence) -> None:
    """One cell of the team's evidence arrays (items, open kind right, CUSUM, newest right)."""
    items, right, cusum, last = arrays
    items[i, j], right[i, j], cusum[i, j] = ev.n_items, ev.open_right, ev.cusum
    last[i, j] = math.nan if ev.last_right_at is None else ev.last_right_at


def _judge(
    skill_ids: list[str],
    items_by_skill: Mapping[str, Iterable[Any]],
    rule: EvidenceRule,
    matrix: Any,
    targets: Any,
    now: float,
    items: Any,
    right: Any,
    cusum: Any,
    last: Any,
) -> Any:
    """people x skills: met (or no target), by the rule's :func:`gap_tests` on whole arrays."""
    import numpy as np

    need_items = np.zeros(len(skill_ids))
    needs_open = np.zeros(len(skill_ids), dtype=bool)
    for j, skill_id in enumerate(skill_ids):
        need_items[j], needs_open[j] = needs(rule, *_bank(items_by_skill.get(skill_id, ())))
    targets = np.asarray(targets, dtype=float)
    with np.errstate(invalid="ignore"):
        tests = gap_tests(
            np.asarray(matrix, dtype=float),
            targets,
            items,
            right,
            cusum,
            last,
            need_items=need_items[None, :],
            needs_open=needs_open[None, :],
            rule=rule,
            now=now,
        )
    gaps = np.zeros(items.shape, dtype=bool)
    for gap in GAPS:
        gaps |= np.asarray(tests[gap], dtype=bool)
    return np.isnan(targets) | ~gaps
