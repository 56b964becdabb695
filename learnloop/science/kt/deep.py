"""Deep knowledge tracing (DKT, Piech et al. 2015) with a GRU, behind the ``deep`` extra.

The learner's answers so far, each embedded as (skill, correct), run through one GRU layer;
P(correct on skill s next) = sigmoid(w_s . h + b_s), DKT's per-skill output read at the skill
asked. Training cuts sequences into windows of ``window`` steps (as the DKT code does) and
stops early on a slice of the training learners held out for that; prediction and the online
update run over whole sequences. torch is imported only inside ``fit`` and ``predict_proba``;
the online path (``predict_next``/``update``) is numpy over the saved weights, and the state is
the GRU's hidden vector as a JSON list.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
from numpy.typing import NDArray

from learnloop.science.kt.base import ResponseLog, answers_of, check_label, check_log

FloatArray = NDArray[np.float64]


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("DeepKT needs torch: pip install 'learnloop[deep]'") from exc
    return torch


def _sequences(log: ResponseLog) -> list[NDArray[np.int64]]:
    """Row indices of each learner, in log order."""
    order = np.argsort(log.user, kind="stable")
    u = log.user[order]
    cuts = np.flatnonzero(np.r_[True, u[1:] != u[:-1]]) if len(u) else np.zeros(0, dtype=np.int64)
    return [np.asarray(a) for a in np.split(order, cuts[1:])] if len(u) else []


class DeepKT:
    """A DKT-style GRU over skill ids; skills unseen in training share one extra id."""

    kind = "dkt"

    def __init__(
        self,
        *,
        hidden: int = 64,
        embed: int = 64,
        window: int = 200,
        batch_size: int = 32,
        lr: float = 3e-3,
        weight_decay: float = 1e-6,
        max_epochs: int = 12,
        patience: int = 2,
        valid_fraction: float = 0.1,
        max_seconds: float = 240.0,
        threads: int = 2,
        seed: int = 0,
    ) -> None:
        self.hidden = hidden
        self.embed = embed
        self.window = window
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
        self.patience = patience
        self.valid_fraction = valid_fraction
        self.max_seconds = max_seconds
        self.threads = threads
        self.seed = seed

    # -- torch module --------------------------------------------------------------------------

    def _module(self, torch: Any) -> Any:
        nn = torch.nn
        k, h, e = self.n_skills_ + 1, self.hidden, self.embed

        class Net(nn.Module):  # type: ignore[misc,name-defined]
            def __init__(self) -> None:
                super().__init__()
                self.inp = nn.Embedding(2 * k + 1, e)  # 2 * skill + correct; the last id pads
                self.gru = nn.GRU(e, h, batch_first=True)
                self.out_w = nn.Embedding(k, h)
                self.out_b = nn.Embedding(k, 1)
                nn.init.normal_(self.out_w.weight, std=0.05)
                nn.init.zeros_(self.out_b.weight)

            def forward(self, answer: Any, skill: Any) -> Any:
                # answer[:, t] = 2 * skill + correct of step t; hs[:, t] is the state after it
                hs, _ = self.gru(self.inp(answer))
                # the state before step t: zeros at t = 0, else the state after answer t - 1
                before = torch.cat([torch.zeros_like(hs[:, :1]), hs[:, :-1]], 1)
                return (before * self.out_w(skill)).sum(-1) + self.out_b(skill).squeeze(-1)

        return Net()

    def _skill_ids(self, skill: NDArray[np.int64]) -> NDArray[np.int64]:
        s = np.asarray(skill, dtype=np.int64)
        return np.where((s >= 0) & (s < self.n_skills_), s, self.n_skills_)

    def _batch(
        self, torch: Any, pieces: list[tuple[NDArray[np.int64], NDArray[np.float64]]]
    ) -> tuple[Any, Any, Any, Any]:
        """Padded (answer id, skill, label, mask) tensors for pieces of (skills, answers)."""
        n, t = len(pieces), max(len(p[0]) for p in pieces)
        pad = 2 * (self.n_skills_ + 1)
        prev = np.full((n, t), pad, dtype=np.int64)
        skill = np.zeros((n, t), dtype=np.int64)
        label = np.zeros((n, t), dtype=np.float32)
        mask = np.zeros((n, t), dtype=np.float32)
        for i, (s, c) in enumerate(pieces):
            m = len(s)
            skill[i, :m] = s
            label[i, :m] = c
            mask[i, :m] = 1.0
            prev[i, :m] = 2 * s + c.astype(np.int64)
        return (
            torch.from_numpy(prev),
            torch.from_numpy(skill),
            torch.from_numpy(label),
            torch.from_numpy(mask),
        )

    # -- fitting -------------------------------------------------------------------------------

    def fit(self, log: ResponseLog) -> DeepKT:
        check_log(log)
        _one_row_per_answer(log)
        torch = _torch()
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        old_threads = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            self.n_skills_ = int(log.skill.max()) + 1 if len(log) else 0
            skill = self._skill_ids(log.skill)
            correct = log.correct.astype(np.float64)
            seqs = _sequences(log)
            perm = rng.permutation(len(seqs))
            n_valid = int(len(seqs) * self.valid_fraction) if len(seqs) >= 10 else 0
            valid_idx, train_idx = perm[:n_valid], perm[n_valid:]

            def pieces(idx: NDArray[np.int64]) -> list[tuple[NDArray[np.int64], NDArray[np.float64]]]:
                out = []
                for j in idx:
                    rows = seqs[int(j)]
                    for a in range(0, len(rows), self.window):
                        r = rows[a : a + self.window]
                        out.append((skill[r], correct[r]))
                return out

            train_p, valid_p = pieces(train_idx), pieces(valid_idx)
            net = self._module(torch)
            opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
            loss_fn = torch.nn.BCEWithLogitsLoss(reduction="none")
            best, best_state, bad = math.inf, None, 0
            start = time.perf_counter()
            self.epochs_ = 0
            for _epoch in range(self.max_epochs):
                net.train()
                order = rng.permutation(len(train_p))
                # similar lengths together: less padding
                for b in range(0, len(order), self.batch_size):
                    prev, sk, lab, mask = self._batch(
                        torch, [train_p[int(i)] for i in order[b : b + self.batch_size]]
                    )
                    opt.zero_grad()
                    loss = (loss_fn(net(prev, sk), lab) * mask).sum() / mask.sum()
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
                    opt.step()
                self.epochs_ += 1
                if not valid_p:
                    best_state = {k: v.clone() for k, v in net.state_dict().items()}
                    continue
                net.eval()
                total, count = 0.0, 0.0
                with torch.no_grad():
                    for b in range(0, len(valid_p), 256):
                        prev, sk, lab, mask = self._batch(torch, valid_p[b : b + 256])
                        total += float((loss_fn(net(prev, sk), lab) * mask).sum())
                        count += float(mask.sum())
                v = total / max(count, 1.0)
                if v < best - 1e-5:
                    best, bad = v, 0
                    best_state = {k: val.clone() for k, val in net.state_dict().items()}
                else:
                    bad += 1
                if bad >= self.patience or time.perf_counter() - start > self.max_seconds:
                    break
            if best_state is not None:
                net.load_state_dict(best_state)
            self._net = net
            self._weights_from(net)
        finally:
            torch.set_num_threads(old_threads)
        return self

    def _weights_from(self, net: Any) -> None:
        sd = {k: v.detach().cpu().numpy().astype(np.float64) for k, v in net.state_dict().items()}
        self.weights_ = sd
        self._unpack()

    def _unpack(self) -> None:
        w = self.weights_
        self._emb = w["inp.weight"]
        self._w_ih, self._w_hh = w["gru.weight_ih_l0"], w["gru.weight_hh_l0"]
        self._b_ih, self._b_hh = w["gru.bias_ih_l0"], w["gru.bias_hh_l0"]
        self._out_w, self._out_b = w["out_w.weight"], w["out_b.weight"][:, 0]

    # -- prediction ----------------------------------------------------------------------------

    def predict_proba(self, log: ResponseLog) -> FloatArray:
        """P(correct) per row from the learner's earlier rows only (whole sequences)."""
        check_log(log)
        _one_row_per_answer(log)
        out = np.zeros(len(log))
        if len(log) == 0:
            return out
        torch = _torch()
        net = getattr(self, "_net", None)
        if net is None:
            net = self._module(torch)
            net.load_state_dict(
                {k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in self.weights_.items()}
            )
            self._net = net
        skill = self._skill_ids(log.skill)
        correct = log.correct.astype(np.float64)
        seqs = sorted(_sequences(log), key=len)
        old_threads = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            net.eval()
            with torch.no_grad():
                for b in range(0, len(seqs), 64):
                    group = seqs[b : b + 64]
                    prev, sk, _, _ = self._batch(torch, [(skill[r], correct[r]) for r in group])
                    p = torch.sigmoid(net(prev, sk)).numpy().astype(np.float64)
                    for i, r in enumerate(group):
                        out[r] = p[i, : len(r)]
        finally:
            torch.set_num_threads(old_threads)
        return out

    # -- online (numpy only) ---------------------------------------------------------------------

    def initial_state(self) -> dict[str, Any]:
        return {"h": [0.0] * self.hidden}

    def predict_next(
        self, state: dict[str, Any], skill: int, item: int | None = None, timestamp: float | None = None
    ) -> float:
        s = int(self._skill_ids(np.array([skill]))[0])
        z = float(np.dot(self._out_w[s], np.asarray(state["h"])) + self._out_b[s])
        return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))

    def update(
        self,
        state: dict[str, Any],
        skill: int,
        correct: int,
        item: int | None = None,
        timestamp: float | None = None,
    ) -> dict[str, Any]:
        """One GRU step (torch's gate equations) on the answer; the state is updated in place."""
        check_label(correct)
        s = int(self._skill_ids(np.array([skill]))[0])
        x = self._emb[2 * s + int(correct)]
        h = np.asarray(state["h"], dtype=np.float64)
        gi = self._w_ih @ x + self._b_ih
        gh = self._w_hh @ h + self._b_hh
        n = self.hidden
        r = 1.0 / (1.0 + np.exp(-(gi[:n] + gh[:n])))
        z = 1.0 / (1.0 + np.exp(-(gi[n : 2 * n] + gh[n : 2 * n])))
        cand = np.tanh(gi[2 * n :] + r * gh[2 * n :])
        state["h"] = ((1.0 - z) * cand + z * h).tolist()
        return state

    def update_answer(
        self,
        state: dict[str, Any],
        skills: list[int],
        correct: int,
        item: int | None = None,
        timestamp: float | None = None,
    ) -> dict[str, Any]:
        """``update`` for an answer on one skill; the recurrent model takes no other (see
        ``_one_row_per_answer``)."""
        distinct = list(dict.fromkeys(skills))
        if len(distinct) != 1:
            raise ValueError("DeepKT folds answers on one skill only: give it one row per answer")
        return self.update(state, distinct[0], correct, item, timestamp)

    # -- persistence ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "hyper": {
                "hidden": self.hidden,
                "embed": self.embed,
                "window": self.window,
                "batch_size": self.batch_size,
                "lr": self.lr,
                "weight_decay": self.weight_decay,
                "max_epochs": self.max_epochs,
                "patience": self.patience,
                "valid_fraction": self.valid_fraction,
                "max_seconds": self.max_seconds,
                "threads": self.threads,
                "seed": self.seed,
            },
            "n_skills": self.n_skills_,
            "weights": {k: np.asarray(v).tolist() for k, v in self.weights_.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeepKT:
        model = cls(**data["hyper"])
        model.n_skills_ = int(data["n_skills"])
        model.weights_ = {k: np.asarray(v, dtype=np.float64) for k, v in data["weights"].items()}
        model._unpack()
        return model


def _one_row_per_answer(log: ResponseLog) -> None:
    """The recurrent model reads a learner's rows one after another, so the later rows of a
    multi-skill answer would read the first: it takes one row per answer only."""
    if log.answer is not None and len(log) and answers_of(log).n_answers < len(log):
        raise ValueError(
            "DeepKT reads rows one by one and would read an answer's other rows: give it one row "
            "per answer (ResponseLog.answer has answers of several rows)"
        )
