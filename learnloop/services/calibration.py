"""Calibrating the item bank from the response log (``learnloop fit irt``)."""

from __future__ import annotations

import hashlib
import math
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from pydantic import BaseModel
from sqlalchemy import select

from learnloop.errors import InvalidInput, LearnloopError, NotFound
from learnloop.i18n import _
from learnloop.science.irt import IRTModel
from learnloop.services.context import AppContext
from learnloop.store.grades import counted_correct, with_decisions
from learnloop.store.models import ModelParams, Organisation, Response, as_utc

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from learnloop.science.kt.base import ResponseLog
    from learnloop.science.kt.bkt import BKT, EStepFactory
    from learnloop.science.kt.gbdt import GBDTKT
    from learnloop.science.kt.logistic import LogisticKT

#: An item keeps its authored difficulty until this many learners have answered it.
MIN_ITEM_RESPONSES = 30


def irt_kind(org_id: int) -> str:
    """The ``model_params`` kind of an organisation's IRT calibration: the pack's items are
    shared, their fitted parameters are not (as ``review_cards.memory_kind`` for FSRS)."""
    return f"irt.org.{org_id}"


class CalibrationSummary(BaseModel):
    org_id: int
    model: str
    learners: int
    responses: int
    calibrated_items: int
    authored_items: int
    log_likelihood: float
    converged: bool
    warnings: list[str]


def fit_irt(
    ctx: AppContext,
    org_id: int,
    model: str = "2pl",
    min_responses: int = MIN_ITEM_RESPONSES,
    *,
    dask: str | None = None,
    partitions: int = 8,
) -> CalibrationSummary:
    """Fit an IRT model on the first answer of each of the organisation's learners to each
    choice/numeric item of its active pack, and store it as the organisation's calibration
    (``irt_kind``): no other organisation's answers enter it, and only its skill checks and item
    report read it. An item keeps its authored parameters until ``min_responses`` of the
    organisation's learners have answered it.

    ``dask``: a Dask scheduler's address (or ``local``): the EM's expected counts are computed
    on the cluster, ``partitions`` blocks of learners (``services/dist_fit.py``)."""
    if model not in ("1pl", "2pl", "3pl"):
        raise InvalidInput(_("The IRT model must be 1pl, 2pl or 3pl, not %(model)s.") % {"model": model})
    with ctx.session() as session:
        if session.get(Organisation, org_id) is None:
            raise NotFound(_("No organisation has the id %(org)d.") % {"org": org_id})
        active = ctx.active_pack(session, org_id)
        scorable = {i.id for i in active.pack.items if i.kind in ("choice", "numeric")}
        first: dict[tuple[int, str], bool] = {}
        for user_id, item_id, correct in session.execute(
            select(Response.user_id, Response.item_id, Response.correct)
            .where(Response.org_id == org_id)
            .order_by(Response.id)
        ):
            if item_id in scorable:
                first.setdefault((user_id, item_id), bool(correct))
    users = sorted({u for u, _ in first})
    items = sorted({i for _, i in first})
    if not users or not items:
        raise LearnloopError(
            _("The response log of organisation %(org)d has no answers to choice or numeric items yet.")
            % {"org": org_id}
        )
    row_of = {u: k for k, u in enumerate(users)}
    col_of = {i: k for k, i in enumerate(items)}
    matrix = np.full((len(users), len(items)), np.nan)
    for (user_id, item_id), correct in first.items():
        matrix[row_of[user_id], col_of[item_id]] = float(correct)
    if dask:
        from learnloop.services import dist_fit

        with dist_fit.cluster(dask) as client:
            fitted = dist_fit.fit_irt(client, dist_fit.row_blocks(matrix, partitions), model)
    else:
        fitted = IRTModel(model=model).fit(matrix)  # type: ignore[arg-type]
    counts = np.sum(~np.isnan(matrix), axis=0)
    params = {
        item_id: {
            "a": round(float(fitted.a_[k]), 4),
            "b": round(float(fitted.b_[k]), 4),
            "c": round(float(fitted.c_[k]), 4),
            "n": int(counts[k]),
        }
        for item_id, k in col_of.items()
        if counts[k] >= min_responses
    }
    with ctx.session() as session:
        session.add(
            ModelParams(
                kind=irt_kind(org_id),
                n_responses=len(first),
                params={"model": model, "items": params, "warnings": fitted.warnings_},
            )
        )
    return CalibrationSummary(
        org_id=org_id,
        model=model,
        learners=len(users),
        responses=len(first),
        calibrated_items=len(params),
        authored_items=len(scorable) - len(params),
        log_likelihood=round(float(fitted.log_likelihood_), 3),
        converged=bool(fitted.converged_),
        warnings=list(fitted.warnings_),
    )


