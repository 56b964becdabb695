"""bench/kt.py reads the three sequence formats into answers, and cuts sequences as pyKT does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.kt import read_sequences, to_log
from bench.kt_answers import chunk_answers, scored
from learnloop.science.kt import ResponseLog
from learnloop.science.kt.base import answers_of, check_log


def test_akt_four_line_rows_on_one_problem_are_one_answer(tmp_path: Path) -> None:
    path = tmp_path / "pid.csv"
    # problem 7 tagged with skills 3 and 4 (one answer), problem 9 twice in a row on the same
    # skill (two attempts), then problem 7 again
    path.write_text("0,1001\n7,7,9,9,7,7\n3,4,5,5,3,4\n1,1,0,1,0,0\n")
    seqs = read_sequences(path)
    assert seqs.items is not None and seqs.answers is not None
    np.testing.assert_array_equal(seqs.answers[0], [0, 0, 1, 2, 3, 3])
    log = to_log(seqs)
    check_log(log)
    assert answers_of(log).n_answers == 4


def test_dkvmn_three_line_rows_are_answers(tmp_path: Path) -> None:
    path = tmp_path / "dkvmn.csv"
    path.write_text("3\n1,2,2,\n1,0,1,\n")
    log = to_log(read_sequences(path))
    assert log.answer is None and log.item is None
    np.testing.assert_array_equal(log.skill, [0, 1, 1])


def test_pykt_question_and_expanded_files(tmp_path: Path) -> None:
    path = tmp_path / "quelevel.csv"
    path.write_text(
        "fold,uid,questions,concepts,responses\n"
        '0,1,"4,5,6,-1","10_11,12,10,-1","1,0,1,-1"\n'
        '1,2,"5,6","12,10","0,0"\n'
    )
    seqs = read_sequences(path)
    log = to_log(seqs)
    check_log(log)
    np.testing.assert_array_equal(log.skill, [10, 11, 12, 10, 12, 10])
    np.testing.assert_array_equal(log.item, [4, 4, 5, 6, 5, 6])
    np.testing.assert_array_equal(answers_of(log).index, [0, 0, 1, 2, 3, 4])
    expanded = tmp_path / "sequences.csv"
    expanded.write_text(
        'fold,uid,questions,concepts,responses,is_repeat\n0,1,"4,4,5","10,11,12","1,1,0","0,1,0"\n'
    )
    log = to_log(read_sequences(expanded))
    np.testing.assert_array_equal(answers_of(log).index, [0, 0, 1])
    bad = tmp_path / "bad.csv"
    bad.write_text('fold,uid,questions,concepts,responses\n0,1,"4,5","10","1,0"\n')
    with pytest.raises(SystemExit, match="bad.csv:2"):
        read_sequences(bad)


def test_pykt_cut_and_late_fusion() -> None:
    # learner 0: 405 answers of two rows each; learner 1: 2 answers (dropped, under 3)
    n0, n1 = 405, 2
    user = np.r_[np.zeros(2 * n0), np.ones(2 * n1)].astype(np.int64)
    answer = np.repeat(np.arange(n0 + n1), 2)
    correct = np.repeat(np.arange(n0 + n1) % 2, 2).astype(np.int8)
    log = ResponseLog(user=user, skill=np.tile([0, 1], n0 + n1), correct=correct, answer=answer)
    cut = chunk_answers(log)
    # chunks of 200, 200 and 5 answers; the 2-answer learner is dropped
    assert len(np.unique(cut.user)) == 3 and len(cut) == 2 * n0
    assert np.bincount(cut.user).tolist() == [400, 400, 10]
    p = np.where(np.arange(len(cut)) % 2 == 0, 0.9, 0.1) * np.where(cut.correct == 1, 1.0, 0.5)
    s = scored(cut, p)
    assert s.n_answers == n0
    assert s.auc_answers() == pytest.approx(1.0)


def test_merge_keeps_what_it_does_not_measure_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    import bench.kt as kt
    from bench._common import record

    superseded = next(iter(kt.SUPERSEDED_PROTOCOLS))
    old = {
        "command": "python -m bench.kt --first",
        "records": [
            record("dkvmn_assist2009_updated", superseded, "learnloop.logistic", "auc", 0.824),
            record("dkvmn_assist2009_updated", superseded, "learnloop.bkt", "auc", 0.71),
            record("dkvmn_assist2009_updated", "leak-free", "learnloop.logistic", "auc", 0.755),
            record("gervet_statics", "gervet", "learnloop.logistic", "auc", 0.8),
        ],
    }
    (tmp_path / "bench" / "results").mkdir(parents=True)
    (tmp_path / "bench" / "results" / "kt.json").write_text(json.dumps(old))
    monkeypatch.setattr(kt, "ROOT", tmp_path)
    fresh = [record("gervet_statics", "gervet", "learnloop.logistic", "auc", 0.83)]
    merged, command = kt.merge_results(fresh, "python -m bench.kt --second")
    assert [(r["method"], r["value"]) for r in merged] == [
        ("learnloop.bkt", 0.71),
        ("learnloop.logistic", 0.755),
        ("learnloop.logistic", 0.83),
    ]
    assert command == "python -m bench.kt --first ; python -m bench.kt --second"
