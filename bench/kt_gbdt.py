"""Choosing ``GBDTKT``'s settings on the Gervet validation split (issue 19).

Issue 19 asks for a model at >= 0.80 AUC on Gervet ASSISTments09 and >= 0.85 on Gervet
Statics. This protocol chooses the settings of the product's trees (``science/kt/gbdt.py``,
``learnloop fit kt --model gbdt``) on the ``gervet-valid`` split only (the training file's
learners split 80/20 into fit and valid; the test file is not read): for each logistic base
setting in ``BASES`` the base is stacked once (``GBDTKT.stack``: five out-of-fold logistic fits
and one on every fit learner), then each tree setting in ``TREE_GRID`` is trained on the same
features and scored on valid after every 25 trees. Each record names the base, the tree
setting and the tree count; the logistic base alone is scored beside it. The product's
defaults (``GBDTKT()``) are the setting with the best mean valid AUC over both datasets; its
fit CPU time (the stack plus the trees) and online predict + update time are recorded too.
Requires ``pip install 'learnloop[kt-gbdt]'``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench._common import Record, record
from learnloop.science.kt.gbdt import GBDTKT, TREE_PARAMS
from learnloop.science.kt.metrics import auc

#: logistic base settings tried (LogisticKT keyword arguments; JSON-like): the two best
#: ability-decay settings of the gervet-valid logistic grid (--protocols gervet-valid)
BASES: dict[str, dict[str, Any]] = {
    "ability_decays=0.9 l2_ability=10": {"features": {"ability_decays": [0.9]}, "l2_ability": 10.0},
    "ability_decays=0.5,0.8,0.95,0.99 l2_ability=10": {
        "features": {"ability_decays": [0.5, 0.8, 0.95, 0.99]},
        "l2_ability": 10.0,
    },
}
#: tree settings tried (over TREE_PARAMS), with the most trees scored
TREE_GRID: dict[str, tuple[dict[str, Any], int]] = {
    "leaves 63, min leaf 200": ({}, 300),
    "leaves 31, min leaf 400": ({"num_leaves": 31, "min_data_in_leaf": 400}, 500),
}
STEP = 25

PROTOCOL_GERVET_GBDT = (
    "Gervet et al. 2020 training file only (preprocessed_data_train), its learners split 80/20 at "
    "random (seed {seed}) into fit and valid, as gervet-valid; GBDTKT (LightGBM {lightgbm}, base "
    "settings {params}) stacked on each logistic base on fit, each tree setting scored on valid "
    "every {step} trees; the test file is not read"
)


def gervet_gbdt_records(
    data: Path,
    datasets: Sequence[str],
    split: Any,
    seed: int,
    bases: dict[str, dict[str, Any]] | None = None,
    grid: dict[str, tuple[dict[str, Any], int]] | None = None,
) -> list[Record]:
    """Valid AUC per base x tree setting x tree count, the bases' own valid AUC and the
    product default's fit CPU and online time, per dataset. ``split(data, dataset)`` gives
    gervet-valid's (fit, valid) logs."""
    import lightgbm as lgb

    from bench.kt import online_update_us

    bases = BASES if bases is None else bases
    grid = TREE_GRID if grid is None else grid
    params = ", ".join(f"{k} {v}" for k, v in TREE_PARAMS.items() if k not in ("verbose", "objective"))
    protocol = PROTOCOL_GERVET_GBDT.format(seed=seed, lightgbm=lgb.__version__, params=params, step=STEP)
    default = GBDTKT()
    records: list[Record] = []
    for dataset in datasets:
        fit, valid = split(data, dataset)

        def add(method: str, metric: str, value: float, dataset: str = dataset) -> None:
            print(f"{dataset}: {method} {metric} {value:.4f}", flush=True)
            records.append(record(dataset, protocol, method, metric, value))

        for base_name, base in bases.items():
            model = GBDTKT(base=base)
            cpu = time.process_time()
            kept, x = model.stack(fit)
            stack_cpu = time.process_time() - cpu
            x_valid = model.features_of(valid)
            add(
                f"learnloop.logistic ({base_name})",
                "valid_auc",
                auc(valid.correct, model.logistic_.predict_proba(valid)),
            )
            add(f"learnloop.gbdt stack ({base_name})", "fit_cpu_seconds", stack_cpu)
            for tree_name, (extra, rounds) in grid.items():
                cpu = time.process_time()
                booster = model.train_trees(x, kept.correct, {**TREE_PARAMS, **extra}, rounds)
                tree_cpu = time.process_time() - cpu
                method = f"learnloop.gbdt ({base_name}; {tree_name})"
                add(method, "trees_fit_cpu_seconds", tree_cpu)
                for k in range(STEP, rounds + 1, STEP):
                    value = auc(valid.correct, np.asarray(booster.predict(x_valid, num_iteration=k)))
                    add(f"{method} trees={k}", "valid_auc", value)
                is_default = base == default.base and {**TREE_PARAMS, **extra} == default.params
                if is_default:
                    model.booster_ = model.train_trees(x, kept.correct, default.params, default.rounds)
                    name = (
                        f"learnloop.gbdt (product default: {base_name}; {tree_name}; {default.rounds} trees)"
                    )
                    add(name, "valid_auc", auc(valid.correct, model.predict_proba(valid)))
                    add(name, "fit_cpu_seconds", stack_cpu + tree_cpu * default.rounds / rounds)
                    add(name, "online_update_us", online_update_us(model, valid, limit=5000))
    return records


