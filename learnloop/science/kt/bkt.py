"""Bayesian knowledge tracing (Corbett & Anderson 1995), online form.

Each skill is a two-state hidden Markov model: unknown/known with P(L0) initial mastery,
P(T) learning per opportunity, P(F) forgetting, P(G) guess and P(S) slip.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class BKTParams:
    p_init: float = 0.2
    p_learn: float = 0.15
    p_guess: float = 0.2
    p_slip: float = 0.1
    p_forget: float = 0.0

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BKTParams:
        return cls(**{k: float(v) for k, v in data.items() if k in cls.__dataclass_fields__})


def bkt_predict(p_known: float, params: BKTParams) -> float:
    """P(correct) on the next opportunity given P(known) before it."""
    return p_known * (1.0 - params.p_slip) + (1.0 - p_known) * params.p_guess


def bkt_update(p_known: float, correct: bool, params: BKTParams) -> float:
    """Posterior P(known) after observing one answer, then one learning/forgetting step."""
    if correct:
        num = p_known * (1.0 - params.p_slip)
        den = num + (1.0 - p_known) * params.p_guess
    else:
        num = p_known * params.p_slip
        den = num + (1.0 - p_known) * (1.0 - params.p_guess)
    posterior = num / den if den > 0 else p_known
    return posterior * (1.0 - params.p_forget) + (1.0 - posterior) * params.p_learn
