"""Item analysis for instructors and authors: statistics per item, flags, content coverage.

The statistics (``science.item_stats``) are computed over the organisation's newest
``report_item_window`` answers, which is every answer in most organisations; the report says
which period they cover. Answers of deleted members are left out. Reading millions of
answers takes seconds, so the analysis is stored (``item_analysis_runs``) and computed again
only when it is stale: on every new answer while the log is small, after 5% more answers
once it is large, and whenever the pack or the IRT calibration changes. IRT parameters are shown
when the items are calibrated: the newest ``model_params`` row of kind ``irt`` (by item id),
else the parameters written in the pack.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from learnloop.content.models import Item
from learnloop.science.item_stats import KEY_SUSPECT, ItemAnalysis, analyse_items, flag_items
from learnloop.services.auth import CurrentUser
from learnloop.services.calibration import irt_kind
from learnloop.services.context import ActivePack, AppContext
from learnloop.store.models import ItemAnalysisRun, ModelParams, Response, User, UtcDateTime, as_utc, utcnow

#: Items answered by fewer learners are not judged by the flags.
MIN_RESPONDENTS = 30
#: Skills with fewer items than this are thin: adaptive practice soon repeats itself.
FEW_ITEMS = 3
#: Logs smaller than this are analysed again whenever an answer arrives ...
ALWAYS_FRESH_ANSWERS = 50_000
#: ... larger ones once this share of new answers has come in since the stored analysis.
REFRESH_SHARE = 0.05


class OptionShare(BaseModel):
    option: str
    is_key: bool
    upper_count: int


class ItemStatRow(BaseModel):
    item_id: str
    kind: str
    skill_id: str
    skill_name: str
    difficulty: float
    minutes: float
    attempts: int
    respondents: int
    p_value: float | None
    point_biserial: float | None
    exposure: float | None
    median_seconds: float | None
    irt_a: float | None
    irt_b: float | None
    irt_c: float | None
    irt_source: str | None  # calibrated | pack
    key: str | None
    suspect_option: str | None
    upper_n: int
    options: list[OptionShare]
    flags: list[str]


class SkillCoverage(BaseModel):
    skill_id: str
    name: str
    domain: str
    items: int
    kinds: dict[str, int]
    minutes: float
    lessons: int
    roles: int
    answers: int
    flags: list[str]  # no_items | few_items | no_lesson


class ItemReport(BaseModel):
    answers: int
    learners: int
    window_limit: int
    window_full: bool
    first_answer_at: UtcDateTime | None
    last_answer_at: UtcDateTime | None
    computed_at: UtcDateTime
    #: answers given since the statistics were computed (not in these figures yet)
    newer_answers: int
    calibrated_at: UtcDateTime | None
    min_respondents: int
    items: list[ItemStatRow]
    flagged: list[ItemStatRow]
    coverage: list[SkillCoverage]


def item_report(ctx: AppContext, viewer: CurrentUser) -> ItemReport:
    """The organisation's item analysis: the stored one while fresh, else computed and stored."""
    viewer.require("instructor")
    with ctx.session() as session:
        active = ctx.active_pack(session, viewer.org_id)
        run = (
            session.execute(
                select(ItemAnalysisRun)
                .where(ItemAnalysisRun.org_id == viewer.org_id)
                .order_by(ItemAnalysisRun.id.desc())
                .limit(1)
            )
            .scalars()
            .first()
        )
        irt_id = _irt_row_id(session, viewer.org_id)
        if run is not None and run.pack_row_id == active.row_id and run.irt_params_id == irt_id:
            newer = (
                session.scalar(
                    select(func.count())
                    .select_from(Response)
                    .where(Response.org_id == viewer.org_id, Response.id > run.last_response_id)
                )
                or 0
            )
            if not _stale(run.answers, newer):
                report = ItemReport.model_validate(run.document)
                report.newer_answers = newer
                return report
    report, last_id = compute_item_report(ctx, viewer.org_id)
    with ctx.session() as session:
        session.execute(delete(ItemAnalysisRun).where(ItemAnalysisRun.org_id == viewer.org_id))
        session.add(
            ItemAnalysisRun(
                org_id=viewer.org_id,
                computed_at=report.computed_at,
                pack_row_id=active.row_id,
                irt_params_id=irt_id,
                last_response_id=last_id,
                answers=report.answers,
                document=report.model_dump(mode="json"),
            )
        )
    return report


def _stale(answers: int, newer: int) -> bool:
    """Small logs are always current; large ones are recomputed after REFRESH_SHARE more answers."""
    if newer == 0:
        return False
    return answers < ALWAYS_FRESH_ANSWERS or newer >= REFRESH_SHARE * answers


