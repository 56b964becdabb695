"""Knowledge tracing on leak-free protocols: a prediction never reads another row of its own
answer. Called by ``bench/kt.py --protocols ...``; see its ``--help``.

ASSISTments 2009 logs an answer to an item tagged with several skills once per skill, with
the same label. Read row by row, the later rows of such an answer can read the first (the
learner's "last answer") and score a copy. With answer ids (``ResponseLog.answer``) every
row of an answer is predicted from the learner's earlier answers only. The protocols:

- ``akt``: AKT's 5-fold files with problem ids (``assist2009_pid_{train,valid,test}k.csv``):
  each setting of the grid fitted on train_k and scored on valid_k; the best on valid_k is
  scored on test_k; mean and sd over the folds. Scored on every row (as AKT's figures are),
  on one prediction per answer, and, to show what the copies add, the same settings fitted
  and scored with every row read as its own answer.
- ``pykt``: pyKT's question-level evaluation on the same folds: sequences cut into chunks of
  200 answers (each chunk a learner), chunks of fewer than 3 answers dropped, and the
  predictions of a question's concepts averaged into one per question ("late fusion").
- ``dkvmn``: the DKVMN ASSIST2009 train/test files. They hold no problem ids; the answer of
  each row is recovered from AKT's files, which hold the same learners' sequences with
  problem ids. Scored on every row, on the copy-free rows (each answer's first row) and once
  per answer; and with every row read as its own answer.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench._common import Record, record
from learnloop.science.kt import BKT, LogisticKT, ResponseLog
from learnloop.science.kt.base import answers_of
from learnloop.science.kt.metrics import auc

# The settings compared on each validation fold (the rest are LogisticKT's defaults).
GRID: list[dict[str, Any]] = [{"l2": 1.0}, {"l2": 3.0}]

AKT_SOURCE = (
    "UNVERIFIED. Quoted as Ghosh, Heffernan & Lan 2020, Context-Aware Attentive Knowledge Tracing "
    "(KDD; arXiv 2007.12324), Table 3, ASSISTments2009 AUC, as issue 19 quotes it. Not checked "
    "against the paper: searches of the stored pages, docs, code and issues corpora (2026-12-07, "
    "twice) found the paper's abstract, its authors' code (arghosh/AKT, whose README has no "
    "results) and re-implementations, but no copy of Table 3 and no other text holding these values"
)
PYKT_SOURCE = (
    "UNVERIFIED. Quoted as Liu et al. 2022, pyKT (NeurIPS Datasets and Benchmarks track), "
    "ASSIST2009 question-level AUC table, as issue 19 quotes it (the same three figures are "
    "commonly quoted from the simpleKT paper, Liu et al. ICLR 2023). Not checked against either "
    "paper: the stored corpora (2026-12-07, twice) hold both papers' abstracts and pykt.org's "
    "model pages but no results table and no other text holding these values; the "
    "pykt-team/pykt-toolkit repository holds none either"
)
PYKT_PREPROCESSING = (
    "pyKT builds its ASSIST2009 from skill_builder_data_corrected_collapsed.csv itself (its own "
    "cleaning, question and concept ids, and its own 80/20 user split with 5 train/valid folds); "
    "here the sequences are AKT's (DKVMN's 4,151 learners and 110 skills with AKT's problem ids), "
    "so the figures sit side by side, not on the same rows"
)


@dataclass
class Scored:
    """Predictions for a test log, with the answer grouping used to score them."""

    y: np.ndarray
    p: np.ndarray
    first: np.ndarray  # row is the first of its answer
    index: np.ndarray  # row -> answer
    n_answers: int

    def auc_rows(self) -> float:
        return auc(self.y, self.p)

    def auc_first_rows(self) -> float:
        return auc(self.y[self.first], self.p[self.first])

    def auc_answers(self) -> float:
        """One prediction per answer: the mean of its rows' predictions (late fusion)."""
        total = np.bincount(self.index, weights=self.p, minlength=self.n_answers)
        count = np.bincount(self.index, minlength=self.n_answers)
        return auc(self.y[self.first], (total / np.maximum(count, 1))[self.index[self.first]])


def scored(log_with_answers: ResponseLog, p: np.ndarray) -> Scored:
    g = answers_of(log_with_answers)
    first = np.zeros(len(log_with_answers), dtype=bool)
    first[g.first] = True
    return Scored(log_with_answers.correct, p, first, g.index, g.n_answers)


def without_answers(log: ResponseLog) -> ResponseLog:
    return ResponseLog(
        user=log.user, skill=log.skill, correct=log.correct, item=log.item, timestamp=log.timestamp
    )