#: what a per-organisation fit returns
S = TypeVar("S")


class OrgCalibration(BaseModel):
    org_id: int
    org_name: str
    #: None where nothing was fitted: ``skipped`` says why
    summary: CalibrationSummary | None = None
    skipped: str | None = None


def fit_irt_each(
    ctx: AppContext,
    model: str = "2pl",
    min_responses: int = MIN_ITEM_RESPONSES,
    *,
    dask: str | None = None,
    partitions: int = 8,
) -> list[OrgCalibration]:
    """``fit_irt`` for every organisation in turn, each on its own answers (``learnloop fit irt``
    without ``--org``, and the scheduled job). An organisation without answers to fit is skipped
    with the reason; a bad ``model`` stops before any fit."""
    if model not in ("1pl", "2pl", "3pl"):
        raise InvalidInput(_("The IRT model must be 1pl, 2pl or 3pl, not %(model)s.") % {"model": model})
    return [
        OrgCalibration(org_id=org_id, org_name=name, summary=summary, skipped=skipped)
        for org_id, name, summary, skipped in each_org(
            ctx, lambda org_id: fit_irt(ctx, org_id, model, min_responses, dask=dask, partitions=partitions)
        )
    ]


def each_org(ctx: AppContext, fit: Callable[[int], S]) -> list[tuple[int, str, S | None, str | None]]:
    """``fit`` for every organisation in turn: (id, name, its result, None), or (id, name,
    None, why) where it raised a clear error (e.g. no answers to fit yet)."""
    with ctx.session() as session:
        orgs = [
            (int(i), str(n))
            for i, n in session.execute(select(Organisation.id, Organisation.name).order_by(Organisation.id))
        ]
    out: list[tuple[int, str, S | None, str | None]] = []
    for org_id, name in orgs:
        try:
            out.append((org_id, name, fit(org_id), None))
        except LearnloopError as exc:
            out.append((org_id, name, None, exc.message))
    return out


#: ``learnloop fit kt --model auto`` keeps BKT on logs smaller than this: the held-out AUC of a
#: few learners is too noisy to choose by.
MIN_SELECTION_ANSWERS = 200
MIN_SELECTION_LEARNERS = 10
#: a skill keeps its own fitted BKT parameters (learning rate, slip, prior) only with this many
#: answers from this many learners; below it the skill uses the population's (fitted when the
#: whole log is this large, else the defaults that ``bench/validity.py`` checks)
MIN_SKILL_ANSWERS = 100
MIN_SKILL_LEARNERS = 10
#: share of learners held out to choose the model
HELD_OUT_SHARE = 0.2
SELECTION_PROTOCOL = (
    "held-out learners (the last 20% by SHA-256 of their id); each of their answers "
    "scored once (a multi-skill answer by its first skill) and predicted from their earlier "
    "answers by models fitted on the other learners; AUC"
)
KT_MODELS = ("auto", "bkt", "logistic", "gbdt")
#: ``--model auto`` puts the trees (``GBDTKT``, the ``kt-gbdt`` extra) in the comparison only on
#: logs of this many answers: each leaf holds at least 200 answers, so a smaller log grows
#: trees too shallow to say anything the logistic model does not
MIN_GBDT_ANSWERS = 20000


