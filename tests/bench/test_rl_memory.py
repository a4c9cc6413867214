"""``benchmarks/perf/rl_memory.py`` on a tiny batch: each setting runs in its own process, the
same-work check passes (same loss, gradient norm and weights with and without micro-batches) and
the table reports a peak for each. Memory ratios are not judged here."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from benchmarks.perf import rl_memory  # noqa: E402


def test_rl_memory_settings_do_the_same_work(capsys) -> None:
    code = rl_memory.main(["--episodes", "8", "--length", "160", "--micro", "none,1"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Same work: yes" in out
    assert "micro_batch_size=none: peak" in out and "micro_batch_size=1: peak" in out


def test_rl_memory_rejects_a_batch_that_is_not_whole_groups(capsys) -> None:
    with pytest.raises(SystemExit):
        rl_memory.main(["--episodes", "12"])
    assert "--episodes must be a positive multiple of 8, got 12." in capsys.readouterr().err
