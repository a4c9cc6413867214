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


def test_rl_memory_packs_a_mixed_batch_by_length_with_the_same_work(capsys) -> None:
    code = rl_memory.main(["--episodes", "8", "--length", "160", "--short-length", "112", "--micro", "none,tokens:250"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Same work: yes" in out
    assert "micro_batch_tokens=250: peak" in out
    assert "one in each group of 8 of 160 tokens and the others of 112 (944 tokens" in out


def test_rl_memory_rejects_an_unknown_setting(capsys) -> None:
    with pytest.raises(SystemExit):
        rl_memory.main(["--micro", "none,tokens:x"])
    assert "--micro: 'tokens:x' is not 'none', a row count ('8') or 'tokens:N'." in capsys.readouterr().err
