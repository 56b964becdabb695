"""One rule for multi-skill answers: a prediction never reads another row of its own answer,
online and in batch alike; and the learner state is a versioned structure that still reads
the stored states of the version-less layout."""

from __future__ import annotations

import json

import numpy as np
import pytest

from learnloop.science.kt import BKT, FeatureSpec, LogisticKT, ResponseLog
from learnloop.science.kt.base import answers_of, check_log
from learnloop.science.kt.features import STATE_VERSION, LearnerState, transfer_entries
from learnloop.science.kt.metrics import auc
from tests.science.kt.conftest import replay


def multi_skill_log(n_users: int, answers: int, seed: int, n_skills: int = 6) -> ResponseLog:
    """Learners answering items of one to three skills, interleaved in time; every answer is
    one row per skill (sharing learner, label, item and time), and some answers list a skill
    twice, as the public ASSISTments files do."""
    rng = np.random.default_rng(seed)
    user, skill, correct, item, ts, answer = [], [], [], [], [], []
    skill_sets = [
        tuple(sorted(rng.choice(n_skills, int(rng.integers(1, 4)), replace=False))) for _ in range(30)
    ]
    ability = rng.normal(0, 1, n_users)
    order = rng.permutation(np.repeat(np.arange(n_users), answers))
    seen: dict[int, int] = {}
    now = 0.0
    for a, u in enumerate(order.tolist()):
        q = int(rng.integers(0, len(skill_sets)))
        skills = list(skill_sets[q])
        if rng.random() < 0.05:
            skills.append(skills[0])  # a duplicated tag
        practice = seen.get(u, 0)
        seen[u] = practice + len(skills)
        p = 1.0 / (1.0 + np.exp(-(ability[u] + 0.05 * practice - 0.3 * len(skills) + 0.1 * (q % 5))))
        c = int(rng.random() < p)
        now += float(rng.exponential(900.0))
        for s in skills:
            user.append(u)
            skill.append(s)
            correct.append(c)
            item.append(q)
            ts.append(now)
            answer.append(a)
    return ResponseLog(
        user=np.array(user, dtype=np.int64),
        skill=np.array(skill, dtype=np.int64),
        correct=np.array(correct, dtype=np.int8),
        item=np.array(item, dtype=np.int64),
        timestamp=np.array(ts, dtype=np.float64),
        answer=np.array(answer, dtype=np.int64),
    )


@pytest.fixture(scope="module")
def multi_log() -> ResponseLog:
    return multi_skill_log(60, 40, seed=3)


MODELS = {
    "all features": lambda: LogisticKT(
        l2=1.0,
        skill_transfer=True,
        pair_last=True,
        item_learning_rates=True,
        item_prior=True,
        features=FeatureSpec(windows=(3600.0, 86400.0), ability_decays=(0.5, 0.9)),
    ),
    "plain": lambda: LogisticKT(l2=1.0, skill_transfer=False, pair_last=False),
}


@pytest.mark.parametrize("name", MODELS)
def test_online_replay_equals_batch_on_multi_skill_answers(name: str, multi_log: ResponseLog) -> None:
    model = MODELS[name]().fit(multi_log)
    assert answers_of(multi_log).repeat.any() and model.n_skills_ == 6
    np.testing.assert_allclose(replay(model, multi_log), model.predict_proba(multi_log), rtol=0, atol=1e-10)


def _with(log: ResponseLog, **changes: np.ndarray) -> ResponseLog:
    fields = {
        name: getattr(log, name) for name in ("user", "skill", "correct", "item", "timestamp", "answer")
    }
    return ResponseLog(**{**fields, **changes})


