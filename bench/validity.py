"""Claim: "ready" means ready. Over simulated learners in worlds not tuned to the product's own
parameters, (1) random guessers almost never meet a skill target and practically never reach
role-ready, (2) learners who already know everything reach role-ready close to the path's
first estimate, (3) for ordinary learners the path's first estimate is close to the answers
they actually need, and (4) the practice policy needs fewer answers and fewer minutes than
OATutor's rule at a matched 30-day retention.

    python -m bench.validity --pack packs/ai_era [--learners 40] [--guessers 1000]
        [--knowers 40] [--guesser-minutes 600] [--worlds NAME ...] [--seed 0] [--jobs 2]

Simulated learners (``learnloop.science.simulation``) on the pack given on the command line;
learner i works toward role i mod (number of roles). A target counts as met by the product's
rule (``science/evidence.py``: P(known) at the target, right answers on 4 distinct items, a
text or code item where the skill has one, and evidence against guessing), the same rule for
every policy.

Worlds (the true learner model; the product estimates with its defaults, learn 0.15, guess
from the item kind, slip 0.1, and is not told the world):

- ``defaults``: the simulation's default world (learn 0.15, guess 0.2, slip 0.1, gate 0.2,
  lessons teach with 0.3);
- ``slow-guessy``: learn 0.05, guess 0.3, slip 0.15;
- ``fast-exact``: learn 0.3, guess 0.1, slip 0.05;
- ``no-gating``: prerequisites do not gate learning (gate 1);
- ``lessons-teach-nothing``: p_lesson 0.

Targets and how each is measured:

1. Random guessers (``--guessers``, default world's guessing, nothing ever learnt) practise
   under the policy for ``--guesser-minutes`` of study: the share that meets any skill target
   at any moment (< 1%) and the share that reaches role-ready (< 0.1%).
2. Learners who already know every skill (``--knowers``): answers to role-ready over the path's
   first estimate for their role. Before any answer a learner who knows everything looks like
   any fresh learner, so both see the same page (``science/path.plan_path`` of a fresh
   learner): the expected answers over the product's prior, and, as the low end of the range,
   the answers if every skill is already known (``items_if_known``: the same evidence rule
   with P(known) = 1). The knowers are held to the low end: median within 25% of 1; their
   ratio to the expected answers is reported beside it.
3. Ordinary learners (``--learners`` per world): the path's first estimate (the expected
   answers) over the answers they actually needed, median within 25% of 1 (a learner stopped
   by the 1,800-minute budget counts the answers spent).
4. The policy against OATutor's rule: each is run at several evidence thresholds
   (``THRESHOLD_OFFSETS`` around the product's 10 nats; the baseline, cheap to simulate and
   with a higher retention at equal thresholds, one step lower too), the same learners at
   every one; mean answers (and minutes) against mean 30-day retention make each policy's
   curve. Matched retention: one level, fixed from all learners, that both curves span (ours
   at the default threshold where the baseline's curve spans it, else the baseline's default
   where ours does, else the middle of the common range); each policy's mean cost is read off
   its curve there by linear interpolation in retention (outside a resample's curve, its
   nearest end). Paired percentile bootstrap over learners (1,000 resamples, the same people
   for both policies at every threshold), so the interval is defined whenever the curves
   share a retention. "Beats" means the 95% interval of the reduction lies above 0, in
   answers and in minutes; the target is at least 4 of the 5 worlds.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from bench._common import Record, record, write_results
from learnloop.content.loader import load_pack
from learnloop.content.models import Pack
from learnloop.science.evidence import EvidenceRule
from learnloop.science.path import plan_path
from learnloop.science.policy import LearnerState, PolicyConfig, curriculum_for_role
from learnloop.science.simulation import Outcome, World, simulate

WORLDS: dict[str, World] = {
    "defaults": World(),
    "slow-guessy": World(p_learn=0.05, guess=0.3, slip=0.15),
    "fast-exact": World(p_learn=0.3, guess=0.1, slip=0.05),
    "no-gating": World(gate=1.0),
    "lessons-teach-nothing": World(p_lesson=0.0),
}
#: evidence thresholds (nats) of each policy's curve, as offsets from the product's (10 nats),
#: the same learners at every point. The baseline is cheap to simulate and its retention sits
#: above ours at equal thresholds, so its curve reaches one step lower
THRESHOLD_OFFSETS: dict[str, tuple[float, ...]] = {
    "ours": (0.0, 5.0),
    "oatutor": (-6.0, -3.0, 0.0, 3.0, 6.0),
}
RESAMPLES = 1000
DATASET = "simulated learners"


@lru_cache(maxsize=2)
def _pack(pack_path: str) -> Pack:
    """The pack, loaded once per worker process (loading validates every file)."""
    return load_pack(Path(pack_path))


def _chunk(args: tuple[str, int, int, int, dict[str, object], tuple[str, ...], float]) -> list[Outcome]:
    pack_path, start, count, seed, world, policies, threshold = args
    return simulate(
        _pack(pack_path),
        policies=policies,
        learners=count,
        seed=seed,
        world=World(**world),  # type: ignore[arg-type]
        learner_offset=start,
        rule=EvidenceRule(threshold=threshold),
    )


def run_many(
    pack_path: Path,
    learners: int,
    seed: int,
    jobs: int,
    world: World,
    policies: Sequence[str],
    threshold: float,
) -> list[Outcome]:
    size = max(1, -(-learners // (jobs * 4)))
    tasks = [
        (str(pack_path), start, min(size, learners - start), seed, asdict(world), tuple(policies), threshold)
        for start in range(0, learners, size)
    ]
    if jobs <= 1:
        return [o for t in tasks for o in _chunk(t)]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        return [o for chunk in pool.map(_chunk, tasks) for o in chunk]


def first_plans(pack: Pack, rule: EvidenceRule) -> dict[str, tuple[float, float]]:
    """What the path shows a fresh learner for each role, before any answer: (expected answers
    over the product's prior, answers if every skill is already known). A learner who knows
    everything looks like any fresh learner until they answer, so both get the same page."""
    cfg = PolicyConfig(evidence=rule)
    out = {}
    for r in pack.roles:
        plan = plan_path(curriculum_for_role(pack, r.id), LearnerState(), cfg)
        out[r.id] = (plan.items, plan.items_if_known)
    return out


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def guesser_records(pack_path: Path, n: int, minutes: float, seed: int, jobs: int) -> list[Record]:
    world = replace(
        World(), p_learn=0.0, p_lesson=0.0, prior_known_root=0.0, prior_known_other=0.0, max_minutes=minutes
    )
    outcomes = run_many(pack_path, n, seed + 1000, jobs, world, ("ours",), EvidenceRule().threshold)
    protocol = (
        f"{n} random guessers (nothing known or ever learnt; world guess rate {world.guess}, "
        f"less for numbers, text and code), each practising under the policy for {minutes:g} "
        f"study minutes; seed {seed + 1000}"
    )
    any_target = sum(o.targets_met_max > 0 for o in outcomes) / n
    ready = sum(o.reached for o in outcomes) / n
    return [
        record(f"{DATASET}, random guessers", protocol, "ours", "share_meeting_any_target", any_target),
        record(f"{DATASET}, random guessers", protocol, "ours", "share_role_ready", ready),
        record(
            f"{DATASET}, random guessers",
            protocol,
            "ours",
            "mean_answers",
            statistics.mean(o.items for o in outcomes),
        ),
        record(f"{DATASET}, random guessers", protocol, "target", "share_meeting_any_target_below", 0.01),
        record(f"{DATASET}, random guessers", protocol, "target", "share_role_ready_below", 0.001),
    ]


def knower_records(pack_path: Path, pack: Pack, n: int, seed: int, jobs: int) -> list[Record]:
    world = replace(World(), prior_known_root=1.0, prior_known_other=1.0)
    outcomes = run_many(pack_path, n, seed + 2000, jobs, world, ("ours",), EvidenceRule().threshold)
    plans = first_plans(pack, EvidenceRule())
    low = [o.items / plans[o.role_id][1] for o in outcomes if plans[o.role_id][1] > 0]
    expected = [o.items / plans[o.role_id][0] for o in outcomes if plans[o.role_id][0] > 0]
    protocol = (
        f"{n} learners who know every skill (recently reviewed), practising under the policy; "
        "answers to role-ready over the path's first estimate for their role (the page a fresh "
        "learner sees: the answers if every skill is already known, and the expected answers "
        f"over the product's prior); seed {seed + 2000}"
    )
    ds = f"{DATASET}, learners who know everything"
    return [
        record(ds, protocol, "ours", "reached_share", sum(o.reached for o in outcomes) / n),
        record(ds, protocol, "ours", "median_answers", _median([o.items for o in outcomes])),
        record(ds, protocol, "ours", "median_answers_over_first_estimate_if_known", _median(low)),
        record(ds, protocol, "ours", "median_answers_over_first_estimate_expected", _median(expected)),
        record(ds, protocol, "target", "median_answers_over_first_estimate_if_known_within", "0.75..1.25"),
    ]


Rows = list[tuple[float, float, float]]  # per learner: (answers, 30-day retention, minutes)


def _curve(rows_by_threshold: dict[float, Rows], sample: Sequence[int]) -> list[tuple[float, float, float]]:
    """(mean retention, mean answers, mean minutes) at each threshold over the sampled learners."""
    out = []
    for _t, rows in sorted(rows_by_threshold.items()):
        chosen = [rows[i] for i in sample]
        out.append(
            (
                sum(r[1] for r in chosen) / len(chosen),
                sum(r[0] for r in chosen) / len(chosen),
                sum(r[2] for r in chosen) / len(chosen),
            )
        )
    return out


def cost_at(points: Sequence[tuple[float, float, float]], retention: float, column: int) -> float:
    """Mean cost (``column`` 1: answers, 2: minutes) at ``retention``: linear interpolation over
    the curve's points in order of retention; outside them, the nearest end's cost."""
    ordered = sorted(points)
    xs = [p[0] for p in ordered]
    ys = [p[column] for p in ordered]
    return float(np.interp(retention, xs, ys))


def common_retention(
    ours: Sequence[tuple[float, float, float]],
    base: Sequence[tuple[float, float, float]],
    ours_default: float,
    base_default: float,
) -> tuple[float, str]:
    """The retention both policies are compared at (over all learners): ours at our default
    threshold where the baseline's curve spans it, else the baseline's default where ours spans
    it, else the middle of the range both curves span; NaN when they span none in common."""
    lo = max(min(p[0] for p in ours), min(p[0] for p in base))
    hi = min(max(p[0] for p in ours), max(p[0] for p in base))
    if lo <= ours_default <= hi:
        return ours_default, "ours at the default threshold"
    if lo <= base_default <= hi:
        return base_default, "oatutor at the default threshold"
    if lo <= hi:
        return (lo + hi) / 2, "middle of the retention both curves span"
    return math.nan, "the curves span no retention in common"


def matched(runs: dict[str, dict[float, Rows]], measure: str, seed: int) -> dict[str, float | str]:
    """Ours against oatutor at a common 30-day retention: the reduction of mean ``measure``
    ("items" or "minutes") read off both curves at that retention, with a paired percentile
    bootstrap over learners (the same resampled people for both policies and every threshold;
    the retention level is fixed from all learners)."""
    column = 1 if measure == "items" else 2
    n = len(runs["ours"][0.0])
    everyone = list(range(n))
    ours, base = _curve(runs["ours"], everyone), _curve(runs["oatutor"], everyone)
    default = sorted(runs["ours"]).index(0.0)
    level, how = common_retention(ours, base, ours[default][0], base[sorted(runs["oatutor"]).index(0.0)][0])
    if math.isnan(level):
        return {"retention": level, "how": how, "reduction": math.nan, "low": math.nan, "high": math.nan}
    point = 1 - cost_at(ours, level, column) / cost_at(base, level, column)
    rng = random.Random(seed)
    draws = []
    for _ in range(RESAMPLES):
        sample = [int(rng.random() * n) for _ in range(n)]
        a = cost_at(_curve(runs["ours"], sample), level, column)
        b = cost_at(_curve(runs["oatutor"], sample), level, column)
        draws.append(1 - a / b)
    low, high = np.percentile(draws, [2.5, 97.5])
    return {"retention": level, "how": how, "reduction": point, "low": float(low), "high": float(high)}


def world_records(
    pack_path: Path, pack: Pack, name: str, world: World, n: int, seed: int, jobs: int
) -> tuple[list[Record], bool, float]:
    base = EvidenceRule().threshold
    runs: dict[str, dict[float, Rows]] = {"ours": {}, "oatutor": {}}
    reached: dict[tuple[str, float], float] = {}
    default: list[Outcome] = []
    for offset in sorted(set(THRESHOLD_OFFSETS["ours"]) | set(THRESHOLD_OFFSETS["oatutor"])):
        policies = tuple(p for p in runs if offset in THRESHOLD_OFFSETS[p])
        outcomes = run_many(pack_path, n, seed, jobs, world, policies, base + offset)
        if offset == 0.0:
            default = outcomes
        for policy in policies:
            rows = sorted((o for o in outcomes if o.policy == policy), key=lambda o: o.learner)
            runs[policy][offset] = [(float(o.items), o.retention, o.minutes) for o in rows]
            reached[(policy, offset)] = sum(o.reached for o in rows) / len(rows)
    ds = f"{DATASET}, world {name}"
    protocol = (
        f"{n} learners x (ours, oatutor), seed {seed}, roles by turns; world p_learn={world.p_learn}, "
        f"guess={world.guess}, slip={world.slip}, gate={world.gate}, p_lesson={world.p_lesson}; "
        f"stop at role-ready (the product's evidence rule) or {world.max_minutes:g} study minutes"
    )
    plans = first_plans(pack, EvidenceRule())
    out: list[Record] = []
    for policy in ("ours", "oatutor"):
        rows = [o for o in default if o.policy == policy]
        out += [
            record(ds, protocol, policy, "reached_share", sum(o.reached for o in rows) / len(rows)),
            record(ds, protocol, policy, "median_answers", _median([o.items for o in rows])),
            record(ds, protocol, policy, "median_minutes", _median([o.minutes for o in rows])),
            record(ds, protocol, policy, "mean_lessons", statistics.mean(o.lessons for o in rows)),
            record(ds, protocol, policy, "retention_30d", statistics.mean(o.retention for o in rows)),
        ]
    ours = [o for o in default if o.policy == "ours"]
    ratios = [plans[o.role_id][0] / o.items for o in ours if o.items > 0]
    ratio = _median(ratios)
    out.append(record(ds, protocol, "ours", "median_first_estimate_over_answers", ratio))
    thresholds = {p: ", ".join(f"{base + x:g}" for x in THRESHOLD_OFFSETS[p]) for p in runs}
    curve_ds = f"{ds}, answers against retention"
    curve_protocol = (
        protocol + f"; curves over evidence thresholds {thresholds['ours']} nats (ours) and "
        f"{thresholds['oatutor']} nats (oatutor), the same learners at every point"
    )
    for policy in runs:
        for offset, (ret, items, minutes) in zip(
            sorted(runs[policy]), _curve(runs[policy], list(range(n))), strict=True
        ):
            method = f"{policy}, threshold {base + offset:g}"
            out += [
                record(curve_ds, curve_protocol, method, "answers_mean", items),
                record(curve_ds, curve_protocol, method, "minutes_mean", minutes),
                record(curve_ds, curve_protocol, method, "retention_30d", ret),
                record(curve_ds, curve_protocol, method, "reached_share", reached[(policy, offset)]),
            ]
    matched_protocol = (
        curve_protocol + "; matched at one 30-day retention level, fixed from all learners: "
        "ours at the default threshold where the baseline's curve spans it, else the "
        "baseline's default where ours spans it, else the middle of the range both span; each "
        "policy's mean cost read off its curve by linear interpolation in retention (the "
        f"nearest end outside it); 95% paired percentile bootstrap over learners, {RESAMPLES} resamples"
    )
    beats = True
    for measure in ("items", "minutes"):
        m = matched(runs, measure, seed)
        label = "answers" if measure == "items" else "minutes"
        won = bool(m["low"] == m["low"] and float(m["low"]) > 0)  # NaN bounds never win
        beats = beats and won
        method = f"ours vs oatutor, {label}"
        out += [
            record(ds, matched_protocol, method, "matched_retention_30d", m["retention"]),
            record(ds, matched_protocol, method, "matched_at", m["how"]),
            record(ds, matched_protocol, method, "reduction_at_matched_retention", m["reduction"]),
            record(ds, matched_protocol, method, "ci_low", m["low"]),
            record(ds, matched_protocol, method, "ci_high", m["high"]),
            record(ds, matched_protocol, method, "beats", int(won)),
        ]
    return out, beats, ratio


def run(args: argparse.Namespace) -> Path:
    pack_path = Path(args.pack)
    pack = _pack(str(pack_path))  # loaded before the workers fork, so they share it
    records: list[Record] = []
    # written after every part, so a long run leaves what it has measured
    records += knower_records(pack_path, pack, args.knowers, args.seed, args.jobs)
    write_results("validity", records, ["fsrs", "numpy"])
    wins = 0
    ordinary: list[float] = []
    for name in args.worlds:
        world = WORLDS[name]
        recs, beats, ratio = world_records(pack_path, pack, name, world, args.learners, args.seed, args.jobs)
        records += recs
        write_results("validity", records, ["fsrs", "numpy"])
        wins += int(beats)
        ordinary.append(ratio)
    records += guesser_records(pack_path, args.guessers, args.guesser_minutes, args.seed, args.jobs)
    summary = f"{DATASET}, summary"
    records += [
        record(
            summary,
            f"worlds where ours beats oatutor in answers and minutes, of {len(args.worlds)} run",
            "ours",
            "worlds_won",
            wins,
        ),
        record(summary, "target", "target", "worlds_won_at_least", 4),
        record(
            summary,
            "median over worlds of the median first estimate / answers needed (ordinary learners)",
            "ours",
            "first_estimate_over_answers",
            _median(ordinary),
        ),
        record(
            summary,
            f"worlds where the median first estimate / answers needed is within 0.75..1.25, of {len(args.worlds)} run",
            "ours",
            "worlds_estimate_within_25pct",
            sum(0.75 <= r <= 1.25 for r in ordinary),
        ),
    ]
    path = write_results("validity", records, ["fsrs", "numpy"])
    for r in records:
        print(f"{r['dataset'][-38:]:<38} {r['method']:<28} {r['metric']:<40} {r['value']}")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pack", required=True, help="content pack folder (e.g. packs/ai_era)")
    parser.add_argument("--learners", type=int, default=40, help="ordinary learners per world")
    parser.add_argument("--guessers", type=int, default=1000)
    parser.add_argument("--guesser-minutes", type=float, default=600.0)
    parser.add_argument("--knowers", type=int, default=40)
    parser.add_argument("--worlds", nargs="+", default=list(WORLDS), choices=list(WORLDS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    if not Path(args.pack).is_dir():
        parser.error(f"{args.pack}: not a content pack folder")
    run(args)


if __name__ == "__main__":
    main()
