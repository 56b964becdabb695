"""Claim: learnloop's adaptive test reaches SE <= 0.3 in few items with bounded exposure.

Run with the peers installed (``bash bench/peers.sh``)::

    .venv-peers/bin/python -m bench.cat

Two banks: the synthetic 100 items of ``bench.irt`` (a ~ LogNormal(0, 0.3), b ~ N(0, 1)) and
300 items with a ~ U(1, 2.5), b ~ N(0, 1.2). 1,000 simulees theta ~ N(0, 1), the same for
every method. Methods: learnloop's engine (Fisher, KL, randomesque, Sympson-Hetter),
``catsim`` with its maximum-information selector, and an oracle that picks items at the
true ability. Metrics: mean and p90 test length, RMSE of ability, maximum item exposure.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from bench._common import Record, peer_available, record, write_results
from bench.irt import simulate_2pl
from learnloop.science.cat import CATEngine, sympson_hetter_parameters

Array = np.ndarray
PROTOCOL = (
    "{n} simulees theta~N(0,1) seed {seed}; stop at SE<=0.3 or {max_items} items; start at theta=0. "
    "learnloop: SE = EAP posterior SD (N(0,1) prior, 61-point grid), '.info_se' methods: "
    "1/sqrt(test information at the EAP); catsim: SE = 1/sqrt(test information) "
    "at its ML estimate (NumericalSearchEstimator, Dodd heuristic); oracle: Fisher information at the true "
    "theta, learnloop's EAP and stopping rule"
)


def banks(seed: int) -> dict[str, tuple[Array, Array]]:
    _, a100, b100 = simulate_2pl(5000, 100, seed)  # the items of bench.irt
    rng = np.random.default_rng(seed + 300)
    return {
        "synthetic_2pl_100_items": (a100, b100),
        "uniform_300_items": (rng.uniform(1.0, 2.5, 300), rng.normal(0.0, 1.2, 300)),
    }


def summary(
    lengths: Array, theta_hat: Array, theta: Array, exposure: Array, se: Array, seconds: float
) -> dict[str, float]:
    return {
        "mean_length": float(np.mean(lengths)),
        "p90_length": float(np.percentile(lengths, 90)),
        "rmse_theta": float(np.sqrt(np.mean((theta_hat - theta) ** 2))),
        "max_exposure": float(np.max(exposure)),
        "share_reaching_se": float(np.mean(se <= 0.3)),
        "seconds": seconds,
    }


def run_learnloop(engine: CATEngine, theta: Array, seed: int, oracle: bool = False) -> dict[str, float]:
    start = time.perf_counter()
    sim = engine.simulate(theta, random_state=seed, oracle=oracle)
    return summary(
        sim.test_length, sim.theta, theta, sim.exposure, sim.stopping_se, time.perf_counter() - start
    )


def run_catsim(a: Array, b: Array, theta: Array, seed: int, max_items: int) -> dict[str, float]:
    from catsim.estimation import NumericalSearchEstimator
    from catsim.initialization import FixedPointInitializer
    from catsim.irt import see
    from catsim.selection import MaxInfoSelector
    from catsim.simulation import Simulator
    from catsim.stopping import MinErrorStopper

    simulator = Simulator(np.column_stack([a, b]), theta, seed=seed)
    start = time.perf_counter()
    simulator.simulate(
        FixedPointInitializer(0.0),
        MaxInfoSelector(),
        NumericalSearchEstimator(),
        MinErrorStopper(0.3, max_items=max_items),
    )
    seconds = time.perf_counter() - start
    items = simulator.items
    lengths = np.array([len(x) for x in simulator.administered_items])
    exposure = (
        np.bincount(np.concatenate(simulator.administered_items).astype(int), minlength=a.size) / theta.size
    )
    theta_hat = np.asarray(simulator.latest_estimations, dtype=float)
    se = np.array(
        [see(t, items[adm]) for t, adm in zip(theta_hat, simulator.administered_items, strict=True)]
    )
    return summary(lengths, theta_hat, theta, exposure, se, seconds)


def bench_bank(name: str, a: Array, b: Array, args: argparse.Namespace, with_catsim: bool) -> list[Record]:
    theta = np.random.default_rng(args.seed).normal(0.0, 1.0, args.simulees)
    calibration = np.random.default_rng(args.seed + 1).normal(0.0, 1.0, args.simulees)
    common = {"se_target": 0.3, "max_items": args.max_items, "random_state": args.seed}
    sh_base = CATEngine(a, b, **common)
    k = sympson_hetter_parameters(
        sh_base, calibration, r_max=args.r_max, n_rounds=args.sh_rounds, random_state=args.seed + 2
    )
    methods: dict[str, tuple[bool, Callable[[], dict[str, float]]]] = {
        "learnloop.cat.fisher": (False, lambda: run_learnloop(CATEngine(a, b, **common), theta, args.seed)),
        "learnloop.cat.kl": (
            False,
            lambda: run_learnloop(CATEngine(a, b, selection="kl", **common), theta, args.seed),
        ),
        "learnloop.cat.fisher+randomesque5": (
            False,
            lambda: run_learnloop(
                CATEngine(a, b, exposure="randomesque", randomesque_size=5, **common), theta, args.seed
            ),
        ),
        f"learnloop.cat.fisher+sympson_hetter_r{args.r_max}": (
            False,
            lambda: run_learnloop(
                CATEngine(a, b, exposure="sympson-hetter", exposure_parameters=k, **common), theta, args.seed
            ),
        ),
        "learnloop.cat.fisher.info_se": (
            False,
            lambda: run_learnloop(CATEngine(a, b, se_rule="information", **common), theta, args.seed),
        ),
        f"learnloop.cat.fisher+sympson_hetter_r{args.r_max}.info_se": (
            False,
            lambda: run_learnloop(
                CATEngine(
                    a, b, exposure="sympson-hetter", exposure_parameters=k, se_rule="information", **common
                ),
                theta,
                args.seed,
            ),
        ),
        "oracle.fisher_at_true_theta": (
            False,
            lambda: run_learnloop(CATEngine(a, b, **common), theta, args.seed, oracle=True),
        ),
    }
    if with_catsim:
        methods["catsim.MaxInfoSelector"] = (True, lambda: run_catsim(a, b, theta, args.seed, args.max_items))
    protocol = PROTOCOL.format(n=args.simulees, seed=args.seed, max_items=args.max_items)
    protocol += f"; Sympson-Hetter K from {args.sh_rounds} rounds on an independent sample of {args.simulees}"
    records: list[Record] = []
    results: dict[str, dict[str, float]] = {}
    for method, (is_peer, run) in methods.items():
        results[method] = run()
        records += [record(name, protocol, method, k, v, peer=is_peer) for k, v in results[method].items()]
        print(f"{name:24s} {method:40s} " + "  ".join(f"{k}={v:.3f}" for k, v in results[method].items()))
    oracle = results["oracle.fisher_at_true_theta"]["mean_length"]
    records.append(
        record(
            name,
            protocol,
            "learnloop.cat.fisher",
            "mean_length_over_oracle",
            results["learnloop.cat.fisher"]["mean_length"] / oracle,
        )
    )
    return records


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--simulees", type=int, default=1000)
    parser.add_argument("--max-items", type=int, default=100)
    parser.add_argument("--r-max", type=float, default=0.25, help="Sympson-Hetter target exposure")
    parser.add_argument("--sh-rounds", type=int, default=6)
    args = parser.parse_args()
    with_catsim = peer_available("catsim")
    records: list[Record] = []
    for name, (a, b) in banks(args.seed).items():
        records += bench_bank(name, a, b, args, with_catsim)
    path = write_results("cat", records, ["numpy", "scipy", "catsim"])
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
