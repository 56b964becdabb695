"""A learner's history as counts, for the logistic knowledge-tracing family.

For every answer, the counters describe what happened *before* it: attempts and successes
on the skill, the item and overall (PFA, Pavlik et al. 2009; Best-LR's "sc"/"tc"/"ic"
counts, Gervet et al. 2020), exponentially decayed counts (recency-weighted PFA,
Galyardt & Goldin 2015), streaks and the last answer, and attempts within time windows
(DAS3H, Choffin et al. 2019), and the learner's recent log-odds of success at several decays
(``recent_ability``; LogisticKT weighs them per item and per skill). ``history_counts`` computes them for a whole log at once;
``LearnerCounters`` keeps the same numbers for one learner, one answer at a time, so the
online path reproduces the batch features exactly (both feed ``dense_features``).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, TypedDict, Union

import numpy as np
from numpy.typing import NDArray

from learnloop.science.kt.base import ResponseLog, answers_of, sequence_key
from learnloop.science.kt.packing import PackedSequences, pack_sequences

FloatArray = NDArray[np.float64]
Num = Union[FloatArray, float]  # noqa: UP007 - a runtime alias


@dataclass(frozen=True)
class FeatureSpec:
    """Which history features the logistic model uses (all counts are before the answer)."""

    skill_decays: tuple[float, ...] = (0.5, 0.8)
    user_decays: tuple[float, ...] = (0.9,)
    streaks: bool = True
    last_answer: bool = True
    recent_answers: bool = True  # the learner's 2nd and 3rd most recent answers, any skill
    blocks: bool = True  # wins and fails in the current run of answers on one skill
    item_counts: bool = True
    # DAS3H windows in seconds (used only when the log has timestamps); the last is open-ended
    # in DAS3H and here is the plain skill count, so only finite windows are listed.
    windows: tuple[float, ...] = (3600.0, 86400.0, 7 * 86400.0, 30 * 86400.0)
    # Decays of the learner's recent log-odds of success (``recent_ability``), one per time
    # scale; LogisticKT gives every item and every skill its own slope on each. None by default.
    ability_decays: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSpec:
        known: dict[str, Any] = {
            k: (tuple(v) if isinstance(v, list) else v)
            for k, v in data.items()
            if k in cls.__dataclass_fields__
        }
        return cls(**known)

    def dense_names(self, with_windows: bool) -> list[str]:
        names = ["log_skill_wins", "log_skill_fails", "log_user_wins", "log_user_fails"]
        if self.item_counts:
            names += ["log_item_wins", "log_item_fails"]
        for lam in self.skill_decays:
            names += [f"skill_decayed_wins_{lam}", f"skill_decayed_fails_{lam}"]
        for lam in self.user_decays:
            names += [f"user_decayed_wins_{lam}", f"user_decayed_fails_{lam}"]
        if self.streaks:
            names += [
                "skill_right_streak_1",
                "skill_right_streak_2",
                "skill_right_streak_3+",
                "skill_wrong_streak_1",
                "skill_wrong_streak_2",
                "skill_wrong_streak_3+",
            ]
        if self.last_answer:
            names += [
                "skill_last_right",
                "skill_last_wrong",
                "last_right",
                "last_wrong",
                "same_skill_as_last",
            ]
        if self.recent_answers:
            names += ["lag2_right", "lag2_wrong", "lag3_right", "lag3_wrong"]
        if self.blocks:
            names += ["log_block_wins", "log_block_fails"]
        if with_windows:
            for w in self.windows:
                names += [f"log_window_attempts_{w:g}", f"log_window_wins_{w:g}"]
        return names


@dataclass
class HistoryCounts:
    """Raw counters per row: arrays of equal length for a log, plain floats for one answer."""

    skill_attempts: Num
    skill_wins: Num
    user_attempts: Num
    user_wins: Num
    item_attempts: Num
    item_wins: Num
    skill_right_streak: Num
    skill_wrong_streak: Num
    skill_last: Num  # -1 none, 0 wrong, 1 right
    user_last: Num
    same_skill: Num
    user_lag2: Num  # -1 none, 0 wrong, 1 right
    user_lag3: Num
    block_attempts: Num
    block_wins: Num
    skill_decayed: Sequence[tuple[Num, Num]] = field(default_factory=list)  # (wins, attempts)
    user_decayed: Sequence[tuple[Num, Num]] = field(default_factory=list)
    window: Sequence[tuple[Num, Num]] = field(default_factory=list)  # (attempts, wins)
    ability_decayed: Sequence[tuple[Num, Num]] = field(default_factory=list)  # (wins, attempts)


def stack_counts(rows: Sequence[HistoryCounts]) -> HistoryCounts:
    """One learner's counters for several skills (plain floats each) as one set of arrays."""

    def col(values: Sequence[Num]) -> FloatArray:
        return np.asarray(values, dtype=np.float64)

    def pairs(get: Callable[[HistoryCounts], Sequence[tuple[Num, Num]]]) -> list[tuple[Num, Num]]:
        width = len(get(rows[0])) if rows else 0
        return [(col([get(r)[j][0] for r in rows]), col([get(r)[j][1] for r in rows])) for j in range(width)]

    paired = ("skill_decayed", "user_decayed", "window", "ability_decayed")
    scalar = [f.name for f in fields(HistoryCounts) if f.name not in paired]
    return HistoryCounts(
        **{name: col([getattr(r, name) for r in rows]) for name in scalar},
        skill_decayed=pairs(lambda r: r.skill_decayed),
        user_decayed=pairs(lambda r: r.user_decayed),
        window=pairs(lambda r: r.window),
        ability_decayed=pairs(lambda r: r.ability_decayed),
    )