def chunk_answers(log: ResponseLog, size: int = 200, min_len: int = 3) -> ResponseLog:
    """pyKT's sequence cut, by answers: each learner's answers in chunks of ``size`` (each
    chunk a new learner), chunks with fewer than ``min_len`` answers dropped."""
    g = answers_of(log)
    a_user = log.user[g.first]
    order = np.argsort(a_user, kind="stable")
    u = a_user[order]
    new = np.r_[True, u[1:] != u[:-1]] if len(u) else np.zeros(0, dtype=bool)
    starts = np.flatnonzero(new)
    group = np.cumsum(new) - 1
    ordinal = np.empty(len(u), dtype=np.int64)
    ordinal[order] = np.arange(len(u)) - starts[group]
    piece = a_user.astype(np.int64) * (int(ordinal.max()) // size + 1 if len(u) else 1) + ordinal // size
    codes, inverse, counts = np.unique(piece, return_inverse=True, return_counts=True)
    keep_answer = counts[inverse] >= min_len
    rows = keep_answer[g.index]
    out = log.subset(rows)
    return ResponseLog(
        user=inverse[g.index][rows].astype(np.int64),
        skill=out.skill,
        correct=out.correct,
        item=out.item,
        timestamp=out.timestamp,
        answer=out.answer,
    )


def _mean_sd(values: Sequence[float]) -> tuple[float, float]:
    return float(np.mean(values)), float(statistics.stdev(values)) if len(values) > 1 else 0.0


def _fit(hyper: dict[str, Any], log: ResponseLog) -> tuple[LogisticKT, float]:
    start = time.perf_counter()
    model = LogisticKT(**hyper).fit(log)
    return model, time.perf_counter() - start


def _label(hyper: dict[str, Any]) -> str:
    return ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in hyper.items())


# -- AKT folds (and pyKT's evaluation on them) ----------------------------------------------------

PROTOCOL_AKT_LEAKFREE = (
    "AKT 5-fold files with problem ids (assist2009_pid_train/valid/test k, folds {folds}): settings "
    "chosen on valid_k among {grid}, scored on test_k; every row predicted from the learner's earlier "
    "answers only (rows of one answer never read each other; answers = consecutive rows on one "
    "problem); {scoring}; whole sequences; mean over folds (sd in auc_sd)"
)
PROTOCOL_AKT_COPIES = (
    "AKT 5-fold files with problem ids (folds {folds}), the settings chosen on valid_k above, fitted "
    "and scored with every row read as its own answer (a multi-skill answer's later rows read its "
    "first: the copies AKT's own evaluation leaves in); {scoring}; mean over folds"
)
PROTOCOL_AKT_PUBLISHED = (
    "AKT 5-fold files with problem ids, every row scored, copies readable (their protocol)"
)
PROTOCOL_PYKT = (
    "pyKT question-level evaluation on AKT's folds {folds} (train_k / test_k, settings chosen on "
    "valid_k under the AKT protocol): sequences cut into chunks of 200 answers, chunks under 3 "
    "answers dropped; every concept row predicted from earlier answers only, a question's concept "
    "predictions averaged into one (late fusion); AUC over questions; mean over folds. " + PYKT_PREPROCESSING
)
PROTOCOL_PYKT_PUBLISHED = (
    "pyKT's own ASSIST2009 preprocessing and split, question-level late fusion (their protocol)"
)