def _selection_text() -> str:
    """``SELECTION_PROTOCOL`` (stored in English with the fit) in the reader's language."""
    return _(
        "held-out learners (the last 20% by SHA-256 of their id); each of their answers "
        "scored once (a multi-skill answer by its first skill) and predicted from their earlier "
        "answers by models fitted on the other learners; AUC"
    )


def fit_bkt_params(
    log: ResponseLog,
    skill_ids: Sequence[str],
    *,
    max_guess: float = 0.3,
    max_slip: float = 0.3,
    estep_for: EStepFactory | None = None,
) -> tuple[BKT, dict[str, Any], str | None]:
    """Per-skill BKT on a response log, as ``learnloop fit kt`` stores it for the mastery
    service and the path planner: ``(model, {"default": ..., "skills": {skill id: ...}}, note)``.

    A skill keeps its own fitted learning rate, slip and prior only with ``MIN_SKILL_ANSWERS``
    answers from ``MIN_SKILL_LEARNERS`` learners; the others use the population's (the
    answer-weighted mean of the fitted skills), fitted only when the whole log is that large,
    else the defaults (``BKTParams()``, the ones ``bench/validity.py`` checks). ``skill_ids[k]``
    is the skill of code ``k`` in ``log.skill``. ``note``: the sentence shown when some skills
    use the population's parameters (None when every skill has its own). Pure: no database;
    ``bench/validity.py`` runs it on simulated learners' answers."""
    from learnloop.science.kt.bkt import BKT, BKTParams

    bkt = BKT(max_guess=max_guess, max_slip=max_slip).fit(log, estep_for=estep_for)
    fitted = bkt.to_dict()
    users = len(np.unique(log.user))
    learners_per_skill = {
        code: len(np.unique(log.user[log.skill == code])) for code in np.unique(log.skill).tolist()
    }
    answers_per_skill = np.bincount(log.skill, minlength=len(skill_ids))
    enough = {
        skill_ids[code]
        for code in range(len(skill_ids))
        if answers_per_skill[code] >= MIN_SKILL_ANSWERS
        and learners_per_skill.get(code, 0) >= MIN_SKILL_LEARNERS
    }
    whole = len(log) >= MIN_SKILL_ANSWERS and users >= MIN_SKILL_LEARNERS
    bkt_params = {
        "default": fitted["default"] if whole else BKTParams().to_dict(),
        "skills": {
            skill_ids[int(code)]: p for code, p in fitted["skills"].items() if skill_ids[int(code)] in enough
        },
    }
    note = None
    if len(enough) < len(skill_ids):
        note = _(
            "%(fitted)d of %(skills)d skills have their own parameters; the others have fewer "
            "than %(answers)d answers from %(learners)d learners and use the population's."
        ) % {
            "fitted": len(enough),
            "skills": len(skill_ids),
            "answers": MIN_SKILL_ANSWERS,
            "learners": MIN_SKILL_LEARNERS,
        }
    return bkt, bkt_params, note


class KTSummary(BaseModel):
    #: the live model now: bkt | logistic | gbdt
    model: str
    learners: int
    answers: int
    skills_fitted: int
    auc_in_sample: float | None
    rebuilt_answers: int
    #: held-out AUC per candidate model (None where it was not measured)
    held_out_auc: dict[str, float | None] = {}
    selection: str = ""
    notes: list[str] = []


def _held_out_users(user_ids: list[int], share: float = HELD_OUT_SHARE) -> set[int]:
    """The last ``share`` of learners by SHA-256 of their id: deterministic, and independent of
    when they joined."""
    ranked = sorted(user_ids, key=lambda u: hashlib.sha256(str(u).encode()).hexdigest())
    n = max(1, round(len(ranked) * share))
    return set(ranked[len(ranked) - n :])


def _subset(log: Any, mask: np.ndarray) -> Any:
    return log.subset(mask)


def _finite_auc(y: np.ndarray, p: np.ndarray) -> float | None:
    from learnloop.science.kt.metrics import auc

    if len(y) == 0 or not np.isfinite(p).all():
        return None
    score = auc(y, p)
    return round(float(score), 4) if math.isfinite(score) else None