def dense_columns(
    spec: FeatureSpec, h: HistoryCounts, with_windows: bool, log1p: Callable[[Any], Any] = np.log1p
) -> list[Any]:
    """The shared-coefficient features, one column per ``spec.dense_names`` (arrays for a
    log, floats for one answer; one formula for both keeps online equal to batch): log(1 + count)
    transforms as Best-LR (Gervet et al. 2020, section 3.1) and DAS3H (Choffin et al. 2019, eq. 3)."""
    cols = [
        log1p(h.skill_wins),
        log1p(h.skill_attempts - h.skill_wins),
        log1p(h.user_wins),
        log1p(h.user_attempts - h.user_wins),
    ]
    if spec.item_counts:
        cols += [log1p(h.item_wins), log1p(h.item_attempts - h.item_wins)]
    for wins, attempts in h.skill_decayed:
        cols += [wins, attempts - wins]
    for wins, attempts in h.user_decayed:
        cols += [wins, attempts - wins]
    if spec.streaks:
        r, w = h.skill_right_streak, h.skill_wrong_streak
        cols += [r == 1, r == 2, r >= 3, w == 1, w == 2, w >= 3]
    if spec.last_answer:
        cols += [h.skill_last == 1, h.skill_last == 0, h.user_last == 1, h.user_last == 0, h.same_skill]
    if spec.recent_answers:
        cols += [h.user_lag2 == 1, h.user_lag2 == 0, h.user_lag3 == 1, h.user_lag3 == 0]
    if spec.blocks:
        cols += [log1p(h.block_wins), log1p(h.block_attempts - h.block_wins)]
    if with_windows:
        for attempts, wins in h.window:
            cols += [log1p(attempts), log1p(wins)]
    return cols


def recent_ability(h: HistoryCounts, log: Callable[[Any], Any] = np.log) -> list[Any]:
    """The learner's recent log-odds of success, one per ``FeatureSpec.ability_decays``:
    log((w + 1/2) / (n - w + 1/2)) of the exponentially decayed wins w and answers n (an
    empirical logit, Cox 1970, section 3.2: 0 before any answer). Arrays for a log, floats
    for one answer, as ``dense_columns``."""
    return [log((wins + 0.5) / (attempts - wins + 0.5)) for wins, attempts in h.ability_decayed]