def _akt_fold(
    data: Path,
    k: int,
    grid: list[dict[str, Any]],
    read: Callable[[Path], Any],
    to_log: Callable[..., ResponseLog],
    pykt: bool,
) -> tuple[list[tuple[str, str, str, float]], str]:
    """One fold: (kind of result, method, metric, value) entries and the chosen settings. Kinds:
    "valid", "rows", "first", "answers", "copies rows", "copies first", "pykt"."""
    d = data / "akt_assist2009_pid"
    out: list[tuple[str, str, str, float]] = []
    tr, va, te = (read(d / f"assist2009_pid_{part}{k}.csv") for part in ("train", "valid", "test"))
    train = to_log(tr)
    valid = to_log(va, user_offset=len(tr.skills))
    test = to_log(te, user_offset=len(tr.skills) + len(va.skills))
    print(f"akt fold {k}: train {len(train)} rows, valid {len(valid)}, test {len(test)}", flush=True)
    best: tuple[float, dict[str, Any], LogisticKT, float] | None = None
    for hyper in grid:
        model, seconds = _fit(hyper, train)
        v = auc(valid.correct, model.predict_proba(valid))
        print(f"  fold {k} {_label(hyper)}: valid auc {v:.4f} ({seconds:.0f} s)", flush=True)
        out.append(("valid", "learnloop.logistic", f"valid_auc[{_label(hyper)}]", v))
        if best is None or v > best[0]:
            best = (v, hyper, model, seconds)
    assert best is not None
    _, hyper, model, seconds = best
    s = scored(test, model.predict_proba(test))
    out += [
        ("rows", "learnloop.logistic", "auc", s.auc_rows()),
        ("rows", "learnloop.logistic", "fit_seconds", seconds),
        ("first", "learnloop.logistic", "auc", s.auc_first_rows()),
        ("answers", "learnloop.logistic", "auc", s.auc_answers()),
    ]
    print(
        f"  fold {k} test ({_label(hyper)}): rows {s.auc_rows():.4f}, first rows {s.auc_first_rows():.4f}, "
        f"answers {s.auc_answers():.4f}",
        flush=True,
    )
    sb = scored(test, BKT().fit(train).predict_proba(test))
    out += [
        ("rows", "learnloop.bkt", "auc", sb.auc_rows()),
        ("answers", "learnloop.bkt", "auc", sb.auc_answers()),
    ]
    # what the copies add: the same settings, every row its own answer
    copies, _ = _fit(hyper, without_answers(train))
    sc = Scored(s.y, copies.predict_proba(without_answers(test)), s.first, s.index, s.n_answers)
    out += [
        ("copies rows", "learnloop.logistic", "auc", sc.auc_rows()),
        ("copies first", "learnloop.logistic", "auc", sc.auc_first_rows()),
    ]
    print(
        f"  fold {k} copies readable: rows {sc.auc_rows():.4f}, first rows {sc.auc_first_rows():.4f}",
        flush=True,
    )
    if pykt:
        ctrain, ctest = chunk_answers(train), chunk_answers(test)
        pm, _ = _fit(hyper, ctrain)
        sp = scored(ctest, pm.predict_proba(ctest))
        out.append(("pykt", "learnloop.logistic", "auc", sp.auc_answers()))
        print(f"  fold {k} pyKT question level: {sp.auc_answers():.4f}", flush=True)
    return out, _label(hyper)


def bench_akt(
    data: Path,
    folds: list[int],
    grid: list[dict[str, Any]],
    read: Callable[[Path], Any],
    to_log: Callable[..., ResponseLog],
    pykt: bool = True,
    jobs: int = 1,
) -> list[Record]:
    """The AKT folds (``jobs`` at a time, each in its own process), then mean and sd."""
    from concurrent.futures import ProcessPoolExecutor

    dataset = "akt_assist2009_pid"
    fold_text = ",".join(map(str, folds))
    grid_text = "; ".join(_label(h) or "defaults" for h in grid)
    protocols = {
        "valid": PROTOCOL_AKT_LEAKFREE.format(
            folds=fold_text, grid=grid_text, scoring="valid_k scored, every row"
        ),
        "rows": PROTOCOL_AKT_LEAKFREE.format(folds=fold_text, grid=grid_text, scoring="every row scored"),
        "first": PROTOCOL_AKT_LEAKFREE.format(
            folds=fold_text, grid=grid_text, scoring="each answer's first row scored (copy-free rows)"
        ),
        "answers": PROTOCOL_AKT_LEAKFREE.format(
            folds=fold_text, grid=grid_text, scoring="one prediction per answer (mean of its rows)"
        ),
        "copies rows": PROTOCOL_AKT_COPIES.format(folds=fold_text, scoring="every row scored"),
        "copies first": PROTOCOL_AKT_COPIES.format(folds=fold_text, scoring="each answer's first row scored"),
        "pykt": PROTOCOL_PYKT.format(folds=fold_text),
    }
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(_akt_fold, data, k, grid, read, to_log, pykt) for k in folds]
            results = [f.result() for f in futures]
    else:
        results = [_akt_fold(data, k, grid, read, to_log, pykt) for k in folds]
    per: dict[tuple[str, str, str], list[float]] = {}
    for entries, _ in results:
        for kind, method, metric, value in entries:
            per.setdefault((protocols[kind], method, metric), []).append(float(value))
    records: list[Record] = []
    for (protocol, method, metric), values in per.items():
        mean, sd = _mean_sd(values)
        records.append(record(dataset, protocol, method, metric, mean))
        if metric == "auc":
            records.append(record(dataset, protocol, method, "auc_sd", sd))
            records.append(
                record(dataset, protocol, method, "auc_per_fold", " ".join(f"{v:.4f}" for v in values))
            )
    records.append(
        record(
            dataset,
            protocols["rows"],
            "learnloop.logistic",
            "chosen_on_valid",
            "; ".join(c for _, c in results),
        )
    )
    return records + published_records(pykt)


#: Published figures placed beside the AKT and pyKT protocols; neither table could be checked
#: (see the sources), so every record says UNVERIFIED first.
AKT_PUBLISHED = {"akt_r": 0.8346, "akt_nr": 0.8169}
PYKT_PUBLISHED = {"dkt": 0.7541, "akt": 0.7853, "simplekt": 0.7744}


