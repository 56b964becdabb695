"""Knowledge tracing on public data: learnloop's BKT and logistic models against pyBKT and
published figures, on one stated protocol per dataset.

    python -m bench.kt --data $LEARNLOOP_DATA/kt --datasets dkvmn_assist2009_updated dkvmn_STATICS
    python -m bench.kt --datasets --protocols statics-view dkvmn akt pykt --folds 1 2 3 4 5 --merge
    python -m bench.kt --datasets --protocols gervet-gbdt --merge   # pip install learnloop[kt-gbdt]
    python -m bench.kt --datasets --train TRAIN --valid VALID --test TEST [--format auto] --name NAME

One rule holds in every protocol: a prediction never reads another row of its own answer
(``ResponseLog.answer``; the leak-free protocols are in ``bench/kt_answers.py``). Any dataset
can be given as files, in the DKVMN 3-line (length / skills / answers; no problem ids, so
every row is its own answer), AKT 4-line (index,user / problem ids / skills / answers;
consecutive rows on one problem are one answer) or pyKT csv format (``fold,uid,questions,
concepts,responses``; ``c1_c2`` concepts or ``is_repeat`` rows are one answer), or Gervet's
tsv. Settings are chosen on validation files only (``--l2-grid``), never on a test file;
``--merge`` replaces the measured records in the committed ``bench/results/kt.json`` and
keeps the others.

pyBKT runs in its own virtual environment (``bench/kt_peers.sh`` builds it), on the same
split, and is scored by the same metric code.

The DKT-style ``DeepKT`` (``deep`` extra) is not benched: on the ASSIST2009 train1/valid1 fold
it reached AUC 0.806 after its first epoch, which alone took 204 s on the shared 2-core
machine, against 0.825 for ``LogisticKT`` in ~70 s (both reading rows as answers, before the
answer rule).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench._common import Record, command_line, data_dir, record, write_results
from learnloop.science.kt import BKT, FeatureSpec, KnowledgeTracer, LogisticKT, ResponseLog
from learnloop.science.kt.gbdt import GBDTKT
from learnloop.science.kt.metrics import auc, scores

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = data_dir() / "kt"
PEERS = ROOT / "bench" / "kt_peers.sh"


# -- loaders -----------------------------------------------------------------------------------


@dataclass
class Sequences:
    """Raw sequences as read: one per learner (skills and items 0-based). ``answers`` numbers
    each row's answer within its sequence (the rows of one multi-skill answer share it);
    None when the format cannot tell (every row its own answer)."""

    skills: list[np.ndarray]
    correct: list[np.ndarray]
    items: list[np.ndarray] | None = None
    answers: list[np.ndarray] | None = None


def answers_from_problems(items: np.ndarray, skills: np.ndarray) -> np.ndarray:
    """Answer numbers for one sequence of rows with problem ids: consecutive rows on the same
    problem are one answer logged once per skill, until a skill repeats (a new attempt)."""
    out = np.empty(len(items), dtype=np.int64)
    current, seen = -1, set[int]()
    for r in range(len(items)):
        s = int(skills[r])
        if r == 0 or items[r] != items[r - 1] or s in seen:
            current += 1
            seen = set()
        seen.add(s)
        out[r] = current
    return out


def _ints(line: str) -> np.ndarray:
    return np.array([int(x) for x in line.strip().strip(",").split(",") if x.strip() != ""], dtype=np.int64)


def read_three_line(path: Path) -> Sequences:
    """DKVMN format: length / skill ids (1-based) / answers, three lines per learner."""
    lines = path.read_text().splitlines()
    lines = [ln for ln in lines if ln.strip()]
    skills, correct = [], []
    for i in range(0, len(lines) - 2, 3):
        s, c = _ints(lines[i + 1]), _ints(lines[i + 2])
        n = min(int(_ints(lines[i])[0]), len(s), len(c))
        skills.append(s[:n] - 1)
        correct.append(c[:n])
    return Sequences(skills=skills, correct=correct)


def read_four_line(path: Path) -> Sequences:
    """AKT format: index,user / problem ids (1-based) / skill ids (1-based) / answers."""
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    skills, correct, items, answers = [], [], [], []
    for i in range(0, len(lines) - 3, 4):
        q, s, c = _ints(lines[i + 1]), _ints(lines[i + 2]), _ints(lines[i + 3])
        n = min(len(q), len(s), len(c))
        items.append(q[:n] - 1)
        skills.append(s[:n] - 1)
        correct.append(c[:n])
        answers.append(answers_from_problems(q[:n], s[:n]))
    return Sequences(skills=skills, correct=correct, items=items, answers=answers)


def read_pykt_csv(path: Path, folds: set[int] | None = None) -> Sequences:
    """pyKT's sequence csv (``fold,uid,questions,concepts,responses,...``; ``questions``
    optional), one row per (chunk of a) learner sequence, lists comma-separated, -1 padding.
    A question of several concepts is either ``c1_c2`` in a question-level file (one answer,
    one row per concept) or consecutive rows flagged by ``is_repeat`` in an expanded file.
    ``folds`` keeps only rows whose fold is in it. Ids are kept as given (0-based)."""
    import csv

    skills, correct, items, answers = [], [], [], []
    has_items = False
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        need = {"concepts", "responses"}
        if reader.fieldnames is None or not need <= set(reader.fieldnames):
            raise SystemExit(
                f"{path}:1: a pyKT csv needs the columns {sorted(need)}, got {reader.fieldnames}"
            )
        has_items = "questions" in reader.fieldnames
        for line, row in enumerate(reader, start=2):
            if folds is not None and "fold" in row and int(row["fold"]) not in folds:
                continue
            cs = row["concepts"].split(",")
            rs = row["responses"].split(",")
            qs = row["questions"].split(",") if has_items else ["-1"] * len(cs)
            rep = row["is_repeat"].split(",") if row.get("is_repeat") else ["0"] * len(cs)
            if not len(cs) == len(rs) == len(qs) == len(rep):
                raise SystemExit(f"{path}:{line}: concepts, responses and questions differ in length")
            sk, co, it, an = [], [], [], []
            a = -1
            for c, r, q, again in zip(cs, rs, qs, rep, strict=True):
                if r.strip() in ("-1", ""):
                    continue
                if again.strip() != "1":
                    a += 1
                for concept in dict.fromkeys(c.split("_")):
                    sk.append(int(concept))
                    co.append(int(r))
                    it.append(int(q))
                    an.append(a)
            if sk:
                skills.append(np.array(sk, dtype=np.int64))
                correct.append(np.array(co, dtype=np.int64))
                items.append(np.array(it, dtype=np.int64))
                answers.append(np.array(an, dtype=np.int64))
    return Sequences(skills=skills, correct=correct, items=items if has_items else None, answers=answers)


def read_sequences(path: Path, fmt: str = "auto") -> Sequences:
    """Any of the sequence formats: "three" (DKVMN), "four" (AKT, problem ids), "pykt" (csv);
    "auto" tells them apart by the csv header or the first line (a length, or index,user)."""
    if not path.exists():
        raise SystemExit(f"{path}: no such file")
    if fmt == "auto":
        first = path.open().readline().strip()
        if first.startswith("fold,") or "concepts" in first.split(","):
            fmt = "pykt"
        else:
            fmt = "four" if len([x for x in first.split(",") if x.strip()]) == 2 else "three"
    if fmt == "pykt":
        return read_pykt_csv(path)
    return read_four_line(path) if fmt == "four" else read_three_line(path)


def to_log(seqs: Sequences, user_offset: int = 0, answers: bool = True) -> ResponseLog:
    """One log of all sequences (learner i is ``user_offset + i``); with ``answers`` and a
    format that has them, the rows carry their answer ids (unique across the log)."""
    lengths = [len(s) for s in seqs.skills]
    user = np.repeat(np.arange(len(lengths), dtype=np.int64) + user_offset, lengths)
    skill = np.concatenate(seqs.skills) if lengths else np.zeros(0, dtype=np.int64)
    correct = (np.concatenate(seqs.correct) if lengths else np.zeros(0)).astype(np.int8)
    item = np.concatenate(seqs.items) if seqs.items is not None and lengths else None
    answer = None
    if answers and seqs.answers is not None and lengths:
        spans = [int(a.max()) + 1 if len(a) else 0 for a in seqs.answers]
        offsets = np.r_[0, np.cumsum(spans)[:-1]]
        answer = np.concatenate([a + o for a, o in zip(seqs.answers, offsets, strict=True)]).astype(np.int64)
    return ResponseLog(user=user, skill=skill, correct=correct, item=item, answer=answer)


def read_tsv(path: Path) -> ResponseLog:
    """Gervet format: header ``user_id item_id timestamp correct skill_id``, tab separated.
    A timestamp column of zeros means no times: ``timestamp`` is then None."""
    arr = np.loadtxt(path, skiprows=1, dtype=np.float64, delimiter="\t", ndmin=2)
    ts = arr[:, 2]
    return ResponseLog(
        user=arr[:, 0].astype(np.int64),
        item=arr[:, 1].astype(np.int64),
        timestamp=ts if np.any(ts != 0) else None,
        correct=arr[:, 3].astype(np.int8),
        skill=arr[:, 4].astype(np.int64),
    )


@dataclass
class Split:
    dataset: str
    protocol: str
    train: ResponseLog
    test: ResponseLog


PROTOCOL_DKVMN = (
    "fixed train/test files ({train} / {test}), skill ids only; whole learner sequences "
    "(no 200-step cut); every test answer scored, each from that learner's earlier test "
    "answers only; no tuning on test"
)
PROTOCOL_GERVET = (
    "Gervet et al. 2020 80/20 user split (preprocessed_data_train / _test), item and skill ids; "
    "every test answer scored from the learner's earlier answers; no tuning on test"
)
PROTOCOL_AKT = (
    "AKT 5-fold user split: fit on assist2009_pid_train{k}, score assist2009_pid_test{k}, "
    "mean over folds {folds}; problem and skill ids; whole sequences (no 200-step cut)"
)


PROTOCOL_STATICS = (
    "fixed train/test files ({train} / {test}); step ids as items, mapped to the dataset's 98 "
    "skills by its own STATICS_qid_sid_sname (= Qmatrix.csv); whole learner sequences (no 200-step "
    "cut); every test answer scored, each from that learner's earlier test answers only; no "
    "tuning on test"
)


def statics_items_to_skills(seqs: Sequences, mapping: Path) -> Sequences:
    """STATICS ids are problem steps: keep them as items, and take the skill of each step from
    the dataset's map (``STATICS_qid_sid_sname``, one skill per step, as in ``Qmatrix.csv``)."""
    rows = [ln.split("\t") for ln in mapping.read_text().splitlines()[1:] if ln.strip()]
    table = np.zeros(max(int(r[0]) for r in rows), dtype=np.int64)
    for r in rows:
        table[int(r[0]) - 1] = int(r[1]) - 1
    return Sequences(skills=[table[s] for s in seqs.skills], correct=seqs.correct, items=seqs.skills)


