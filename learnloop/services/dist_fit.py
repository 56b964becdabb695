"""Item calibration (IRT), BKT and logistic knowledge tracing on a Dask cluster, partition by partition:
the EM's expected counts (IRT, BKT), the loss and gradient of each L-BFGS step (logistic KT).

Marginal maximum likelihood by EM (``science/irt.py``) sums over examinees in its E-step: a
block of rows of the response matrix gives its own log-likelihood and expected counts ``r``
(right) and ``n`` (answered) at the quadrature nodes, and the blocks' sums are the whole
matrix's. So the blocks are sent to the workers once and stay there; each iteration sends the
item parameters out and brings (items x nodes) counts back; the M-step, per item and small,
runs here. The result is the single-process fit's, to the EM's tolerance (``bench/scale.py``).

The science stays plain NumPy: this module is the Dask glue, and the only one that imports
``dask`` (the ``dist`` extra). ``address``: a scheduler (``tcp://host:8786``) or ``local`` for
a ``LocalCluster`` on this machine.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from learnloop.errors import InvalidInput
from learnloop.science.irt import IRTModel, _e_step, _m_step, _Priors, _start_values
from learnloop.science.irt_base import Responses, as_responses, quadrature
from learnloop.science.kt.base import ResponseLog, sequence_key
from learnloop.science.kt.bkt import EStepFactory
from learnloop.science.kt.bkt_em import EMData, EStep, HMMParams, expected_counts_of, make_em_data
from learnloop.science.kt.logistic import LogisticKT, ScaledRows, column_scale, column_stats, minimize_ridge


def _require_dask() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise InvalidInput("--dask needs the dist extra: pip install 'learnloop[dist]'") from None


@contextmanager
def cluster(address: str, n_workers: int = 2, processes: bool = True) -> Iterator[Any]:
    """A client of the scheduler at ``address``, or of a LocalCluster for ``local``."""
    _require_dask()
    from distributed import Client, LocalCluster

    if address == "local":
        with (
            LocalCluster(
                n_workers=n_workers, threads_per_worker=1, processes=processes, dashboard_address=None
            ) as local,
            Client(local) as client,
        ):
            yield client
        return
    try:
        client = Client(address, timeout=30)
    except OSError as exc:
        raise InvalidInput(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    try:
        yield client
    finally:
        client.close()


# -- what each worker does with its block -------------------------------------------------


def _block(x: np.ndarray) -> tuple[Responses, Responses]:
    """A block as responses, answered rows only, in float64 and in float32 (the EM loop's)."""
    data = as_responses(x)
    answered = data.observed.sum(axis=1) > 0
    data = Responses(data.correct[answered], data.observed[answered], data.weight[answered], data.complete)
    data32 = Responses(
        data.correct.astype(np.float32), data.observed.astype(np.float32), data.weight, data.complete
    )
    return data, data32


def _counts(block: tuple[Responses, Responses]) -> tuple[np.ndarray, np.ndarray, float, int]:
    data = block[0]
    return (
        data.weight @ data.observed,
        data.weight @ data.correct,
        float(data.weight.sum()),
        data.correct.shape[0],
    )


def _start(block: tuple[Responses, Responses], model: str, priors: _Priors) -> tuple[np.ndarray, ...]:
    return _start_values(block[0], model, priors)


def _expected(
    block: tuple[Responses, Responses],
    precise: bool,
    a: np.ndarray,
    d: np.ndarray,
    c: np.ndarray,
    nodes: np.ndarray,
    log_w: np.ndarray,
) -> tuple[float, np.ndarray, np.ndarray]:
    return _e_step(block[0] if precise else block[1], a, d, c, nodes, log_w)


# -- the driver ----------------------------------------------------------------------------


def fit_irt(
    client: Any, blocks: Sequence[np.ndarray], model: str = "2pl", *, estimator: IRTModel | None = None
) -> IRTModel:
    """Fit ``estimator`` (default ``IRTModel(model)``) on the row blocks ``blocks`` (examinee x
    item 0/1 matrices with NaN for unanswered, the same items in the same columns)."""
    est = estimator or IRTModel(model=model)  # type: ignore[arg-type]
    if est.model not in ("1pl", "2pl", "3pl"):
        raise InvalidInput(f"model must be 1pl, 2pl or 3pl, got {est.model!r}")
    widths = {np.shape(b)[1] for b in blocks}
    if not blocks or len(widths) != 1:
        raise InvalidInput("the blocks must be non-empty matrices with the same items (columns)")
    futures = client.map(_block, client.scatter(list(blocks)), pure=False)
    counts = client.gather(client.map(_counts, futures))
    n = np.sum([c[0] for c in counts], axis=0)
    right = np.sum([c[1] for c in counts], axis=0)
    est.warnings_ = []
    if sum(c[2] for c in counts) <= 0:
        raise InvalidInput("the response log has no answers to fit")
    frozen = ((n == 0) | (right == n) | (right == 0)).astype(float)
    for j in np.flatnonzero(frozen):
        est.warnings_.append(f"item {j} cannot be calibrated (no answers, or all right or all wrong)")
    priors = _Priors(est.a_prior_sd, est.d_prior_sd, *map(float, est.c_prior))
    nodes, w = quadrature(est.n_quadrature)
    log_w = np.log(w)
    # start values from the largest block: a start only, the EM then sees every block
    largest = int(np.argmax([c[3] for c in counts]))
    log_a, d, logit_c = client.submit(_start, futures[largest], est.model, priors).result()
    if est.model != "1pl":
        log_a[frozen > 0] = 0.0
    est.converged_, est.n_iter_ = False, 0
    for iteration in range(1, est.max_iter + 1):
        a, c = np.exp(log_a), (1.0 / (1.0 + np.exp(-logit_c))) * (est.model == "3pl")
        parts = client.gather(
            [client.submit(_expected, f, False, a, d, c, nodes, log_w, pure=False) for f in futures]
        )
        r = np.sum([p[1] for p in parts], axis=0)
        n_q = np.sum([p[2] for p in parts], axis=0)
        new = _m_step(log_a, d, logit_c, nodes, r, n_q, priors, est.model, frozen)
        change = max(np.abs(new[i] - old).max() for i, old in enumerate((log_a, d, logit_c)))
        log_a, d, logit_c = new
        est.n_iter_ = iteration
        if change < est.tol:
            est.converged_ = True
            break
    if not est.converged_:
        est.warnings_.append(f"EM did not converge in {est.max_iter} iterations (tol={est.tol})")
    est._store(log_a, d, logit_c, priors, frozen)
    parts = client.gather(
        [client.submit(_expected, f, True, est.a_, est.d_, est.c_, nodes, log_w, pure=False) for f in futures]
    )
    est.log_likelihood_ = float(sum(p[0] for p in parts))
    return est


def row_blocks(matrix: np.ndarray, partitions: int) -> list[np.ndarray]:
    """``matrix`` cut into ``partitions`` blocks of rows (as even as possible)."""
    if partitions < 1:
        raise InvalidInput("partitions must be at least 1")
    return [b for b in np.array_split(matrix, min(partitions, max(len(matrix), 1))) if len(b)]


# -- knowledge tracing (BKT): the Baum-Welch E-step per block of learners ----------------------
#
# Every (learner, skill) sequence is its own HMM, so the E-step's expected counts are sums over
# sequences and a block of learners holds whole sequences: each worker keeps its block's rows,
# grouped once (``make_em_data``), and each iteration sends the parameters out and brings
# (restarts x counts x skills) tables back; the M-step (``science/kt/bkt_em.py``) runs here.


def _kt_block(rows: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, int]) -> EMData:
    return make_em_data(*rows)


