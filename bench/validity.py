"""Claim: "ready" means ready. Over simulated learners in worlds not tuned to the product's own
parameters, (1) random guessers almost never meet a skill target and practically never reach
role-ready, (2) learners who already know everything reach role-ready close to the path's
first estimate, (3) for ordinary learners the path's first estimate is close to the answers
they actually need, and (4) the practice policy needs fewer answers and fewer minutes than
OATutor's rule at a matched 30-day retention.

    python -m bench.validity --pack packs/ai_era [--learners 40] [--guessers 1000]
        [--knowers 40] [--guesser-minutes 600] [--seed 0] [--jobs 2]

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
   first estimate for their role (``science/path.plan_path`` of a fresh learner), median
   within 25% of 1.
3. Ordinary learners (``--learners`` per world): the path's first estimate over the answers
   they actually needed, median within 25% of 1 (a learner stopped by the 1,800-minute budget
   counts the answers spent).
4. The policy against OATutor's rule: each is run at several evidence thresholds
   (``THRESHOLD_OFFSETS``: ours at the product's 10 nats and 14; the baseline, whose retention
   moves little with the threshold, at 2, 6, 10, 14 and 18), the same learners at every one;
   mean answers (and minutes) against mean 30-day retention make each policy's curve
   (``science/tradeoff.py``). Matched retention: the baseline's cost read off its curve at
   our default retention where its curve reaches it, else our cost read off our curve at the
   baseline's default retention; a paired percentile bootstrap over learners (1,000
   resamples). "Beats" means the 95% interval of the reduction lies above 0, in answers and
   in minutes; the target is at least 4 of the 5 worlds.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path

from bench._common import Record, record, write_results
from learnloop.content.loader import load_pack
from learnloop.content.models import Pack
from learnloop.science.evidence import EvidenceRule
from learnloop.science.path import plan_path
from learnloop.science.policy import LearnerState, PolicyConfig, curriculum_for_role
from learnloop.science.simulation import Outcome, World, simulate
from learnloop.science.tradeoff import matched_comparison

WORLDS: dict[str, World] = {
    "defaults": World(),
    "slow-guessy": World(p_learn=0.05, guess=0.3, slip=0.15),
    "fast-exact": World(p_learn=0.3, guess=0.1, slip=0.05),
    "no-gating": World(gate=1.0),
    "lessons-teach-nothing": World(p_lesson=0.0),
}
#: evidence thresholds (nats) of each policy's curve, as offsets from the product's (10 nats).
#: The baseline is cheap to simulate and its retention moves little with the threshold, so its
#: curve spans more thresholds, for the curves to overlap in retention
THRESHOLD_OFFSETS: dict[str, tuple[float, ...]] = {
    "ours": (0.0, 4.0),
    "oatutor": (-8.0, -4.0, 0.0, 4.0, 8.0),
}
DATASET = "simulated learners"


def _chunk(args: tuple[str, int, int, int, dict[str, object], tuple[str, ...], float]) -> list[Outcome]:
    pack_path, start, count, seed, world, policies, threshold = args
    return simulate(
        load_pack(Path(pack_path)),
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


def first_estimates(pack: Pack, rule: EvidenceRule) -> dict[str, float]:
    """The path's estimate of answers to each role for a fresh learner."""
    cfg = PolicyConfig(evidence=rule)
    return {r.id: plan_path(curriculum_for_role(pack, r.id), LearnerState(), cfg).items for r in pack.roles}


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
    estimate = first_estimates(pack, EvidenceRule())
    ratios = [o.items / estimate[o.role_id] for o in outcomes if estimate[o.role_id] > 0]
    protocol = (
        f"{n} learners who know every skill (recently reviewed), practising under the policy; "
        f"answers to role-ready over the path's first estimate for a fresh learner; seed {seed + 2000}"
    )
    ds = f"{DATASET}, learners who know everything"
    return [
        record(ds, protocol, "ours", "reached_share", sum(o.reached for o in outcomes) / n),
        record(ds, protocol, "ours", "median_answers", _median([o.items for o in outcomes])),
        record(ds, protocol, "ours", "median_answers_over_first_estimate", _median(ratios)),
        record(ds, protocol, "target", "median_answers_over_first_estimate_within", "0.75..1.25"),
    ]