def dkvmn_files(dataset: str, part: str = "test") -> tuple[str, str]:
    """The train and scored files: ``part`` "test" (the fixed split) or "valid1".."valid5"
    (the k-th train/valid fold, for choosing hyper-parameters without the test file)."""
    stem = {"dkvmn_assist2009_updated": "assist2009_updated", "dkvmn_STATICS": "STATICS"}[dataset]
    if part == "test":
        return f"{stem}_train.csv", f"{stem}_test.csv"
    k = part.removeprefix("valid")
    return f"{stem}_train{k}.csv", f"{stem}_valid{k}.csv"


def load_split(data: Path, dataset: str, fold: int = 1, part: str = "test") -> Split:
    if dataset in ("dkvmn_assist2009_updated", "dkvmn_STATICS"):
        tr, te = dkvmn_files(dataset, part)
    elif dataset in ("gervet_assistments09", "gervet_statics"):
        d = data / dataset
        train = read_tsv(d / "preprocessed_data_train.csv")
        test = read_tsv(d / "preprocessed_data_test.csv")
        return Split(dataset, PROTOCOL_GERVET, train, test)
    elif dataset == "akt_assist2009_pid":
        d = data / dataset
        train_s = read_four_line(d / f"assist2009_pid_train{fold}.csv")
        test_s = read_four_line(d / f"assist2009_pid_test{fold}.csv")
        train = to_log(train_s)
        return Split(dataset, PROTOCOL_AKT, train, to_log(test_s, user_offset=len(train_s.skills)))
    else:
        raise SystemExit(f"unknown dataset {dataset}")
    d = data / dataset
    train_s, test_s = read_three_line(d / tr), read_three_line(d / te)
    protocol = PROTOCOL_DKVMN
    if dataset == "dkvmn_STATICS":
        train_s = statics_items_to_skills(train_s, d / "STATICS_qid_sid_sname")
        test_s = statics_items_to_skills(test_s, d / "STATICS_qid_sid_sname")
        protocol = PROTOCOL_STATICS
    train = to_log(train_s)
    return Split(
        dataset,
        protocol.format(train=tr, test=te),
        train,
        to_log(test_s, user_offset=len(train_s.skills)),
    )


