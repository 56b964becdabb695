"""Time-major packing of many ragged sequences, so a recurrence runs as one loop over steps.

Rows of a response log belong to sequences (a learner, or a learner on one skill). Sorting
the sequences longest first and laying their rows out step by step (step 0 of every
sequence, then step 1 of those still running, ...) makes the sequences active at step
``t`` a prefix of those active at ``t - 1`` — the layout of PyTorch's ``PackedSequence``.
A forward or backward recurrence then costs one vectorised numpy operation per step over
all sequences at once, instead of a Python loop over rows. ``group_rows`` is the other
layout, sequence after sequence, for compiled loops that walk one sequence at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class PackedSequences:
    """``order[p]`` is the log row at packed position ``p``; step ``t`` occupies
    ``offsets[t]:offsets[t + 1]`` and holds ``sizes[t]`` sequences (non-increasing in ``t``)."""

    order: NDArray[np.int64]
    offsets: NDArray[np.int64]
    sizes: NDArray[np.int64]

    @property
    def n_steps(self) -> int:
        return len(self.sizes)

    def step(self, t: int) -> slice:
        return slice(int(self.offsets[t]), int(self.offsets[t + 1]))


def pack_sequences(group: NDArray[np.int64]) -> PackedSequences:
    """Pack rows by ``group`` (any integer key per row), keeping row order within a group."""
    n = len(group)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return PackedSequences(order=empty, offsets=np.zeros(1, dtype=np.int64), sizes=empty)
    _, inverse, counts = np.unique(group, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    # Rank groups longest first (ties by group code) so active sequences form a prefix.
    rank_of_group = np.empty(len(counts), dtype=np.int64)
    rank_of_group[np.lexsort((np.arange(len(counts)), -counts))] = np.arange(len(counts))
    seq_rank = rank_of_group[inverse]
    # Position of each row within its group (stable: row order preserved).
    by_group = np.argsort(inverse, kind="stable")
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    pos_in_group = np.empty(n, dtype=np.int64)
    pos_in_group[by_group] = np.arange(n) - np.repeat(starts, counts)
    order = np.lexsort((seq_rank, pos_in_group)).astype(np.int64)
    sizes = np.bincount(pos_in_group).astype(np.int64)
    offsets = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
    return PackedSequences(order=order, offsets=offsets, sizes=sizes)


def group_rows(group: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Rows grouped by ``group``, each group in row order: ``order[starts[g]:starts[g + 1]]``
    are the rows of the ``g``-th group (groups in increasing key order)."""
    order = np.argsort(group, kind="stable").astype(np.int64)
    keys = group[order]
    new = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    starts = (
        np.concatenate(([0], new, [len(group)])).astype(np.int64) if len(group) else np.zeros(1, np.int64)
    )
    return order, starts


def previous_in_group(group: NDArray[np.int64]) -> NDArray[np.int64]:
    """For every row, the index of the previous row of the same group, or -1."""
    n = len(group)
    prev = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return prev
    by_group = np.argsort(group, kind="stable")
    same = group[by_group[1:]] == group[by_group[:-1]]
    prev[by_group[1:][same]] = by_group[:-1][same]
    return prev
