"""The product's BKT fit (``fit kt``) on a log, the path estimate that reads it, and the
simulated learners' log and time accounting that ``bench/validity.py`` builds on."""

from __future__ import annotations

import numpy as np

from learnloop.science.kt.base import ResponseLog
from learnloop.science.kt.bkt import BKTParams
from learnloop.science.path import plan_path
from learnloop.science.policy import ItemOption, LearnerState, build_curriculum
from learnloop.services.calibration import MIN_SKILL_ANSWERS, MIN_SKILL_LEARNERS, fit_bkt_params


def _bkt_log(learn: dict[int, float], learners: int, answers: int, seed: int = 0) -> ResponseLog:
    """Answers of simulated BKT learners (prior 0.2, guess 0.2, slip 0.1), skill k learnt with
    ``learn[k]`` per answer."""
    rng = np.random.default_rng(seed)
    user, skill, correct = [], [], []
    for u in range(learners):
        for k, rate in learn.items():
            known = rng.random() < 0.2
            for _ in range(answers):
                right = rng.random() < (0.9 if known else 0.2)
                user.append(u)
                skill.append(k)
                correct.append(int(right))
                known = known or rng.random() < rate
    n = len(user)
    return ResponseLog(
        user=np.array(user, dtype=np.int64),
        skill=np.array(skill, dtype=np.int64),
        correct=np.array(correct, dtype=np.int8),
        item=np.zeros(n, dtype=np.int64),
        timestamp=np.arange(n, dtype=np.float64),
    )


def test_fit_recovers_slow_and_fast_learning_rates_per_skill() -> None:
    log = _bkt_log({0: 0.05, 1: 0.3}, learners=60, answers=25)
    _model, stored, note = fit_bkt_params(log, ["slow", "fast"])
    assert note is None and set(stored["skills"]) == {"slow", "fast"}
    slow, fast = (BKTParams.from_dict(stored["skills"][s]) for s in ("slow", "fast"))
    assert slow.p_learn < 0.1 < 0.2 < fast.p_learn
    assert 0.0 < slow.p_slip < 0.2 and 0.0 < fast.p_slip < 0.2
    assert stored["default"] != BKTParams().to_dict()  # the population's, fitted


def test_a_log_below_the_bar_keeps_the_defaults() -> None:
    log = _bkt_log({0: 0.3}, learners=MIN_SKILL_LEARNERS - 1, answers=MIN_SKILL_ANSWERS // 5)
    _model, stored, note = fit_bkt_params(log, ["only", "never-answered"])
    assert stored == {"default": BKTParams().to_dict(), "skills": {}}
    assert note is not None and "population" in note


def test_the_path_estimate_reads_the_fitted_rates() -> None:
    bank = {s: [ItemOption(f"{s}.{i}", 0.0, minutes=1.0, guess=0.25) for i in range(6)] for s in "ab"}
    graph = {"a": [], "b": ["a"]}

    def estimate(learn: float) -> float:
        fitted = BKTParams(p_learn=learn)
        cur = build_curriculum(graph, {"b": 0.8}, items=bank, skill_params={"a": fitted, "b": fitted})
        return plan_path(cur, LearnerState()).items

    assert estimate(0.05) > 1.5 * estimate(0.15) > 1.5 * estimate(0.4)


def test_simulated_runs_keep_their_log_and_split_their_minutes() -> None:
    from learnloop.science.simulation import World, simulate_learner
    from tests.science.test_policy import CUR

    slow_code = World(kind_time=(("choice", 3.0),), kind_guess=(("choice", 0.5),))
    for world in (World(), slow_code):
        for policy in ("ours", "oatutor"):
            run = simulate_learner(CUR, "role", policy, 1, world=world, keep_log=True)
            assert len(run.log) == run.items == sum(run.answers_by.values()) > 0
            assert abs(sum(run.minutes_by.values()) - run.minutes) < 1e-6
            assert all(a[3] <= b[3] for a, b in zip(run.log, run.log[1:], strict=False))
    assert World().time_factor("code") == 1.0 and slow_code.time_factor("choice") == 3.0
    assert slow_code.guess_share("choice") == 0.5 and slow_code.guess_share("text") == World().guess_share(
        "text"
    )
