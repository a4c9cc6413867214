"""Confidence intervals for success rates (pure Python; no scipy).

A success rate over ``n`` episodes is a binomial proportion. The normal approximation
(``p ± 1.96·sqrt(p(1-p)/n)``) collapses to ``± 0`` at 0/n and n/n, which claims certainty that
10 episodes cannot give; the Wilson score interval stays honest at the edges (10/10 →
[0.722, 1.000]) and is what ToolGym reports everywhere (``toolgym run``, the leaderboard,
training evaluations).
"""

from __future__ import annotations

import math
from statistics import NormalDist

from toolgym.core.errors import ConfigError


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval ``(low, high)`` for ``successes`` out of ``n`` trials.

    Args:
        successes: Number of successes, ``0 ≤ successes ≤ n``.
        n: Number of trials (episodes); ``0`` gives ``(nan, nan)``.
        confidence: Two-sided confidence level in (0, 1).

    Raises:
        ConfigError: for counts outside ``0 ≤ successes ≤ n`` or a confidence outside (0, 1).
    """
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be in (0, 1), got {confidence!r}.")
    if n < 0 or not 0 <= successes <= max(n, 0):
        raise ConfigError(f"Expected 0 ≤ successes ≤ n, got successes={successes!r}, n={n!r}.")
    if n == 0:
        return (math.nan, math.nan)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    low, high = max(0.0, centre - half), min(1.0, centre + half)
    # Exact at the edges (floating point would leave 1e-17 instead of 0 / 1).
    return (0.0 if successes == 0 else low, 1.0 if successes == n else high)


def format_rate(successes: int, n: int, confidence: float = 0.95) -> str:
    """``"0.700 [0.604, 0.781]"`` (70 of 100): the success rate and its Wilson interval, three decimals."""
    if n == 0:
        return "– (0 episodes)"
    low, high = wilson_interval(successes, n, confidence)
    return f"{successes / n:.3f} [{low:.3f}, {high:.3f}]"


__all__ = ["format_rate", "wilson_interval"]