def compute_item_report(ctx: AppContext, org_id: int) -> tuple[ItemReport, int]:
    """Compute the item analysis from the response log; returns it and the newest answer's id."""
    window = ctx.settings.report_item_window
    with ctx.session() as session:
        active = ctx.active_pack(session, org_id)
        items = active.pack.items
        index = {it.id: i for i, it in enumerate(items)}
        option_index = [{o: k for k, o in enumerate(sorted(it.options or {}))} for it in items]
        log = _answer_window(session, org_id, window, index, option_index)
        calibrated, calibrated_at = _calibrated_params(session, org_id)
        first_at, last_at = _period(session, org_id, int(log.ids.min()) if log.ids.size else None)

    n_choices = max((len(it.options or {}) for it in items), default=0)
    keys = np.array(
        [option_index[i].get(it.key or "", -1) if it.kind == "choice" else -1 for i, it in enumerate(items)],
        dtype=np.int64,
    )
    _, users = np.unique(log.users, return_inverse=True)
    analysis = analyse_items(
        log.items,
        users,
        log.correct,
        len(items),
        choice=log.choices,
        key=keys,
        n_choices=n_choices,
        seconds=log.seconds,
    )
    flag_items(analysis, min_respondents=MIN_RESPONDENTS)
    rows = [_row(active, it, i, analysis, calibrated, sorted(it.options or {})) for i, it in enumerate(items)]
    report = ItemReport(
        answers=int(log.items.size),
        learners=int(users.max()) + 1 if users.size else 0,
        window_limit=window,
        window_full=log.read >= window,
        first_answer_at=first_at,
        last_answer_at=last_at,
        computed_at=utcnow(),
        newer_answers=0,
        calibrated_at=calibrated_at,
        min_respondents=MIN_RESPONDENTS,
        items=rows,
        flagged=[r for r in rows if r.flags],
        coverage=coverage(active, _answers_by_skill(items, analysis)),
    )
    return report, int(log.ids.max()) if log.ids.size else 0


@dataclass
class _Log:
    """Answers of the window in time order, as arrays (items and choices as indices)."""

    ids: NDArray[np.int64]
    users: NDArray[np.int64]
    items: NDArray[np.int64]
    correct: NDArray[np.float64]
    seconds: NDArray[np.float64]
    choices: NDArray[np.int64]
    read: int  # answers read, before dropping unknown items and deleted members


def _answer_window(
    session: Session, org_id: int, window: int, index: dict[str, int], option_index: list[dict[str, int]]
) -> _Log:
    """The newest answers of the organisation, oldest first, without deleted members' answers."""
    choice = Response.answer["choice"].as_string()
    query = (
        select(
            Response.id, Response.user_id, Response.item_id, Response.correct, Response.duration_ms, choice
        )
        .where(Response.org_id == org_id)
        .order_by(Response.id.desc())
        .limit(window)
    )
    parts: list[tuple[NDArray[Any], ...]] = []
    read = 0
    # Core rows, fetched in slices: the ORM layer would cost more than the query.
    for chunk in session.connection().execute(query).partitions(50_000):
        read += len(chunk)
        ids, users, item_ids, correct, duration, choices = zip(*chunk, strict=True)
        item_pos = np.fromiter((index.get(i, -1) for i in item_ids), dtype=np.int64, count=len(chunk))
        chosen = np.fromiter(
            (
                option_index[p].get(c, -1) if p >= 0 and c is not None else -1
                for p, c in zip(item_pos, choices, strict=True)
            ),
            dtype=np.int64,
            count=len(chunk),
        )
        parts.append(
            (
                np.asarray(ids, dtype=np.int64),
                np.asarray(users, dtype=np.int64),
                item_pos,
                np.asarray(correct, dtype=float),
                np.array([np.nan if d is None else d / 1000.0 for d in duration], dtype=float),
                chosen,
            )
        )
    deleted = np.fromiter(
        session.execute(select(User.id).where(User.org_id == org_id, User.deleted_at.is_not(None))).scalars(),
        dtype=np.int64,
    )
    if not parts:
        empty_i, empty_f = np.zeros(0, dtype=np.int64), np.zeros(0)
        return _Log(empty_i, empty_i, empty_i, empty_f, empty_f, empty_i, 0)
    columns = [np.concatenate(c)[::-1] for c in zip(*parts, strict=True)]
    keep = (columns[2] >= 0) & ~np.isin(columns[1], deleted)
    kept = [c[keep] for c in columns]
    return _Log(kept[0], kept[1], kept[2], kept[3], kept[4], kept[5], read)


def _period(session: Session, org_id: int, first_id: int | None) -> tuple[datetime | None, datetime | None]:
    """When the answers of the window were given (imported logs need not be in id order)."""
    if first_id is None:
        return None, None
    first, last = session.execute(
        select(func.min(Response.created_at), func.max(Response.created_at)).where(
            Response.org_id == org_id, Response.id >= first_id
        )
    ).one()
    return (as_utc(first) if first else None), (as_utc(last) if last else None)


