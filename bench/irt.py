"""Claim: learnloop's 2PL calibration recovers parameters, matches mirt, and is fast.

Run with the peers installed (``bash bench/peers.sh``)::

    .venv-peers/bin/python -m bench.irt

Synthetic 2PL (5,000 x 100, a ~ LogNormal(0, 0.3), b ~ N(0, 1), fixed seed): fit time and
recovery for learnloop, PyPI ``mirt`` (Rust backend) and ``girth.twopl_mml``, all in this
run. Real data from ``$LEARNLOOP_DATA/irt``: LSAT7 against R mirt's published values, and
SAT12, fraction subtraction and ECPE side by side with PyPI mirt.
"""

from __future__ import annotations

import argparse
import csv
import statistics
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from bench._common import Record, blas_threads, data_dir, peer_available, record, timed, write_results
from learnloop.science.irt import IRTModel, marginal_log_likelihood

Array = np.ndarray
SYNTH = "synthetic_2pl_5000x100"
SYNTH_PROTOCOL = (
    "2PL, N=5000, J=100, a~LogNormal(0,0.3), b~N(0,1), theta~N(0,1), seed {seed}; "
    "41 quadrature points; fit time = median of {repeat} interleaved runs (girth: {girth_repeat}), "
    "same process, BLAS threads as in environment; mirt without standard errors; girth defaults"
)
R_MIRT_LSAT7 = {"a": [0.988, 1.081, 1.706, 0.765, 0.736], "d": [1.856, 0.808, 1.804, 0.486, 1.855]}
R_MIRT_SOURCE = "R mirt 1.47 tests/testthat/test-01-mirtOne.R (expected LSAT7 2PL coefficients)"


def simulate_2pl(n_people: int, n_items: int, seed: int) -> tuple[Array, Array, Array]:
    rng = np.random.default_rng(seed)
    a = rng.lognormal(0.0, 0.3, n_items)
    b = rng.normal(0.0, 1.0, n_items)
    theta = rng.normal(0.0, 1.0, n_people)
    p = 1.0 / (1.0 + np.exp(-a * (theta[:, None] - b)))
    return (rng.random(p.shape) < p).astype(np.int64), a, b


# --------------------------------------------------------------------------- fitters: (a, d, loglik)

Fitted = tuple[Array, Array, float | None]


def fit_learnloop(x: Array, weight: Array | None = None, **kwargs: Any) -> Fitted:
    model = IRTModel("2pl", n_quadrature=41, **kwargs).fit(x, sample_weight=weight)
    return model.a_, model.d_, model.log_likelihood_


def fit_mirt(x: Array) -> Fitted:
    import mirt

    result = mirt.fit_mirt(
        np.asarray(x, dtype=np.int64), model="2PL", n_quadpts=41, compute_standard_errors=False
    )
    params = result.model.parameters
    a = np.asarray(params["discrimination"], dtype=float).reshape(-1)
    b = np.asarray(params["difficulty"], dtype=float).reshape(-1)
    return a, -a * b, float(result.log_likelihood)


def fit_girth(x: Array) -> Fitted:
    from girth import twopl_mml

    result = twopl_mml(np.asarray(x, dtype=np.int64).T)
    a = np.asarray(result["Discrimination"], dtype=float)
    return a, -a * np.asarray(result["Difficulty"], dtype=float), None


# --------------------------------------------------------------------------- synthetic recovery