def dense_features(spec: FeatureSpec, h: HistoryCounts, with_windows: bool) -> FloatArray:
    """``dense_columns`` of a whole log as an (n, d) matrix."""
    return np.column_stack([np.asarray(c, dtype=np.float64) for c in dense_columns(spec, h, with_windows)])


def dense_row(spec: FeatureSpec, h: HistoryCounts, with_windows: bool) -> list[float]:
    """``dense_columns`` of one answer, in plain floats (the fast online path)."""
    return [float(c) for c in dense_columns(spec, h, with_windows, math.log1p)]


# -- batch ---------------------------------------------------------------------------------------


def _exclusive_counts(key: NDArray[np.int64], values: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Per row, how many earlier rows share ``key`` and the sum of their ``values``."""
    n = len(key)
    order = np.argsort(key, kind="stable")
    k = key[order]
    v = values[order]
    new = np.r_[True, k[1:] != k[:-1]] if n else np.zeros(0, dtype=bool)
    starts = np.flatnonzero(new)
    group = np.cumsum(new) - 1
    pos = np.arange(n) - starts[group]
    csum = np.cumsum(v) - v
    before = csum - csum[starts][group]
    attempts = np.empty(n)
    wins = np.empty(n)
    attempts[order] = pos
    wins[order] = before
    return attempts, wins


def _scan_sequences(
    packed: PackedSequences,
    correct: FloatArray,
    decays: tuple[float, ...],
    streaks: bool,
    ordinal: FloatArray | None = None,
) -> tuple[list[tuple[FloatArray, FloatArray]], FloatArray, FloatArray, list[FloatArray]]:
    """One pass over packed sequences: decayed wins/attempts per decay, right and wrong
    streaks, the last answer and the two before it, each as seen before the row.

    Decayed counts follow R-PFA (Galyardt & Goldin 2015): x_t = lam * x_{t-1} + o_{t-1}.
    With ``ordinal`` (the row's answer number within its learner) the sequences are a
    learner's rows on one skill, and the scan also returns whether the learner's previous
    answer was on this skill and the attempts and wins of the run of consecutive answers on
    it just before the row. Returns (decayed, right, wrong, [last, lag2, lag3, same, run
    attempts, run wins])."""
    n = len(packed.order)
    o = correct[packed.order]
    dec = [(np.zeros(n), np.zeros(n)) for _ in decays]
    right = np.zeros(n)
    wrong = np.zeros(n)
    lags = [np.full(n, -1.0) for _ in range(3)]
    same = np.zeros(n)
    run_a = np.zeros(n)
    run_w = np.zeros(n)
    ordp = ordinal[packed.order] if ordinal is not None else None
    offsets, sizes = packed.offsets, packed.sizes
    for t in range(1, packed.n_steps):
        a, b, pa = int(offsets[t]), int(offsets[t + 1]), int(offsets[t - 1])
        pb = pa + int(sizes[t])
        prev_o = o[pa:pb]
        for lam, (dw, dn) in zip(decays, dec, strict=True):
            dw[a:b] = lam * dw[pa:pb] + prev_o
            dn[a:b] = lam * dn[pa:pb] + 1.0
        if streaks:
            right[a:b] = (right[pa:pb] + 1.0) * prev_o
            wrong[a:b] = (wrong[pa:pb] + 1.0) * (1.0 - prev_o)
        lags[0][a:b] = prev_o
        lags[1][a:b] = lags[0][pa:pb]
        lags[2][a:b] = lags[1][pa:pb]
        if ordp is not None:
            eq = (ordp[a:b] == ordp[pa:pb] + 1.0).astype(np.float64)
            same[a:b] = eq
            run_a[a:b] = (run_a[pa:pb] + 1.0) * eq
            run_w[a:b] = (run_w[pa:pb] + prev_o) * eq
    order = packed.order

    def unpack(x: FloatArray) -> FloatArray:
        out = np.empty(n)
        out[order] = x
        return out

    out_dec = [(unpack(dw), unpack(dn)) for dw, dn in dec]
    return out_dec, unpack(right), unpack(wrong), [unpack(x) for x in (*lags, same, run_a, run_w)]


def _window_counts(
    key: NDArray[np.int64], time: FloatArray, correct: FloatArray, windows: tuple[float, ...]
) -> list[tuple[FloatArray, FloatArray]]:
    """Attempts and wins on the same key within [t - w, t) per window w (DAS3H, eq. 3),
    among rows before this one. Times are made non-decreasing within a key."""
    n = len(key)
    order = np.argsort(key, kind="stable")
    k = key[order]
    t = time[order].astype(np.float64)
    o = correct[order]
    new = np.r_[True, k[1:] != k[:-1]] if n else np.zeros(0, dtype=bool)
    group = np.cumsum(new) - 1
    # Cumulative max within a group: offset each group above the previous one's range.
    span = (t.max() - t.min() + 1.0) if n else 1.0
    big = max(span, max(windows, default=0.0)) * 4.0 + 1.0
    shifted = np.maximum.accumulate((t - (t.min() if n else 0.0)) + group * big)
    cum_o = np.r_[0.0, np.cumsum(o)]
    out = []
    idx = np.arange(n)
    for w in windows:
        left = np.searchsorted(shifted, shifted - w, side="left")
        att, win = np.empty(n), np.empty(n)
        att[order] = idx - left
        win[order] = cum_o[idx] - cum_o[left]
        out.append((att, win))
    return out


def history_counts(spec: FeatureSpec, log: ResponseLog, n_skills: int, with_windows: bool) -> HistoryCounts:
    """Counters before every row of ``log``, from the learner's earlier answers only.

    Counts on the learner, the item and the learner's previous answers are taken over
    answers (``ResponseLog.answer``): the rows of one multi-skill answer all see the
    history before that answer, and the answer counts once. Counts on one skill are taken
    over that skill's rows, which belong to distinct answers (``log`` must hold no repeated
    skill within an answer; ``LogisticKT`` drops such rows first)."""
    groups = answers_of(log)
    if groups.repeat.any():
        row = int(np.flatnonzero(groups.repeat)[0])
        raise ValueError(f"history_counts: row {row} repeats a skill of its answer; drop repeated rows first")
    n = len(log)
    correct = log.correct.astype(np.float64)
    first = groups.first
    a_user = log.user[first].astype(np.int64)
    a_correct = correct[first]
    # answer level, then spread to the answer's rows
    a_attempts, a_wins = _exclusive_counts(a_user, a_correct)
    user_attempts, user_wins = a_attempts[groups.index], a_wins[groups.index]
    if log.item is not None and spec.item_counts:
        a_item = log.item[first].astype(np.int64)
        n_items = int(a_item.max()) + 1 if n else 1
        ia, iw = _exclusive_counts(sequence_key(a_user, a_item, n_items), a_correct)
        item_attempts, item_wins = ia[groups.index], iw[groups.index]
    else:
        item_attempts, item_wins = np.zeros(n), np.zeros(n)
    a_dec, _, _, a_lags = _scan_sequences(
        pack_sequences(a_user), a_correct, (*spec.user_decays, *spec.ability_decays), False
    )
    u_dec = [(w[groups.index], d[groups.index]) for w, d in a_dec[: len(spec.user_decays)]]
    ability = [(w[groups.index], d[groups.index]) for w, d in a_dec[len(spec.user_decays) :]]
    u_last, lag2, lag3 = (x[groups.index] for x in a_lags[:3])
    # skill level: the learner's rows on one skill, each in its own answer
    user_skill = sequence_key(log.user, log.skill, n_skills)
    skill_attempts, skill_wins = _exclusive_counts(user_skill, correct)
    s_dec, right, wrong, s_lags = _scan_sequences(
        pack_sequences(user_skill), correct, spec.skill_decays, spec.streaks, ordinal=user_attempts
    )
    s_last, same, run_a, run_w = s_lags[0], s_lags[3], s_lags[4], s_lags[5]
    window = []
    if with_windows:
        # A log without times counts every earlier answer as inside every window, as the
        # online path does when it is given no timestamp.
        times = log.timestamp if log.timestamp is not None else np.zeros(n)
        window = _window_counts(user_skill, times, correct, spec.windows)
    return HistoryCounts(
        skill_attempts=skill_attempts,
        skill_wins=skill_wins,
        user_attempts=user_attempts,
        user_wins=user_wins,
        item_attempts=item_attempts,
        item_wins=item_wins,
        skill_right_streak=right,
        skill_wrong_streak=wrong,
        skill_last=s_last,
        user_last=u_last,
        same_skill=same,
        user_lag2=lag2,
        user_lag3=lag3,
        block_attempts=run_a,
        block_wins=run_w,
        skill_decayed=s_dec,
        user_decayed=u_dec,
        window=window,
        ability_decayed=ability,
    )


# -- online --------------------------------------------------------------------------------------

#: The layout of ``LearnerState`` (and of the JSON dict it is kept as). Version 1 was the
#: version-less dict of lists read by index (before answers of several skills were folded at
#: once); version 2 had no ``ability_decayed`` (read as none: the models of that time kept no
#: ability decays). ``LearnerState.from_dict`` reads both.
STATE_VERSION = 3


class Tally(TypedDict):
    attempts: float
    wins: float


class SkillRecord(TypedDict):
    """One skill's counters, as of the learner's last answer on it."""

    attempts: float
    wins: float
    right_streak: float
    wrong_streak: float
    last: float  # -1 none, 0 wrong, 1 right
    decayed: list[list[float]]  # [wins, attempts] per FeatureSpec.skill_decays


class WindowRecord(TypedDict):
    """One skill's answer times (non-decreasing) and running wins, for the DAS3H windows;
    answers older than the widest window are dropped (their wins folded into ``base``)."""

    time: list[float]
    cum: list[float]
    base: float


class RecentAnswer(TypedDict):
    skills: list[int]
    correct: float


@dataclass
class LearnerState:
    """One learner's history, as the online path keeps it (JSON: ``to_dict``/``from_dict``).

    ``from_dict`` shares the dict's lists and inner dicts instead of copying them, so reading
    a stored state costs the same whatever its size; ``to_dict`` likewise. Its size is bounded
    by the skills and items the learner answered (and, with time windows, by the answers
    within the widest window)."""

    answers: float = 0.0
    wins: float = 0.0
    user_decayed: list[list[float]] = field(default_factory=list)  # [wins, attempts] per user decay
    ability_decayed: list[list[float]] = field(default_factory=list)  # [wins, attempts] per ability decay
    lags: list[float] = field(default_factory=lambda: [-1.0, -1.0, -1.0])  # last 3 answers, newest first
    run: dict[str, Tally] = field(default_factory=dict)  # the last answer's skills: run of answers on each
    recent: list[RecentAnswer] = field(default_factory=list)  # newest first (LogisticKT's pairs)
    skills: dict[str, SkillRecord] = field(default_factory=dict)
    items: dict[str, Tally] = field(default_factory=dict)
    times: dict[str, WindowRecord] = field(default_factory=dict)
    version: int = STATE_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "answers": self.answers,
            "wins": self.wins,
            "user_decayed": self.user_decayed,
            "ability_decayed": self.ability_decayed,
            "lags": self.lags,
            "run": self.run,
            "recent": self.recent,
            "skills": self.skills,
            "items": self.items,
            "times": self.times,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LearnerState:
        version = data.get("version", 1)
        if version == 1:
            return _migrate_v1(data)
        if version not in (2, STATE_VERSION):
            raise ValueError(
                f"unknown learner-state version {version!r}: this learnloop reads versions 1 to "
                f"{STATE_VERSION}; refit with `learnloop fit kt` or upgrade learnloop"
            )
        try:
            return cls(
                answers=float(data["answers"]),
                wins=float(data["wins"]),
                user_decayed=data["user_decayed"],
                ability_decayed=data["ability_decayed"] if version >= 3 else [],
                lags=data["lags"],
                run=data["run"],
                recent=data["recent"],
                skills=data["skills"],
                items=data["items"],
                times=data["times"],
            )
        except KeyError as missing:
            raise ValueError(f"learner state (version {version}) lacks {missing}") from None


def _migrate_v1(data: dict[str, Any]) -> LearnerState:
    """The version-less layout: ``n`` [attempts, wins], ``ud`` flat decayed pairs, ``last``
    [skill, correct], ``lags``, ``block`` (the run before the last answer), ``s`` {skill:
    [attempts, wins, right streak, wrong streak, last, decayed wins, attempts...]}, ``i``
    {item: [attempts, wins]}, ``t`` {skill: {time, cum, base}}, ``recent`` [[skill, correct]]."""
    try:
        ud = [float(x) for x in data["ud"]]
        lags = [float(x) for x in data["lags"]]
        run: dict[str, Tally] = {}
        last = data.get("last")
        if last is not None:
            block = data.get("block", [0.0, 0.0])
            run[str(int(last[0]))] = Tally(attempts=float(block[0]) + 1.0, wins=float(block[1]) + lags[0])
        skills: dict[str, SkillRecord] = {}
        for key, s in data["s"].items():
            skills[key] = SkillRecord(
                attempts=float(s[0]),
                wins=float(s[1]),
                right_streak=float(s[2]),
                wrong_streak=float(s[3]),
                last=float(s[4]),
                decayed=[[float(s[j]), float(s[j + 1])] for j in range(5, len(s) - 1, 2)],
            )
        return LearnerState(
            answers=float(data["n"][0]),
            wins=float(data["n"][1]),
            user_decayed=[[ud[j], ud[j + 1]] for j in range(0, len(ud) - 1, 2)],
            lags=lags,
            run=run,
            recent=[RecentAnswer(skills=[int(p[0])], correct=float(p[1])) for p in data.get("recent", [])],
            skills=skills,
            items={k: Tally(attempts=float(v[0]), wins=float(v[1])) for k, v in data["i"].items()},
            times={
                k: WindowRecord(time=list(v["time"]), cum=list(v["cum"]), base=float(v["base"]))
                for k, v in data["t"].items()
            },
        )
    except (KeyError, IndexError, TypeError) as err:
        raise ValueError(f"learner state without a version is not the version-1 layout: {err!r}") from None


def as_state(state: LearnerState | dict[str, Any]) -> LearnerState:
    return state if isinstance(state, LearnerState) else LearnerState.from_dict(state)


def _new_skill(spec: FeatureSpec) -> SkillRecord:
    return SkillRecord(
        attempts=0.0,
        wins=0.0,
        right_streak=0.0,
        wrong_streak=0.0,
        last=-1.0,
        decayed=[[0.0, 0.0] for _ in spec.skill_decays],
    )


class LearnerCounters:
    """The same counters for one learner, kept in a ``LearnerState`` and advanced one answer
    at a time (all of the answer's skills at once, as the batch path counts them)."""

    def __init__(self, spec: FeatureSpec, with_windows: bool) -> None:
        self.spec = spec
        self.with_windows = with_windows

    def initial(self) -> LearnerState:
        return LearnerState(
            user_decayed=[[0.0, 0.0] for _ in self.spec.user_decays],
            ability_decayed=[[0.0, 0.0] for _ in self.spec.ability_decays],
        )

    def counts(
        self, state: LearnerState, skill: int, item: int | None, timestamp: float | None
    ) -> HistoryCounts:
        spec = self.spec
        key = str(skill)
        s = state.skills.get(key)
        if s is None:
            s = _new_skill(spec)
        it = state.items.get(str(item)) if item is not None else None
        window = []
        if self.with_windows:
            past = state.times.get(key)
            now = float(timestamp) if timestamp is not None else 0.0
            if past is None:
                window = [(0.0, 0.0) for _ in spec.windows]
            else:
                times, cum = past["time"], past["cum"]
                if times and now < times[-1]:
                    now = times[-1]  # times run forward within a skill, as in the batch path
                for w in spec.windows:
                    i = bisect_left(times, now - w)
                    before = cum[i - 1] if i > 0 else past["base"]
                    window.append((float(len(times) - i), float(cum[-1] - before if times else 0.0)))
        run = state.run.get(key)
        lags = state.lags
        return HistoryCounts(
            skill_attempts=float(s["attempts"]),
            skill_wins=float(s["wins"]),
            user_attempts=float(state.answers),
            user_wins=float(state.wins),
            item_attempts=float(it["attempts"]) if it is not None else 0.0,
            item_wins=float(it["wins"]) if it is not None else 0.0,
            skill_right_streak=float(s["right_streak"]),
            skill_wrong_streak=float(s["wrong_streak"]),
            skill_last=float(s["last"]),
            user_last=float(lags[0]),
            same_skill=1.0 if run is not None else 0.0,
            user_lag2=float(lags[1]),
            user_lag3=float(lags[2]),
            block_attempts=float(run["attempts"]) if run is not None else 0.0,
            block_wins=float(run["wins"]) if run is not None else 0.0,
            skill_decayed=[(float(w), float(d)) for w, d in s["decayed"]],
            user_decayed=[(float(w), float(d)) for w, d in state.user_decayed],
            window=window,
            ability_decayed=(
                [(float(w), float(d)) for w, d in state.ability_decayed]
                if len(state.ability_decayed) == len(spec.ability_decays)
                else [(0.0, 0.0) for _ in spec.ability_decays]  # a state kept before (version 2)
            ),
        )

    def update(
        self,
        state: LearnerState,
        skills: Sequence[int],
        correct: int,
        item: int | None,
        timestamp: float | None,
    ) -> None:
        """Fold one answer on ``skills`` (distinct; a repeated skill is counted once)."""
        spec = self.spec
        o = float(correct)
        run: dict[str, Tally] = {}
        for skill in dict.fromkeys(int(x) for x in skills):
            key = str(skill)
            s = state.skills.get(key)
            if s is None:
                s = state.skills[key] = _new_skill(spec)
            s["attempts"] += 1.0
            s["wins"] += o
            s["right_streak"] = (s["right_streak"] + 1.0) * o
            s["wrong_streak"] = (s["wrong_streak"] + 1.0) * (1.0 - o)
            s["last"] = o
            for pair, lam in zip(s["decayed"], spec.skill_decays, strict=True):
                pair[0] = lam * pair[0] + o
                pair[1] = lam * pair[1] + 1.0
            before = state.run.get(key)
            run[key] = (
                Tally(attempts=before["attempts"] + 1.0, wins=before["wins"] + o)
                if before is not None
                else Tally(attempts=1.0, wins=o)
            )
            if self.with_windows:
                self._add_time(state, key, o, timestamp)
        state.run = run
        for pair, lam in zip(state.user_decayed, spec.user_decays, strict=True):
            pair[0] = lam * pair[0] + o
            pair[1] = lam * pair[1] + 1.0
        if len(state.ability_decayed) != len(spec.ability_decays):
            state.ability_decayed = [[0.0, 0.0] for _ in spec.ability_decays]
        for pair, lam in zip(state.ability_decayed, spec.ability_decays, strict=True):
            pair[0] = lam * pair[0] + o
            pair[1] = lam * pair[1] + 1.0
        lags = state.lags
        lags[0], lags[1], lags[2] = o, lags[0], lags[1]
        state.answers += 1.0
        state.wins += o
        if item is not None and spec.item_counts:
            it = state.items.get(str(item))
            if it is None:
                state.items[str(item)] = Tally(attempts=1.0, wins=o)
            else:
                it["attempts"] += 1.0
                it["wins"] += o

    def _add_time(self, state: LearnerState, key: str, o: float, timestamp: float | None) -> None:
        spec = self.spec
        now = float(timestamp) if timestamp is not None else 0.0
        past = state.times.get(key)
        if past is None:
            past = state.times[key] = WindowRecord(time=[], cum=[], base=0.0)
        times, cum = past["time"], past["cum"]
        if times and now < times[-1]:
            now = times[-1]  # times run forward within a skill, as in the batch path
        times.append(now)
        cum.append((cum[-1] if cum else past["base"]) + o)
        # Forget answers older than the widest window, in one slice once they pile up.
        drop = bisect_left(times, now - max(spec.windows))
        if drop > 32 or drop * 2 > len(times):
            past["base"] = cum[drop - 1]
            del times[:drop]
            del cum[:drop]


def transfer_entries(
    user: NDArray[np.int64],
    skill: NDArray[np.int64],
    correct: FloatArray,
    n_skills: int,
    answer: NDArray[np.int64] | None = None,
) -> tuple[NDArray[np.int64], NDArray[np.int64], FloatArray, FloatArray]:
    """Cross-skill history: for every row and every *other* skill the learner practised
    in an earlier answer, log(1 + wins) and log(1 + fails) on that skill so far.

    Returns (row, other skill, log wins, log fails) entries. A count changes only when its
    skill is practised, so each practice opens a segment of the learner's rows from the
    next answer on, up to the answer that practises the skill again (whose other rows still
    see the old count); the segments are emitted with ``np.repeat`` (no Python loop).
    ``answer`` numbers the answers (contiguous rows of one learner); None: one per row."""
    n = len(user)
    empty_i, empty_f = np.zeros(0, dtype=np.int64), np.zeros(0)
    if n == 0:
        return empty_i, empty_i, empty_f, empty_f
    by_user = np.argsort(user, kind="stable")
    u = user[by_user]
    new_u = np.r_[True, u[1:] != u[:-1]]
    u_start = np.flatnonzero(new_u)
    u_end = np.r_[u_start[1:], n] - 1
    u_group = np.cumsum(new_u) - 1
    sk = skill[by_user].astype(np.int64)
    c = correct[by_user]
    key = u.astype(np.int64) * max(n_skills, 1) + sk
    by_key = np.argsort(key, kind="stable")  # positions in user order, grouped by (learner, skill)
    kk = key[by_key]
    new_k = np.r_[True, kk[1:] != kk[:-1]]
    k_group = np.cumsum(new_k) - 1
    k_start = np.flatnonzero(new_k)
    attempts = (np.arange(n) - k_start[k_group] + 1).astype(np.float64)
    cw = np.cumsum(c[by_key])
    wins = cw - (cw[k_start] - c[by_key][k_start])[k_group]
    is_last = np.r_[new_k[1:], True]
    # next_answer[p]: the first position (in learner order) of the answer after position p's
    if answer is None:
        next_answer = np.arange(1, n + 1)
    else:
        a = answer[by_user]
        boundary = np.flatnonzero(np.r_[a[1:] != a[:-1], True]) + 1
        next_answer = np.repeat(boundary, np.diff(np.r_[0, boundary]))
    seg_start = next_answer[by_key]
    nxt = np.r_[by_key[1:], 0]
    seg_end = np.where(is_last, u_end[u_group[by_key]], next_answer[nxt] - 1)
    length = np.maximum(seg_end - seg_start + 1, 0)
    rep = np.repeat(np.arange(n), length)
    offs = np.arange(int(length.sum())) - np.repeat(np.cumsum(length) - length, length)
    rows = by_user[seg_start[rep] + offs]
    other = sk[by_key][rep]
    log_wins = np.log1p(wins)[rep]
    log_fails = np.log1p(attempts - wins)[rep]
    keep = skill[rows] != other
    return rows[keep], other[keep], log_wins[keep], log_fails[keep]