def _irt_row_id(session: Session, org_id: int) -> int:
    return session.scalar(select(func.max(ModelParams.id)).where(ModelParams.kind == irt_kind(org_id))) or 0


def _calibrated_params(
    session: Session, org_id: int
) -> tuple[dict[str, tuple[float, float, float]], datetime | None]:
    """Item id -> (a, b, c) from the organisation's newest IRT calibration, in either stored layout."""
    row = (
        session.execute(
            select(ModelParams)
            .where(ModelParams.kind == irt_kind(org_id))
            .order_by(ModelParams.id.desc())
            .limit(1)
        )
        .scalars()
        .first()
    )
    if row is None or not isinstance(row.params, dict):
        return {}, None
    params = row.params
    out: dict[str, tuple[float, float, float]] = {}
    try:
        if isinstance(params.get("items"), dict):
            for item_id, p in params["items"].items():
                out[str(item_id)] = (float(p.get("a", 1.0)), float(p["b"]), float(p.get("c", 0.0)))
        elif isinstance(params.get("item_ids"), list):
            cs = params.get("c") or [0.0] * len(params["item_ids"])
            for item_id, a, b, c in zip(params["item_ids"], params["a"], params["b"], cs, strict=False):
                out[str(item_id)] = (float(a), float(b), float(c))
    except (KeyError, TypeError, ValueError):
        return {}, None  # a layout this report does not know: show authored parameters only
    return out, as_utc(row.fitted_at)


def _nan_none(value: float, digits: int = 3) -> float | None:
    return None if np.isnan(value) else round(float(value), digits)


def _row(
    active: ActivePack,
    item: Item,
    i: int,
    analysis: ItemAnalysis,
    calibrated: dict[str, tuple[float, float, float]],
    options: list[str],
) -> ItemStatRow:
    if item.id in calibrated:
        (a, b, c), source = calibrated[item.id], "calibrated"
    elif item.irt is not None:
        (a, b, c), source = (item.irt.a, item.irt.b, item.irt.c), "pack"
    else:
        a = b = c = None  # type: ignore[assignment]
        source = None
    suspect = int(analysis.suspect_choice[i])
    flags = analysis.flags[i] if analysis.flags else []
    return ItemStatRow(
        item_id=item.id,
        kind=item.kind,
        skill_id=item.skills[0],
        skill_name=active.pack.skill(item.skills[0]).name,
        difficulty=item.difficulty,
        minutes=item.minutes,
        attempts=int(analysis.attempts[i]),
        respondents=int(analysis.respondents[i]),
        p_value=_nan_none(analysis.p_value[i]),
        point_biserial=_nan_none(analysis.point_biserial[i]),
        exposure=_nan_none(analysis.exposure[i]),
        median_seconds=_nan_none(analysis.median_seconds[i], 1),
        irt_a=None if a is None else round(a, 3),
        irt_b=None if b is None else round(b, 3),
        irt_c=None if c is None else round(c, 3),
        irt_source=source,
        key=item.key if item.kind == "choice" else None,
        suspect_option=options[suspect] if KEY_SUSPECT in flags and 0 <= suspect < len(options) else None,
        upper_n=int(analysis.upper_n[i]),
        options=[
            OptionShare(option=o, is_key=o == item.key, upper_count=int(analysis.upper_choice_counts[i, k]))
            for k, o in enumerate(options)
        ],
        flags=flags,
    )


def _answers_by_skill(items: list[Item], analysis: ItemAnalysis) -> dict[str, int]:
    out: dict[str, int] = {}
    for i, item in enumerate(items):
        for skill in item.skills:
            out[skill] = out.get(skill, 0) + int(analysis.attempts[i])
    return out


def coverage(active: ActivePack, answers_by_skill: dict[str, int]) -> list[SkillCoverage]:
    """Per skill: items (by kind), minutes of practice, lessons, roles that target it, answers."""
    pack = active.pack
    out = []
    for skill in pack.skills:
        items = active.items_by_skill.get(skill.id, [])
        kinds: dict[str, int] = {}
        for it in items:
            kinds[it.kind] = kinds.get(it.kind, 0) + 1
        lessons = len(pack.lessons_for_skill(skill.id))
        flags = ["no_items"] if not items else ["few_items"] if len(items) < FEW_ITEMS else []
        if not lessons:
            flags.append("no_lesson")
        out.append(
            SkillCoverage(
                skill_id=skill.id,
                name=skill.name,
                domain=skill.domain,
                items=len(items),
                kinds=kinds,
                minutes=round(sum(it.minutes for it in items), 1),
                lessons=lessons,
                roles=sum(1 for r in pack.roles if skill.id in r.targets),
                answers=answers_by_skill.get(skill.id, 0),
                flags=flags,
            )
        )
    return out