def world_records(
    pack_path: Path, pack: Pack, name: str, world: World, n: int, seed: int, jobs: int
) -> tuple[list[Record], bool]:
    base = EvidenceRule().threshold
    runs: dict[str, dict[float, list[tuple[float, float, float]]]] = {"ours": {}, "oatutor": {}}
    default: list[Outcome] = []
    for offset in sorted(set(THRESHOLD_OFFSETS["ours"]) | set(THRESHOLD_OFFSETS["oatutor"])):
        policies = tuple(p for p in runs if offset in THRESHOLD_OFFSETS[p])
        outcomes = run_many(pack_path, n, seed, jobs, world, policies, base + offset)
        if offset == 0.0:
            default = outcomes
        for policy in policies:
            rows = sorted((o for o in outcomes if o.policy == policy), key=lambda o: o.learner)
            runs[policy][offset] = [(float(o.items), o.retention, o.minutes) for o in rows]
    ds = f"{DATASET}, world {name}"
    protocol = (
        f"{n} learners x (ours, oatutor), seed {seed}, roles by turns; world p_learn={world.p_learn}, "
        f"guess={world.guess}, slip={world.slip}, gate={world.gate}, p_lesson={world.p_lesson}; "
        f"stop at role-ready (the product's evidence rule) or {world.max_minutes:g} study minutes"
    )
    estimate = first_estimates(pack, EvidenceRule())
    out: list[Record] = []
    for policy in ("ours", "oatutor"):
        rows = [o for o in default if o.policy == policy]
        out += [
            record(ds, protocol, policy, "reached_share", sum(o.reached for o in rows) / len(rows)),
            record(ds, protocol, policy, "median_answers", _median([o.items for o in rows])),
            record(ds, protocol, policy, "median_minutes", _median([o.minutes for o in rows])),
            record(ds, protocol, policy, "retention_30d", statistics.mean(o.retention for o in rows)),
        ]
    ours = [o for o in default if o.policy == "ours"]
    ratios = [estimate[o.role_id] / o.items for o in ours if o.items > 0]
    out.append(record(ds, protocol, "ours", "median_first_estimate_over_answers", _median(ratios)))
    beats = True
    thresholds = {p: ", ".join(f"{base + x:g}" for x in THRESHOLD_OFFSETS[p]) for p in runs}
    curve_protocol = (
        protocol + f"; curves over evidence thresholds {thresholds['ours']} nats (ours) and "
        f"{thresholds['oatutor']} nats (oatutor); matched where a curve reaches the other's "
        "default retention: the baseline's cost read off its curve at our default retention, "
        "else ours read off our curve at the baseline's default retention (NaN: neither curve "
        "reaches); 95% paired percentile bootstrap over learners, 1000 resamples"
    )
    for measure in ("items", "minutes"):
        cmp = matched_comparison(runs, "ours", "oatutor", measure=measure)
        label = "answers" if measure == "items" else "minutes"
        if cmp.reduction_at_policy_retention == cmp.reduction_at_policy_retention:
            matched, reduction, (low, high) = (
                "ours",
                cmp.reduction_at_policy_retention,
                cmp.ci_at_policy_retention,
            )
        else:
            matched = "oatutor"
            reduction, (low, high) = cmp.reduction_at_baseline_retention, cmp.ci_at_baseline_retention
        won = low == low and low > 0  # NaN bounds (the curve does not reach) never win
        beats = beats and won
        method = f"ours vs oatutor, {label}"
        out += [
            record(ds, curve_protocol, method, "matched_at_retention_of", matched),
            record(ds, curve_protocol, method, "reduction_at_matched_retention", reduction),
            record(ds, curve_protocol, method, "ci_low", low),
            record(ds, curve_protocol, method, "ci_high", high),
            record(ds, curve_protocol, method, "beats", int(won)),
        ]
    return out, beats


def run(args: argparse.Namespace) -> Path:
    pack_path = Path(args.pack)
    pack = load_pack(pack_path)
    records: list[Record] = []
    # written after every part, so a long run leaves what it has measured
    records += knower_records(pack_path, pack, args.knowers, args.seed, args.jobs)
    write_results("validity", records, ["fsrs", "numpy"])
    wins = 0
    ordinary: list[float] = []
    for name in args.worlds:
        world = WORLDS[name]
        recs, beats = world_records(pack_path, pack, name, world, args.learners, args.seed, args.jobs)
        records += recs
        write_results("validity", records, ["fsrs", "numpy"])
        wins += int(beats)
        ordinary += [
            float(r["value"])  # type: ignore[arg-type]
            for r in recs
            if r["metric"] == "median_first_estimate_over_answers"
        ]
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
