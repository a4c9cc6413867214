"""Early-warning rules on a logged training metric: alarm when it jumps relative to its recent past.

The score of a metric at step t is ``direction × log((x_t + ε) / (m_t + ε))``, with ``m_t`` the
median of its previous ``window`` values (no score while fewer than ``window`` earlier values are
known, or when one of them or ``x_t`` is missing), so a score of log 2 means "twice its recent level"
whatever the metric's scale. ``direction`` is +1 for a metric expected to rise before a collapse,
-1 for one expected to fall, 0 for either (absolute value). An **alarm** is a step whose score is
at least the rule's threshold.

The collapse study scores every candidate metric with exactly this function
(``benchmarks/collapse/warning.py``); the RL trainer runs one rule online
(:class:`~baselines.train.callbacks.EarlyWarning`, config ``warning_*``). Torch-free.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

EPS = 1e-6
"""Added to the value and the median so that zeros have a finite log."""


@dataclass(frozen=True)
class WarningRule:
    """Which metric to watch and when it alarms (see the module docstring)."""

    metric: str
    direction: int = 1
    window: int = 5
    threshold: float = math.log(100.0)

    def __post_init__(self) -> None:
        if self.direction not in (-1, 0, 1):
            raise ValueError(f"direction must be -1, 0 or 1, got {self.direction!r}.")
        if self.window < 1:
            raise ValueError(f"window must be ≥ 1, got {self.window!r}.")
        if not self.metric:
            raise ValueError("metric must name a logged metric, e.g. 'diag/onpolicy/illegal_total'.")


class RelativeScore:
    """The online score of one metric: feed one value per step with :meth:`push`."""

    def __init__(self, direction: int, window: int) -> None:
        self.direction = direction
        self.history: deque[float] = deque(maxlen=window)

    def push(self, value: float) -> float:
        """Score ``value`` against the values pushed before it, then remember it (NaN: no score)."""
        history = self.history
        if len(history) < (history.maxlen or 0) or math.isnan(value) or any(math.isnan(h) for h in history):
            score = math.nan
        else:
            base = statistics.median(history)
            z = math.log((abs(value) + EPS) / (abs(base) + EPS))
            score = abs(z) if self.direction == 0 else self.direction * z
        history.append(value)
        return score

    def state_dict(self) -> dict[str, Any]:
        """The remembered values."""
        return {"history": list(self.history)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output."""
        self.history.clear()
        self.history.extend(float(v) for v in state["history"])


def score_series(values: Iterable[float], direction: int, window: int) -> list[float]:
    """The score of every value of a series (NaN where there is none), as :class:`RelativeScore`
    gives them online."""
    scorer = RelativeScore(direction, window)
    return [scorer.push(float(v)) for v in values]
