"""Knowledge tracing on public data: learnloop's BKT and logistic models against pyBKT and
published figures, on one stated protocol per dataset.

    python -m bench.kt --data $LEARNLOOP_DATA/kt --datasets dkvmn_assist2009_updated dkvmn_STATICS

pyBKT runs in its own virtual environment (``bench/kt_peers.sh`` builds it), on the same
split, and is scored by the same metric code.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from learnloop.science.kt.base import ResponseLog
from learnloop.science.kt.metrics import scores

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = Path(os.environ.get("LEARNLOOP_DATA", ROOT.parent / "shared" / "data")) / "kt"
RESULTS = ROOT / "bench" / "results" / "kt.json"


# -- loaders -----------------------------------------------------------------------------------

@dataclass
class Sequences:
    """Raw sequences as read: one per learner (skills and items 0-based)."""

    skills: list[np.ndarray]
    correct: list[np.ndarray]
    items: list[np.ndarray] | None = None


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
    skills, correct, items = [], [], []
    for i in range(0, len(lines) - 3, 4):
        q, s, c = _ints(lines[i + 1]), _ints(lines[i + 2]), _ints(lines[i + 3])
        n = min(len(q), len(s), len(c))
        items.append(q[:n] - 1)
        skills.append(s[:n] - 1)
        correct.append(c[:n])
    return Sequences(skills=skills, correct=correct, items=items)


def to_log(seqs: Sequences, user_offset: int = 0) -> ResponseLog:
    lengths = [len(s) for s in seqs.skills]
    user = np.repeat(np.arange(len(lengths), dtype=np.int64) + user_offset, lengths)
    skill = np.concatenate(seqs.skills) if lengths else np.zeros(0, dtype=np.int64)
    correct = (np.concatenate(seqs.correct) if lengths else np.zeros(0)).astype(np.int8)
    item = np.concatenate(seqs.items) if seqs.items is not None and lengths else None
    return ResponseLog(user=user, skill=skill, correct=correct, item=item)


def read_tsv(path: Path) -> ResponseLog:
    """Gervet format: header ``user_id item_id timestamp correct skill_id``, tab separated.
    A timestamp column of zeros means no times: ``timestamp`` is then None."""
    arr = np.loadtxt(path, skiprows=1, dtype=np.float64, delimiter="\t", ndmin=2)
    ts = arr[:, 2]
    return ResponseLog(user=arr[:, 0].astype(np.int64), item=arr[:, 1].astype(np.int64),
                       timestamp=ts if np.any(ts != 0) else None,
                       correct=arr[:, 3].astype(np.int8), skill=arr[:, 4].astype(np.int64))


@dataclass
class Split:
    dataset: str
    protocol: str
    train: ResponseLog
    test: ResponseLog


PROTOCOL_DKVMN = ("fixed train/test files ({train} / {test}), skill ids only; whole learner sequences "
                  "(no 200-step cut); every test answer scored, each from that learner's earlier test "
                  "answers only; no tuning on test")
PROTOCOL_GERVET = ("Gervet et al. 2020 80/20 user split (preprocessed_data_train / _test), item and skill ids; "
                   "every test answer scored from the learner's earlier answers; no tuning on test")
PROTOCOL_AKT = ("AKT 5-fold user split: fit on assist2009_pid_train{k}, score assist2009_pid_test{k}, "
                "mean over folds {folds}; problem and skill ids; whole sequences (no 200-step cut)")


def load_split(data: Path, dataset: str, fold: int = 1) -> Split:
    if dataset == "dkvmn_assist2009_updated":
        tr, te = "assist2009_updated_train.csv", "assist2009_updated_test.csv"
    elif dataset == "dkvmn_STATICS":
        tr, te = "STATICS_train.csv", "STATICS_test.csv"
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
    train = to_log(train_s)
    return Split(dataset, PROTOCOL_DKVMN.format(train=tr, test=te), train,
                 to_log(test_s, user_offset=len(train_s.skills)))