# -- models and peers ------------------------------------------------------------------------------

MODELS: dict[str, Callable[..., KnowledgeTracer]] = {
    "learnloop.bkt": lambda: BKT(),
    "learnloop.bkt_forget": lambda: BKT(fit_forget=True),
    "learnloop.logistic": lambda **hyper: LogisticKT(**hyper),
    # Not the product's defaults (l2=1, item_prior=False): the best of the l2 x item-prior grid
    # on both Gervet validation splits (--protocols gervet-valid), measured beside them.
    "learnloop.logistic+item_prior+l2_3": lambda **hyper: LogisticKT(
        **{"l2": 3.0, "item_prior": True, **hyper}
    ),
    # The product's trees at their defaults (``fit kt --model gbdt``, the kt-gbdt extra), chosen on
    # both Gervet validation splits (--protocols gervet-gbdt, bench/kt_gbdt.py).
    "learnloop.gbdt": lambda **hyper: GBDTKT(**hyper),
}

# Hyper-parameters per dataset, chosen on the DKVMN train1/valid1 fold (never on the test
# file); the rest keep LogisticKT's defaults. On STATICS valid1: l2 0.3 -> AUC 0.8256,
# 1.0 -> 0.8253, 3.0 -> 0.8242. (The defaults l2_pair=3, pair_lags=2 were chosen on ASSIST2009
# valid1: no pairs 0.7897, l2_pair 10 -> 0.8225, 3 -> 0.8242, 3 with 2 lags -> 0.8254.)
HYPER: dict[str, dict[str, dict[str, Any]]] = {
    "dkvmn_STATICS": {"learnloop.logistic": {"l2": 0.3}},
}

CHUNK = 200
PROTOCOL_CHUNKS = (
    "fixed train/test files ({train} / {test}), as the DKT/DKVMN re-implementations: every "
    "learner sequence cut into 200-step chunks, each chunk a new learner (in training and "
    "testing); every test answer scored from the earlier answers of its chunk; {extra}no tuning on test"
)


