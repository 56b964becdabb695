"""The policy's choices pinned: every activity ``choose_activity`` returns along seeded simulated
learners on the default pack, field by field, equals what the implementation of 2026-12-07
(before the per-skill precomputation of issue 18) returned.

The expected file is written by this module's generator from the implementation then current:

    .venv/bin/python -m tests.science.test_policy_pin --write

so a change meant to be faster only (not to choose differently) must leave it untouched. A
deliberate change of the policy rewrites it, and says so in its commit."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from learnloop.content.loader import load_pack
from learnloop.science import simulation
from learnloop.science.kt.bkt import BKTParams
from learnloop.science.policy import Activity, curriculum_for_role

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = ROOT / "tests" / "fixtures" / "policy_pin.json"
#: (role, learner index, seed): a short role and two deep ones with code items
LEARNERS = [
    ("ai-literate-professional", 0, 7),
    ("llm-app-engineer", 1, 7),
    ("ml-platform-engineer", 2, 7),
]
#: the product's default BKT parameters when the pin was written (the pin is of the policy, not
#: of the defaults, which the validation worlds choose)
PINNED_PARAMS = BKTParams(p_init=0.2, p_learn=0.15, p_guess=0.2, p_slip=0.1)
#: choices recorded per learner (the first ones: new skills, lessons, reviews, revisits)
LIMIT = 200


def _record(activity: Activity) -> dict[str, Any]:
    row = asdict(activity)
    # floats by their exact bits: the same choice for another reason is still a change
    for key in ("predicted_success", "progress_per_minute"):
        if row[key] is not None:
            row[key] = float(row[key]).hex()
    return row


class _Enough(Exception):
    pass


def generate() -> list[dict[str, Any]]:
    pack = load_pack(ROOT / "packs" / "ai_era")
    runs = []
    original = simulation.choose_activity
    for role, index, seed in LEARNERS:
        cur = curriculum_for_role(pack, role, default_params=PINNED_PARAMS)
        chosen: list[dict[str, Any]] = []

        def recording(*args: Any, chosen: list[dict[str, Any]] = chosen, **kwargs: Any) -> Activity | None:
            activity = original(*args, **kwargs)
            assert activity is not None
            chosen.append(_record(activity))
            if len(chosen) >= LIMIT:
                raise _Enough
            return activity

        simulation.choose_activity = recording  # type: ignore[assignment]
        try:
            simulation.simulate_learner(cur, role, "ours", index, seed=seed)
        except _Enough:
            pass
        finally:
            simulation.choose_activity = original
        runs.append({"role": role, "learner": index, "seed": seed, "activities": chosen})
    return runs


def test_choices_equal_the_pinned_implementation() -> None:
    expected = json.loads(EXPECTED.read_text())
    got = generate()
    assert [(r["role"], len(r["activities"])) for r in got] == [
        (r["role"], len(r["activities"])) for r in expected
    ]
    for run, pinned in zip(got, expected, strict=True):
        for step, (mine, theirs) in enumerate(zip(run["activities"], pinned["activities"], strict=True)):
            assert mine == theirs, f"{run['role']} learner {run['learner']}, choice {step}"


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        raise SystemExit("usage: python -m tests.science.test_policy_pin --write")
    EXPECTED.write_text(json.dumps(generate(), indent=1) + "\n")
    print(f"wrote {EXPECTED}")