def published_records(pykt: bool = True) -> list[Record]:
    """The AKT paper's and pyKT's figures as records (``bench/kt.py --protocols published``
    writes them alone, without fitting anything)."""
    dataset = "akt_assist2009_pid"
    records = [
        record(dataset, PROTOCOL_AKT_PUBLISHED, method, "auc", value, source=AKT_SOURCE)
        for method, value in AKT_PUBLISHED.items()
    ]
    if pykt:
        records += [
            record(dataset, PROTOCOL_PYKT_PUBLISHED, method, "auc", value, source=PYKT_SOURCE)
            for method, value in PYKT_PUBLISHED.items()
        ]
    return records


# -- DKVMN ASSIST2009 with the answers recovered ---------------------------------------------------

PROTOCOL_DKVMN_ANSWERS = (
    "fixed train/test files (assist2009_updated_train.csv / _test.csv), answers recovered from AKT's "
    "files with problem ids ({matched}); every row predicted from the learner's earlier answers only; "
    "default settings (chosen earlier on train1/valid1); {scoring}; whole sequences"
)
PROTOCOL_DKVMN_COPIES = (
    "fixed train/test files (assist2009_updated_train.csv / _test.csv), every row read as its own "
    "answer (a multi-skill answer's later rows read its first); default settings; {scoring}"
)


def recover_answers(seqs: Any, akt_dir: Path, read_four: Callable[[Path], Any]) -> tuple[Any, int]:
    """The answer numbers of DKVMN sequences, from AKT's files: the same learners' sequences
    with problem ids, matched by their labels (and length). Unmatched sequences keep one
    answer per row; returns the sequences and how many matched."""
    table: dict[bytes, np.ndarray] = {}
    for path in sorted(akt_dir.glob("assist2009_pid_*.csv")):
        akt = read_four(path)
        for c, a in zip(akt.correct, akt.answers, strict=True):
            table[np.asarray(c, dtype=np.int8).tobytes()] = a
    answers, matched = [], 0
    for c in seqs.correct:
        a = table.get(np.asarray(c, dtype=np.int8).tobytes())
        if a is not None and len(a) == len(c):
            answers.append(a)
            matched += 1
        else:
            answers.append(np.arange(len(c), dtype=np.int64))
    seqs.answers = answers
    return seqs, matched


def bench_dkvmn(
    data: Path,
    read_three: Callable[[Path], Any],
    read_four: Callable[[Path], Any],
    to_log: Callable[..., ResponseLog],
) -> list[Record]:
    d = data / "dkvmn_assist2009_updated"
    dataset = "dkvmn_assist2009_updated"
    tr, matched_tr = recover_answers(
        read_three(d / "assist2009_updated_train.csv"), data / "akt_assist2009_pid", read_four
    )
    te, matched_te = recover_answers(
        read_three(d / "assist2009_updated_test.csv"), data / "akt_assist2009_pid", read_four
    )
    matched = (
        f"{matched_tr} of {len(tr.skills)} train and {matched_te} of {len(te.skills)} test sequences matched"
    )
    print(f"dkvmn answers: {matched}", flush=True)
    train, test = to_log(tr), to_log(te, user_offset=len(tr.skills))
    records: list[Record] = []
    model, seconds = _fit({}, train)
    s = scored(test, model.predict_proba(test))
    for scoring, value in (
        ("every row scored", s.auc_rows()),
        ("each answer's first row scored (copy-free rows)", s.auc_first_rows()),
        ("one prediction per answer (mean of its rows)", s.auc_answers()),
    ):
        records.append(
            record(
                dataset,
                PROTOCOL_DKVMN_ANSWERS.format(matched=matched, scoring=scoring),
                "learnloop.logistic",
                "auc",
                value,
            )
        )
    records.append(
        record(
            dataset,
            PROTOCOL_DKVMN_ANSWERS.format(matched=matched, scoring="every row scored"),
            "learnloop.logistic",
            "fit_seconds",
            seconds,
        )
    )
    print(
        f"  leak-free: rows {s.auc_rows():.4f}, first rows {s.auc_first_rows():.4f}, answers {s.auc_answers():.4f}",
        flush=True,
    )
    copies, _ = _fit({}, without_answers(train))
    sc = Scored(s.y, copies.predict_proba(without_answers(test)), s.first, s.index, s.n_answers)
    for scoring, value in (
        ("every row scored", sc.auc_rows()),
        ("each answer's first row scored", sc.auc_first_rows()),
    ):
        records.append(
            record(dataset, PROTOCOL_DKVMN_COPIES.format(scoring=scoring), "learnloop.logistic", "auc", value)
        )
    print(f"  copies readable: rows {sc.auc_rows():.4f}, first rows {sc.auc_first_rows():.4f}", flush=True)
    return records