PROTOCOL_GBDT_ONLINE = (
    "Gervet et al. 2020 80/20 user split: GBDTKT at its defaults fitted on preprocessed_data_train; "
    "predict_next + update per answer replayed over the first {rows} rows of preprocessed_data_test "
    "(bench.kt.online_update_times), the trees evaluated by the product's compiled walk of their arrays "
    "(science/kt/tree_eval.FlatTrees) and by Booster.predict on a one-row matrix, alternated {rounds} "
    "times in one process after one warm-up replay of each; median wall time and median CPU time of "
    "the process per answer (on a shared machine the wall time also counts other processes' turns); "
    "machine load average {load}"
)


def gbdt_online_records(
    data: Path, datasets: Sequence[str], load_split: Any, rounds: int = 3
) -> list[Record]:
    """The online cost of the product's trees (``FlatTrees``) against Booster.predict on one row,
    on the same fitted model and the same answers. ``load_split(data, dataset)`` gives the split."""
    import os

    from bench.kt import online_update_times

    rows = 10000
    records: list[Record] = []
    for dataset in datasets:
        split = load_split(data, dataset)
        model = GBDTKT()
        cpu = time.process_time()
        model.fit(split.train)
        cpu = time.process_time() - cpu

        class ViaPredict(GBDTKT):
            def predict_next(
                self, state: Any, skill: int, item: int | None = None, timestamp: float | None = None
            ) -> float:
                from learnloop.science.kt.gbdt import _as_gbdt_state

                x = np.asarray([self._row(_as_gbdt_state(state), skill, item, timestamp)], dtype=np.float64)
                return float(self.booster_.predict(x, num_threads=1)[0])

        slow = ViaPredict.__new__(ViaPredict)
        slow.__dict__.update(model.__getstate__())
        online_update_times(model, split.test, limit=500)  # warm-up: the tree arrays, Numba's cache
        online_update_times(slow, split.test, limit=500)
        fast: list[tuple[float, float]] = []
        slow_t: list[tuple[float, float]] = []
        for _ in range(rounds):
            fast.append(online_update_times(model, split.test, limit=rows))
            slow_t.append(online_update_times(slow, split.test, limit=rows))
        protocol = PROTOCOL_GBDT_ONLINE.format(rows=rows, rounds=rounds, load=f"{os.getloadavg()[0]:.1f}")
        for method, values in (
            ("learnloop.gbdt (compiled tree walk)", fast),
            ("learnloop.gbdt (Booster.predict)", slow_t),
        ):
            for k, metric in enumerate(("online_update_us", "online_update_cpu_us")):
                value = float(np.median([v[k] for v in values]))
                print(
                    f"{dataset}: {method} {metric} {value:.1f} ({[round(v[k], 1) for v in values]})",
                    flush=True,
                )
                records.append(record(dataset, protocol, method, metric, value))
        records.append(
            record(dataset, protocol, "learnloop.gbdt (compiled tree walk)", "fit_cpu_seconds", cpu)
        )
    return records