def chunked(log: ResponseLog, size: int = CHUNK) -> ResponseLog:
    """Each learner's rows cut into consecutive pieces of ``size``, each piece a new learner
    (the 200-step protocol of the DKT/DKVMN code). Rows stay in their order."""
    order = np.argsort(log.user, kind="stable")
    u = log.user[order]
    new = np.r_[True, u[1:] != u[:-1]] if len(u) else np.zeros(0, dtype=bool)
    starts = np.flatnonzero(new)
    group = np.cumsum(new) - 1
    pos = np.arange(len(u)) - starts[group]
    piece = np.empty(len(u), dtype=np.int64)
    piece[order] = group * (int(pos.max()) // size + 1 if len(u) else 1) + pos // size
    _, user = np.unique(piece, return_inverse=True)
    return ResponseLog(
        user=user.astype(np.int64),
        skill=log.skill,
        correct=log.correct,
        item=log.item,
        timestamp=log.timestamp,
    )


def first_fit_overhead_seconds() -> float:
    """The one-off cost of a process's first ``BKT.fit``: importing Numba and loading the
    compiled E-step from its on-disk cache (compiling it when the cache is cold). Measured on
    a two-answer log before any timed fit, so ``fit_seconds`` is the steady-state cost, as
    pyBKT's is timed after its own import."""
    tiny = ResponseLog(
        user=np.zeros(2, dtype=np.int64), skill=np.zeros(2, dtype=np.int64), correct=np.array([0, 1], np.int8)
    )
    start = time.perf_counter()
    BKT(restarts=1, max_iter=1).fit(tiny)
    return time.perf_counter() - start


def online_update_us(model: KnowledgeTracer, log: ResponseLog, limit: int = 20000) -> float:
    """Mean wall time of predict_next + update per answer, replaying ``log`` learner by learner."""
    return online_update_times(model, log, limit)[0]


def online_update_times(model: KnowledgeTracer, log: ResponseLog, limit: int = 20000) -> tuple[float, float]:
    """Mean wall time and mean CPU time of this process (microseconds) of predict_next + update
    per answer, replaying ``log`` learner by learner. On a shared machine the wall time counts
    the other processes' turns on the cores; the CPU time counts this one's own work."""
    n = min(len(log), limit)
    states: dict[int, dict[str, Any]] = {}
    user, skill, correct = log.user[:n].tolist(), log.skill[:n].tolist(), log.correct[:n].tolist()
    item = log.item[:n].tolist() if log.item is not None else [None] * n
    ts = log.timestamp[:n].tolist() if log.timestamp is not None else [None] * n
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        state = states.get(user[i])
        if state is None:
            state = states[user[i]] = model.initial_state()
        model.predict_next(state, skill[i], item[i], ts[i])
        model.update(state, skill[i], correct[i], item[i], ts[i])
    cpu, wall = time.process_time() - cpu, time.perf_counter() - start
    return wall / max(n, 1) * 1e6, cpu / max(n, 1) * 1e6


def _write_pybkt_csv(log: ResponseLog, path: Path) -> None:
    order = np.arange(len(log))
    with path.open("w") as f:
        f.write("order_id,user_id,skill_name,correct\n")
        np.savetxt(f, np.column_stack([order, log.user, log.skill, log.correct]), fmt="%d", delimiter=",")


def run_pybkt(split: Split, fits: int) -> tuple[np.ndarray, dict[str, Any]] | None:
    """pyBKT on the same split, in its own venv; None (with a note) when it is not set up."""
    version = subprocess.run(["bash", str(PEERS), "version"], capture_output=True, text=True).stdout.strip()
    if not version:
        print("pyBKT not set up: run `bash bench/kt_peers.sh setup`", file=sys.stderr)
        return None
    with tempfile.TemporaryDirectory() as tmp:
        tr, te, out = Path(tmp) / "train.csv", Path(tmp) / "test.csv", Path(tmp) / "pred.txt"
        _write_pybkt_csv(split.train, tr)
        _write_pybkt_csv(split.test, te)
        proc = subprocess.run(
            ["bash", str(PEERS), "pybkt", str(tr), str(te), str(out), str(fits)],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            print(f"pyBKT failed on {split.dataset}:\n{proc.stderr[-2000:]}", file=sys.stderr)
            return None
        info = json.loads(proc.stdout.strip().splitlines()[-1])
        return np.loadtxt(out, ndmin=1), info


# -- published figures -----------------------------------------------------------------------------

SEEWOO = "seewoo5/KT README (PyTorch re-implementation), via shared/data/README.md"
GERVET = (
    "Gervet et al. 2020, learner-performance-prediction README, via shared/data/README.md; checked "
    "2026-12-07 against the Results table of theophilegervet/learner-performance-prediction "
    "README.md (commit 0031c41): assist09 and statics columns as quoted"
)
PUBLISHED: dict[str, tuple[str, str, dict[str, float]]] = {
    "dkvmn_assist2009_updated": (
        SEEWOO,
        "fixed train/test files, 200-step chunks (their protocol)",
        {"dkt": 0.818, "dkvmn": 0.796},
    ),
    "dkvmn_STATICS": (
        SEEWOO,
        "fixed train/test files, 200-step chunks (their protocol)",
        {"dkt": 0.829, "dkvmn": 0.812},
    ),
    "gervet_assistments09": (
        GERVET,
        "Gervet et al. 2020 80/20 user split (their protocol)",
        {"irt": 0.69, "pfa": 0.72, "best_lr": 0.77, "dkt": 0.75, "sakt": 0.75},
    ),
    "gervet_statics": (
        GERVET,
        "Gervet et al. 2020 80/20 user split (their protocol)",
        {"irt": 0.79, "pfa": 0.69, "best_lr": 0.82, "dkt": 0.83, "sakt": 0.81},
    ),
}


# -- the run -----------------------------------------------------------------------------------------

# The logistic model sees STATICS through its 98 skills with the step ids as items (it uses
# both); BKT and pyBKT see one view only, step ids or the 98 skills, chosen by BKT's AUC on the
# train1/valid1 fold (``statics_bkt_view``), never on the test file.
SKILL_VIEW = {"learnloop.logistic", "learnloop.logistic+item_prior+l2_3"}
PROTOCOL_STATICS_VIEW = (
    "BKT's view of STATICS chosen on train1/valid1 (STATICS_train1.csv / STATICS_valid1.csv): "
    "step ids as skills, or the 98 skills of STATICS_qid_sid_sname; every valid answer scored"
)


def statics_bkt_view(data: Path) -> tuple[str, dict[str, float]]:
    """BKT's STATICS view ("steps" or "skills") with the higher AUC on train1/valid1."""
    split = load_split(data, "dkvmn_STATICS", part="valid1")
    aucs = {}
    for view in ("steps", "skills"):
        seen = _step_view(split) if view == "steps" else split
        aucs[view] = float(auc(seen.test.correct, BKT().fit(seen.train).predict_proba(seen.test)))
    return max(aucs, key=lambda v: aucs[v]), aucs


def _step_view(split: Split) -> Split:
    def steps(log: ResponseLog) -> ResponseLog:
        assert log.item is not None
        return ResponseLog(user=log.user, skill=log.item, correct=log.correct)

    return Split(split.dataset, split.protocol, steps(split.train), steps(split.test))


def method_split(split: Split, name: str, bkt_view: str = "steps") -> Split:
    """The split as ``name`` sees it: for dkvmn_STATICS, BKT and pyBKT get ``bkt_view``
    (step ids as skills, or the skill map); the logistic model the skill map, steps as items."""
    if (
        split.dataset != "dkvmn_STATICS"
        or name in SKILL_VIEW
        or split.train.item is None
        or bkt_view == "skills"
    ):
        return split

    def steps(log: ResponseLog) -> ResponseLog:
        assert log.item is not None
        return ResponseLog(user=log.user, skill=log.item, correct=log.correct)

    tr, te = dkvmn_files(split.dataset)
    return Split(
        split.dataset, PROTOCOL_DKVMN.format(train=tr, test=te), steps(split.train), steps(split.test)
    )


def bench_dataset(
    data: Path,
    dataset: str,
    methods: list[str],
    pybkt_fits: int,
    folds: list[int],
    first_fit_overhead: float | None = None,
) -> list[Record]:
    records: list[Record] = []
    per_fold: dict[tuple[str, str], list[float]] = {}
    protocol = ""
    protocol_of: dict[str, str] = {}
    bkt_view = "steps"
    if dataset == "dkvmn_STATICS":
        records += statics_view_records(data)
        bkt_view = str(records[-1]["value"])
    for fold in folds:
        split_all = load_split(data, dataset, fold)
        y = split_all.test.correct
        print(
            f"{dataset} fold {fold}: train {len(split_all.train)} rows, test {len(split_all.test)} rows",
            flush=True,
        )
        for name in methods:
            split = method_split(split_all, name, bkt_view)
            protocol = protocol_of[name] = split.protocol.format(folds=",".join(map(str, folds)))
            if name == "pybkt":
                res = run_pybkt(split, pybkt_fits)
                if res is None:
                    continue
                pred, info = res
                vals = {
                    **scores(y, pred),
                    "fit_seconds": info["fit_seconds"],
                    "unknown_skill_rows": info["unknown_skill_rows"],
                }
            else:
                model = MODELS[name](**HYPER.get(dataset, {}).get(name, {}))
                start, cpu = time.perf_counter(), time.process_time()
                model.fit(split.train)
                fit_seconds, fit_cpu = time.perf_counter() - start, time.process_time() - cpu
                pred = model.predict_proba(split.test)
                vals = {
                    **scores(y, pred),
                    "fit_seconds": fit_seconds,
                    "fit_cpu_seconds": fit_cpu,
                    "online_update_us": online_update_us(model, split.test),
                }
            print(f"  {name}: " + ", ".join(f"{k} {v:.4g}" for k, v in vals.items()), flush=True)
            for metric, value in vals.items():
                per_fold.setdefault((name, metric), []).append(float(value))
    for (name, metric), values in per_fold.items():
        records.append(
            record(dataset, protocol_of[name], name, metric, float(np.mean(values)), peer=name == "pybkt")
        )
    protocol = protocol_of.get("learnloop.bkt", protocol)
    if first_fit_overhead is not None and "learnloop.bkt" in methods:
        records.append(
            record(dataset, protocol, "learnloop.bkt", "first_fit_overhead_seconds", first_fit_overhead)
        )
    # BKT against pyBKT on the same split: the AUC gap and the fit-time ratio.
    got: dict[tuple[Any, Any], Any] = {(r["method"], r["metric"]): r["value"] for r in records}
    if ("pybkt", "auc") in got and ("learnloop.bkt", "auc") in got:
        records.append(
            record(
                dataset,
                protocol,
                "learnloop.bkt",
                "auc_minus_pybkt",
                float(got[("learnloop.bkt", "auc")]) - float(got[("pybkt", "auc")]),
            )
        )
        records.append(
            record(
                dataset,
                protocol,
                "learnloop.bkt",
                "fit_speedup_vs_pybkt",
                float(got[("pybkt", "fit_seconds")]) / float(got[("learnloop.bkt", "fit_seconds")]),
            )
        )
    if dataset.startswith("dkvmn_") and "learnloop.logistic" in methods:
        records += bench_chunked(data, dataset)
    if dataset in PUBLISHED:
        source, their_protocol, figures = PUBLISHED[dataset]
        for method, value in figures.items():
            records.append(record(dataset, their_protocol, method, "auc", value, source=source))
    return records


def statics_view_records(data: Path) -> list[Record]:
    """The STATICS view chosen for BKT on train1/valid1, as records (the last is the choice)."""
    view, aucs = statics_bkt_view(data)
    print(f"dkvmn_STATICS: BKT view on valid1 {aucs} -> {view}", flush=True)
    out = [
        record("dkvmn_STATICS", PROTOCOL_STATICS_VIEW, "learnloop.bkt", f"valid_auc[{v}]", a)
        for v, a in aucs.items()
    ]
    return [*out, record("dkvmn_STATICS", PROTOCOL_STATICS_VIEW, "learnloop.bkt", "chosen_view", view)]


def bench_chunked(data: Path, dataset: str) -> list[Record]:
    """The logistic model under the 200-step-chunk protocol of the published DKT figures."""
    split = load_split(data, dataset)
    tr, te = dkvmn_files(dataset)
    extra = (
        "step ids as items, mapped to skills by STATICS_qid_sid_sname; " if dataset == "dkvmn_STATICS" else ""
    )
    protocol = PROTOCOL_CHUNKS.format(train=tr, test=te, extra=extra)
    name = "learnloop.logistic"
    model = MODELS[name](**HYPER.get(dataset, {}).get(name, {}))
    model.fit(chunked(split.train))
    test = chunked(split.test)
    vals = scores(test.correct, model.predict_proba(test))
    print(f"  {name} (200-step chunks): " + ", ".join(f"{k} {v:.4g}" for k, v in vals.items()), flush=True)
    return [record(dataset, protocol, name, metric, float(v)) for metric, v in vals.items()]


DATASETS = [
    "dkvmn_assist2009_updated",
    "dkvmn_STATICS",
    "gervet_assistments09",
    "gervet_statics",
    "akt_assist2009_pid",
]


def bench_files(args: argparse.Namespace) -> list[Record]:
    """Any dataset given as files: fit on --train (settings chosen on --valid when given, among
    --l2-grid), score --test leak-free, on every row, each answer's first row and once per answer."""
    from bench import kt_answers

    def load(path: Path, offset: int = 0) -> tuple[ResponseLog, int]:
        if args.format == "tsv":
            log = read_tsv(path)
            return ResponseLog(
                user=log.user + offset,
                skill=log.skill,
                correct=log.correct,
                item=log.item,
                timestamp=log.timestamp,
            ), int(log.user.max()) + 1 + offset
        seqs = read_sequences(path, args.format)
        return to_log(seqs, user_offset=offset), offset + len(seqs.skills)

    train, n = load(args.train)
    valid = None
    if args.valid is not None:
        valid, n = load(args.valid, n)
    test, _ = load(args.test, n)
    name = args.name or args.train.stem
    grid = [{"l2": v} for v in args.l2_grid]
    best = grid[0]
    if valid is not None and len(grid) > 1:
        aucs = [auc(valid.correct, LogisticKT(**h).fit(train).predict_proba(valid)) for h in grid]
        best = grid[int(np.argmax(aucs))]
        print(f"{name}: valid AUC {dict(zip(args.l2_grid, aucs, strict=True))} -> {best}", flush=True)
    protocol = (
        f"train {args.train.name}, test {args.test.name}"
        + (f", settings chosen on {args.valid.name} among l2 {args.l2_grid}" if valid is not None else "")
        + "; every row predicted from the learner's earlier answers only; {scoring}"
    )
    records: list[Record] = []
    for method, model in (("learnloop.logistic", LogisticKT(**best)), ("learnloop.bkt", BKT())):
        start = time.perf_counter()
        model.fit(train)
        seconds = time.perf_counter() - start
        s = kt_answers.scored(test, model.predict_proba(test))
        for scoring, value in (
            ("every row scored", s.auc_rows()),
            ("each answer's first row scored", s.auc_first_rows()),
            ("one prediction per answer (mean of its rows)", s.auc_answers()),
        ):
            records.append(record(name, protocol.format(scoring=scoring), method, "auc", value))
        records.append(
            record(name, protocol.format(scoring="every row scored"), method, "fit_seconds", seconds)
        )
        print(
            f"  {method}: rows {s.auc_rows():.4f}, first rows {s.auc_first_rows():.4f}, answers {s.auc_answers():.4f}"
        )
    return records


PROTOCOL_GERVET_VALID = (
    "Gervet et al. 2020 training file only (preprocessed_data_train), its learners split {fit_share}/{valid_share} "
    "at random (seed {seed}) into fit and valid; the logistic model fitted on fit with each setting, "
    "valid AUC per setting; the test file is not read"
)
GERVET_VALID_SEED = 0


def gervet_valid_split(data: Path, dataset: str) -> tuple[ResponseLog, ResponseLog]:
    """The Gervet training file's learners split at random into fit (4/5) and valid (1/5)."""
    train = load_split(data, dataset).train
    users = np.unique(train.user)
    rng = np.random.default_rng(GERVET_VALID_SEED)
    held = np.isin(train.user, rng.choice(users, len(users) // 5, replace=False))
    return train.subset(~held), train.subset(held)


def parse_decays(text: str) -> tuple[float, ...]:
    """``--ability-grid`` entries: "none" or decays separated by commas ("0.5,0.8,0.95,0.99")."""
    return () if text == "none" else tuple(float(v) for v in text.split(","))


def gervet_valid_records(
    data: Path,
    dataset: str,
    l2_grid: Sequence[float],
    priors: Sequence[bool] = (False,),
    abilities: Sequence[tuple[float, ...]] = ((),),
    l2_abilities: Sequence[float] = (3.0,),
) -> list[Record]:
    """Evidence for choosing the logistic model's settings on the Gervet splits without their
    test file: a fifth of the training learners held out, valid AUC and fit CPU time for each
    ``l2`` in ``l2_grid``, each ``item_prior`` in ``priors`` and each ``FeatureSpec.
    ability_decays`` in ``abilities`` (the rest at LogisticKT's defaults, which ``learnloop fit
    kt`` uses; the default has no item prior and no ability decays), the slopes on the ability
    decays with each ridge in ``l2_abilities``. A setting with ability decays also gets its
    online predict + update time on the valid learners."""
    fit, valid = gervet_valid_split(data, dataset)
    protocol = PROTOCOL_GERVET_VALID.format(fit_share="80", valid_share="20", seed=GERVET_VALID_SEED)
    records: list[Record] = []
    for l2 in l2_grid:
        for prior in priors:
            for decays, l2_ability in [(d, a) for d in abilities for a in (l2_abilities if d else [3.0])]:
                cpu = time.process_time()
                features = FeatureSpec(ability_decays=decays)
                model = LogisticKT(l2=l2, item_prior=prior, features=features, l2_ability=l2_ability)
                model.fit(fit)
                cpu = time.process_time() - cpu
                value = auc(valid.correct, model.predict_proba(valid))
                name = f"learnloop.logistic l2={l2:g}" + (" item_prior=on" if prior else "")
                if decays:
                    name += " ability_decays=" + ",".join(f"{d:g}" for d in decays)
                    name += f" l2_ability={l2_ability:g}" if l2_ability != 3.0 else ""
                print(f"{dataset}: valid AUC of {name}: {value:.4f} (fit {cpu:.1f} s CPU)", flush=True)
                records.append(record(dataset, protocol, name, "valid_auc", value))
                records.append(record(dataset, protocol, name, "fit_cpu_seconds", cpu))
                if decays:
                    records.append(
                        record(dataset, protocol, name, "online_update_us", online_update_us(model, valid))
                    )
    return records


# Records superseded by the leak-free protocols: the logistic model on the DKVMN ASSIST2009
# files read row by row under the earlier protocols (its later rows of a multi-skill answer
# read the first); the leak-free protocols measure that reading explicitly instead.
_A, _B = "assist2009_updated_train.csv", "assist2009_updated_test.csv"
SUPERSEDED_PROTOCOLS = {
    PROTOCOL_DKVMN.format(train=_A, test=_B),
    PROTOCOL_CHUNKS.format(train=_A, test=_B, extra=""),
}
SUPERSEDED = {("dkvmn_assist2009_updated", "learnloop.logistic")}


def merge_results(records: list[Record], command: str) -> tuple[list[Record], str]:
    """The committed kt.json's records, with those measured again replaced (same dataset,
    protocol, method and metric) and the superseded ones dropped; its command plus ours."""
    path = ROOT / "bench" / "results" / "kt.json"
    old: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {"records": [], "command": ""}
    fresh = {(r["dataset"], r["protocol"], r["method"], r["metric"]) for r in records}
    kept: list[Record] = [
        r
        for r in old["records"]
        if (r["dataset"], r["protocol"], r["method"], r["metric"]) not in fresh
        and not ((r["dataset"], r["method"]) in SUPERSEDED and r["protocol"] in SUPERSEDED_PROTOCOLS)
    ]
    commands = [c for c in str(old.get("command", "")).split(" ; ") if c and c != command]
    return kept + records, " ; ".join([*commands, command])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding the kt datasets")
    parser.add_argument("--datasets", nargs="*", default=DATASETS[:4], choices=DATASETS)
    parser.add_argument("--methods", nargs="+", default=[*MODELS, "pybkt"], choices=[*MODELS, "pybkt"])
    parser.add_argument("--pybkt-fits", type=int, default=5, help="pyBKT random restarts (its default, 5)")
    parser.add_argument("--folds", type=int, nargs="+", default=[1], help="AKT folds to run (1-5)")
    parser.add_argument(
        "--protocols",
        nargs="*",
        default=[],
        choices=[
            "akt",
            "pykt",
            "dkvmn",
            "statics-view",
            "gervet-valid",
            "gervet-gbdt",
            "gbdt-online",
            "published",
        ],
        help="leak-free protocols (bench/kt_answers.py): akt (AKT's folds, with pykt also pyKT's "
        "question-level evaluation), dkvmn (DKVMN ASSIST2009, answers recovered), statics-view "
        "(BKT's STATICS representation chosen on valid1), gervet-valid (the logistic model's l2 "
        "on a fifth of the Gervet training learners, --l2-grid), gervet-gbdt (GBDTKT's "
        "settings on the same split: bench/kt_gbdt.py), gbdt-online (GBDTKT's online time on the Gervet "
        "test learners, its compiled tree walk against Booster.predict, wall and CPU time), published (only the AKT paper's and "
        "pyKT's figures, with their sources; nothing fitted)",
    )
    parser.add_argument(
        "--l2-grid", type=float, nargs="+", default=[1.0, 3.0], help="l2 values tried on valid"
    )
    parser.add_argument(
        "--train", type=Path, help="a training file (DKVMN 3-line, AKT 4-line, pyKT csv, Gervet tsv)"
    )
    parser.add_argument(
        "--item-prior-grid",
        nargs="+",
        default=["off"],
        choices=["off", "on"],
        help="gervet-valid: the logistic model's item prior (LogisticKT item_prior) off, on or both",
    )
    parser.add_argument(
        "--ability-grid",
        nargs="+",
        default=["none"],
        help="gervet-valid: FeatureSpec.ability_decays to try, each 'none' or decays joined by commas "
        "(per-item and per-skill slopes on the learner's recent log-odds of success)",
    )
    parser.add_argument(
        "--l2-ability-grid",
        type=float,
        nargs="+",
        default=[3.0],
        help="gervet-valid: LogisticKT l2_ability (the ridge on those slopes) values tried",
    )
    parser.add_argument(
        "--online-datasets",
        nargs="+",
        default=["gervet_statics"],
        choices=["gervet_assistments09", "gervet_statics"],
        help="gbdt-online: the Gervet datasets whose test learners are replayed",
    )
    parser.add_argument("--valid", type=Path, help="a validation file, to choose l2 among --l2-grid")
    parser.add_argument("--test", type=Path, help="the scored file")
    parser.add_argument("--format", default="auto", choices=["auto", "three", "four", "pykt", "tsv"])
    parser.add_argument("--name", help="dataset name for the records of --train/--test")
    parser.add_argument("--merge", action="store_true", help="merge into the committed kt.json")
    parser.add_argument("--jobs", type=int, default=1, help="AKT folds run at once (one process each)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/results/kt.json")
    args = parser.parse_args(argv)
    records: list[Record] = []
    if (args.train is None) != (args.test is None):
        parser.error("--train and --test go together")
    if args.train is not None:
        records += bench_files(args)
    # Once per process, and reported with every dataset's BKT records.
    overhead = (
        first_fit_overhead_seconds()
        if args.datasets and any(m.startswith("learnloop.bkt") for m in args.methods)
        else None
    )
    if overhead is not None:
        print(f"BKT first-fit overhead (Numba import and compiled E-step load): {overhead:.3f} s", flush=True)
    for dataset in args.datasets:
        folds = args.folds if dataset == "akt_assist2009_pid" else [1]
        records += bench_dataset(args.data, dataset, args.methods, args.pybkt_fits, folds, overhead)
    if args.protocols:
        from bench import kt_answers

        if "statics-view" in args.protocols:
            records += statics_view_records(args.data)
        if "gervet-valid" in args.protocols:
            for dataset in ("gervet_assistments09", "gervet_statics"):
                records += gervet_valid_records(
                    args.data,
                    dataset,
                    args.l2_grid,
                    [v == "on" for v in args.item_prior_grid],
                    [parse_decays(v) for v in args.ability_grid],
                    args.l2_ability_grid,
                )
        if "gervet-gbdt" in args.protocols:
            from bench import kt_gbdt

            records += kt_gbdt.gervet_gbdt_records(
                args.data, ("gervet_assistments09", "gervet_statics"), gervet_valid_split, GERVET_VALID_SEED
            )
        if "gbdt-online" in args.protocols:
            from bench import kt_gbdt

            records += kt_gbdt.gbdt_online_records(args.data, args.online_datasets, load_split)
        if "dkvmn" in args.protocols:
            records += kt_answers.bench_dkvmn(args.data, read_three_line, read_four_line, to_log)
        if "published" in args.protocols and "akt" not in args.protocols:
            records += kt_answers.published_records()
        if "akt" in args.protocols:
            grid = [{"l2": v} for v in args.l2_grid]
            records += kt_answers.bench_akt(
                args.data,
                args.folds,
                grid,
                read_four_line,
                to_log,
                pykt="pykt" in args.protocols,
                jobs=args.jobs,
            )
    if not args.no_write:
        pybkt = subprocess.run(["bash", str(PEERS), "version"], capture_output=True, text=True).stdout.strip()
        command = command_line()
        if args.merge:
            records, command = merge_results(records, command)
            if not pybkt:  # the kept pyBKT records were measured with the version the file names
                old = json.loads((ROOT / "bench" / "results" / "kt.json").read_text())
                pybkt = old.get("environment", {}).get("pybkt") or ""
        path = write_results(
            "kt",
            records,
            ["numpy", "scipy", "numba", "lightgbm"],
            command=command,
            extra_environment={"pybkt": pybkt or None},
        )
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