def bench_synthetic(seed: int, repeat: int, girth_repeat: int, peers: dict[str, bool]) -> list[Record]:
    """Fit time (median of interleaved rounds, so load spikes hit every method alike) and recovery."""
    x, a_true, b_true = simulate_2pl(5000, 100, seed)
    protocol = SYNTH_PROTOCOL.format(seed=seed, repeat=repeat, girth_repeat=girth_repeat)
    runs: dict[str, tuple[bool, Callable[[Array], Fitted], int]] = {
        "learnloop.irt.2pl": (False, fit_learnloop, repeat)
    }
    if peers["mirt"]:
        runs["mirt.fit_mirt"] = (True, fit_mirt, repeat)
    if peers["girth"]:
        runs["girth.twopl_mml"] = (True, fit_girth, girth_repeat)
    for _, fitter, _ in runs.values():
        fitter(x[:200, :10])  # warm-up: imports and lazy initialisation stay out of the timing
    times: dict[str, list[float]] = {method: [] for method in runs}
    fitted: dict[str, Fitted] = {}
    for round_ in range(max(repeat, girth_repeat)):
        for method, (_, fitter, n_runs) in runs.items():
            if round_ < n_runs:
                fitted[method], secs = timed(partial(fitter, x))
                times[method].append(secs)
    records: list[Record] = []
    for method, (is_peer, _, _) in runs.items():
        a, d, _ = fitted[method]
        b = -d / a
        metrics = {
            "fit_seconds": statistics.median(times[method]),
            "r_a": float(np.corrcoef(a, a_true)[0, 1]),
            "r_b": float(np.corrcoef(b, b_true)[0, 1]),
            "rmse_a": float(np.sqrt(np.mean((a - a_true) ** 2))),
            "rmse_b": float(np.sqrt(np.mean((b - b_true) ** 2))),
        }
        records += [record(SYNTH, protocol, method, k, v, peer=is_peer) for k, v in metrics.items()]
        print(
            f"{method:22s} "
            + "  ".join(f"{k}={v:.4f}" for k, v in metrics.items())
            + f"  runs={times[method]}"
        )
    ours = statistics.median(times["learnloop.irt.2pl"])
    for method in runs:
        if method != "learnloop.irt.2pl":
            ratio = statistics.median(times[method]) / ours
            records.append(record(SYNTH, protocol, "learnloop.irt.2pl", f"speedup_vs_{method}", ratio))
    return records


# --------------------------------------------------------------------------- real data


def read_matrix(path: Path, drop: tuple[str, ...] = ()) -> tuple[list[str], Array]:
    with path.open() as handle:
        rows = list(csv.reader(handle))
    header = rows[0]
    keep = [i for i, name in enumerate(header) if name not in drop]
    return [header[i] for i in keep], np.array([[float(r[i]) for i in keep] for r in rows[1:]])


def real_datasets(root: Path) -> dict[str, tuple[Array, Array | None, str]]:
    """name -> (0/1 matrix, row weights, protocol)."""
    sets: dict[str, tuple[Array, Array | None, str]] = {}
    mirt_dir, frac, ecpe = root / "r-mirt-data", root / "cdm-fraction-subtraction", root / "cdm-ecpe"
    if (mirt_dir / "LSAT7.csv").exists():
        _, table = read_matrix(mirt_dir / "LSAT7.csv")
        sets["LSAT7"] = (table[:, :5], table[:, 5], "2PL ML, 32 patterns weighted by freq (N=1000)")
    if (mirt_dir / "SAT12.csv").exists():
        names, raw = read_matrix(mirt_dir / "SAT12.csv")
        keys = dict(csv.reader((mirt_dir / "SAT12_key.csv").open()))
        key = np.array([float(keys[n]) for n in names])
        sets["SAT12"] = (
            (raw == key).astype(float),
            None,
            "2PL, 600x32 scored with SAT12_key.csv; 8 (missing) scored wrong as in R key2binary",
        )
    if (frac / "fraction.subtraction.data.csv").exists():
        _, x = read_matrix(frac / "fraction.subtraction.data.csv")
        sets["fraction_subtraction"] = (x, None, "2PL, 536x20 (Tatsuoka 1984)")
    if (ecpe / "ecpe_data.csv").exists():
        _, x = read_matrix(ecpe / "ecpe_data.csv", drop=("id",))
        sets["ECPE"] = (x, None, "2PL, 2922x28 (Templin & Hoffman 2013)")
    return sets


