"""A learner's history as counts, for the logistic knowledge-tracing family.

For every answer, the counters describe what happened *before* it: attempts and successes
on the skill, the item and overall (PFA, Pavlik et al. 2009; Best-LR's "sc"/"tc"/"ic"
counts, Gervet et al. 2020), exponentially decayed counts (recency-weighted PFA,
Galyardt & Goldin 2015), streaks and the last answer, and attempts within time windows
(DAS3H, Choffin et al. 2019). ``history_counts`` computes them for a whole log at once;
``LearnerCounters`` keeps the same numbers for one learner, one answer at a time, so the
online path reproduces the batch features exactly (both feed ``dense_features``).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Union

import numpy as np
from numpy.typing import NDArray

from learnloop.science.kt.base import ResponseLog, sequence_key
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


def stack_counts(rows: Sequence[HistoryCounts]) -> HistoryCounts:
    """One learner's counters for several skills (plain floats each) as one set of arrays."""

    def col(values: Sequence[Num]) -> FloatArray:
        return np.asarray(values, dtype=np.float64)

    def pairs(get: Callable[[HistoryCounts], Sequence[tuple[Num, Num]]]) -> list[tuple[Num, Num]]:
        width = len(get(rows[0])) if rows else 0
        return [(col([get(r)[j][0] for r in rows]), col([get(r)[j][1] for r in rows])) for j in range(width)]

    scalar = [
        f.name for f in fields(HistoryCounts) if f.name not in ("skill_decayed", "user_decayed", "window")
    ]
    return HistoryCounts(
        **{name: col([getattr(r, name) for r in rows]) for name in scalar},
        skill_decayed=pairs(lambda r: r.skill_decayed),
        user_decayed=pairs(lambda r: r.user_decayed),
        window=pairs(lambda r: r.window),
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
    packed: PackedSequences, correct: FloatArray, decays: tuple[float, ...], streaks: bool
) -> tuple[list[tuple[FloatArray, FloatArray]], FloatArray, FloatArray, FloatArray]:
    """One pass over packed sequences: decayed wins/attempts per decay, right and wrong
    streaks and the last answer, each as seen before the row.

    Decayed counts follow R-PFA (Galyardt & Goldin 2015): x_t = lam * x_{t-1} + o_{t-1}."""
    n = len(packed.order)
    o = correct[packed.order]
    dec = [(np.zeros(n), np.zeros(n)) for _ in decays]
    right = np.zeros(n)
    wrong = np.zeros(n)
    last = np.full(n, -1.0)
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
        last[a:b] = prev_o
    out_dec = []
    for dw, dn in dec:
        w, d = np.empty(n), np.empty(n)
        w[packed.order], d[packed.order] = dw, dn
        out_dec.append((w, d))
    r, wr, ls = np.empty(n), np.empty(n), np.empty(n)
    r[packed.order], wr[packed.order], ls[packed.order] = right, wrong, last
    return out_dec, r, wr, ls


