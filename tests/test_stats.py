"""Wilson intervals for success rates (toolgym.stats)."""

from __future__ import annotations

import math

import pytest

from toolgym.core.errors import ConfigError
from toolgym.stats import format_rate, wilson_interval


@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    [  # reference values: scipy.stats.binomtest(k, n).proportion_ci(method="wilson")
        (10, 10, 0.7224672, 1.0),
        (0, 10, 0.0, 0.2775328),
        (7, 10, 0.3967781, 0.8922087),
        (37, 100, 0.2818236, 0.4677947),
        (1, 1, 0.2065493, 1.0),
    ],
)
def test_wilson_matches_reference_values(successes: int, n: int, low: float, high: float) -> None:
    got = wilson_interval(successes, n)
    assert got == pytest.approx((low, high), abs=1e-6)


def test_wilson_is_exact_at_the_edges_and_widens_with_confidence() -> None:
    assert wilson_interval(0, 300)[0] == 0.0 and wilson_interval(300, 300)[1] == 1.0
    assert wilson_interval(5, 10, 0.99)[0] < wilson_interval(5, 10, 0.95)[0]
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


@pytest.mark.parametrize(("successes", "n", "confidence"), [(11, 10, 0.95), (-1, 10, 0.95), (1, 10, 1.5)])
def test_wilson_rejects_impossible_counts(successes: int, n: int, confidence: float) -> None:
    with pytest.raises(ConfigError, match="successes|confidence"):
        wilson_interval(successes, n, confidence)


def test_format_rate() -> None:
    assert format_rate(70, 100) == "0.700 [0.604, 0.781]"
    assert format_rate(10, 10) == "1.000 [0.722, 1.000]"
    assert format_rate(0, 0) == "– (0 episodes)"


def test_summarize_reports_the_wilson_interval_not_a_normal_half_width() -> None:
    from toolgym.evaluation import EpisodeResult, summarize

    results = [
        EpisodeResult("ToolGym/Search-v0", f"t{i}", i, True, 1.0, 2, 0, 0, "answer", 0.0) for i in range(10)
    ]
    summary = summarize(results)
    assert summary.successes == 10 and summary.success_rate == 1.0
    assert summary.success_ci == pytest.approx((0.7225, 1.0), abs=1e-3)
    empty = summarize([])
    assert empty.episodes == 0 and all(math.isnan(x) for x in empty.success_ci)