def fit_kt(
    ctx: AppContext,
    org_id: int | None = None,
    max_guess: float = 0.3,
    max_slip: float = 0.3,
    model: str = "auto",
    *,
    dask: str | None = None,
    partitions: int = 8,
) -> KTSummary:
    """``_fit_kt`` below, for one organisation (``org_id``; None: the one organisation whose
    learners have answered, an error when several have); with ``dask`` (a scheduler's address,
    or ``local``) every BKT fit computes its E-step on the cluster, ``partitions`` blocks of
    learners, and its M-step here, and every logistic fit its design, loss and gradient per
    block, the L-BFGS steps here (``services/dist_fit.py``)."""
    _check_kt_options(model, max_guess, max_slip)
    if org_id is None:
        org_id = _only_org_with_answers(ctx)
    if not dask:
        return _fit_kt(ctx, org_id, max_guess, max_slip, model)
    from learnloop.services import dist_fit

    with dist_fit.cluster(dask) as client:
        return _fit_kt(
            ctx,
            org_id,
            max_guess,
            max_slip,
            model,
            dist_fit.kt_estep(client, partitions),
            dist_fit.logistic_fitter(client, partitions),
        )


def _check_kt_options(model: str, max_guess: float, max_slip: float) -> None:
    if model not in KT_MODELS:
        raise InvalidInput(
            _("The knowledge-tracing model must be auto, bkt, logistic or gbdt, not %(model)s.")
            % {"model": model}
        )
    if model == "gbdt" and not _has_lightgbm():
        raise InvalidInput(
            _(
                "The gbdt model needs LightGBM: install learnloop with the kt-gbdt extra "
                "(pip install 'learnloop[kt-gbdt]')."
            )
        )
    if not (0.0 < max_guess < 1.0 and 0.0 < max_slip < 1.0 and max_guess + max_slip <= 1.0):
        raise InvalidInput(_("Guess and slip bounds must lie between 0 and 1 and add up to at most 1."))


def _has_lightgbm() -> bool:
    try:
        import lightgbm  # noqa: F401
    except ImportError:
        return False
    return True


def _only_org_with_answers(ctx: AppContext) -> int:
    with ctx.session() as session:
        orgs = list(session.execute(select(Response.org_id).distinct().limit(2)).scalars())
    if not orgs:
        raise InvalidInput(_("The response log is empty: there is nothing to fit yet."))
    if len(orgs) > 1:
        raise InvalidInput(
            _("Learners of several organisations have answered: name the organisation to fit (--org).")
        )
    return int(orgs[0])


class OrgKTFit(BaseModel):
    org_id: int
    org_name: str
    #: None where nothing was fitted: ``skipped`` says why
    summary: KTSummary | None = None
    skipped: str | None = None


def fit_kt_each(
    ctx: AppContext,
    max_guess: float = 0.3,
    max_slip: float = 0.3,
    model: str = "auto",
    *,
    dask: str | None = None,
    partitions: int = 8,
) -> list[OrgKTFit]:
    """``fit_kt`` for every organisation in turn, each on its own learners' answers (``learnloop
    fit kt`` without ``--org``, and the scheduled job). An organisation without answers is
    skipped with the reason; a bad ``model`` stops before any fit."""
    _check_kt_options(model, max_guess, max_slip)
    return [
        OrgKTFit(org_id=org_id, org_name=name, summary=summary, skipped=skipped)
        for org_id, name, summary, skipped in each_org(
            ctx,
            lambda org_id: fit_kt(ctx, org_id, max_guess, max_slip, model, dask=dask, partitions=partitions),
        )
    ]