def test_rows_of_one_answer_never_read_each_other(multi_log: ResponseLog) -> None:
    """Reversing the rows inside every answer changes no row's prediction, and flipping one
    answer's label changes no prediction of that answer or before it."""
    model = MODELS["all features"]().fit(multi_log)
    assert model.prior_ and model.transfer_ and model.pair_
    before = model.predict_proba(multi_log)
    groups = answers_of(multi_log)
    # reverse the rows within each answer
    pos = np.arange(len(multi_log)) - groups.first[groups.index]
    reversed_rows = groups.first[groups.index] + (groups.size[groups.index] - 1 - pos)
    shuffled = multi_log.subset(reversed_rows)
    np.testing.assert_allclose(model.predict_proba(shuffled), before[reversed_rows], rtol=0, atol=1e-12)
    # flip a multi-skill answer of a learner in the middle of their history
    multi = np.flatnonzero(groups.size >= 3)
    target = int(multi[len(multi) // 2])
    rows = np.flatnonzero(groups.index == target)
    flipped = multi_log.correct.copy()
    flipped[rows] = 1 - flipped[rows]
    after = model.predict_proba(_with(multi_log, correct=flipped))
    upto = np.arange(len(multi_log)) <= rows[-1]
    np.testing.assert_array_equal(after[upto], before[upto])
    later = (multi_log.user == multi_log.user[rows[0]]) & ~upto
    assert not np.array_equal(after[later], before[later])


def test_copies_of_a_multi_skill_answer_teach_nothing() -> None:
    """ASSISTments 2009 logs a multi-skill answer once per skill. Without answer ids, the
    later rows of an answer can read the first one (the learner's last answer) and score a
    copy; with them, the copies are predicted from earlier answers only and are no easier
    than any other row."""

    def log(n_users: int, seed: int, with_ids: bool) -> tuple[ResponseLog, np.ndarray]:
        rng = np.random.default_rng(seed)
        user, skill, correct, answer, copy = [], [], [], [], []
        a = 0
        for u in range(n_users):
            for _ in range(30):
                s = int(rng.integers(0, 4))
                c = int(rng.random() < 0.6)
                both = [s, 1] if s == 0 else [s]
                for position, k in enumerate(both):
                    user.append(u)
                    skill.append(k)
                    correct.append(c)
                    answer.append(a)
                    copy.append(position > 0)
                a += 1
        return ResponseLog(
            user=np.array(user, dtype=np.int64),
            skill=np.array(skill, dtype=np.int64),
            correct=np.array(correct, dtype=np.int8),
            answer=np.array(answer, dtype=np.int64) if with_ids else None,
        ), np.array(copy)

    for with_ids in (False, True):
        train, _ = log(300, 0, with_ids)
        test, copy = log(150, 1, with_ids)
        model = LogisticKT(pair_last=True).fit(train)
        copy_auc = auc(test.correct[copy], model.predict_proba(test)[copy])
        if with_ids:
            assert copy_auc < 0.6  # coin flips stay coin flips
        else:
            assert copy_auc > 0.9  # the artefact the answer ids remove


def test_transfer_entries_see_earlier_answers_only() -> None:
    rng = np.random.default_rng(1)
    n = 300
    answer = np.repeat(np.arange(150), 2)  # answers of two rows, learners interleaved by answer
    user = rng.integers(0, 5, 150)[answer]
    skill = rng.integers(0, 6, n)
    skill[1::2] = (skill[::2] + 1 + rng.integers(0, 5, 150)) % 6  # distinct skills in an answer
    correct = rng.integers(0, 2, 150)[answer].astype(np.float64)
    rows, other, wins, fails = transfer_entries(user, skill, correct, 6, answer)
    got = {(int(r), int(o)): (w, f) for r, o, w, f in zip(rows, other, wins, fails, strict=True)}
    want = {}
    for i in range(n):
        for s in range(6):
            prev = [j for j in range(n) if answer[j] < answer[i] and user[j] == user[i] and skill[j] == s]
            if s != skill[i] and prev:
                w = sum(correct[j] for j in prev)
                want[(i, s)] = (np.log1p(w), np.log1p(len(prev) - w))
    assert got.keys() == want.keys()
    for key, value in want.items():
        np.testing.assert_allclose(got[key], value)


def test_answer_ids_are_validated() -> None:
    base = {
        "user": np.array([0, 0, 0], dtype=np.int64),
        "skill": np.array([0, 1, 2], dtype=np.int64),
        "correct": np.array([1, 1, 0], dtype=np.int8),
    }
    with pytest.raises(ValueError, match="not contiguous"):
        check_log(ResponseLog(**base, answer=np.array([5, 6, 5], dtype=np.int64)))
    with pytest.raises(ValueError, match="row 2 shares answer 5 with row 0 but has another correct"):
        check_log(ResponseLog(**base, answer=np.array([5, 5, 5], dtype=np.int64)))
    with pytest.raises(ValueError, match="answer has 2 rows, user has 3"):
        ResponseLog(**base, answer=np.array([1, 2], dtype=np.int64))


def test_bkt_folds_an_answer_skill_by_skill(multi_log: ResponseLog) -> None:
    """BKT keeps one chain per skill, so an answer's rows (distinct skills) never interact:
    the online replay with update_answer equals predict_proba, repeated tags included."""
    model = BKT(restarts=1).fit(multi_log)
    np.testing.assert_allclose(replay(model, multi_log), model.predict_proba(multi_log), rtol=0, atol=1e-10)


# -- the learner state -----------------------------------------------------------------------------

# A state written by the version-less layout (learnloop before state versions): LogisticKT with
# pair_last, after answers (skill, correct, item) (0,1,3), (1,0,4), (0,1,3), (0,0,5).
V1_STATE = {
    "n": [4.0, 2.0],
    "ud": [1.629, 3.439],
    "last": [0, 0.0],
    "lags": [0.0, 1.0, 0.0],
    "block": [1.0, 1.0],
    "s": {
        "0": [3.0, 2.0, 0.0, 1.0, 0.0, 0.75, 1.75, 1.4400000000000002, 2.4400000000000004],
        "1": [1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0],
    },
    "i": {"3": [2.0, 2.0], "4": [1.0, 0.0], "5": [1.0, 0.0]},
    "t": {},
    "recent": [[0, 0.0], [0, 1.0]],
}
V1_ANSWERS = [(0, 1, 3), (1, 0, 4), (0, 1, 3), (0, 0, 5)]


def test_version_less_states_are_migrated_and_predict_the_same() -> None:
    rng = np.random.default_rng(0)
    n = 400
    log = ResponseLog(
        user=rng.integers(0, 20, n),
        skill=rng.integers(0, 4, n),
        correct=rng.integers(0, 2, n).astype(np.int8),
        item=rng.integers(0, 10, n),
    )
    model = LogisticKT(pair_last=True).fit(log)
    fresh = model.initial_state()
    assert fresh["version"] == STATE_VERSION
    for s, c, i in V1_ANSWERS:
        model.update(fresh, s, c, i)
    old = json.loads(json.dumps(V1_STATE))
    for skill, item in [(0, 3), (1, 4), (2, None), (3, 5)]:
        assert model.predict_next(old, skill, item) == pytest.approx(
            model.predict_next(fresh, skill, item), abs=1e-12
        )
    np.testing.assert_allclose(model.predict_all(old), model.predict_all(fresh), rtol=0, atol=1e-12)
    # an update rewrites the stored dict in place, in the current layout
    model.update(old, 2, 1, 7)
    model.update(fresh, 2, 1, 7)
    assert old["version"] == STATE_VERSION and "s" not in old
    assert json.loads(json.dumps(old)) == json.loads(json.dumps(fresh))


def test_version_2_states_read_as_without_ability_counts() -> None:
    """A version-2 state (before ``ability_decayed``) predicts as it did under a model without
    ability decays, and a model with them starts its ability counts from none."""
    log = multi_skill_log(20, 20, seed=1)
    plain = LogisticKT().fit(log)
    state = plain.initial_state()
    for skill, correct in [(0, 1), (1, 0), (0, 1)]:
        plain.update(state, skill, correct)
    v2 = {k: v for k, v in json.loads(json.dumps(state)).items() if k != "ability_decayed"}
    v2["version"] = 2
    assert plain.predict_next(v2, 1) == plain.predict_next(state, 1)
    able = LogisticKT(features=FeatureSpec(ability_decays=(0.8,))).fit(log)
    fresh = able.initial_state()
    from_v2 = {**json.loads(json.dumps(v2)), "ability_decayed": [], "version": STATE_VERSION}
    assert able.predict_next(v2, 1) == able.predict_next(from_v2, 1)
    able.update(v2, 1, 1)
    able.update(fresh, 1, 1)
    assert v2["version"] == STATE_VERSION and v2["ability_decayed"] == fresh["ability_decayed"] == [
        [1.0, 1.0]
    ]


def test_unknown_state_versions_are_refused() -> None:
    model = LogisticKT().fit(multi_skill_log(10, 10, seed=0))
    state = model.initial_state()
    state["version"] = STATE_VERSION + 1
    with pytest.raises(ValueError, match="unknown learner-state version"):
        model.predict_next(state, 0)
    with pytest.raises(ValueError, match="not the version-1 layout"):
        LearnerState.from_dict({"n": [1.0]})


def test_state_is_bounded_by_skills_and_items(multi_log: ResponseLog) -> None:
    """However many answers, the state holds one record per skill and item answered (the
    time windows keep only what the widest window still covers)."""
    model = MODELS["all features"]().fit(multi_log)
    state = model.initial_state()
    for i in range(3000):
        model.update_answer(state, [i % 6, (i + 1) % 6], i % 2, item=i % 9, timestamp=3600.0 * i)
    typed = LearnerState.from_dict(json.loads(json.dumps(state)))
    assert len(typed.skills) == 6 and len(typed.items) == 9 and len(typed.recent) <= model.pair_lags
    assert all(len(w["time"]) <= 2 * 24 + 34 for w in typed.times.values())


def test_the_recurrent_model_refuses_answers_of_several_rows(multi_log: ResponseLog) -> None:
    """DeepKT reads rows one after another, so it cannot keep the rule: it refuses such logs."""
    from learnloop.science.kt.deep import DeepKT

    for call in (DeepKT().fit, DeepKT().predict_proba):
        with pytest.raises(ValueError, match="one row per answer"):
            call(multi_log)
