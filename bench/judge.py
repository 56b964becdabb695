"""Claim: the code judge contains every red-team attack, and a submission is judged in
p95 <= 1.5 s on 2 cores, measured against the runner it replaced, in the same run.

    python -m bench.judge --pack packs/ai_era [--repeat 5] [--concurrent 40]

Runners:

- ``learnloop.judge``: ``learnloop.sandbox`` (bubblewrap, cases sent one at a time, the
  comparison in the judge's process);
- ``legacy.audit_hook``: ``bench/legacy_code_runner.py``, the runner before it (a child
  interpreter with an audit hook, tests in the submission's process). Its tests are generated
  from the same cases (one ``test_<case>`` function each, comparing with ``==`` and
  ``math.isclose``), so both runners do the same work.

Containment: every attack of ``bench/judge_attacks.py`` (the list the red-team tests use) runs
against each runner; an attack is contained when it is graded wrong (or refused with a
message), leaves the canary file as it was, creates no file outside the sandbox, reaches no
host socket, shows the learner no host secret and no hidden case, and leaves no process
behind. The checks look at the host from outside; none of them calls the judge's code.

Latency: every code item of ``--pack`` (any pack folder in Learnloop's format), its reference
solution submitted ``--repeat`` times per runner, one at a time; seconds per submission from
the call to the verdict, p50 and p95. Then ``--concurrent`` submissions at once through the
judge (its slots queue them): the wall time until the last verdict and the p95 of each
submission's wait plus run, which is what a learner feels at a busy moment.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench._common import record, write_results
from bench.judge_attacks import ATTACKS, CASES, Attack, Host, foreign_processes, left_behind
from bench.legacy_code_runner import run_code
from learnloop.content.loader import load_pack
from learnloop.content.models import CodeCase
from learnloop.sandbox.judge import Limits, Sandbox, SandboxBusy


def _literal(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return f"float({repr(value)!r})"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (set, frozenset)):
        return "{" + ", ".join(_literal(v) for v in value) + "}" if value else "set()"
    return repr(value)


_LEGACY_HELPERS = """
import math


def _same(expected, got, tol):
    if isinstance(expected, float) or isinstance(got, float):
        if isinstance(expected, bool) or isinstance(got, bool):
            return expected == got
        if math.isnan(expected) and math.isnan(got):
            return True
        return math.isclose(expected, got, rel_tol=tol, abs_tol=tol)
    if isinstance(expected, list) and isinstance(got, (list, tuple)):
        return len(expected) == len(got) and all(_same(e, g, tol) for e, g in zip(expected, got))
    if isinstance(expected, dict) and isinstance(got, dict):
        return expected.keys() == got.keys() and all(_same(expected[k], got[k], tol) for k in expected)
    return expected == got