def bench_real(root: Path, peers: dict[str, bool]) -> list[Record]:
    records: list[Record] = []
    for name, (x, weight, protocol) in real_datasets(root).items():
        fits: dict[str, tuple[Fitted, float, bool]] = {}
        fits["learnloop.irt.2pl"] = (*timed(partial(fit_learnloop, x, weight)), False)
        ml = partial(fit_learnloop, x, weight, a_prior_sd=None, d_prior_sd=None)
        fits["learnloop.irt.2pl_ml"] = (*timed(ml), False)
        if peers["mirt"]:
            expanded = x if weight is None else np.repeat(x, weight.astype(int), axis=0)
            fits["mirt.fit_mirt"] = (*timed(partial(fit_mirt, expanded)), True)
        for method, ((a, d, loglik), secs, is_peer) in fits.items():
            records.append(record(name, protocol, method, "fit_seconds", secs, peer=is_peer))
            records.append(record(name, protocol, method, "log_likelihood", loglik, peer=is_peer))
            fine = marginal_log_likelihood(x, a, -d / a, n_quadrature=201, sample_weight=weight)
            records.append(record(name, protocol, method, "log_likelihood_201pt_grid", fine, peer=is_peer))
            records += [
                record(name, protocol, method, f"a[{j + 1}]", float(v), peer=is_peer) for j, v in enumerate(a)
            ]
            records += [
                record(name, protocol, method, f"d[{j + 1}]", float(v), peer=is_peer) for j, v in enumerate(d)
            ]
        references = {k: (v[0][0], v[0][1]) for k, v in fits.items() if k == "mirt.fit_mirt"}
        if name == "LSAT7":
            source = R_MIRT_SOURCE
            for param in ("a", "d"):
                records += [
                    record(name, protocol, "R mirt", f"{param}[{j + 1}]", v, source=source)
                    for j, v in enumerate(R_MIRT_LSAT7[param])
                ]
            references["R mirt"] = (np.array(R_MIRT_LSAT7["a"]), np.array(R_MIRT_LSAT7["d"]))
        for ref, (a_ref, d_ref) in references.items():
            for method in ("learnloop.irt.2pl", "learnloop.irt.2pl_ml"):
                a, d, _ = fits[method][0]
                suffix = ref.split(".")[0].replace(" ", "_")
                records.append(
                    record(
                        name, protocol, method, f"max_abs_diff_a_vs_{suffix}", float(np.abs(a - a_ref).max())
                    )
                )
                records.append(
                    record(
                        name, protocol, method, f"max_abs_diff_d_vs_{suffix}", float(np.abs(d - d_ref).max())
                    )
                )
        summary = {m: (round(f[0][2], 3) if f[0][2] is not None else None) for m, f in fits.items()}
        print(f"{name:22s} log-likelihood {summary}")
    return records


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per method (median)")
    parser.add_argument("--girth-repeat", type=int, default=1, help="timed runs for girth (slow)")
    parser.add_argument(
        "--data", type=Path, default=None, help="folder with the irt data (default $LEARNLOOP_DATA/irt)"
    )
    parser.add_argument(
        "--blas-threads", type=int, default=1, help="BLAS threads for every method (0: library default)"
    )
    args = parser.parse_args()
    with blas_threads(args.blas_threads or None):
        run(args)


def run(args: argparse.Namespace) -> None:
    peers = {"mirt": peer_available("mirt"), "girth": peer_available("girth")}
    records = bench_synthetic(args.seed, args.repeat, args.girth_repeat, peers)
    root = args.data or data_dir() / "irt"
    if root.exists():
        records += bench_real(root, peers)
    else:
        print(f"no data at {root}: real-data records skipped")
    path = write_results(
        "irt",
        records,
        ["numpy", "scipy", "mirt", "girth"],
        extra_environment={"blas_threads": args.blas_threads or "default"},
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