def _scan_learner(
    packed: PackedSequences, skill: NDArray[np.int64], correct: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Over each learner's rows: same skill as the previous answer, the 2nd and 3rd most
    recent answers (-1 when absent), and attempts and wins in the current same-skill run."""
    n = len(packed.order)
    order = packed.order
    o = correct[order]
    sk = skill[order]
    same = np.zeros(n)
    lag1 = np.full(n, -1.0)
    lag2 = np.full(n, -1.0)
    lag3 = np.full(n, -1.0)
    block_a = np.zeros(n)
    block_w = np.zeros(n)
    offsets, sizes = packed.offsets, packed.sizes
    for t in range(1, packed.n_steps):
        a, b, pa = int(offsets[t]), int(offsets[t + 1]), int(offsets[t - 1])
        pb = pa + int(sizes[t])
        eq = (sk[a:b] == sk[pa:pb]).astype(np.float64)
        same[a:b] = eq
        lag1[a:b] = o[pa:pb]
        lag2[a:b] = lag1[pa:pb]
        lag3[a:b] = lag2[pa:pb]
        block_a[a:b] = (block_a[pa:pb] + 1.0) * eq
        block_w[a:b] = (block_w[pa:pb] + o[pa:pb]) * eq
    out = [np.empty(n) for _ in range(5)]
    for dst, src in zip(out, (same, lag2, lag3, block_a, block_w), strict=True):
        dst[order] = src
    return out[0], out[1], out[2], out[3], out[4]


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
    """Counters before every row of ``log``, per learner in row order."""
    correct = log.correct.astype(np.float64)
    user_skill = sequence_key(log.user, log.skill, n_skills)
    skill_attempts, skill_wins = _exclusive_counts(user_skill, correct)
    user_attempts, user_wins = _exclusive_counts(log.user.astype(np.int64), correct)
    n = len(log)
    if log.item is not None and spec.item_counts:
        n_items = int(log.item.max()) + 1 if n else 1
        item_attempts, item_wins = _exclusive_counts(sequence_key(log.user, log.item, n_items), correct)
    else:
        item_attempts, item_wins = np.zeros(n), np.zeros(n)
    skill_packed = pack_sequences(user_skill)
    s_dec, right, wrong, s_last = _scan_sequences(skill_packed, correct, spec.skill_decays, spec.streaks)
    user_packed = pack_sequences(log.user.astype(np.int64))
    u_dec, _, _, u_last = _scan_sequences(user_packed, correct, spec.user_decays, False)
    same, lag2, lag3, block_a, block_w = _scan_learner(user_packed, log.skill.astype(np.int64), correct)
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
        block_attempts=block_a,
        block_wins=block_w,
        skill_decayed=s_dec,
        user_decayed=u_dec,
        window=window,
    )


# -- online --------------------------------------------------------------------------------------


class LearnerCounters:
    """The same counters for one learner, kept in a JSON-serialisable dict.

    Layout: ``{"n": [attempts, wins], "ud": [decayed wins, attempts per user decay...],
    "last": [skill, correct] | None, "lags": [last three answers, -1 when absent],
    "block": [attempts, wins] of the same-skill run up to the last answer, "s": {skill: [attempts, wins, right streak, wrong
    streak, last, decayed wins, attempts per skill decay...]}, "i": {item: [attempts,
    wins]}, "t": {skill: {"time": [...], "cum": [wins so far...], "base": wins before}}}`` (keys are strings, as JSON needs)."""

    def __init__(self, spec: FeatureSpec, with_windows: bool) -> None:
        self.spec = spec
        self.with_windows = with_windows

    def initial(self) -> dict[str, Any]:
        return {
            "n": [0.0, 0.0],
            "ud": [0.0] * (2 * len(self.spec.user_decays)),
            "last": None,
            "lags": [-1.0, -1.0, -1.0],
            "block": [0.0, 0.0],
            "s": {},
            "i": {},
            "t": {},
        }

    def counts(
        self, state: dict[str, Any], skill: int, item: int | None, timestamp: float | None
    ) -> HistoryCounts:
        spec = self.spec
        s = state["s"].get(str(skill))
        if s is None:
            s = [0.0, 0.0, 0.0, 0.0, -1.0] + [0.0] * (2 * len(spec.skill_decays))
        it = state["i"].get(str(item), [0.0, 0.0]) if item is not None else [0.0, 0.0]
        last = state["last"]

        def a(x: float) -> float:
            return float(x)

        window = []
        if self.with_windows:
            past = state["t"].get(str(skill))
            now = float(timestamp) if timestamp is not None else 0.0
            if past is None:
                window = [(a(0.0), a(0.0)) for _ in spec.windows]
            else:
                times, cum = past["time"], past["cum"]
                if times and now < times[-1]:
                    now = times[-1]  # times run forward within a skill, as in the batch path
                for w in spec.windows:
                    i = bisect_left(times, now - w)
                    before = cum[i - 1] if i > 0 else past["base"]
                    window.append((a(len(times) - i), a(cum[-1] - before if times else 0.0)))
        ud = state["ud"]
        lags = state["lags"]
        same = last is not None and int(last[0]) == skill
        return HistoryCounts(
            skill_attempts=a(s[0]),
            skill_wins=a(s[1]),
            user_attempts=a(state["n"][0]),
            user_wins=a(state["n"][1]),
            item_attempts=a(it[0]),
            item_wins=a(it[1]),
            skill_right_streak=a(s[2]),
            skill_wrong_streak=a(s[3]),
            skill_last=a(s[4]),
            user_last=a(-1.0 if last is None else last[1]),
            same_skill=a(1.0 if same else 0.0),
            user_lag2=a(lags[1]),
            user_lag3=a(lags[2]),
            block_attempts=a(state["block"][0] + 1.0 if same else 0.0),
            block_wins=a(state["block"][1] + lags[0] if same else 0.0),
            skill_decayed=[(a(s[5 + 2 * j]), a(s[6 + 2 * j])) for j in range(len(spec.skill_decays))],
            user_decayed=[(a(ud[2 * j]), a(ud[2 * j + 1])) for j in range(len(spec.user_decays))],
            window=window,
        )

    def update(
        self, state: dict[str, Any], skill: int, correct: int, item: int | None, timestamp: float | None
    ) -> None:
        spec = self.spec
        o = float(correct)
        key = str(skill)
        s = state["s"].get(key)
        if s is None:
            s = [0.0, 0.0, 0.0, 0.0, -1.0] + [0.0] * (2 * len(spec.skill_decays))
            state["s"][key] = s
        s[0] += 1.0
        s[1] += o
        s[2] = (s[2] + 1.0) * o
        s[3] = (s[3] + 1.0) * (1.0 - o)
        s[4] = o
        for j, lam in enumerate(spec.skill_decays):
            s[5 + 2 * j] = lam * s[5 + 2 * j] + o
            s[6 + 2 * j] = lam * s[6 + 2 * j] + 1.0
        ud = state["ud"]
        for j, lam in enumerate(spec.user_decays):
            ud[2 * j] = lam * ud[2 * j] + o
            ud[2 * j + 1] = lam * ud[2 * j + 1] + 1.0
        last = state["last"]
        block = state["block"]
        if last is not None and int(last[0]) == skill:
            # the run before this answer, as the batch path sees it at this row
            block[0], block[1] = block[0] + 1.0, block[1] + state["lags"][0]
        else:
            block[0], block[1] = 0.0, 0.0
        lags = state["lags"]
        lags[0], lags[1], lags[2] = o, lags[0], lags[1]
        state["n"][0] += 1.0
        state["n"][1] += o
        state["last"] = [skill, o]
        if item is not None and spec.item_counts:
            it = state["i"].setdefault(str(item), [0.0, 0.0])
            it[0] += 1.0
            it[1] += o
        if self.with_windows:
            now = float(timestamp) if timestamp is not None else 0.0
            past = state["t"].setdefault(key, {"time": [], "cum": [], "base": 0.0})
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
    user: NDArray[np.int64], skill: NDArray[np.int64], correct: FloatArray, n_skills: int
) -> tuple[NDArray[np.int64], NDArray[np.int64], FloatArray, FloatArray]:
    """Cross-skill history: for every row and every *other* skill the learner practised
    before it, log(1 + wins) and log(1 + fails) on that skill so far.

    Returns (row, other skill, log wins, log fails) entries. A count changes only when its
    skill is practised, so each practice opens a segment of the learner's later rows that
    carry the new value; the segments are emitted with ``np.repeat`` (no Python loop)."""
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
    seg_start = by_key + 1
    nxt = np.r_[by_key[1:], 0]
    seg_end = np.where(is_last, u_end[u_group[by_key]], nxt - 1)
    length = np.maximum(seg_end - seg_start + 1, 0)
    rep = np.repeat(np.arange(n), length)
    offs = np.arange(int(length.sum())) - np.repeat(np.cumsum(length) - length, length)
    rows = by_user[seg_start[rep] + offs]
    other = sk[by_key][rep]
    log_wins = np.log1p(wins)[rep]
    log_fails = np.log1p(attempts - wins)[rep]
    keep = skill[rows] != other
    return rows[keep], other[keep], log_wins[keep], log_fails[keep]
