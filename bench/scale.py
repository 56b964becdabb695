"""Claim: item calibration on a Dask cluster (``learnloop fit irt --dask``) gives the
single-process fit's item parameters (within 0.01) and runs on logs split into partitions.

    python -m bench.scale [--responses 2000000] [--items 50] [--answer-rate 0.4] \\
        [--partitions 2,4,8] [--sample 200000] [--workers 2] [--seed 7] [--claim scale]

Synthetic 2PL responses (abilities N(0, 1), slopes U(0.6, 2.0), difficulties N(0, 1)), each
learner answering each item with probability ``--answer-rate``, enough learners for about
``--responses`` answers. First, on the first ``--sample`` answers' learners, the partitioned
fit (4 partitions) is compared with ``IRTModel.fit`` in one process: the largest difference in
a and in b. Then the whole log is fitted in one process and on a ``LocalCluster`` of
``--workers`` worker processes (one thread each) for each number of partitions: seconds
(cluster start excluded), EM iterations. The results file is rewritten after each stage, with
``complete`` and ``stages_done`` in its environment, so a run stopped early keeps (and says)
what it finished. 50 M answers at 40% answered is a 2.5 M x 50 matrix (1 GB as float64).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from bench._common import record, write_results


def synthetic(responses: int, items: int, rate: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    people = max(int(responses / (items * rate)), 10)
    theta = rng.normal(size=people)
    a, b = rng.uniform(0.6, 2.0, items), rng.normal(size=items)
    x = np.empty((people, items))
    for start in range(0, people, 50_000):  # in chunks: the probabilities of all rows at once are large
        stop = min(start + 50_000, people)
        p = 1.0 / (1.0 + np.exp(-a * (theta[start:stop, None] - b)))
        block = (rng.random(p.shape) < p).astype(float)
        block[rng.random(p.shape) >= rate] = np.nan
        x[start:stop] = block
    return x


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--responses", type=int, default=2_000_000)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--answer-rate", type=float, default=0.4)
    parser.add_argument("--partitions", default="2,4,8")
    parser.add_argument("--sample", type=int, default=200_000, help="answers of the equality check")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--claim", default="scale", help="results file name: bench/results/CLAIM.json (default scale)"
    )
    args = parser.parse_args(argv)
    try:
        partitions = [int(p) for p in args.partitions.split(",")]
    except ValueError:
        parser.error("--partitions must be numbers separated by commas")
    if not args.claim.replace("_", "").isalnum():
        parser.error("--claim must be letters, digits and underscores")
    if not 0 < args.answer_rate <= 1 or args.responses < 1000 or args.items < 2 or min(partitions) < 1:
        parser.error("need 0 < --answer-rate <= 1, --responses >= 1000, --items >= 2, partitions >= 1")
    try:
        from learnloop.services import dist_fit
    except ImportError as exc:  # pragma: no cover
        print(f"cannot import the Dask glue: {exc}", file=sys.stderr)
        return 2
    from learnloop.science.irt import IRTModel

    x = synthetic(args.responses, args.items, args.answer_rate, args.seed)
    answered = int((~np.isnan(x)).sum())
    rows_sample = max(int(args.sample / (args.items * args.answer_rate)), 10)
    sample = x[:rows_sample]
    dataset = f"synthetic 2PL, {answered:,} answers ({x.shape[0]:,} learners x {args.items} items, {args.answer_rate:.0%} answered)"
    records: list = []
    done: list[str] = []
    started = time.time()

    def save(stage: str, complete: bool = False) -> None:
        """Write what is measured so far: a run stopped early keeps its finished stages."""
        done.append(stage)
        path = write_results(
            args.claim,
            records,
            ["numpy", "dask", "distributed"],
            extra_environment={
                "dask_workers": args.workers,
                "complete": complete,
                "stages_done": list(done),
                "elapsed_s": round(time.time() - started, 1),
                "load_average": [round(v, 2) for v in os.getloadavg()],
            },
        )
        print(f"wrote {path} after {stage}", flush=True)

    with dist_fit.cluster("local", n_workers=args.workers, processes=True) as client:
        single = IRTModel(model="2pl").fit(sample)
        split = dist_fit.fit_irt(client, dist_fit.row_blocks(sample, 4), "2pl")
        protocol = f"first {int((~np.isnan(sample)).sum()):,} answers: 4 partitions against one process"
        records += [
            record(
                dataset,
                protocol,
                "dask partitions",
                "max |a - a single|",
                float(np.abs(split.a_ - single.a_).max()),
            ),
            record(
                dataset,
                protocol,
                "dask partitions",
                "max |b - b single|",
                float(np.abs(split.b_ - single.b_).max()),
            ),
        ]
        print("sample", records[-2]["value"], records[-1]["value"], flush=True)
        save("sample check")
        start = time.perf_counter()
        whole = IRTModel(model="2pl").fit(x)
        seconds = time.perf_counter() - start
        protocol = f"whole log, {args.workers} worker processes (1 thread each)"
        records += [
            record(dataset, protocol, "one process (IRTModel.fit)", "seconds", seconds),
            record(dataset, protocol, "one process (IRTModel.fit)", "EM iterations", whole.n_iter_),
        ]
        print("single", seconds, flush=True)
        save("one process")
        for p in partitions:
            blocks = dist_fit.row_blocks(x, p)
            start = time.perf_counter()
            fitted = dist_fit.fit_irt(client, blocks, "2pl")
            seconds = time.perf_counter() - start
            method = f"dask, {p} partitions"
            records += [
                record(dataset, protocol, method, "seconds", seconds),
                record(dataset, protocol, method, "EM iterations", fitted.n_iter_),
                record(
                    dataset, protocol, method, "max |b - b single|", float(np.abs(fitted.b_ - whole.b_).max())
                ),
            ]
            print(method, seconds, fitted.n_iter_, flush=True)
            save(method, complete=p == partitions[-1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