"""


def legacy_tests(cases: list[CodeCase]) -> str:
    """The same cases as ``test_*`` functions for the legacy runner."""
    out = [_LEGACY_HELPERS]
    for case in cases:
        body = [line for line in (case.setup or "").splitlines() if line.strip()]
        if case.raises:
            body += [
                "try:",
                f"    {case.call}",
                "except " + case.raises + ":",
                "    return",
                "raise AssertionError()",
            ]
        else:
            body += [f"assert _same({_literal(case.expect)}, {case.call}, {case.tol!r})"]
        name = "".join(c if c.isalnum() else "_" for c in case.name)
        out.append(f"\n\ndef test_{name}():\n" + "\n".join("    " + line for line in body) + "\n")
    return "".join(out)


def _contained(
    host: Host, attack: Attack, correct: bool, shown: str, before: set[tuple[int, str]]
) -> list[str]:
    time.sleep(attack.settle_s)
    problems = host.problems(shown)
    if correct:
        problems.append("graded correct")
    if left_behind(before):
        problems.append("left processes behind")
    return problems


def containment(box: Sandbox, limits: Limits) -> dict[str, dict[str, list[str]]]:
    host = Host()
    found: dict[str, dict[str, list[str]]] = {"learnloop.judge": {}, "legacy.audit_hook": {}}
    legacy = legacy_tests(CASES)
    try:
        for attack in ATTACKS:
            host.reset()
            before = foreign_processes()
            verdict = box.run(host.source(attack), CASES, limits)
            shown = "\n".join(verdict.messages()) + verdict.stdout
            found["learnloop.judge"][attack.name] = _contained(host, attack, verdict.correct, shown, before)
            host.reset()
            before = foreign_processes()
            result = run_code(
                host.source(attack), legacy, timeout_s=limits.timeout_s, memory_mb=limits.memory_mb
            )
            shown = "\n".join(result.messages()) + result.stdout
            found["legacy.audit_hook"][attack.name] = _contained(host, attack, result.correct, shown, before)
            # what a legacy escape left running must not disturb the next attack
            time.sleep(0.1)
    finally:
        host.close()
    return found


def _quantiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
    return statistics.median(ordered), p95


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--pack", type=Path, default=Path("packs/ai_era"), help="a pack folder with code items"
    )
    parser.add_argument("--repeat", type=int, default=5, help="submissions of each solution per runner")
    parser.add_argument("--concurrent", type=int, default=40, help="submissions at once through the judge")
    parser.add_argument(
        "--slots", type=int, default=2, help="the judge's concurrent runs (code_max_concurrent)"
    )
    parser.add_argument("--timeout", type=float, default=5.0, help="the time limit of one submission (s)")
    parser.add_argument(
        "--no-write", action="store_true", help="print, do not write bench/results/judge.json"
    )
    args = parser.parse_args(argv)

    box = Sandbox(max_concurrent=args.slots, queue_wait_s=120)
    state = box.availability(refresh=True)
    if not state.ok:
        print(f"the sandbox is not available: {state.reason}", file=sys.stderr)
        return 2
    limits = Limits(timeout_s=args.timeout)
    records = []
    pack = load_pack(args.pack)
    dataset = f"{pack.meta.id} code items"

    found = containment(box, limits)
    for runner, outcome in found.items():
        contained = sum(not problems for problems in outcome.values())
        records.append(
            record("red team", "attacks of bench/judge_attacks.py", runner, "contained", contained)
        )
        records.append(
            record("red team", "attacks of bench/judge_attacks.py", runner, "attacks", len(outcome))
        )
        for name, problems in outcome.items():
            if problems:
                records.append(record("red team", name, runner, "escaped", "; ".join(problems)))
        print(f"{runner}: {contained} of {len(outcome)} attacks contained")

    items = [i for i in pack.items if i.kind == "code" and i.cases and i.solution]
    times: dict[str, list[float]] = {"learnloop.judge": [], "legacy.audit_hook": []}
    wrong: dict[str, int] = {"learnloop.judge": 0, "legacy.audit_hook": 0}
    for item in items:
        assert item.cases is not None and item.solution is not None
        legacy = legacy_tests(item.cases)
        for _ in range(args.repeat):
            started = time.perf_counter()
            verdict = box.run(item.solution, item.cases, limits)
            times["learnloop.judge"].append(time.perf_counter() - started)
            wrong["learnloop.judge"] += not verdict.correct
            started = time.perf_counter()
            result = run_code(item.solution, legacy, timeout_s=limits.timeout_s, memory_mb=limits.memory_mb)
            times["legacy.audit_hook"].append(time.perf_counter() - started)
            wrong["legacy.audit_hook"] += not result.correct
    protocol = f"reference solutions, {len(items)} items x {args.repeat}, one at a time"
    p95s = {}
    for runner, values in times.items():
        p50, p95 = _quantiles(values)
        p95s[runner] = p95
        records.append(record(dataset, protocol, runner, "p50_s", round(p50, 4)))
        records.append(record(dataset, protocol, runner, "p95_s", round(p95, 4)))
        records.append(record(dataset, protocol, runner, "solutions_graded_wrong", wrong[runner]))
        print(f"{runner}: p50 {p50:.3f} s, p95 {p95:.3f} s, solutions graded wrong {wrong[runner]}")
    records.append(
        record(
            dataset,
            protocol,
            "learnloop.judge",
            "p95_ratio_to_legacy",
            round(p95s["learnloop.judge"] / p95s["legacy.audit_hook"], 3),
        )
    )

    # a busy moment: many submissions at once, queued by the judge's slots
    waits: list[float] = []
    refused = 0
    lock = threading.Lock()

    def submit(i: int) -> None:
        nonlocal refused
        item = items[i % len(items)]
        assert item.solution is not None and item.cases is not None
        started = time.perf_counter()
        try:
            box.run(item.solution, item.cases, limits)
        except SandboxBusy:
            with lock:
                refused += 1
            return
        with lock:
            waits.append(time.perf_counter() - started)

    started = time.perf_counter()
    threads = [threading.Thread(target=submit, args=(i,)) for i in range(args.concurrent)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    burst = f"{args.concurrent} submissions at once, {args.slots} slots"
    p50, p95 = _quantiles(waits) if waits else (float("nan"), float("nan"))
    records.append(record(dataset, burst, "learnloop.judge", "wall_s", round(wall, 3)))
    records.append(record(dataset, burst, "learnloop.judge", "wait_and_run_p50_s", round(p50, 3)))
    records.append(record(dataset, burst, "learnloop.judge", "wait_and_run_p95_s", round(p95, 3)))
    records.append(record(dataset, burst, "learnloop.judge", "refused", refused))
    print(f"burst: {burst}: all done in {wall:.2f} s, p95 wait+run {p95:.2f} s, refused {refused}")
    if not args.no_write:
        path = write_results(
            "judge",
            records,
            packages=[],
            extra_environment={
                "sandbox": state.detail,
                "numpy_in_sandbox": state.numpy,
                "pandas_in_sandbox": state.pandas,
            },
        )
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