def _kt_counts(block: EMData, params: HMMParams, active_skill: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return expected_counts_of(block, params, active_skill)


def kt_estep(client: Any, partitions: int) -> EStepFactory:
    """For ``BKT.fit(log, estep_for=...)``: the log's learners cut into ``partitions`` blocks
    (by learner code, so each block holds whole sequences), sent to the cluster once per fit;
    the E-step sums the blocks' expected counts."""
    if partitions < 1:
        raise InvalidInput("partitions must be at least 1")

    def make(log: ResponseLog, emit: np.ndarray, n_skills: int, n_emit: int) -> EStep:
        sequence = sequence_key(log.user, log.skill, n_skills)
        block_of = log.user % partitions
        blocks = []
        for p in range(partitions):
            rows = np.flatnonzero(block_of == p)  # in log order: each sequence keeps its order
            if len(rows):
                blocks.append(
                    (
                        sequence[rows],
                        log.correct[rows],
                        log.skill[rows].astype(np.int64),
                        emit[rows],
                        n_skills,
                        n_emit,
                    )
                )
        futures = client.map(_kt_block, client.scatter(blocks), pure=False)

        def estep(params: HMMParams, active_skill: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            parts = client.gather(
                [client.submit(_kt_counts, f, params, active_skill, pure=False) for f in futures]
            )
            return np.sum([p[0] for p in parts], axis=0), np.sum([p[1] for p in parts], axis=0)

        return estep

    return make


# -- knowledge tracing (logistic): the loss and its gradient per block of learners ------------------
#
# Every feature of a row reads the same learner's earlier answers only (``science/kt/features.py``),
# so a block of whole learners builds exactly its rows of the design. Each worker builds its
# block's sparse design once; the column scales come from per-block sums (squares, non-zeros);
# then every L-BFGS step sends the weights out and brings each block's loss and gradient back,
# summed here, where the ridge penalty and the optimiser run (``science/kt/logistic.py``,
# ``minimize_ridge``): the single-process fit's arithmetic, summed in another order.


def _lkt_design(part: tuple[LogisticKT, ResponseLog]) -> tuple[Any, np.ndarray]:
    model, log = part
    return model._design(log), log.correct.astype(np.float64)


def _lkt_stats(block: tuple[Any, np.ndarray]) -> tuple[np.ndarray, np.ndarray, int, float]:
    sq, nnz = column_stats(block[0])
    return sq, nnz, block[0].shape[0], float(block[1].sum())


def _lkt_scaled(block: tuple[Any, np.ndarray], scale: np.ndarray) -> ScaledRows:
    return ScaledRows(block[0], block[1], scale)


def _lkt_loss_grad(rows: ScaledRows, w: np.ndarray) -> tuple[float, np.ndarray]:
    return rows.loss_grad(w)


def learner_blocks(log: ResponseLog, partitions: int) -> list[ResponseLog]:
    """``log`` cut into at most ``partitions`` blocks of whole learners, rows in log order."""
    if partitions < 1:
        raise InvalidInput("partitions must be at least 1")
    block_of = log.user % partitions
    return [log.subset(rows) for p in range(partitions) if len(rows := np.flatnonzero(block_of == p))]


def fit_logistic(
    client: Any, log: ResponseLog, partitions: int, *, estimator: LogisticKT | None = None
) -> LogisticKT:
    """Fit ``estimator`` (default ``LogisticKT()``) on ``log`` with the design built and the
    loss and gradient computed on the cluster, ``partitions`` blocks of learners."""
    model = estimator if estimator is not None else LogisticKT()
    fitted_log, penalty = model._prepare(log)
    d = len(penalty)
    blocks = learner_blocks(fitted_log, partitions)
    if not blocks:
        raise InvalidInput("the response log has no answers to fit")
    futures = client.map(_lkt_design, client.scatter([(model, b) for b in blocks]), pure=False)
    stats = client.gather(client.map(_lkt_stats, futures, pure=False))
    sq = np.sum([s[0] for s in stats], axis=0)
    nnz = np.sum([s[1] for s in stats], axis=0)
    n, right = int(sum(s[2] for s in stats)), float(sum(s[3] for s in stats))
    if len(sq) != d:
        raise InvalidInput(f"the blocks' designs have {len(sq)} columns, the model {d}")
    scale = column_scale(sq, nnz)
    rows = [client.submit(_lkt_scaled, f, scale, pure=False) for f in futures]
    client.gather(rows)  # built once, kept on the workers
    del futures

    def loss_grad(w: np.ndarray) -> tuple[float, np.ndarray]:
        parts = client.gather([client.submit(_lkt_loss_grad, r, w, pure=False) for r in rows])
        return float(sum(p[0] for p in parts)), np.sum([p[1] for p in parts], axis=0)

    model.coef_ = minimize_ridge(loss_grad, d, penalty, n, right, scale, model.max_iter, model.tol)
    model._unpack()
    return model


def logistic_fitter(client: Any, partitions: int) -> Any:
    """For ``calibration._fit_kt``: a function fitting a ``LogisticKT`` on a log on the cluster."""
    if partitions < 1:
        raise InvalidInput("partitions must be at least 1")

    def fit(model: LogisticKT, log: ResponseLog) -> LogisticKT:
        return fit_logistic(client, log, partitions, estimator=model)

    return fit