def _fit_kt(
    ctx: AppContext,
    org_id: int,
    max_guess: float = 0.3,
    max_slip: float = 0.3,
    model: str = "auto",
    estep_for: EStepFactory | None = None,
    logistic_fit: Callable[[LogisticKT, ResponseLog], LogisticKT] | None = None,
) -> KTSummary:
    """Fit knowledge tracing on one organisation's response log (no other organisation's answer
    enters it), store it as that organisation's model (``mastery.kt_kind``) and rebuild its
    learners' mastery with it.

    Per-skill BKT is always fitted: P(known) is BKT's under every model (``services/mastery.py``:
    the logistic model, when chosen, gives P(correct) for choosing items, never P(known)). A
    skill keeps its own fitted learning rate, slip and prior only with ``MIN_SKILL_ANSWERS``
    answers from ``MIN_SKILL_LEARNERS`` learners; the others use the population's, which are
    fitted only when the whole log has that much, else the defaults. Guessing comes from each
    item's kind (``science/evidence.py``), not the fit. ``model="auto"`` fits BKT and the logistic model (and, on
    ``MIN_GBDT_ANSWERS`` answers with LightGBM installed, the trees stacked on it, ``GBDTKT``) on
    80% of the learners, keeps the one with the highest AUC on the other 20%
    (``SELECTION_PROTOCOL``) and refits it on everyone; a log under ``MIN_SELECTION_ANSWERS`` answers or
    ``MIN_SELECTION_LEARNERS`` learners keeps BKT. Guess and slip are bounded (0.3 by
    default) so that mastery keeps its meaning, P(known), against the role targets.
    Rebuilding in the same transaction keeps the live mastery equal to a replay of the log
    under the stored parameters.
    """
    from learnloop.science.kt.base import ResponseLog
    from learnloop.science.kt.bkt import BKT
    from learnloop.science.kt.gbdt import GBDTKT  # numpy only; lightgbm to fit one
    from learnloop.science.kt.logistic import LogisticKT
    from learnloop.services.mastery import kt_kind, rebuild_all

    with ctx.session() as session:
        if session.get(Organisation, org_id) is None:
            raise NotFound(_("No organisation has the id %(org)d.") % {"org": org_id})
        answers = session.execute(
            with_decisions(
                select(
                    Response.id,
                    Response.user_id,
                    Response.item_id,
                    Response.skills,
                    counted_correct(),
                    Response.created_at,
                )
            )
            .where(Response.org_id == org_id)
            .order_by(Response.id)
        ).all()
        skill_ids = sorted({s for row in answers for s in row.skills})
        item_ids = sorted({row.item_id for row in answers})
        skill_code = {s: k for k, s in enumerate(skill_ids)}
        item_code = {i: k for k, i in enumerate(item_ids)}
        users: dict[int, int] = {}
        rows_u, rows_s, rows_i, rows_c, rows_t = [], [], [], [], []
        # One answer to a multi-skill item is one row per skill, with the same label: only its
        # first row is scored when models are compared, since the later ones can read the
        # earlier ones (the learner's "last answer") and would score a copy.
        rows_first: list[bool] = []
        rows_a: list[int] = []
        for rid, user_id, item_id, skill_list, correct, created_at in answers:
            label = bool(correct)
            moment = as_utc(created_at).timestamp()
            for position, skill_id in enumerate(skill_list):
                rows_first.append(position == 0)
                rows_a.append(rid)
                rows_u.append(users.setdefault(user_id, len(users)))
                rows_s.append(skill_code[skill_id])
                rows_i.append(item_code[item_id])
                rows_c.append(int(label))
                rows_t.append(moment)
        if not rows_u:
            raise InvalidInput(_("The response log is empty: there is nothing to fit yet."))
        log = ResponseLog(
            user=np.array(rows_u, dtype=np.int64),
            skill=np.array(rows_s, dtype=np.int64),
            correct=np.array(rows_c, dtype=np.int8),
            item=np.array(rows_i, dtype=np.int64),
            timestamp=np.array(rows_t, dtype=np.float64),
            answer=np.array(rows_a, dtype=np.int64),
        )

        def fit(kind: str, data: ResponseLog) -> BKT | LogisticKT | GBDTKT:
            if kind == "bkt":
                return BKT(max_guess=max_guess, max_slip=max_slip).fit(data, estep_for=estep_for)
            if kind == "gbdt":
                return GBDTKT().fit(data)
            made = LogisticKT()
            return logistic_fit(made, data) if logistic_fit is not None else made.fit(data)

        notes: list[str] = []
        big_enough = len(log) >= MIN_SELECTION_ANSWERS and len(users) >= MIN_SELECTION_LEARNERS
        # the trees are a candidate when asked for, or under auto on a log large enough for them
        # with LightGBM installed; held_out_auc names every candidate (None: not measured)
        candidates = ["bkt", "logistic"]
        if model == "gbdt" or (model == "auto" and len(log) >= MIN_GBDT_ANSWERS and _has_lightgbm()):
            candidates.append("gbdt")
        held_out_auc: dict[str, float | None] = dict.fromkeys(candidates)
        if big_enough:
            held = _held_out_users(list(users))
            test = np.isin(log.user, np.array([users[u] for u in held], dtype=np.int64))
            train_log, test_log = _subset(log, ~test), _subset(log, test)
            scored = np.array(rows_first, dtype=bool)[test]
            for kind in candidates:
                predictions = fit(kind, train_log).predict_proba(test_log)
                held_out_auc[kind] = _finite_auc(test_log.correct[scored], predictions[scored])
        chosen = model
        if model == "auto":
            chosen = "bkt"
            if not big_enough:
                notes.append(
                    _(
                        "Kept BKT: %(answers)d answers from %(learners)d learners are too few to "
                        "choose a model (%(min_answers)d answers and %(min_learners)d learners needed)."
                    )
                    % {
                        "answers": len(log),
                        "learners": len(users),
                        "min_answers": MIN_SELECTION_ANSWERS,
                        "min_learners": MIN_SELECTION_LEARNERS,
                    }
                )
            elif any(held_out_auc[kind] is None for kind in candidates):
                notes.append(
                    _(
                        "Kept BKT: the held-out answers are all right or all wrong, so AUC "
                        "cannot compare the models."
                    )
                )
            else:
                # the highest held-out AUC; a tie keeps the simpler model (the earlier candidate)
                chosen = max(candidates, key=lambda kind: (held_out_auc[kind], -candidates.index(kind)))
        elif not big_enough:
            notes.append(
                _("No held-out comparison: %(answers)d answers from %(learners)d learners are too few.")
                % {"answers": len(log), "learners": len(users)}
            )

        bkt, bkt_params, fitted_note = fit_bkt_params(
            log, skill_ids, max_guess=max_guess, max_slip=max_slip, estep_for=estep_for
        )
        if fitted_note is not None:
            notes.append(fitted_note)
        live: BKT | LogisticKT | GBDTKT = bkt
        if chosen in ("logistic", "gbdt"):
            tracer = fit(chosen, log)
            assert isinstance(tracer, LogisticKT | GBDTKT)
            weights = tracer.logistic_.coef_ if isinstance(tracer, GBDTKT) else tracer.coef_
            if np.isfinite(weights).all():
                live = tracer
            else:  # never store weights that would put NaN into mastery
                chosen = "bkt"
                notes.append(_("Kept BKT: the logistic model's fit did not converge to finite weights."))
        in_sample = _finite_auc(log.correct, live.predict_proba(log))
        selection = {
            "protocol": SELECTION_PROTOCOL,
            "requested": model,
            "auc": held_out_auc,
            "min_answers": MIN_SELECTION_ANSWERS,
            "min_learners": MIN_SELECTION_LEARNERS,
        }
        session.add(
            ModelParams(
                kind=kt_kind(org_id),
                n_responses=len(log),
                params={
                    "model": chosen,
                    "params": live.to_dict() if chosen in ("logistic", "gbdt") else None,
                    "skills": skill_ids,
                    "items": item_ids,
                    "bkt": bkt_params,
                    "selection": selection,
                    "notes": notes,
                },
            )
        )
        session.flush()
        replayed = rebuild_all(session, org_id=org_id)
    return KTSummary(
        model=chosen,
        learners=len(users),
        answers=len(log),
        skills_fitted=len(bkt_params["skills"]),
        auc_in_sample=in_sample,
        rebuilt_answers=replayed,
        held_out_auc=held_out_auc,
        selection=_selection_text(),
        notes=notes,
    )
